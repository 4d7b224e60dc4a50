"""Fixtures of the reliability suite: Airflow (the same throw-away home as tests/dags, set up
before airflow is imported), an empty migrated MLflow database to copy (migrating one costs
~10 s), and a small labelled dataset with its features."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.bot.conftest import bot_settings, champion, champion_uri, instance, person, store  # noqa: F401  (the bot's)
from tests.dags.conftest import airflow_db, dagbag  # noqa: F401  (AIRFLOW_HOME before airflow)
from tests.helpers import make_dataset

PER_CLASS = 12  # 60 images: enough for a stratified split and 5-fold CV


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with every table and nothing in it."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow-template")
    here = Path.cwd()
    os.chdir(root)  # the store resolves its default artifact root against the working directory
    try:
        MlflowClient(f"sqlite:///{root / 'mlflow.db'}").search_experiments()
    finally:
        os.chdir(here)
    return root / "mlflow.db"


@pytest.fixture
def new_mlflow(mlflow_template: Path) -> Callable[[Path], str]:
    """``new_mlflow(folder)``: a tracking URI of a fresh copy of the empty database."""
    def make(folder: Path) -> str:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(mlflow_template, folder / "mlflow.db")
        return f"sqlite:///{folder / 'mlflow.db'}"

    return make


@pytest.fixture(scope="session")
def small_dataset(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 labelled images (5 classes), no features: copy it before changing anything."""
    from pixtag.core.storage import open_storage

    root = tmp_path_factory.mktemp("small-ds") / "ds"
    make_dataset(photos, open_storage(root), per_class=PER_CLASS)
    return root


@pytest.fixture(scope="session")
def small_features(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the small dataset with its EfficientNet-Lite0 features cached (in-process)."""
    from pixtag.core.config import load_settings
    from pixtag.model.backbones.weights import LITE0
    from pixtag.model.features.compute import features

    root = tmp_path_factory.mktemp("small-features") / "ds"
    shutil.copytree(small_dataset, root)
    features(load_settings(storage=str(root), backbone=LITE0, batch_size=16))
    return root
