"""MLflow set-up, in one place: where the tracking server and registry are, the experiment, and
the tags pixtag's runs carry. Nothing else in pixtag calls ``mlflow.set_tracking_uri``.

Every command and task finds the same registry with no extra setting: ``settings.mlflow_uri``
(``PIXTAG_MLFLOW_URI``, else MLflow's own ``MLFLOW_TRACKING_URI``, else the local stack's database,
:data:`pixtag.core.config.DEFAULT_MLFLOW_URI`). The local stack's MLflow server keeps the
artifacts as plain files beside that database (``mlruns/``, not proxied ``mlflow-artifacts:``
URIs), so a command reads the champion with the server up or stopped.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from pixtag.core.config import Settings

#: The run tag naming the storage (dataset) a run trained on; runs logged between the layer move
#: and this fix carry it as ``pixtag.core.storage``, read too.
STORAGE_TAG = "pixtag.storage"
OLD_STORAGE_TAGS = ("pixtag.core.storage",)
ARTIFACTS_DIR = "mlruns"  # beside a SQLite database


def connect(settings: Settings) -> MlflowClient:
    """Point MLflow at ``settings.mlflow_uri``; a client for it (tracking and registry).

    The registry follows the tracking URI. It is not set for the process
    (``mlflow.set_registry_uri``): MLflow prefers a process-wide registry URI even over the
    tracking URI a later ``MlflowClient(uri)`` is given, so one would send that client's
    registry calls to the wrong store."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_uri)
    return MlflowClient(tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri)


def use_experiment(settings: Settings) -> None:
    """:func:`connect`, and make the experiment ``settings.model_name`` the active one (created on
    first use). With a local SQLite store its artifacts go to ``mlruns/`` beside the database (as
    the local stack's server keeps them), not to ``./mlruns`` of whatever folder the command
    happens to run in (MLflow's default); a tracking server keeps its own artifact root."""
    import mlflow
    from mlflow.exceptions import MlflowException

    connect(settings)
    root = local_artifact_root(settings.mlflow_uri)
    if root and mlflow.get_experiment_by_name(settings.model_name) is None:
        with contextlib.suppress(MlflowException):  # another task created it meanwhile
            mlflow.create_experiment(settings.model_name, artifact_location=root)
    mlflow.set_experiment(settings.model_name)


def local_artifact_root(tracking_uri: str) -> str | None:
    """``file://`` URI of ``mlruns/`` beside a ``sqlite:///`` database; None for other stores."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return (sqlite_path(tracking_uri).parent / ARTIFACTS_DIR).as_uri()


def sqlite_path(tracking_uri: str) -> Path:
    """The database file of a ``sqlite:///`` URI (relative paths: from the current folder)."""
    return Path(tracking_uri.removeprefix("sqlite:///")).expanduser().resolve()


def where(uri: str) -> str:
    """Where MLflow is, without credentials or paths (safe for messages)."""
    parts = urlsplit(uri)
    if not parts.hostname:
        return f"{parts.scheme or 'file'} store"
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def run_storage(run: Any) -> str | None:
    """The storage a run trained on (its :data:`STORAGE_TAG`, or the tag's older name)."""
    tags = run.data.tags
    for name in (STORAGE_TAG, *OLD_STORAGE_TAGS):
        if tags.get(name):
            return str(tags[name])
    return None


def load_dict(uri: str) -> dict[str, Any]:
    """A JSON artifact (``runs:/RUN/report.json``...) of the connected store."""
    import mlflow

    return mlflow.artifacts.load_dict(uri)
