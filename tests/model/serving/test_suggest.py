"""Suggestions: sliding windows, combining, the pyfunc in-process and served over HTTP."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from click.testing import CliRunner
from PIL import Image

from pixtag.cli.app import cli
from pixtag.core.config import load_settings
from pixtag.data import ledger
from pixtag.data.images import prepare
from pixtag.model.backbones.weights import LITE0
from pixtag.model.promotion.register import register
from pixtag.model.serving.loader import DATA_DIR, ONNX_FILE
from pixtag.model.serving.tagmodel import SuggestError, combine, pick_tags, read_item, windows
from pixtag.model.training.train import train
from tests.helpers import shared_dataset

LABELS = ["bird", "car", "cat", "dog", "flower"]


# --- pure core -------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "mode", "count"), [
    ((500, 500), "auto", 1), ((1000, 400), "auto", 3), ((400, 1000), "auto", 3),
    ((1000, 400), "off", 1), ((448, 448), "always", 1), ((460, 448), "always", 2),
    ((449, 224), "always", 3),
])
def test_windows(size: tuple[int, int], mode: str, count: int) -> None:
    views = windows(Image.new("RGB", size, (10, 200, 30)), 224, mode)
    assert len(views) == count and all(v.size == (224, 224) for v in views)


def test_windows_cover_a_wide_image_end_to_end() -> None:
    image = Image.new("RGB", (900, 300))
    image.paste((255, 0, 0), (0, 0, 60, 300))  # red strip at the left end
    image.paste((0, 0, 255), (840, 0, 900, 300))  # blue strip at the right end
    views = windows(image, 224, "auto")
    assert np.asarray(views[0])[100, 5].tolist()[0] > 200
    assert np.asarray(views[-1])[100, -5].tolist()[2] > 200


def test_combine_mean_and_vote() -> None:
    probs = np.array([[0.9, 0.2, 0.6], [0.7, 0.1, 0.3], [0.2, 0.1, 0.55]])
    mean, passed, votes = combine(probs, "mean", 0.5)
    assert np.allclose(mean, [0.6, 0.1333, 0.4833], atol=1e-3)
    assert passed.tolist() == [True, False, False] and votes is None
    mean, passed, votes = combine(probs, "vote", 0.5)
    assert passed.tolist() == [True, False, True] and np.allclose(votes, [2 / 3, 0, 2 / 3])


def test_pick_tags_orders_caps_and_abstains() -> None:
    prob = np.array([0.7, 0.95, 0.1, 0.6, 0.8])
    tags = pick_tags(LABELS, prob, prob >= 0.5, None, top_k=3)
    assert [t["tag"] for t in tags] == ["car", "flower", "bird"]
    assert pick_tags(LABELS, prob, prob >= 0.99, None, top_k=3) == []


def test_read_item(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"jpeg bytes")
    assert read_item(base64.b64encode(b"jpeg bytes").decode(), 100) == b"jpeg bytes"
    assert read_item((tmp_path / "a.jpg").as_uri(), 100, tmp_path) == b"jpeg bytes"
    with pytest.raises(SuggestError, match="no such file"):
        read_item((tmp_path / "missing.jpg").as_uri(), 100, tmp_path)
    with pytest.raises(SuggestError, match="larger than"):
        read_item(base64.b64encode(b"x" * 200).decode(), 100)
    with pytest.raises(SuggestError, match="not base64"):
        read_item("https://example.com/cat.jpg", 100)


def test_file_urls_only_inside_the_allowed_folder(tmp_path: Path) -> None:
    root, outside = tmp_path / "images", tmp_path / "secret"
    root.mkdir(), outside.mkdir()
    (outside / "key.pem").write_bytes(b"private")
    (root / "link.jpg").symlink_to(outside / "key.pem")
    with pytest.raises(SuggestError, match="not accepted here"):  # the default: no file access at all
        read_item((outside / "key.pem").as_uri(), 100)
    for url in ((outside / "key.pem").as_uri(), f"file://{root}/../secret/key.pem", (root / "link.jpg").as_uri(),
                "file:///etc/passwd"):
        with pytest.raises(SuggestError, match="outside the allowed folder"):
            read_item(url, 100, root)


# --- the logged model ------------------------------------------------------------------------
def photo(photos: Path, label: str, index: int = 0) -> Path:
    return sorted((photos / label).glob("*.jpg"))[-1 - index]  # the last ones: not trained on


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@pytest.fixture(scope="module")
def model(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("suggest")
    settings = load_settings(storage=str(shared_dataset(photos, 40)), backbone=LITE0,
                             mlflow_uri=f"sqlite:///{root / 'mlflow.db'}")
    summary = train(settings)
    register(settings, summary["run_id"])
    return {"settings": settings, "uri": summary["model_uri"], "root": root}


def load(model: dict[str, Any], ledger_dir: Path, **config: Any):
    import mlflow

    mlflow.set_tracking_uri(model["settings"].mlflow_uri)
    return mlflow.pyfunc.load_model(model["uri"], model_config={"storage": str(ledger_dir),
                                                                **config})


def test_pyfunc_tags_photos_and_records_them_in_the_ledger(model, photos: Path,
                                                           tmp_path: Path) -> None:
    pyfunc = load(model, tmp_path / "store", file_root=str(photos))
    files = [photo(photos, c) for c in ("cat", "car", "flower")]
    frame = pd.DataFrame({"image": [b64(files[0]), files[1].as_uri(), b64(files[2]),
                                    base64.b64encode(b"not an image").decode()]})
    out = pyfunc.predict(frame)
    assert [r["tags"][0]["tag"] for r in out[:3]] == ["cat", "car", "flower"]
    assert all(r["tags"][0]["probability"] >= 0.5 and not r["no_confident_tag"] for r in out[:3])
    assert out[3]["error"].startswith("not_image") and out[3]["no_confident_tag"]
    expected = {prepare(f.read_bytes()).phash for f in files}  # the hash the scraper computes
    assert {r["phash"] for r in out[:3]} == expected
    assert ledger.read_phashes(str(tmp_path / "store")) == expected


def test_models_logged_before_the_rooms_still_load(model, photos: Path, tmp_path: Path) -> None:
    """A model logged before the model layer was split names ``loader_module: pixtag.model.suggest``
    in its MLmodel; it loads and tags as it did."""
    import mlflow
    import yaml

    from pixtag.model.serving.packaging import LOADER_MODULE

    mlflow.set_tracking_uri(model["settings"].mlflow_uri)
    local = Path(mlflow.artifacts.download_artifacts(model["uri"], dst_path=str(tmp_path / "old")))
    spec = yaml.safe_load((local / "MLmodel").read_text())
    assert spec["flavors"]["python_function"]["loader_module"] == LOADER_MODULE == "pixtag.model.serving.loader"
    spec["flavors"]["python_function"]["loader_module"] = "pixtag.model.suggest"
    (local / "MLmodel").write_text(yaml.safe_dump(spec))
    old = mlflow.pyfunc.load_model(str(local), model_config={"storage": str(tmp_path / "store")})
    out = old.predict(pd.DataFrame({"image": [b64(photo(photos, "dog"))]}))
    assert out[0]["tags"][0]["tag"] == "dog"


def test_threshold_top_k_and_no_confident_tag(model, photos: Path, tmp_path: Path) -> None:
    pyfunc = load(model, tmp_path / "store")
    frame = pd.DataFrame({"image": [b64(photo(photos, "dog"))]})
    (everything,) = pyfunc.predict(frame, params={"threshold": 0.0, "top_k": 5})
    assert len(everything["tags"]) == 5
    probs = [t["probability"] for t in everything["tags"]]
    assert probs == sorted(probs, reverse=True) and everything["tags"][0]["tag"] == "dog"
    (none,) = pyfunc.predict(frame, params={"threshold": 1.0})
    assert none["tags"] == [] and none["no_confident_tag"] is True
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (224, 224, 3), np.uint8))
    buf = io.BytesIO()
    noise.save(buf, format="PNG")
    (unknown,) = pyfunc.predict(pd.DataFrame({"image": [base64.b64encode(buf.getvalue()).decode()]}))
    assert unknown["no_confident_tag"] is True, unknown


def test_wide_images_are_scored_as_windows(model, photos: Path, tmp_path: Path) -> None:
    """Two photos side by side: the windows see both (multi-label), the centre crop would not."""
    left, right = Image.open(photo(photos, "car", 1)), Image.open(photo(photos, "flower", 1))
    wide = Image.new("RGB", (896, 224))
    wide.paste(left.resize((224, 224)), (0, 0))
    wide.paste(right.resize((224, 224)), (672, 0))
    buf = io.BytesIO()
    wide.save(buf, format="JPEG", quality=95)
    item = base64.b64encode(buf.getvalue()).decode()
    (voted,) = load(model, tmp_path / "s", window_combine="vote").predict(
        pd.DataFrame({"image": [item]}), params={"threshold": 0.5})
    assert voted["views"] == 4
    (mean,) = load(model, tmp_path / "s").predict(pd.DataFrame({"image": [item]}),
                                                  params={"threshold": 0.2})
    assert {"car", "flower"} <= {t["tag"] for t in mean["tags"]}, mean
    (single,) = load(model, tmp_path / "s", window="off").predict(
        pd.DataFrame({"image": [item]}), params={"threshold": 0.2})
    assert single["views"] == 1


def test_cli_suggest(model, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXTAG_MLFLOW_URI", model["settings"].mlflow_uri)
    monkeypatch.setenv("PIXTAG_STORAGE", str(tmp_path / "store"))
    files = [str(photo(photos, "bird")), str(photo(photos, "cat"))]
    result = CliRunner().invoke(cli, ["suggest", *files, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [r["image"] for r in out] == [str(Path(f).resolve()) for f in files]  # ../shared may be a link
    assert [r["tags"][0]["tag"] for r in out] == ["bird", "cat"]
    text = CliRunner().invoke(cli, ["suggest", files[0]])
    assert text.exit_code == 0 and "#bird (" in text.stdout
    assert len(ledger.read_phashes(str(tmp_path / "store"))) == 2
    missing = CliRunner().invoke(cli, ["suggest", str(tmp_path / "nope.jpg")])
    assert missing.exit_code != 0


SERVE_WITHOUT_TORCH = """
import base64, json, sys
from concurrent.futures import ThreadPoolExecutor
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2], model_config={"storage": sys.argv[3]})
image = base64.b64encode(open(sys.argv[4], "rb").read()).decode()
out = model.predict(pd.DataFrame({"image": [image]}))
raw = model.get_raw_model()
with ThreadPoolExecutor(4) as pool:  # as the scoring server's threads call it
    many = list(pool.map(lambda _: model.predict(pd.DataFrame({"image": [image]}))[0]["tags"], range(8)))
print(json.dumps({"backbone": type(raw.backbone).__name__, "tags": out[0]["tags"], "many": many,
                  "spinning": raw.backbone.session.get_session_options().get_session_config_entry(
                      "session.intra_op.allow_spinning"),
                  "batched_rows": raw.batcher.rows, "max_batch": raw.batcher.max_batch, "views": out[0]["views"],
                  "loaded": sorted(m for m in ("torch", "timm", "click") if m in sys.modules),
                  "pixtag_cli": sorted(m for m in sys.modules if m == "pixtag.cli" or m.startswith("pixtag.cli."))}))
"""


def test_the_served_model_runs_its_onnx_graph_without_torch_or_timm(model, photos: Path,
                                                                    tmp_path: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(model["settings"].mlflow_uri)
    local = Path(mlflow.artifacts.download_artifacts(model["uri"], dst_path=str(tmp_path / "m")))
    data = local / "data" / DATA_DIR
    config = json.loads((data / "config.json").read_text())
    assert (data / ONNX_FILE).stat().st_size > 1_000_000
    assert config["onnx"]["verified"] and config["onnx"]["max_abs_diff"] <= 1e-4
    proc = subprocess.run([sys.executable, "-c", SERVE_WITHOUT_TORCH, model["settings"].mlflow_uri, model["uri"],
                           str(tmp_path / "store"), str(photo(photos, "dog"))],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backbone"] == "OnnxBackbone" and out["tags"][0]["tag"] == "dog"
    assert "torch" not in out["loaded"] and "timm" not in out["loaded"]
    assert out["pixtag_cli"] == []  # loading and serving the model never imports the CLI (mlflow brings click)
    # Concurrent requests share the backbone (a server session: no spinning) and get the same answer.
    assert out["spinning"] == "0" and out["batched_rows"] == 9 * out["views"]
    assert out["max_batch"] == model["settings"].serve_batch == 8  # calls capped: bounded arena
    for tags in out["many"]:
        assert [t["tag"] for t in tags] == [t["tag"] for t in out["tags"]]
        assert abs(tags[0]["probability"] - out["tags"][0]["probability"]) < 1e-3
    # The same model, told to use PyTorch, gives the same answer.
    pyfunc = load(model, tmp_path / "store2", runtime="torch")
    assert type(pyfunc.get_raw_model().backbone).__name__ == "Backbone"
    again = pyfunc.predict(pd.DataFrame({"image": [b64(photo(photos, "dog"))]}))[0]["tags"]
    assert again[0]["tag"] == "dog" and abs(again[0]["probability"] - out["tags"][0]["probability"]) < 1e-3


# --- deployable where this checkout is not ---------------------------------------------------------
OUTSIDE_THE_CHECKOUT = """
import importlib.util, json, sys
# No pixtag from this checkout: not the editable install's finder, not PYTHONPATH, not the cwd.
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
sys.path[:] = [p for p in sys.path if p not in sys.argv[4:] and p not in ("", ".")]
assert importlib.util.find_spec("pixtag") is None, importlib.util.find_spec("pixtag")
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1], model_config={"storage": sys.argv[2]})
example = pd.read_json(sys.argv[1] + "/input_example.json", orient="split")
image = __import__("base64").b64encode(open(sys.argv[3], "rb").read()).decode()
out = model.predict(pd.concat([example, pd.DataFrame({"image": [image]})], ignore_index=True))
import pixtag
print(json.dumps({"pixtag": pixtag.__file__, "out": out, "modules": sorted(sys.modules)}))
"""


def imports_of(package: Path, modules: list[str]) -> set[str]:
    """Top-level names the loaded pixtag ``modules`` (files under ``package``) import."""
    import ast

    found: set[str] = set()
    for module in modules:
        parts = module.split(".")[1:]
        path = package.joinpath(*parts, "__init__.py") if package.joinpath(*parts).is_dir() \
            else package.joinpath(*parts[:-1], parts[-1] + ".py") if parts else package / "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def requirement_closure(requirements: list[str]) -> set[str]:
    """Normalised names of ``requirements`` and everything they pull in (as installed here)."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [(Requirement(r), ()) for r in requirements]
    while todo:
        req, extras = todo.pop()
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (extras or ("",))):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            continue
        todo += [(Requirement(r), tuple(req.extras)) for r in dist.requires or []]
    return seen


def test_the_model_loads_outside_the_checkout_from_its_own_files_and_requirements(
        model, photos: Path, tmp_path: Path) -> None:
    """pixtag travels in the model (code_paths); its requirements cover every distribution a
    served prediction imports; the input example is a real request the model answers."""
    from importlib.metadata import packages_distributions

    import mlflow
    from packaging.utils import canonicalize_name

    mlflow.set_tracking_uri(model["settings"].mlflow_uri)
    local = Path(mlflow.artifacts.download_artifacts(model["uri"], dst_path=str(tmp_path / "m")))
    assert (local / "code" / "pixtag" / "model" / "suggest.py").is_file()
    assert (local / "input_example.json").is_file() and (local / "serving_input_example.json").is_file()
    requirements = (local / "requirements.txt").read_text().split()
    names = {canonicalize_name(r.split("==")[0]) for r in requirements}
    assert {"mlflow", "onnxruntime", "pillow", "imagehash"} <= names
    assert not names & {"torch", "timm"}  # the ONNX graph serves: no PyTorch to install
    repo = str(Path(__file__).resolve().parents[3])
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", OUTSIDE_THE_CHECKOUT, str(local), str(tmp_path / "store"),
                           str(photo(photos, "cat")), repo, "/work/main"],
                          capture_output=True, text=True, timeout=300, cwd=work, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(result["pixtag"]).is_relative_to(local / "code")
    example, cat = result["out"]
    assert "error" not in example and example["views"] == 1
    assert cat["tags"][0]["tag"] == "cat"
    # What pixtag's loaded modules import (and was loaded: lazy imports of unused paths are not)
    loaded = {m for m in result["modules"] if "." not in m}
    pixtag_modules = [m for m in result["modules"] if m == "pixtag" or m.startswith("pixtag.")]
    used = (imports_of(local / "code" / "pixtag", pixtag_modules) & loaded) - set(sys.stdlib_module_names)
    dists = packages_distributions()
    needed = {canonicalize_name(d) for m in used - {"pixtag"} for d in dists.get(m, [m])}
    assert {"onnxruntime", "imagehash", "pillow"} <= needed  # the check sees real imports
    assert "click" not in needed  # the commands live in pixtag.cli, which a served model never loads
    missing = needed - requirement_closure(requirements)
    assert not missing, f"imported when serving but not in the model's requirements: {sorted(missing)}"


def test_logging_validates_the_input_example_without_recording_it(model) -> None:
    """MLflow predicts on the input example while logging: no ledger entry comes of it."""
    assert ledger.read_phashes(model["settings"].storage) == set()


def test_generated_dockerfile_installs_the_models_requirements(model, tmp_path: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(model["settings"].mlflow_uri)
    local = mlflow.artifacts.download_artifacts(model["uri"], dst_path=str(tmp_path / "m"))
    out = tmp_path / "docker"
    proc = subprocess.run([str(Path(sys.executable).parent / "mlflow"), "models", "generate-dockerfile",
                           "-m", local, "-d", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=os.environ | {"MLFLOW_TRACKING_URI": model["settings"].mlflow_uri})
    assert proc.returncode == 0, proc.stderr[-3000:]
    dockerfile = (out / "Dockerfile").read_text()
    shipped = out / "model_dir" / Path(local).name
    assert (shipped / "code" / "pixtag" / "model" / "serving" / "loader.py").is_file()
    assert (shipped / "requirements.txt").read_text() == (Path(local) / "requirements.txt").read_text()
    python = ".".join(map(str, sys.version_info[:2]))
    assert f"FROM python:{python}" in dockerfile  # the model's python_env.yaml
    # The image copies the model (pixtag's code inside) and pip-installs its requirements.txt.
    assert f"COPY model_dir/{Path(local).name} /opt/ml/model" in dockerfile
    assert "_install_pyfunc_deps('/opt/ml/model'" in dockerfile
    assert "ENTRYPOINT" in dockerfile


# --- served over HTTP by `mlflow models serve` ---------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}:\n{tail}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not healthy after {seconds}s")


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def readme_serve_command() -> str:
    """The README's serve command (the line that starts the server)."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    lines = [line for line in readme.splitlines() if line.startswith(".venv/bin/pixtag serve")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.slow
def test_mlflow_models_serve_answers_with_tags(photos: Path, tmp_path: Path) -> None:
    """The README's serve command, as typed in a plain shell: no venv on PATH."""
    bin_dir = Path(sys.executable).parent
    mlflow_bin = str(bin_dir / "mlflow")
    env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and Path(p).resolve() != bin_dir.resolve())
    assert shutil.which("uvicorn", path=env["PATH"]) is None
    port, serve_port = free_port(), free_port()
    server = start([mlflow_bin, "server", "--backend-store-uri",
                    f"sqlite:///{tmp_path / 'mlflow.db'}", "--default-artifact-root",
                    str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
                    "--workers", "1"], env, tmp_path / "server.log")
    served = None
    try:
        wait_for(f"http://127.0.0.1:{port}/health", server, 90, tmp_path / "server.log")
        settings = load_settings(storage=str(shared_dataset(photos, 40)), backbone=LITE0,
                                 mlflow_uri=f"http://127.0.0.1:{port}")
        assert register(settings, train(settings)["run_id"])["decision"] == "promoted"
        ledger_dir = tmp_path / "ledger-store"
        command = readme_serve_command().replace(".venv/bin/", f"{bin_dir}/").replace("5001", str(serve_port))
        served = start(["bash", "-c", f"exec {command}"],
                       env | {"MLFLOW_TRACKING_URI": settings.mlflow_uri,  # honoured by pixtag
                              "PIXTAG_STORAGE": str(ledger_dir), "PIXTAG_SERVE_FILE_ROOT": str(photos)},
                       tmp_path / "serve.log")
        wait_for(f"http://127.0.0.1:{serve_port}/ping", served, 180, tmp_path / "serve.log")
        files = [photo(photos, c, 2) for c in ("cat", "dog", "car", "bird")]
        body = {"dataframe_records": [{"image": b64(files[0])}, {"image": files[1].as_uri()},
                                      {"image": b64(files[2])}, {"image": b64(files[3])},
                                      {"image": "file:///etc/passwd"}],
                "params": {"top_k": 2}}
        reply = requests.post(f"http://127.0.0.1:{serve_port}/invocations", json=body, timeout=120)
        assert reply.status_code == 200, reply.text
        *predictions, refused = reply.json()["predictions"]
        assert "outside the allowed folder" in refused["error"] and refused["tags"] == []
        assert [p["tags"][0]["tag"] for p in predictions] == ["cat", "dog", "car", "bird"]
        assert all(0.5 <= p["tags"][0]["probability"] <= 1 for p in predictions)
        assert len(ledger.read_phashes(str(ledger_dir))) == 4
    finally:
        if served is not None:
            stop(served)
        stop(server)
