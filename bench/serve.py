"""The served model over HTTP, ONNX Runtime vs PyTorch, side by side in one run.

Trains a champion the way ``pixtag train`` does (the first ``--per-class`` usable photos of each
class of ``--photos`` and ``--background`` everyday photos of ``--others``, in a temporary
dataset and MLflow store) and registers it. Then, for each runtime, starts
``mlflow models serve -m models:/pixtag@champion --env-manager local`` (the runtime chosen by
the model's configuration, ``MLFLOW_PYFUNC_INFERENCE_CONFIG``) and drives it with ``requests``:

* single-image latency p50/p95, sequential (``--requests`` requests);
* throughput (images/s) at 1, 4, 8 and 16 concurrent clients, single-image requests, for
  ``--seconds`` each; every error counted;
* one 32-image request;
* the server's memory (RSS of its process tree) once loaded, after a warm-up that sends each
  kind of request once, after each phase and at the end; its CPU time per image at each
  concurrency, and the clients' (this process's), which share the same cores.

Beside them, the extractor's model-only throughput for the same number of crops (one image per
call, what a single-image request runs) for each runtime, in this process. The unseen photos
sent are near-square (one crop each). Clients and server share the machine's cores.

    python bench/serve.py [--per-class 40] [--seconds 10] [--requests 40] [--runtimes onnx,torch]

The last line is JSON: per runtime the figures above, plus ``onnx_vs_torch_8_clients`` and
``<runtime>_8_clients_vs_model_only``. Target: 8-client throughput >= 0.8 x model-only, 0
errors, RSS flat (``rss_growth_pct``, end vs start, < 10 %).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return round(sum(p.memory_info().rss for p in procs) / 2**20, 1)
    except psutil.NoSuchProcess:
        return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process tree so far."""
    import psutil

    proc = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [proc, *proc.children(recursive=True)])


def champion(tmp: Path, args: argparse.Namespace) -> tuple[str, list[Path]]:
    """Train and register a champion; returns the MLflow URI and unseen near-square photos."""
    from bench.openset import store_dataset, usable
    from pixtag.core.config import load_settings
    from pixtag.data.images import ASPECT_RANGE
    from pixtag.model.backbones.weights import LITE0
    from pixtag.model.classifier.openset import BACKGROUND
    from pixtag.model.promotion.register import register
    from pixtag.model.training.train import train

    photos, others = Path(args.photos), Path(args.others)
    rows: list[tuple[str, dict]] = []
    unseen: list[Path] = []
    for folder in sorted(d for d in photos.iterdir() if d.is_dir()):
        files = sorted(folder.glob("*.jpg"))
        kept = [r for r in map(usable, files[:args.per_class + 20]) if r][:args.per_class]
        rows += [(folder.name, r) for r in kept]
        used = {r["path"] for r in kept}
        unseen += [f for f in files[::-1] if f not in used][:40]
    background = [r for r in map(usable, sorted(others.glob("*/*.jpg"))[::3]) if r][:args.background]
    rows += [(BACKGROUND, r) for r in background]
    store_dataset(tmp / "ds", rows)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    settings = load_settings(storage=str(tmp / "ds"), backbone=LITE0, mlflow_uri=uri, min_per_class=10)
    summary = train(settings)
    register(settings, summary["run_id"])

    from PIL import Image

    def square(path: Path) -> bool:
        with Image.open(path) as im:
            return ASPECT_RANGE[0] <= im.width / im.height <= ASPECT_RANGE[1]

    squares = [f for f in unseen if square(f)]
    return uri, squares or unseen


def model_only(runtime: str, uri: str, images: list[bytes], calls: int) -> tuple[float, float]:
    """Images/s and CPU ms per image of the champion's backbone on one crop per call (no HTTP,
    no decoding), in a session set up as the feature extractor sets it up."""
    import mlflow

    from pixtag.data.images import decode, to_rgb
    from pixtag.model.backbones.onnx_runtime import from_graph
    from pixtag.model.serving.loader import ONNX_FILE
    from pixtag.model.serving.tagmodel import windows

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/pixtag@champion", model_config={"runtime": runtime}).get_raw_model()
    backbone = model.backbone
    if runtime == "onnx":  # the extractor's session (idle threads spin), not the server's
        import yaml

        local = Path(mlflow.artifacts.download_artifacts("models:/pixtag@champion"))
        data = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]["data"]
        backbone = from_graph(local / data / ONNX_FILE, model.config["onnx"])
    size = backbone.input_size
    crops = [np.asarray(windows(to_rgb(decode(d, 10**8, draft=size)[0]), size, "off")[0]).transpose(2, 0, 1)
             for d in images[:8]]
    backbone.embed(crops[0][None])
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(calls):
        backbone.embed(crops[i % len(crops)][None])
    return calls / (time.perf_counter() - start), (time.process_time() - cpu) * 1000 / calls


def drive(url: str, bodies: list[str], clients: int, seconds: float) -> dict[str, float]:
    """``clients`` threads posting single-image requests for ``seconds``; images/s and errors."""
    import requests

    done, errors = [0], [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(k: int) -> None:
        with requests.Session() as session:
            i = k
            while time.monotonic() < stop:
                reply = session.post(url, data=bodies[i % len(bodies)],
                                     headers={"Content-Type": "application/json"}, timeout=120)
                ok = reply.status_code == 200 and "error" not in reply.json()["predictions"][0]
                with lock:
                    done[0] += ok
                    errors[0] += not ok
                i += clients

    start, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return {"img_s": round(done[0] / (time.perf_counter() - start), 2), "errors": errors[0],
            "client_cpu_ms_per_img": round((time.process_time() - cpu) * 1000 / max(done[0], 1), 1)}


def serve(runtime: str, uri: str, photos: list[Path], tmp: Path, args: argparse.Namespace) -> dict:
    import requests

    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = os.environ | {"MLFLOW_TRACKING_URI": uri, "MLFLOW_MODELS_WORKERS": "1",
                        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                        "MLFLOW_PYFUNC_INFERENCE_CONFIG": json.dumps(
                            {"runtime": runtime, "storage": str(tmp / f"ledger-{runtime}")})}
    log = open(tmp / f"serve-{runtime}.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([str(bin_dir / "mlflow"), "models", "serve", "-m", "models:/pixtag@champion",
                             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp)
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mlflow models serve ({runtime}) did not start: "
                                 + (tmp / f"serve-{runtime}.log").read_text()[-2000:])
            time.sleep(0.5)
        images = [base64.b64encode(p.read_bytes()).decode() for p in photos]
        bodies = [json.dumps({"dataframe_records": [{"image": b}]}) for b in images]
        batch_32 = json.dumps({"dataframe_records": [{"image": images[i % len(images)]} for i in range(32)]})
        result: dict = {"rss_loaded_mb": rss_mb(proc.pid)}
        # warm-up: each kind of request once (sequential, 16 clients, 32 images), so that start
        # and end compare a server that has seen them all (growth after this is a leak)
        for body in [*bodies[:4], batch_32]:
            requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=300)
        drive(url, bodies, 16, 1.0)
        result["rss_start_mb"] = rss_mb(proc.pid)
        rss: dict[str, float] = {}
        latencies = []
        with requests.Session() as session:
            for i in range(args.requests):
                start = time.perf_counter()
                reply = session.post(url, data=bodies[i % len(bodies)], timeout=120,
                                     headers={"Content-Type": "application/json"})
                latencies.append((time.perf_counter() - start) * 1000)
                assert reply.status_code == 200, reply.text[:500]
        result["latency_ms_p50"] = round(float(np.percentile(latencies, 50)), 1)
        result["latency_ms_p95"] = round(float(np.percentile(latencies, 95)), 1)
        rss["sequential"] = rss_mb(proc.pid)
        for clients in (1, 4, 8, 16):
            cpu = cpu_seconds(proc.pid)
            result[f"clients_{clients}"] = drive(url, bodies, clients, args.seconds)
            done = result[f"clients_{clients}"]["img_s"] * args.seconds
            result[f"clients_{clients}"]["server_cpu_ms_per_img"] = round(
                (cpu_seconds(proc.pid) - cpu) * 1000 / max(done, 1), 1)
            rss[f"clients_{clients}"] = rss_mb(proc.pid)
        start = time.perf_counter()
        reply = requests.post(url, data=batch_32, headers={"Content-Type": "application/json"}, timeout=300)
        result["batch_32_ms"] = round((time.perf_counter() - start) * 1000, 1)
        result["batch_32_errors"] = int(reply.status_code != 200) or sum(
            "error" in p for p in reply.json()["predictions"])
        result["rss_end_mb"] = rss_mb(proc.pid)
        result["rss_after_mb"] = rss
        result["rss_growth_pct"] = round((result["rss_end_mb"] / result["rss_start_mb"] - 1) * 100, 1)
        result["errors"] = sum(v["errors"] for k, v in result.items() if k.startswith("clients_")) \
            + result["batch_32_errors"]
        return result
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", default=os.environ.get("PIXTAG_PHOTOS") or str(SHARED / "photos5"))
    parser.add_argument("--others", default=str(SHARED / "others"))
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--background", type=int, default=80)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--runtimes", default="onnx,torch", help="comma-separated, run in this order")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        uri, photos = champion(tmp, args)
        print(f"machine: {platform.machine()} {len(os.sched_getaffinity(0))} cpus, load "
              f"{os.getloadavg()[0]:.1f}; champion trained on {args.per_class}/class + "
              f"{args.background} background; {len(photos)} unseen near-square photos sent")
        data = [p.read_bytes() for p in photos]
        out: dict = {}
        runtimes = args.runtimes.split(",")
        for runtime in runtimes:
            img_s, cpu_ms = model_only(runtime, uri, data, 64)
            out[f"{runtime}_model_only_img_s"] = round(img_s, 2)
            out[f"{runtime}_model_only_cpu_ms_per_img"] = round(cpu_ms, 1)
            out[runtime] = serve(runtime, uri, photos, tmp, args)
            print(f"{runtime}: model-only {out[f'{runtime}_model_only_img_s']} img/s (1 crop/call); "
                  f"served {json.dumps(out[runtime])}")
            out[f"{runtime}_8_clients_vs_model_only"] = round(
                out[runtime]["clients_8"]["img_s"] / out[f"{runtime}_model_only_img_s"], 3)
        if {"onnx", "torch"} <= set(runtimes):
            out["onnx_vs_torch_8_clients"] = round(out["onnx"]["clients_8"]["img_s"]
                                                   / out["torch"]["clients_8"]["img_s"], 3)
    print(f"load after: {os.getloadavg()[0]:.1f}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
