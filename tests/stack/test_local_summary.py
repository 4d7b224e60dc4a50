"""What `make run` prints about the class selection, and what the local stack gives the DAG."""

from __future__ import annotations

from pathlib import Path

from pixtag.core.config import load_settings
from pixtag.stack.airflow import pixtag_environment
from pixtag.stack.local import print_summary
from pixtag.stack.process import Layout, Ports


def test_the_summary_names_the_classes_left_out_and_the_selections_notes() -> None:
    lines: list[str] = []
    report = {"classes": ["cat", "dog", "horse"], "counts": {"cat": 150, "dog": 150},
              "left_out": {"horse": "0 images, minimum 100"},
              "notes": {"ramen": "not in WordNet 3.0; a class as the settings confirm it (confirm_tags)"}}
    print_summary({"state": "success", "report": report, "airflow_url": "http://127.0.0.1:8080",
                   "mlflow_url": "http://127.0.0.1:5000", "instance": "http://127.0.0.1:8765", "demo": True},
                  lines.append)
    assert "  left out:       horse (0 images, minimum 100)" in lines
    assert "  note:           ramen: not in WordNet 3.0; a class as the settings confirm it (confirm_tags)" in lines
    quiet: list[str] = []
    print_summary({"state": "success", "report": {"classes": ["cat"], "counts": {"cat": 1}}, "airflow_url": "a",
                   "mlflow_url": "m", "instance": "i", "demo": False}, quiet.append)
    assert not [line for line in quiet if "left out" in line or "note:" in line]


def test_the_local_instance_confirms_its_classes_wordnet_lacks(tmp_path: Path) -> None:
    settings = load_settings(confirm_tags=["tonkotsu"])
    layout = Layout(project=tmp_path)
    demo = pixtag_environment(settings, layout, Ports(), "http://127.0.0.1:8765", demo=True)
    assert demo["PIXTAG_CONFIRM_TAGS"].split(",") == ["tonkotsu", "ramen"]
    real = pixtag_environment(load_settings(), layout, Ports(), "https://pixelfed.example", demo=False)
    assert "PIXTAG_CONFIRM_TAGS" not in real
