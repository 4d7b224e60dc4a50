"""What the local stacks give Airflow's tasks (``pixtag.stack.airflow``)."""

from __future__ import annotations

from pathlib import Path

from pixtag.core.config import load_settings
from pixtag.stack.airflow import pixtag_environment
from pixtag.stack.process import Layout, Ports


def test_the_local_instance_confirms_its_classes_wordnet_lacks(tmp_path: Path) -> None:
    settings = load_settings(confirm_tags=["tonkotsu"])
    layout = Layout(project=tmp_path)
    demo = pixtag_environment(settings, layout, Ports(), "http://127.0.0.1:8765", demo=True)
    assert demo["PIXTAG_CONFIRM_TAGS"].split(",") == ["tonkotsu", "ramen"]
    real = pixtag_environment(load_settings(), layout, Ports(), "https://pixelfed.example", demo=False)
    assert "PIXTAG_CONFIRM_TAGS" not in real
