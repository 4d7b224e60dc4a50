"""What ``make run`` prints of the suggestions: the overall figures and a compact per-class table."""

from __future__ import annotations

from pixtag.stack.local import print_summary, suggestion_lines

REPORT = {
    "classes": ["cat", "dog", "hedgehog"], "counts": {"cat": 150, "dog": 148, "hedgehog": 150, "_background": 750},
    "test_accuracy": 0.981, "false_suggestion_rate": 0.02, "abstention_rate": 0.03,
    "coverage": 0.97, "suggestion_precision": 0.985, "precision_at_k": 0.331, "recall_at_k": 0.995, "top_k": 3,
    "precision_at_share": 0.88, "in_class_share": 0.15,
    "per_tag": {"cat": {"threshold": 0.21, "precision": 1.0, "recall": 0.93, "support": 15},
                "dog": {"threshold": 0.5, "precision": 0.94, "recall": 1.0, "support": 15},
                "hedgehog": {"threshold": 0.21, "precision": None, "recall": None, "support": 0}},
}


def test_the_summary_prints_the_overall_figures_and_a_line_per_class() -> None:
    lines: list[str] = []
    print_summary({"state": "success", "report": REPORT, "airflow_url": "a", "mlflow_url": "m",
                   "instance": "i", "demo": True}, lines.append)
    text = "\n".join(lines)
    assert ("  suggestions:    coverage 0.970 of class images, precision 0.985, precision@3 0.331, recall@3 0.995, "
            "precision 0.880 at 15% in-class posts") in text
    header = next(line for line in lines if line.startswith("  per class:"))
    assert header.split()[2:] == ["class", "images", "test", "threshold", "precision", "recall"]
    rows = lines[lines.index(header) + 1:lines.index(header) + 4]
    assert rows[0].split() == ["cat", "150", "15", "0.210", "1.000", "0.930"]
    assert rows[2].split() == ["hedgehog", "150", "0", "0.210", "n/a", "n/a"]
    assert lines.index(header) < next(i for i, line in enumerate(lines) if line.startswith("  Airflow UI"))


def test_nothing_is_printed_for_a_report_without_the_figures() -> None:
    assert suggestion_lines({"test_accuracy": 0.9}) == []
