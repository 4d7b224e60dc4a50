"""The promotion stage: register every candidate as a new version, apply the gate
(:func:`pixtag.model.promotion.gate.decide`) against the champion re-scored on the candidate's own
test images, record the decision (version tags, model card) and move the alias last.

``promotion: auto`` moves the alias ``champion`` to a passing candidate; ``human`` gives it
``challenger`` and leaves ``champion`` to a person (Airflow's approval, or the MLflow UI). Any
error talking to MLflow propagates: the task fails and retries, and an alias only ever moves
after the gate has passed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.model.classifier.openset import BACKGROUND
from pixtag.model.promotion.card import model_card
from pixtag.model.promotion.gate import Champion, Paired, class_changes, decide, mcnemar
from pixtag.model.promotion.rescoring import best_champion, candidate_figures, current_champion
from pixtag.model.promotion.versions import (
    CHALLENGER,
    CHAMPION,
    TAG,
    RegistryUnavailable,
    aliases,
    finished_run,
    load_split,
    run_accuracy,
    run_false_rate,
    run_labels,
    version_for_run,
)
from pixtag.model.tracking import connect, where

if TYPE_CHECKING:
    from pixtag.core.config import Settings
    from pixtag.core.storage import Storage

log = logging.getLogger(__name__)


def register(settings: Settings, run_id: str, store: Storage | None = None) -> dict[str, Any]:
    """Register ``run_id``'s model as a new version and apply the gate; return the decision.

    Any MLflow failure becomes a :class:`RegistryUnavailable` (the DAG task fails and retries):
    the decision tags are written before the alias moves, and the alias is the gate's last
    write, so an attempt cut short promotes nothing and a retry finishes the job. ``store``:
    ``settings.storage`` already opened (champions are re-scored on the candidate's images).
    """
    from mlflow.exceptions import MlflowException
    from requests import RequestException

    try:
        return _register(settings, run_id, store)
    except (MlflowException, RequestException, ConnectionError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        detail = re.sub(r"//[^/@\s]+@", "//", first)  # no user:password@ of a store URI
        detail = detail if len(detail) <= 240 else detail[:240] + "…"
        raise RegistryUnavailable(
            f"MLflow at {where(settings.mlflow_uri)} failed during the gate for run {run_id} "
            f"({type(exc).__name__}: {detail}); the gate did not complete, retry it (the "
            "candidate's version is reused)") from exc


def _register(settings: Settings, run_id: str, store: Storage | None = None) -> dict[str, Any]:
    name = settings.model_name
    client = connect(settings)
    run = finished_run(client, run_id)
    accuracy, labels = run_accuracy(run), run_labels(run)
    mv = version_for_run(client, name, run)
    version = str(mv.version)
    current = aliases(client, name)
    if current.get(CHAMPION) == version:  # a retry after the alias moved, or a reused candidate
        recorded = client.get_model_version(name, version).tags
        return _result(name, version, "promoted", True, CHAMPION,
                       recorded.get(TAG + "reason", "already champion"), accuracy, None) | {"already_champion": True}
    champion = current_champion(settings, client, run, labels, exclude=version, store=store)
    if champion is not None:  # however it got there (gate, Airflow approval, MLflow UI)
        client.set_model_version_tag(name, champion.version, TAG + "was_champion", "true")
    best = best_champion(settings, client, run, labels, champion, exclude=version, store=store)
    false_rate = run_false_rate(run)
    recalls, correct, truth = candidate_figures(run, labels)
    correct, truth = on_shared(correct, truth, champion)
    paired = paired_test(labels, correct, champion)
    shared_accuracy = float(np.mean(correct)) if correct else None
    decision = decide(accuracy, labels, champion, settings.accuracy_floor, settings.tolerance, false_rate,
                      paired=paired, confidence=settings.gate_confidence, best=best,
                      recalls=recalls, recall_floor=settings.recall_floor,
                      shared_accuracy=shared_accuracy if champion is not None and champion.compared_on else None)
    alias = (CHAMPION if settings.promotion == "auto" else CHALLENGER) if decision.passed else None
    outcome = ("promoted" if alias == CHAMPION else "challenger" if alias else "rejected")
    tags = gate_tags(settings, outcome, decision.reason, accuracy, labels, false_rate, recalls, champion, paired, best,
                     shared_accuracy)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, TAG + key, str(value))
    client.update_model_version(name, version, description=model_card(
        client, name, run, outcome, decision.reason, champion, paired, best, tags))
    if alias is not None:  # last: a champion always carries its decision and reason
        client.set_registered_model_alias(name, alias, version)
    result = _result(name, version, outcome, alias == CHAMPION, alias, decision.reason,
                     accuracy, champion)
    result["comparison"] = comparison(run, accuracy, false_rate, recalls, champion, correct)
    log.info("%s", result["message"])
    return result


def on_shared(correct: tuple[bool, ...] | None, truth: tuple[str, ...], champion: Champion | None
              ) -> tuple[tuple[bool, ...] | None, tuple[str, ...]]:
    """The candidate's per-image results and labels on the test images the champion was
    re-scored on (those of the classes both have); all of them when it was not re-scored."""
    if correct is None or champion is None or not champion.compared_on:
        return correct, truth
    keep = [i for i, label in enumerate(truth) if label in champion.compared_on]
    return tuple(correct[i] for i in keep), tuple(truth[i] for i in keep)


def paired_test(labels: tuple[str, ...], correct: tuple[bool, ...] | None,
                champion: Champion | None) -> Paired | None:
    """The exact McNemar test of candidate and champion, when both were scored image by image on
    the same test images (of the classes both have)."""
    if champion is None or correct is None or champion.correct is None \
            or len(correct) != len(champion.correct) or not correct:
        return None
    return mcnemar(correct, champion.correct)


def gate_tags(settings: Settings, outcome: str, reason: str, accuracy: float, labels: tuple[str, ...],
              false_rate: float | None, recalls: Mapping[str, float], champion: Champion | None,
              paired: Paired | None, best: Champion | None, shared_accuracy: float | None = None) -> dict[str, Any]:
    """What the version records of its gate (``pixtag.gate.*`` tags): the decision, the rules
    and the figures it was decided on."""
    tags: dict[str, Any] = {
        "decision": outcome, "reason": reason, "promotion": settings.promotion,
        "floor": settings.accuracy_floor, "tolerance": settings.tolerance,
        "test_accuracy": accuracy, "labels": ",".join(labels),
        "false_suggestion_rate": false_rate,
        "confidence": settings.gate_confidence, "recall_floor": settings.recall_floor,
        "min_recall": min(recalls.values()) if recalls else None,
    }
    tags |= {f"recall.{k}": v for k, v in recalls.items()}
    if champion is not None:
        added, removed, shared = class_changes(labels, champion)
        tags |= {"classes_added": ",".join(added), "classes_removed": ",".join(removed),
                 "compared_on": ",".join(champion.compared_on or shared)}
        if champion.labels != labels and shared_accuracy is not None:
            tags["shared_accuracy"] = shared_accuracy
        tags |= {"champion_version": champion.version,
                 "champion_accuracy": champion.accuracy,
                 "champion_logged_accuracy": champion.logged_accuracy,
                 "champion_scored_on": champion.scored_on,
                 "champion_false_suggestion_rate": champion.false_suggestion_rate,
                 "champion_note": champion.note}
        tags["paired_test"] = ("exact McNemar" + (" on the shared classes" if champion.labels != labels else "")
                               if paired is not None else
                               "none: " + ("no class in common" if not shared else
                                           "no per-image predictions of both on the same images"))
    if paired is not None:
        tags |= {"paired_images": paired.images, "paired_candidate_only": paired.candidate_only,
                 "paired_champion_only": paired.champion_only, "mcnemar_p": paired.p_worse}
    if best is not None:
        tags |= {"best_version": best.version, "best_accuracy": best.accuracy,
                 "best_scored_on": best.scored_on}
    reference = max([c.accuracy for c in (champion, best)
                     if c is not None and (c.labels == labels or (c is champion and c.compared_on))],
                    default=None)
    if reference is not None:
        tags["reference_accuracy"] = reference
    return tags


def comparison(run: Any, accuracy: float, false_rate: float | None, recalls: Mapping[str, float],
               champion: Champion | None, correct: tuple[bool, ...] | None, limit: int = 200) -> dict[str, Any]:
    """The candidate beside the champion on the same test images (of the classes both have), for
    the person approving: overall and per-class figures, false-suggestion rates, and the images
    they disagree on (sha256, true label, which one got it right; at most ``limit``)."""
    out: dict[str, Any] = {"candidate": {"accuracy": accuracy, "false_suggestion_rate": false_rate,
                                         "recall": dict(recalls)}, "champion": None, "disagreements": []}
    if champion is None:
        return out
    out["champion"] = {"version": champion.version, "accuracy": champion.accuracy,
                       "scored_on": champion.scored_on, "false_suggestion_rate": champion.false_suggestion_rate,
                       "recall": {}}
    if champion.correct is None or correct is None or len(champion.correct) != len(correct):
        return out
    split = load_split(run.info.run_id)
    labels = np.asarray(split["test_labels"])
    inside = labels != BACKGROUND
    shas, labels = np.asarray(split["test"])[inside], labels[inside]
    if champion.compared_on:
        keep = np.isin(labels, list(champion.compared_on))
        shas, labels = shas[keep], labels[keep]
    truth = labels
    champ = np.asarray(champion.correct, dtype=bool)
    out["champion"]["recall"] = {str(label): float(np.mean(champ[truth == label])) for label in np.unique(truth)}
    differ = np.flatnonzero(champ != np.asarray(correct, dtype=bool))
    out["disagreements"] = [{"sha256": str(shas[i]), "label": str(truth[i]),
                             "right": "candidate" if correct[i] else "champion"} for i in differ[:limit]]
    out["disagreement_count"] = len(differ)
    return out


def _result(name: str, version: str, outcome: str, promoted: bool, alias: str | None,
            reason: str, accuracy: float, champion: Champion | None) -> dict[str, Any]:
    verb = {"promoted": f"promoted to @{CHAMPION}", "challenger": f"is @{CHALLENGER} "
            f"(awaiting a person to move @{CHAMPION})", "rejected": "not promoted"}[outcome]
    return {
        "model_name": name, "version": version, "decision": outcome, "promoted": promoted,
        "alias": alias, "reason": reason, "test_accuracy": accuracy,
        "champion": {k: v for k, v in asdict(champion).items() if k != "correct"} if champion else None,
        "message": f"{name} v{version} {verb}: {reason}",
        "already_champion": False,
    }
