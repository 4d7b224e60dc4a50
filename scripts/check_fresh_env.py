"""Serve a pixtag model in a fresh virtual environment built only from its own requirements.

Trains and registers a small champion (the first 40 photos of each class of ``--photos``, a
temporary dataset and MLflow store) unless ``--model DIR`` names a downloaded model folder;
then, in a working directory outside the checkout: ``python -m venv``, ``pip install -r
model/requirements.txt`` (nothing else: no pixtag, no checkout on ``sys.path``), ``mlflow models
serve --env-manager local`` from that venv, and the model's own input example plus one photo
posted to ``/invocations``.

    python scripts/check_fresh_env.py [--photos ../shared/data/photos5] [--model DIR] [--keep]

The last line is JSON: seconds for the venv and the install, the venv's size, whether pixtag was
importable in it, where the served pixtag came from, and the answers.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]


def train_model(photos: Path, work: Path) -> Path:
    sys.path.insert(0, str(REPO))
    import mlflow

    from pixtag.core.config import load_settings
    from pixtag.model.promotion.register import register
    from pixtag.model.training.train import train
    from tests.helpers import shared_dataset

    settings = load_settings(storage=str(shared_dataset(photos, 40)), backbone="efficientnet_lite0",
                             mlflow_uri=f"sqlite:///{work / 'mlflow.db'}")
    summary = train(settings)
    register(settings, summary["run_id"])
    mlflow.set_tracking_uri(settings.mlflow_uri)
    return Path(mlflow.artifacts.download_artifacts("models:/pixtag@champion", dst_path=str(work / "model")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "data" / "photos5")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pixtag-fresh-"))
    model = args.model.resolve() if args.model else train_model(args.photos.resolve(), work)
    venv = work / "venv"
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    t1 = time.monotonic()
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(model / "requirements.txt")],
                   check=True, cwd=work)
    t2 = time.monotonic()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(work),
           "MLFLOW_PYFUNC_INFERENCE_CONFIG": json.dumps({"storage": str(work / "ledger")})}
    has_pixtag = subprocess.run([str(venv / "bin" / "python"), "-c", "import pixtag"], cwd=work, env=env,
                                capture_output=True).returncode == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen([str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(model),
                               "--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)],
                              cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit((work / "serve.log").read_text()[-3000:])
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        t3 = time.monotonic()
        example = json.loads((model / "serving_input_example.json").read_text())
        photo = sorted((args.photos / "cat").glob("*.jpg"))[-1]
        example["dataframe_split"]["data"].append([base64.b64encode(photo.read_bytes()).decode()])
        reply = requests.post(f"http://127.0.0.1:{port}/invocations", json=example, timeout=120)
        log_text = (work / "serve.log").read_text(errors="replace")
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file())
    result = {"venv_s": round(t1 - t0, 1), "install_s": round(t2 - t1, 1), "serve_ready_s": round(t3 - t2, 1),
              "venv_mb": round(size / 2**20), "pixtag_installed_in_venv": has_pixtag,
              "requirements": (model / "requirements.txt").read_text().split(),
              "status": reply.status_code, "predictions": reply.json().get("predictions"),
              "torch_in_venv": bool(list((venv / "lib").glob("python*/site-packages/torch"))),
              "work": str(work)}
    if reply.status_code != 200:
        print(log_text[-3000:], file=sys.stderr)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
