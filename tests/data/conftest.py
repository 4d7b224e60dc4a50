"""Fixtures for the dataset commands (review, describe, validate): one real dataset built once
per session from the labelled photos, copied for each test that changes it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pixtag.cli import main
from pixtag.core.config import Settings, load_settings
from pixtag.core.storage import open_storage
from tests.data.build import CLASSES
from tests.helpers import make_dataset

PER_CLASS = 30
MIN_PER_CLASS = 25  # 30 per class passes; 20 does not
BALANCE_RATIO = 1.5


@pytest.fixture(scope="session")
def base_dataset(tmp_path_factory: pytest.TempPathFactory, photos: Path) -> Path:
    """30 images per class of the 5 classes (read only: copy it with ``ds`` to change it)."""
    root = tmp_path_factory.mktemp("base") / "dataset"
    make_dataset(photos, open_storage(str(root)), per_class=PER_CLASS, classes=list(CLASSES))
    return root


@pytest.fixture
def ds(base_dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the base dataset."""
    return Path(shutil.copytree(base_dataset, tmp_path / "dataset"))


@pytest.fixture
def settings() -> Settings:
    return load_settings(classes=list(CLASSES), min_per_class=MIN_PER_CLASS,
                         balance_ratio=BALANCE_RATIO)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``pixtag ARGS`` in-process; return (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An in-process fake S3 (moto) with bucket ``pixtag``; yields the bucket name."""
    from moto import mock_aws

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        import boto3

        boto3.client("s3").create_bucket(Bucket="pixtag")
        yield "pixtag"

