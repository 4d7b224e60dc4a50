"""``pixtag suggest`` (tags for image files, through the served model's own code path) and
``pixtag serve`` (``mlflow models serve`` of the champion from this environment)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixtag.model.serving.tagmodel import SuggestError
from pixtag.model.tracking import connect

if TYPE_CHECKING:
    from pixtag.core.config import Settings


def champion_uri(settings: Settings) -> str:
    return f"models:/{settings.model_name}@champion"


def suggest(settings: Settings, images: Sequence[str | Path], model_uri: str | None = None,
            *, threshold: float | None = None, top_k: int | None = None) -> list[dict[str, Any]]:
    """Suggest tags for local image files with the served model's code path (pyfunc)."""
    import mlflow
    import pandas as pd

    paths = [Path(p).expanduser().resolve() for p in images]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SuggestError(f"no such image file: {', '.join(missing)}")
    connect(settings)
    uri = model_uri or champion_uri(settings)
    try:
        # The CLI reads the files its user named (and only those reach the model).
        model = mlflow.pyfunc.load_model(uri, model_config={
            "storage": settings.storage, "s3_endpoint_url": settings.s3_endpoint_url,
            "file_root": str(Path(os.path.commonpath([str(p.parent) for p in paths])))})
    except mlflow.exceptions.MlflowException as exc:
        raise SuggestError(f"cannot load model {uri}: {exc.message}") from None
    params: dict[str, Any] = {"source": "cli"}
    if threshold is not None:
        params["threshold"] = threshold
    if top_k is not None:
        params["top_k"] = top_k
    results = model.predict(pd.DataFrame({"image": [p.as_uri() for p in paths]}), params=params)
    return [{"image": str(p), **r} for p, r in zip(paths, results, strict=True)]


def serve_command(settings: Settings, model_uri: str | None = None, host: str = "127.0.0.1",
                  port: int = 5001) -> tuple[list[str], dict[str, str]]:
    """``mlflow models serve`` for the champion and the environment it needs: this Python's
    ``bin`` folder first on ``PATH`` (MLflow starts ``uvicorn`` from ``PATH``; an unactivated
    venv lacks it), pixtag's tracking URI, and pixtag's storage for the ledger unless
    ``MLFLOW_PYFUNC_INFERENCE_CONFIG`` says otherwise."""
    bin_dir = Path(sys.executable).parent
    mlflow_bin = bin_dir / "mlflow"
    if not mlflow_bin.is_file():
        raise SuggestError(f"no mlflow command beside {sys.executable}: install pixtag with its dependencies")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(bin_dir), *filter(None, [env.get("PATH")])])
    env["MLFLOW_TRACKING_URI"] = settings.mlflow_uri
    if "MLFLOW_PYFUNC_INFERENCE_CONFIG" not in env:
        config = {"storage": settings.storage, "s3_endpoint_url": settings.s3_endpoint_url or ""}
        if settings.serve_file_root:
            config["file_root"] = settings.serve_file_root
        env["MLFLOW_PYFUNC_INFERENCE_CONFIG"] = json.dumps(config)
    args = [str(mlflow_bin), "models", "serve", "-m", model_uri or champion_uri(settings),
            "--env-manager", "local", "--host", host, "--port", str(port)]
    return args, env
