"""One way to name a dataset (issue #13): ``pixtag scrape --out D``, then ``pixtag validate D``,
``train D``, ``describe D`` and ``review D`` with no other option, because the dataset records
its class set (``dataset.json``) and every reader takes it as the positional DATASET."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pixtag.cli.app import cli, main
from pixtag.core import dataset
from pixtag.core.storage import LocalStorage
from pixtag.model.backbones.weights import LITE0
from pixtag_demo.app import DemoInstance
from tests.conftest import DEMO_TOKEN

pytestmark = pytest.mark.slow
CLASSES = ["cat", "dog"]
PER_CLASS = 30


def run(*args: str) -> object:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def env(demo: DemoInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in {"PIXTAG_INSTANCE_URL": demo.url, "PIXTAG_TOKEN": DEMO_TOKEN,
                       "PIXTAG_ALLOW_PRIVATE_HOSTS": "127.0.0.1", "PIXTAG_REQUEST_RATE": "100",
                       "PIXTAG_STORAGE": str(tmp_path / "elsewhere"),  # the commands must read D, not this
                       "PIXTAG_MLFLOW_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                       "PIXTAG_BACKBONE": LITE0,
                       "PIXTAG_MIN_PER_CLASS": "20"}.items():  # a small dataset: 30 per class
        monkeypatch.setenv(key, value)
    return tmp_path


def test_scrape_out_then_every_reader_takes_the_dataset_alone(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Configured classes that are not the dataset's: the record the scrape wrote wins over them.
    monkeypatch.setenv("PIXTAG_CLASSES", "bird,car")
    ds = env / "D"
    scraped = run("scrape", "--out", str(ds), "--classes", ",".join(CLASSES),
                  "--per-class", str(PER_CLASS), "--no-progress")
    assert all(f"{c}: {PER_CLASS} images" in scraped.stdout for c in CLASSES)
    assert LocalStorage(ds).read_json(dataset.INFO) == {"classes": CLASSES, "background": 0}

    validated = run("validate", str(ds))
    assert validated.stdout.startswith(f"PASSED: {ds}")
    assert f"classes: cat {PER_CLASS}, dog {PER_CLASS}" in validated.stdout

    trained = run("train", str(ds))
    assert f"{LITE0}: CV " in trained.stdout and "(run " in trained.stdout
    assert "v1" in trained.stdout  # registered through the gate

    described = run("describe", str(ds))
    assert described.stdout.startswith(f"{2 * PER_CLASS} images in 2 classes")
    assert (ds / "reports" / "describe" / "summary.json").is_file()

    reviewed = run("review", str(ds))
    assert "contact sheets: " in reviewed.stdout
    assert all(f"{c:>12}: {PER_CLASS} images, 0 excluded" in reviewed.stdout for c in CLASSES)
    assert not (env / "elsewhere" / dataset.MANIFEST).exists()

    # An explicit --classes still wins over the record.
    wider = CliRunner().invoke(cli, ["validate", str(ds), "--classes", "cat,dog,bird"])
    assert wider.exit_code == 1 and "FAILED" in wider.stdout and "bird" in wider.stdout


def test_a_dataset_without_a_record_needs_classes(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder pixtag did not write (no dataset.json) and no --classes: one clear line, exit 2."""
    bare = env / "bare"
    bare.mkdir()
    with pytest.raises(SystemExit) as stop:
        main(["validate", str(bare)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("pixtag: error: ") and "--classes" in err and len(err.splitlines()) == 1
