"""The model card: the MLflow description of every registered version, written for the person
who promotes it (the MLflow UI shows it on the version's page).

It says what the version was trained on (classes and counts, the posts' time window, the
backbone), how it did (CV and test figures, per-class recall, false suggestions), what the
gate decided and why, and what changed since the champion (classes, images).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from pixtag.model.promotion.gate import Champion, Paired

log = logging.getLogger(__name__)


def _load(run_id: str, name: str) -> dict[str, Any]:
    import mlflow

    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{name}")
    except Exception as exc:  # an old or partial run: the card says what it lacks
        log.warning("run %s has no readable %s: %s", run_id, name, type(exc).__name__)
        return {}


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"


def changes(candidate: Mapping[str, Any], champion: Mapping[str, Any]) -> dict[str, Any]:
    """Classes added and removed, images added and dropped, between two runs' splits."""
    new_labels, old_labels = set(candidate.get("labels", [])), set(champion.get("labels", []))
    new_images = set(candidate.get("train", [])) | set(candidate.get("test", []))
    old_images = set(champion.get("train", [])) | set(champion.get("test", []))
    return {"classes_added": sorted(new_labels - old_labels),
            "classes_removed": sorted(old_labels - new_labels),
            "images_added": len(new_images - old_images),
            "images_dropped": len(old_images - new_images)}


def model_card(client: MlflowClient, name: str, run: Any, outcome: str, reason: str, champion: Champion | None,
               paired: Paired | None, best: Champion | None, tags: Mapping[str, Any]) -> str:
    """Markdown for the version's description."""
    run_id = run.info.run_id
    report = _load(run_id, "report.json")
    labels = report.get("labels") or str(tags.get("labels", "")).split(",")
    counts = report.get("class_counts") or {}
    by_class = report.get("by_class") or report.get("per_class") or {}  # per_class: runs logged before
    lines = [f"## pixtag candidate: {outcome}", "",
             f"**Gate**: {outcome}. {reason}", ""]
    lines += ["### Data",
              f"- classes ({len(labels)}): " + ", ".join(
                  f"{label} ({counts[label]} images)" if label in counts else label for label in labels)]
    if "_background" in counts:
        lines.append(f"- background images (none of the classes): {counts['_background']}")
    lines += [f"- images: {report.get('images', 'n/a')} ({report.get('train_images', 'n/a')} train, "
              f"{report.get('test_images', 'n/a')} test), split grouped by {report.get('group_by', 'n/a')} "
              f"({report.get('train_groups', 'n/a')} / {report.get('test_groups', 'n/a')} origins)",
              f"- posts from {report.get('oldest_post') or 'n/a'} to {report.get('newest_post') or 'n/a'}",
              f"- dataset hash `{report.get('dataset_hash', 'n/a')}`", ""]
    cv = report.get("cv_accuracy") or []
    lines += ["### Figures",
              f"- backbone: `{report.get('backbone') or run.data.tags.get('pixtag.backbone', 'n/a')}`",
              f"- CV accuracy: {_pct(report.get('cv_mean'))} over {len(cv)} folds "
              f"(" + ", ".join(f"{v:.3f}" for v in cv) + ")",
              f"- test accuracy: {_pct(report.get('test_accuracy', tags.get('test_accuracy')))}",
              f"- false-suggestion rate: {_pct(report.get('false_suggestion_rate'))} at threshold "
              f"{report.get('threshold', 'n/a')}",
              f"- tag probabilities: {report.get('tag_probability', 'one_vs_rest')}", "",
              "| class | recall | precision | test images |", "|---|---|---|---|"]
    for label in labels:
        m = by_class.get(label, {})
        lines.append(f"| {label} | {_pct(m.get('recall'))} | {_pct(m.get('precision'))} | "
                     f"{m.get('support', 'n/a')} |")
    lines += ["", "### Against the champion"]
    if champion is None:
        lines.append("- no champion before this version")
    else:
        where = "on this version's test images" if champion.scored_on == "candidate_split" else "as logged"
        lines.append(f"- champion v{champion.version}: accuracy {_pct(champion.accuracy)} "
                     f"({where}"
                     f"{'; ' + champion.note if champion.note else ''}), false suggestions "
                     f"{_pct(champion.false_suggestion_rate)}")
        if paired is not None:
            lines.append(f"- paired on {paired.images} images: {paired.candidate_only} right only by this "
                         f"version, {paired.champion_only} only by the champion (exact McNemar p = "
                         f"{paired.p_worse:.4f})")
        champ_run = client.get_model_version(name, champion.version).run_id
        if champ_run:
            diff = changes(_load(run_id, "split.json"), _load(champ_run, "split.json"))
            lines.append(f"- classes added: {', '.join(diff['classes_added']) or 'none'}; removed: "
                         f"{', '.join(diff['classes_removed']) or 'none'}")
            lines.append(f"- images added: {diff['images_added']}; no longer used: {diff['images_dropped']}")
    if best is not None:
        lines.append(f"- best champion of this label set: v{best.version}, accuracy {_pct(best.accuracy)}")
    return "\n".join(lines) + "\n"

