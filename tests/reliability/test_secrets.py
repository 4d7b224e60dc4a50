"""Secrets: the Pixelfed token never leaves the Authorization header. One whole DAG run (every
task, PIXTAG_LOG_LEVEL=DEBUG and the root logger at DEBUG), then a run with a wrong token;
every byte they leave behind is scanned for the token, raw and encoded: console output, log
records, the Airflow home (metadata DB with XCom and rendered fields, logs), the MLflow
database and artifacts, the storage folder (parquet and npz read back as data, too). The
wrong token's error names the problem, not the token; so do the CLI's. The bot's token
(PIXTAG_BOT_TOKEN, set for the DAG run too, as a deployment has it) is searched for the same
way after the DAG run and after ``pixtag bot`` answered a mention at DEBUG, its state and
ledger included; a wrong bot token is named, never shown."""

from __future__ import annotations

import base64
import io
import json
import logging
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from pixtag.cli import main
from pixtag.core.config import load_settings
from pixtag.sources.pixelfed import Client
from pixtag_demo.app import DemoInstance
from pixtag_demo.world.model import World

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("wordnet")]

TOKEN = "pxt-secret-7Qk2vR9wLmZ4nB8xJ3cT"
WRONG = "pxt-wrong-Hd83kLq0Zr5Vw1Ny6Ua2"
BOT_TOKEN = "pxt-bot-Vb62nQ8mKz3Lw9Xc1Rt"  # the bot account's (PIXTAG_BOT_TOKEN), read and write scopes
WRONG_BOT = "pxt-bot-wrong-Jd5sT2gHq7Lp0Zm"
PLACES = ("console output", "log records", "Airflow home", "MLflow store and artifacts", "storage",
          "XCom", "MLflow params and tags", "exception messages and reprs", "the bot's state and ledger")


def forms(secret: str) -> dict[str, bytes]:
    """The secret as it could be written: plain, base64 (also of 'Bearer …' and 'user:…'),
    URL-encoded, JSON-escaped, UTF-16/32."""
    raw = secret.encode()
    return {
        "plain": raw,
        "base64": base64.b64encode(raw).rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
        "base64 bearer": base64.b64encode(b"Bearer " + raw).rstrip(b"="),
        "base64 basic": base64.b64encode(b":" + raw).rstrip(b"="),
        "urlencoded": quote(secret, safe="").encode(),
        "json": json.dumps(secret).encode()[1:-1],
        "utf-16": secret.encode("utf-16-le"),
        "utf-32": secret.encode("utf-32-le"),  # numpy's str arrays (npz)
    }


def blobs(root: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under ``root``, plus the decoded content of parquet and npz/zip files."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        yield str(path), data
        if path.suffix == ".parquet":
            import pandas as pd

            yield f"{path} (as data)", pd.read_parquet(io.BytesIO(data)).to_csv().encode()
        elif path.suffix in (".npz", ".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for name in archive.namelist():
                    yield f"{path}:{name}", archive.read(name)


def leaks(where: Iterator[tuple[str, bytes]], secret: str) -> list[str]:
    found = []
    patterns = forms(secret)
    for name, data in where:
        found += [f"{name}: {kind}" for kind, pattern in patterns.items() if pattern in data]
    return found


@pytest.fixture(scope="module")
def instance(world: World) -> Iterator[DemoInstance]:
    with DemoInstance(world=world, token=TOKEN) as inst:
        yield inst


@pytest.fixture
def pipeline_env(monkeypatch: pytest.MonkeyPatch, instance: DemoInstance, tmp_path: Path,
                 new_mlflow: Callable[[Path], str]) -> Callable[[str], None]:
    values = {
        "PIXTAG_STORAGE": str(tmp_path / "store"), "PIXTAG_MLFLOW_URI": new_mlflow(tmp_path / "mlflow"),
        "PIXTAG_ALLOW_PRIVATE_HOSTS": "127.0.0.1", "PIXTAG_REQUEST_RATE": "50", "PIXTAG_CLASSES": "cat,dog",
        "PIXTAG_PER_CLASS": "40", "PIXTAG_MIN_PER_CLASS": "30", "PIXTAG_TRENDING_POSTS": "80",
        "PIXTAG_BACKBONE": "efficientnet_lite0", "PIXTAG_LOG_LEVEL": "DEBUG", "PIXTAG_BOT_TOKEN": BOT_TOKEN,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)

    def connect(token: str) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_PIXELFED_DEFAULT",
                           json.dumps({"conn_type": "http", "host": instance.url, "password": token}))

    return connect


def xcoms(run: Any) -> str:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id)
                               .with_only_columns(XComModel.value)).all()
    return json.dumps([row.value for row in rows], default=str)


def mlflow_texts(uri: str) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(uri, registry_uri=uri)
    texts = []
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            texts.append(json.dumps([run.data.params, run.data.tags]))
    for version in client.search_model_versions("name='pixtag'"):
        texts.append(json.dumps(version.tags))
    return "\n".join(texts)


def test_the_token_is_nowhere_after_a_whole_run_and_a_wrong_token_run(
        airflow_db: Path, dagbag: Any, pipeline_env: Callable[[str], None], instance: DemoInstance,
        tmp_path: Path, capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    dag = dagbag.dags["pixtag_retrain"]
    pipeline_env(TOKEN)
    good = dag.test(run_conf={})
    states = {(ti.task_id, ti.map_index): ti.state for ti in good.get_task_instances()}
    assert good.state == "success", states
    first = capfd.readouterr()

    pipeline_env(WRONG)
    bad = dag.test(run_conf={})
    states = {ti.task_id: (ti.state, ti.try_number) for ti in bad.get_task_instances()}
    assert states["refresh_trending"] == ("failed", 1), states  # refused: no retry
    second = capfd.readouterr()
    console = first.out + first.err + second.out + second.err
    assert "the instance says Unauthenticated (HTTP 500); check PIXTAG_TOKEN" in second.out + second.err
    assert instance.stats()["statuses"].get("500", 0) >= 1

    records = "\n".join(logs_of(caplog.records))
    # pixtag logged at DEBUG (every request it made), as PIXTAG_LOG_LEVEL asked
    assert logging.getLogger("pixtag").level == logging.DEBUG
    assert any(r.name == "pixtag.sources.http" and r.levelno == logging.DEBUG for r in caplog.records)
    mlflow_root = Path(str(load_settings().mlflow_uri).removeprefix("sqlite:///")).parent
    for secret in (TOKEN, WRONG, BOT_TOKEN):
        found = leaks(iter([("console", console.encode()), ("log records", records.encode()),
                            ("XCom", (xcoms(good) + xcoms(bad)).encode()),
                            ("MLflow params and tags", mlflow_texts(load_settings().mlflow_uri).encode())]), secret)
        found += leaks(blobs(airflow_db), secret)
        found += leaks(blobs(mlflow_root), secret)
        found += leaks(blobs(tmp_path / "store"), secret)
        found += leaks(blobs(tmp_path / "mlruns"), secret) if (tmp_path / "mlruns").is_dir() else []
        assert not found, found


def test_the_scan_finds_a_planted_token(tmp_path: Path) -> None:
    """The scanner itself: a token in plain text, in a compressed parquet column, in an npz
    array and base64-encoded is found."""
    import numpy as np
    import pandas as pd

    (tmp_path / "a.log").write_text(f"x Authorization: Bearer {TOKEN} y")
    pd.DataFrame({"c": [TOKEN]}).to_parquet(tmp_path / "b.parquet", compression="zstd")
    np.savez_compressed(tmp_path / "c.npz", t=np.asarray([TOKEN]))
    (tmp_path / "d.txt").write_bytes(base64.b64encode(f"Bearer {TOKEN}".encode()))
    found = leaks(blobs(tmp_path), TOKEN)
    assert {f.split(": ")[0].rsplit("/", 1)[-1] for f in found} >= {"a.log", "b.parquet (as data)", "c.npz:t.npy",
                                                                     "d.txt"}, found


def logs_of(records: list[logging.LogRecord]) -> Iterator[str]:
    formatter = logging.Formatter()
    for record in records:
        yield formatter.format(record)


# --- the CLI and the objects ---------------------------------------------------------------------
def test_a_wrong_token_is_named_as_the_problem_but_never_shown(
        instance: DemoInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for key, value in {"PIXTAG_INSTANCE_URL": instance.url, "PIXTAG_TOKEN": WRONG, "PIXTAG_LOG_LEVEL": "DEBUG",
                       "PIXTAG_ALLOW_PRIVATE_HOSTS": "127.0.0.1", "PIXTAG_STORAGE": str(tmp_path / "store")}.items():
        monkeypatch.setenv(key, value)
    for args in (["trending", "--posts", "40"], ["scrape", "--classes", "cat,dog", "--per-class", "5",
                                                 "--no-progress"]):
        with pytest.raises(SystemExit) as exit_code:
            main(args)
        out = capfd.readouterr()
        assert exit_code.value.code == 2
        assert out.err.strip().splitlines()[-1].startswith("pixtag: error: GET /api/"), out.err
        assert "check PIXTAG_TOKEN" in out.err and "Traceback" not in out.err
        assert not leaks(iter([("cli", (out.out + out.err).encode())]), WRONG)
    settings = load_settings()
    client = Client(settings)
    try:
        client.hashtag_timeline("cat")
    except Exception as exc:
        error = exc
    texts = [repr(settings), str(settings), repr(client), repr(client.http), repr(error), str(error),
             json.dumps(settings.public_dict()), "\n".join(logs_of(caplog.records))]
    assert not leaks(iter([("objects", "\n".join(texts).encode())]), WRONG)
    client.close()


# --- the bot's token -----------------------------------------------------------------------------
def test_the_bot_token_is_nowhere_after_the_bot_answered(
        world: World, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    from tests.bot.conftest import photo_bytes, post_photos
    from tests.demo.conftest import User
    from tests.helpers import shared_champion

    caplog.set_level(logging.DEBUG)
    uri = shared_champion(photos)
    store = tmp_path / "store"
    with DemoInstance(world=world, token=TOKEN, bot_token=BOT_TOKEN) as inst:
        import requests

        body = requests.post(f"{inst.url}/_demo/tokens", json={"username": "secret_asker"}, timeout=10).json()
        asker = User(inst.url, body["token"], body["account"])
        post = post_photos(asker, [photo_bytes(photos, "cat")], "@pixtag tags?")
        for key, value in {"PIXTAG_INSTANCE_URL": inst.url, "PIXTAG_BOT_TOKEN": BOT_TOKEN, "PIXTAG_LOG_LEVEL": "DEBUG",
                           "PIXTAG_ALLOW_PRIVATE_HOSTS": "127.0.0.1", "PIXTAG_STORAGE": str(store),
                           "PIXTAG_MLFLOW_URI": uri}.items():
            monkeypatch.setenv(key, value)
        with pytest.raises(SystemExit) as done:
            main(["bot", "--once", "--json"])
        assert done.value.code == 0
        out = capfd.readouterr()
        replies = asker.get(f"/api/v1/statuses/{post['id']}/context").json()["descendants"]
        assert [r["account"]["username"] for r in replies] == ["pixtag"]  # it did answer
        monkeypatch.setenv("PIXTAG_BOT_TOKEN", WRONG_BOT)
        with pytest.raises(SystemExit) as refused:
            main(["bot", "--once"])
        wrong = capfd.readouterr()
        assert refused.value.code == 2 and "check PIXTAG_BOT_TOKEN" in wrong.err, wrong.err
        from pixtag.core.config import load_settings
        from pixtag.sources.bot_api import BotClient

        settings = load_settings()
        client = BotClient(settings)
        try:
            client.me()
        except Exception as exc:
            error = exc
        texts = [repr(settings), str(settings), repr(client), repr(client.http), repr(error), str(error),
                 json.dumps(settings.public_dict())]
        client.close()
    assert any(r.name == "pixtag.sources.http" and r.levelno == logging.DEBUG for r in caplog.records)
    records = "\n".join(logs_of(caplog.records))
    for secret in (BOT_TOKEN, WRONG_BOT):
        found = leaks(iter([("console", (out.out + out.err + wrong.out + wrong.err).encode()),
                            ("log records", records.encode()), ("objects", "\n".join(texts).encode())]), secret)
        found += leaks(blobs(store), secret)  # the bot's state and the ledger
        found += leaks(blobs(Path(uri.removeprefix("sqlite:///")).parent), secret)
        assert not found, found
    assert list(store.rglob("state.json")) and list(store.rglob("ledger/**/*.json"))
