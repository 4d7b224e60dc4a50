"""The promotion gate: register every candidate, move ``champion`` only to a good enough one.

A candidate passes when (see :func:`decide`): its test accuracy is at least
``settings.accuracy_floor``; every class's test recall is at least ``settings.recall_floor``;
and, if the current champion was trained on the same label set, scored on the same held-out
images (the candidate's test split) it is not significantly worse (exact McNemar test at
``settings.gate_confidence``) and its accuracy is at least the reference minus
``settings.tolerance``, the reference being the higher of the champion and the best champion
this label set ever had (re-scored on the same images where possible), so that the bar never
drifts down. When the champion cannot be re-scored its logged accuracy is used and the reason
recorded. A changed label set is a new baseline that needs the floors only. A candidate whose
false-suggestion rate is worse than the champion's on the same images by more than the
tolerance is refused too. Every version gets a model card as its description (:mod:`pixtag.model.card`).

``promotion: auto`` moves the alias ``champion`` to a passing candidate; ``human`` gives it
``challenger`` and leaves ``champion`` to a person (MLflow UI). The decision and its reason are
tags on the version. Any error talking to MLflow propagates: the task fails and retries, and
an alias only ever moves after the gate has passed.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from pixtag.core.errors import PixtagError

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from pixtag.core.config import Settings
    from pixtag.core.storage import Storage

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
TAG = "pixtag.gate."


class RegistryError(PixtagError):
    """The candidate run cannot be registered (missing run, metric or model)."""


class RegistryUnavailable(RegistryError):
    """MLflow could not be reached, or failed, during the gate: retrying is safe (the candidate's
    version is reused and the decision applied again)."""


# --- pure core -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Champion:
    version: str
    labels: tuple[str, ...]
    accuracy: float  # the accuracy compared against (re-scored when possible)
    logged_accuracy: float
    scored_on: str  # "candidate_split" or "logged"
    note: str = ""
    false_suggestion_rate: float | None = None  # on the same images as accuracy, if measured
    # per test class image of the candidate's split: did this version get it right? (paired test)
    correct: tuple[bool, ...] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Paired:
    """Candidate and champion on the same held-out images: exact one-sided McNemar test."""

    images: int
    candidate_only: int  # images only the candidate gets right
    champion_only: int  # images only the champion gets right
    p_worse: float  # P(the champion wins >= champion_only of the discordant images | no difference)


@dataclass(frozen=True)
class Decision:
    passed: bool
    reason: str


def mcnemar(candidate: Sequence[bool], champion: Sequence[bool]) -> Paired:
    """Exact McNemar test that the candidate is worse than the champion on the same images."""
    cand, champ = np.asarray(candidate, dtype=bool), np.asarray(champion, dtype=bool)
    if cand.shape != champ.shape:
        raise RegistryError(f"paired test over {len(cand)} and {len(champ)} images: not the same images")
    b, c = int(np.sum(cand & ~champ)), int(np.sum(~cand & champ))
    n = b + c
    p = 1.0 if n == 0 else sum(math.comb(n, k) for k in range(c, n + 1)) / 2 ** n
    return Paired(len(cand), b, c, float(p))


def _where_scored(champion: Champion) -> str:
    return ("on the candidate's test split" if champion.scored_on == "candidate_split"
            else f"logged ({champion.note})" if champion.note else "logged")


def decide(accuracy: float, labels: tuple[str, ...], champion: Champion | None,
           floor: float, tolerance: float, false_rate: float | None = None, *,
           paired: Paired | None = None, confidence: float = 0.95, best: Champion | None = None,
           recalls: Mapping[str, float] | None = None, recall_floor: float = 0.0) -> Decision:
    """The gate, as a pure function of the numbers.

    Refused when any of these holds (every reason is given): accuracy below ``floor``; a
    class's recall (``recalls``) below ``recall_floor``; with a champion of the same label
    set, the exact McNemar test (``paired``) shows the candidate worse at ``confidence``;
    accuracy below the reference minus ``tolerance``, the reference being the higher of the
    champion and ``best`` (the best champion this label set had, so that it never drifts down);
    a false-suggestion rate (``false_rate``) above the champion's plus ``tolerance``.
    """
    refused: list[str] = []
    if accuracy < floor:
        refused.append(f"test accuracy {accuracy:.4f} is below the floor {floor:.4f}")
    low = {k: v for k, v in (recalls or {}).items() if v < recall_floor}
    if low:
        refused.append("recall below the per-class floor {:.2f}: {}".format(
            recall_floor, ", ".join(f"{k} {v:.2f}" for k, v in sorted(low.items()))))
    if champion is None or tuple(champion.labels) != tuple(labels):
        if refused:
            return Decision(False, "; ".join(refused))
        if champion is None:
            return Decision(True, f"no champion yet; test accuracy {accuracy:.4f} >= floor {floor:.4f}")
        return Decision(True, f"label set changed ({','.join(champion.labels)} -> "
                              f"{','.join(labels)}): new baseline; test accuracy "
                              f"{accuracy:.4f} >= floor {floor:.4f}")
    where = _where_scored(champion)
    passed: list[str] = []
    if paired is not None:
        line = (f"paired test on {paired.images} images vs champion v{champion.version} ({where}): "
                f"{paired.candidate_only} only the candidate gets right, {paired.champion_only} only "
                f"the champion; exact McNemar p = {paired.p_worse:.4f}")
        if paired.p_worse < 1 - confidence:
            refused.append(f"significantly worse than the champion at {confidence:.0%} confidence: {line}")
        else:
            passed.append(f"not significantly worse at {confidence:.0%} confidence: {line}")
    reference = champion
    if best is not None and tuple(best.labels) == tuple(labels) and best.accuracy > champion.accuracy:
        reference = best
    bar = reference.accuracy - tolerance
    who = (f"champion v{champion.version} {champion.accuracy:.4f} ({where})" if reference is champion
           else f"the best champion of this label set, v{best.version} {best.accuracy:.4f} "  # type: ignore[union-attr]
                f"({_where_scored(best)})")  # type: ignore[arg-type]
    if accuracy < bar:
        refused.append(f"test accuracy {accuracy:.4f} is below {who} - tolerance {tolerance:.4f} = {bar:.4f}")
    else:
        passed.append(f"test accuracy {accuracy:.4f} >= {who} - tolerance {tolerance:.4f}; "
                      f">= floor {floor:.4f}")
    if false_rate is not None and champion.false_suggestion_rate is not None and \
            false_rate > champion.false_suggestion_rate + tolerance:
        refused.append(f"false-suggestion rate {false_rate:.4f} is above champion "
                       f"v{champion.version} {champion.false_suggestion_rate:.4f} ({where}) + "
                       f"tolerance {tolerance:.4f} = {champion.false_suggestion_rate + tolerance:.4f}")
    if refused:
        return Decision(False, "; ".join(refused))
    return Decision(True, "; ".join(passed))


# --- MLflow access ---------------------------------------------------------------------------
def client_for(settings: Settings) -> MlflowClient:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_uri)
    return MlflowClient(tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri)


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """alias → version of a registered model ({} if the model does not exist yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}
    except MlflowException as exc:
        if _not_found(exc):
            return {}
        raise


def version_for_run(client: MlflowClient, name: str, run: Any) -> Any:
    """The version registered from ``run`` (a retried task reuses it), or register one."""
    import mlflow

    run_id = run.info.run_id
    found = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    if found:
        return sorted(found, key=lambda v: int(v.version))[-1]
    return mlflow.register_model(run.data.tags.get("pixtag.model_uri") or f"runs:/{run_id}/model",
                                 name)


def run_labels(run: Any) -> tuple[str, ...]:
    labels = run.data.tags.get("pixtag.labels")
    if not labels:
        raise RegistryError(f"run {run.info.run_id} has no pixtag.labels tag: not a pixtag run")
    return tuple(labels.split(","))


def run_accuracy(run: Any) -> float:
    if "test_accuracy" not in run.data.metrics:
        raise RegistryError(f"run {run.info.run_id} has no test_accuracy metric")
    return float(run.data.metrics["test_accuracy"])


def run_false_rate(run: Any) -> float | None:
    value = run.data.metrics.get("false_suggestion_rate")
    return None if value is None else float(value)


def champion_on_split(settings: Settings, client: MlflowClient, version: Any,
                      split: dict[str, Any], store: Storage) -> tuple[float, float | None, list[bool]]:
    """Closed-set accuracy of a registered version on a test split's class images (features of
    the same images), its false-suggestion rate on the split's background images at its
    own threshold (``None`` without background images), and whether it got each class image
    right (in the split's order: the paired test)."""
    import mlflow
    import yaml

    from pixtag.core.dataset import read_manifest
    from pixtag.model.classifier import LinearSVMClassifier
    from pixtag.model.features import compute, select

    local = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{version.name}/{version.version}"))
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]
    data = local / flavor["data"]
    config = json.loads((data / "config.json").read_text())
    with np.load(data / "classifier.npz", allow_pickle=False) as arrays:
        classifier = LinearSVMClassifier.from_arrays(dict(arrays))
    name = config["backbone"]
    # The champion's own weights: those it ships, else its backbone's default source; never the
    # candidate's settings.weights, which may name other weights for the same backbone.
    weights = {name: str(data / "backbone.pt")} if (data / "backbone.pt").is_file() else {}
    rows = select(read_manifest(store), sha256s=split["test"])
    if len(rows) != len(set(split["test"])):
        raise RegistryError(f"{len(set(split['test'])) - len(rows)} test images are no longer "
                            f"in the dataset at {store.uri}")
    run = compute(settings.model_copy(update={"weights": weights}), rows, store, name)
    X = run.vectors(split["test"])
    from pixtag.model.openset import BACKGROUND, confidence, predict_class

    truth = np.asarray(split["test_labels"])
    labels = [str(c) for c in classifier.classes_]
    inside = truth != BACKGROUND
    correct = predict_class(classifier.log_odds(X[inside]), labels) == truth[inside]
    accuracy = float(np.mean(correct))
    if inside.all():
        return accuracy, None, correct.tolist()
    threshold = float(config.get("trained_threshold", 0.5) if settings.threshold is None else settings.threshold)
    false_rate = float(np.mean(confidence(classifier.predict_tag_proba(X[~inside]), labels) >= threshold))
    return accuracy, false_rate, correct.tolist()


def current_champion(settings: Settings, client: MlflowClient, candidate_run: Any,
                     labels: tuple[str, ...], exclude: str, store: Storage | None = None) -> Champion | None:
    version = aliases(client, settings.model_name).get(CHAMPION)
    if version is None or version == exclude:
        return None
    return scored_version(settings, client, candidate_run, labels, version, store)


def scored_version(settings: Settings, client: MlflowClient, candidate_run: Any,
                   labels: tuple[str, ...], version: str, store: Storage | None = None) -> Champion:
    """A registered version's figures, re-scored on the candidate's test split when it has the
    same label set (else, or when re-scoring fails, its logged figures and why). ``store``: an
    opened storage, used when it is the candidate's dataset (else that one is opened)."""
    from pixtag.core.storage import open_storage

    mv = client.get_model_version(settings.model_name, version)
    champ_run = client.get_run(mv.run_id)
    champ_labels, logged = run_labels(champ_run), run_accuracy(champ_run)
    logged_false = run_false_rate(champ_run)
    if champ_labels != labels:
        return Champion(version, champ_labels, logged, logged, "logged", "other label set", logged_false)
    try:
        split = _load_split(candidate_run.info.run_id)
        storage = candidate_run.data.tags.get("pixtag.core.storage") or settings.storage
        if store is None or store.uri != storage:
            store = open_storage(storage, settings.s3_endpoint_url)
        acc, false_rate, correct = champion_on_split(settings, client, mv, split, store)
        return Champion(version, champ_labels, acc, logged, "candidate_split",
                        false_suggestion_rate=false_rate, correct=tuple(correct))
    except Exception as exc:  # record why, compare with the logged number instead
        note = f"not re-scored: {type(exc).__name__}: {str(exc)[:200]}"
        log.warning("v%s %s", version, note)
        return Champion(version, champ_labels, logged, logged, "logged", note, logged_false)


def past_champions(client: MlflowClient, name: str, labels: tuple[str, ...], exclude: str) -> list[Any]:
    """Versions of this label set that were ever champion (promoted by the gate, approved in
    Airflow, or found as ``@champion`` by a later gate: a move in the MLflow UI counts too)."""
    found = []
    for mv in client.search_model_versions(f"name='{name}'"):
        tags = mv.tags or {}
        if str(mv.version) == exclude or tags.get(TAG + "labels") != ",".join(labels):
            continue
        if tags.get(TAG + "was_champion") == "true" or tags.get(TAG + "decision") == "promoted":
            found.append(mv)
    return found


def best_champion(settings: Settings, client: MlflowClient, candidate_run: Any,
                  labels: tuple[str, ...], champion: Champion | None, exclude: str,
                  store: Storage | None = None) -> Champion | None:
    """The best champion this label set ever had (by its gate-time accuracy), re-scored on the
    candidate's images where possible; ``None`` when that is the current champion or none."""
    past = [mv for mv in past_champions(client, settings.model_name, labels, exclude)
            if champion is None or str(mv.version) != champion.version]
    if not past:
        return None
    top = max(past, key=lambda mv: float((mv.tags or {}).get(TAG + "test_accuracy", 0.0)))
    logged_best = float(top.tags.get(TAG + "test_accuracy", 0.0))
    if champion is not None and logged_best <= champion.logged_accuracy:
        return None
    return scored_version(settings, client, candidate_run, labels, str(top.version), store)


def candidate_figures(run: Any, labels: tuple[str, ...]) -> tuple[dict[str, float], tuple[bool, ...] | None]:
    """The candidate's per-class test recall, and whether it got each test class image right
    (``None`` for a run logged before predictions were kept)."""
    recalls = {label: float(run.data.metrics[f"recall.{label}"]) for label in labels
               if f"recall.{label}" in run.data.metrics}
    try:
        split = _load_split(run.info.run_id)
    except Exception:  # no split.json: no paired test; the reason is recorded
        return recalls, None
    if "test_predictions" not in split:
        return recalls, None
    from pixtag.model.openset import BACKGROUND

    truth, pred = np.asarray(split["test_labels"]), np.asarray(split["test_predictions"])
    inside = truth != BACKGROUND
    return recalls, tuple(bool(v) for v in pred[inside] == truth[inside])


def _load_split(run_id: str) -> dict[str, Any]:
    import mlflow

    return mlflow.artifacts.load_dict(f"runs:/{run_id}/split.json")


def _where(uri: str) -> str:
    """Where MLflow is, without credentials or paths (safe for messages)."""
    parts = urlsplit(uri)
    if not parts.hostname:
        return f"{parts.scheme or 'file'} store"
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def _finished_run(client: MlflowClient, run_id: str) -> Any:
    """The run, only if it finished: a training task killed mid-way (SIGKILL, OOM) leaves its
    run RUNNING, one that raised leaves it FAILED; such a run is never registered (the retried
    task trains a new one). Orphans are left as they are, for a person to look at."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if _not_found(exc):
            raise RegistryError(f"no MLflow run {run_id!r}") from None
        raise
    if run.info.status != "FINISHED":
        raise RegistryError(f"run {run_id} is {run.info.status}, not FINISHED: a killed or failed "
                            "training run is never registered")
    return run


# --- the stage -------------------------------------------------------------------------------
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
            f"MLflow at {_where(settings.mlflow_uri)} failed during the gate for run {run_id} "
            f"({type(exc).__name__}: {detail}); the gate did not complete, retry it (the "
            "candidate's version is reused)") from exc


def _register(settings: Settings, run_id: str, store: Storage | None = None) -> dict[str, Any]:
    name = settings.model_name
    client = client_for(settings)
    run = _finished_run(client, run_id)
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
    recalls, correct = candidate_figures(run, labels)
    paired = None
    if champion is not None and champion.labels == labels and correct is not None and \
            champion.correct is not None and len(correct) == len(champion.correct):
            paired = mcnemar(correct, champion.correct)
    decision = decide(accuracy, labels, champion, settings.accuracy_floor, settings.tolerance, false_rate,
                      paired=paired, confidence=settings.gate_confidence, best=best,
                      recalls=recalls, recall_floor=settings.recall_floor)
    alias = (CHAMPION if settings.promotion == "auto" else CHALLENGER) if decision.passed else None
    outcome = ("promoted" if alias == CHAMPION else "challenger" if alias else "rejected")
    tags: dict[str, Any] = {
        "decision": outcome, "reason": decision.reason, "promotion": settings.promotion,
        "floor": settings.accuracy_floor, "tolerance": settings.tolerance,
        "test_accuracy": accuracy, "labels": ",".join(labels),
        "false_suggestion_rate": false_rate,
        "confidence": settings.gate_confidence, "recall_floor": settings.recall_floor,
        "min_recall": min(recalls.values()) if recalls else None,
    }
    tags |= {f"recall.{k}": v for k, v in recalls.items()}
    if champion is not None:
        tags |= {"champion_version": champion.version,
                 "champion_accuracy": champion.accuracy,
                 "champion_logged_accuracy": champion.logged_accuracy,
                 "champion_scored_on": champion.scored_on,
                 "champion_false_suggestion_rate": champion.false_suggestion_rate,
                 "champion_note": champion.note}
        tags["paired_test"] = ("exact McNemar" if paired is not None else
                               "none: " + ("other label set" if champion.labels != labels else
                                           "no per-image predictions of both on the same images"))
    if paired is not None:
        tags |= {"paired_images": paired.images, "paired_candidate_only": paired.candidate_only,
                 "paired_champion_only": paired.champion_only, "mcnemar_p": paired.p_worse}
    if best is not None:
        tags |= {"best_version": best.version, "best_accuracy": best.accuracy,
                 "best_scored_on": best.scored_on}
    reference = max([c.accuracy for c in (champion, best) if c is not None and c.labels == labels],
                    default=None)
    if reference is not None:
        tags["reference_accuracy"] = reference
    for key, value in tags.items():
        client.set_model_version_tag(name, version, TAG + key, str(value))
    from pixtag.model.card import model_card

    client.update_model_version(name, version, description=model_card(
        client, name, run, outcome, decision.reason, champion, paired, best, tags))
    if alias is not None:  # last: a champion always carries its decision and reason
        client.set_registered_model_alias(name, alias, version)
    result = _result(name, version, outcome, alias == CHAMPION, alias, decision.reason,
                     accuracy, champion)
    result["comparison"] = comparison(run, accuracy, false_rate, recalls, champion, correct)
    log.info("%s", result["message"])
    return result


def comparison(run: Any, accuracy: float, false_rate: float | None, recalls: Mapping[str, float],
               champion: Champion | None, correct: tuple[bool, ...] | None,
               limit: int = 200) -> dict[str, Any]:
    """The candidate beside the champion on the same test images, for the person approving:
    overall and per-class figures, false-suggestion rates, and the images they disagree on
    (sha256, true label, which one got it right; at most ``limit``)."""
    out: dict[str, Any] = {"candidate": {"accuracy": accuracy, "false_suggestion_rate": false_rate,
                                         "recall": dict(recalls)}, "champion": None, "disagreements": []}
    if champion is None:
        return out
    out["champion"] = {"version": champion.version, "accuracy": champion.accuracy,
                       "scored_on": champion.scored_on, "false_suggestion_rate": champion.false_suggestion_rate,
                       "recall": {}}
    if champion.correct is None or correct is None or len(champion.correct) != len(correct):
        return out
    from pixtag.model.openset import BACKGROUND

    split = _load_split(run.info.run_id)
    truth = np.asarray(split["test_labels"])
    inside = truth != BACKGROUND
    shas, truth = np.asarray(split["test"])[inside], truth[inside]
    champ = np.asarray(champion.correct, dtype=bool)
    out["champion"]["recall"] = {str(label): float(np.mean(champ[truth == label])) for label in np.unique(truth)}
    differ = np.flatnonzero(champ != np.asarray(correct, dtype=bool))
    out["disagreements"] = [{"sha256": str(shas[i]), "label": str(truth[i]),
                             "right": "candidate" if correct[i] else "champion"} for i in differ[:limit]]
    out["disagreement_count"] = len(differ)
    return out


def record_approval(settings: Settings, version: str, approved: bool, user: str, note: str = "") -> dict[str, Any]:
    """A person's answer to the promotion approval (Airflow's required action): approving moves
    ``@champion`` to ``version`` and records who; rejecting leaves the champion and records why."""
    from datetime import UTC, datetime

    name = settings.model_name
    client = client_for(settings)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    if approved:
        tags = {"approved_by": user, "approved_at": when, "approval_note": note, "decision": "promoted",
                "was_champion": "true"}
    else:
        tags = {"rejected_by": user, "rejected_at": when, "rejection_reason": note or "(no reason given)",
                "decision": "rejected_by_person"}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, TAG + key, value)
    card = client.get_model_version(name, version).description or ""
    said = (f"**Approved by {user}** ({when}) in Airflow: now `@{CHAMPION}`." if approved else
            f"**Rejected by {user}** ({when}) in Airflow: {tags['rejection_reason']}")
    client.update_model_version(name, version, description=f"{card}\n{said}{' ' + note if approved and note else ''}\n")
    if approved:  # last, as in the gate
        client.set_registered_model_alias(name, CHAMPION, version)
        if aliases(client, name).get(CHALLENGER) == version:
            client.delete_registered_model_alias(name, CHALLENGER)
    verb = f"approved by {user}: now @{CHAMPION}" if approved else f"rejected by {user}: {tags['rejection_reason']}"
    log.info("%s v%s %s", name, version, verb)
    return {"model_name": name, "version": version, "approved": approved, "by": user, "note": note,
            "new_champion": approved, "message": f"{name} v{version} {verb}"}


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
