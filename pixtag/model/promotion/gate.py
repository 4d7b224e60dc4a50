"""The promotion gate as a pure function of the figures: :func:`decide`.

A candidate passes when: its test accuracy is at least
``settings.accuracy_floor``; every class's test recall is at least ``settings.recall_floor``;
and, if the current champion was trained on the same label set, scored on the same held-out
images (the candidate's test split) it is not significantly worse (exact McNemar test at
``settings.gate_confidence``) and its accuracy is at least the reference minus
``settings.tolerance``, the reference being the higher of the champion and the best champion
this label set ever had (re-scored on the same images where possible), so that the bar never
drifts down. When the champion cannot be re-scored its logged accuracy is used and the reason
recorded. A candidate whose false-suggestion rate is worse than the champion's on the same
images by more than the tolerance is refused too.

When the class set changed (a person added a tag through the trigger form, a class was removed
or left out), the comparison is made on the classes both have: the champion is re-scored on the
candidate's test images of those classes, and the paired test and the accuracy bar compare the
two on exactly those images (the candidate's accuracy there: ``shared_accuracy``); every class,
a new one too, must reach the recall floor. Only a champion with no class in common is a new
baseline that needs the floors only. Every version gets a model card as its description
(:mod:`pixtag.model.promotion.card`).

``promotion: auto`` moves the alias ``champion`` to a passing candidate; ``human`` gives it
``challenger`` and leaves ``champion`` to a person (MLflow UI). The decision and its reason are
tags on the version. Any error talking to MLflow propagates: the task fails and retries, and
an alias only ever moves after the gate has passed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pixtag.core.errors import PixtagError


class GateError(PixtagError):
    """The gate was given figures it cannot compare."""


@dataclass(frozen=True)
class Champion:
    version: str
    labels: tuple[str, ...]
    accuracy: float  # the accuracy compared against (re-scored when possible)
    logged_accuracy: float
    scored_on: str  # "candidate_split" or "logged"
    note: str = ""
    false_suggestion_rate: float | None = None  # on the same images as accuracy, if measured
    # per test class image of the candidate's split (of the classes compared_on): did this version
    # get it right? (paired test)
    correct: tuple[bool, ...] | None = field(default=None, repr=False, compare=False)
    # the classes whose test images it was re-scored on (those it shares with the candidate); ()
    # when not re-scored
    compared_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class Paired:
    """Candidate and champion on the same held-out images: exact one-sided McNemar test."""

    images: int
    candidate_only: int  # images only the candidate gets right
    champion_only: int  # images only the champion gets right
    p_worse: float  # P(the champion wins >= champion_only of the discordant images | no difference)


@dataclass(frozen=True)
class Verdict:
    """What the gate decided and why (the pipeline's :class:`pixtag.pipeline.results.Decision`
    carries it, with the version and the alias, to the later tasks)."""

    passed: bool
    reason: str


def mcnemar(candidate: Sequence[bool], champion: Sequence[bool]) -> Paired:
    """Exact McNemar test that the candidate is worse than the champion on the same images."""
    cand, champ = np.asarray(candidate, dtype=bool), np.asarray(champion, dtype=bool)
    if cand.shape != champ.shape:
        raise GateError(f"paired test over {len(cand)} and {len(champ)} images: not the same images")
    b, c = int(np.sum(cand & ~champ)), int(np.sum(~cand & champ))
    n = b + c
    p = 1.0 if n == 0 else sum(math.comb(n, k) for k in range(c, n + 1)) / 2 ** n
    return Paired(len(cand), b, c, float(p))


def _where_scored(champion: Champion) -> str:
    return ("on the candidate's test split" if champion.scored_on == "candidate_split"
            else f"logged ({champion.note})" if champion.note else "logged")


def class_changes(labels: Sequence[str], champion: Champion | None) -> tuple[list[str], list[str], list[str]]:
    """The candidate's classes the champion lacks (added), the champion's it lacks (removed),
    and those both have (shared), each sorted."""
    if champion is None:
        return sorted(labels), [], []
    mine, theirs = set(labels), set(champion.labels)
    return sorted(mine - theirs), sorted(theirs - mine), sorted(mine & theirs)


def decide(accuracy: float, labels: tuple[str, ...], champion: Champion | None,
           floor: float, tolerance: float, false_rate: float | None = None, *,
           paired: Paired | None = None, confidence: float = 0.95, best: Champion | None = None,
           recalls: Mapping[str, float] | None = None, recall_floor: float = 0.0,
           shared_accuracy: float | None = None) -> Verdict:
    """The gate, as a pure function of the numbers.

    Refused when any of these holds (every reason is given): accuracy below ``floor``; a
    class's recall (``recalls``; a class the champion lacks too) below ``recall_floor``; the
    exact McNemar test (``paired``, on the test images of the classes both have) shows the
    candidate worse at ``confidence``; accuracy below the reference minus ``tolerance``, the
    reference being the higher of the champion and ``best`` (the best champion this label set
    had, so that it never drifts down); a false-suggestion rate (``false_rate``) above the
    champion's plus ``tolerance``. With another class set than the champion's, the champion's
    accuracy is compared with ``shared_accuracy``, the candidate's on the shared classes' images
    (its ``accuracy`` when not given), and only a champion with no class in common is a new
    baseline that needs the floors only.
    """
    added, removed, shared = class_changes(labels, champion)
    refused = floor_problems(accuracy, floor, recalls or {}, recall_floor,
                             new=set(added) if champion is not None else set())
    if champion is None or not shared:
        if refused:
            return Verdict(False, "; ".join(refused))
        if champion is None:
            return Verdict(True, f"no champion yet; test accuracy {accuracy:.4f} >= floor {floor:.4f}")
        return Verdict(True, f"no class in common with champion v{champion.version} ({','.join(champion.labels)} "
                             f"-> {','.join(labels)}): new baseline; test accuracy {accuracy:.4f} >= floor {floor:.4f}")
    changed = tuple(champion.labels) != tuple(labels)
    compared = shared_accuracy if changed and shared_accuracy is not None else accuracy
    passed: list[str] = []
    if changed:
        passed.append(f"classes changed since champion v{champion.version} (added: {', '.join(added) or 'none'}; "
                      f"removed: {', '.join(removed) or 'none'}): compared on the {len(shared)} classes both have"
                      + ("" if champion.scored_on == "candidate_split" else f" ({_where_scored(champion)})"))
    for ok, line in (paired_judgement(paired, champion, confidence),
                     accuracy_judgement(compared, labels, champion, best, floor, tolerance, overall=accuracy),
                     false_rate_judgement(false_rate, champion, tolerance)):
        if line:
            (passed if ok else refused).append(line)
    if refused:
        return Verdict(False, "; ".join(([passed[0]] if changed else []) + refused))
    if added and recalls:
        passed.append("new classes reach the recall floor {:.2f}: {}".format(
            recall_floor, ", ".join(f"{k} {recalls[k]:.2f}" for k in added if k in recalls)))
    return Verdict(True, "; ".join(passed))


def floor_problems(accuracy: float, floor: float, recalls: Mapping[str, float], recall_floor: float,
                   new: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Why a candidate misses the floors, whatever the champion: accuracy, each class's recall
    (a class the champion lacks, ``new``, is named so)."""
    refused = []
    if accuracy < floor:
        refused.append(f"test accuracy {accuracy:.4f} is below the floor {floor:.4f}")
    low = {k: v for k, v in recalls.items() if v < recall_floor}
    if low:
        refused.append("recall below the per-class floor {:.2f}: {}".format(
            recall_floor, ", ".join(f"{k} {v:.2f}" + (" (new class)" if k in new else "")
                                    for k, v in sorted(low.items()))))
    return refused


def paired_judgement(paired: Paired | None, champion: Champion, confidence: float) -> tuple[bool, str]:
    """Whether the exact McNemar test shows the candidate no worse than the champion, and why."""
    if paired is None:
        return True, ""
    line = (f"paired test on {paired.images} images vs champion v{champion.version} ({_where_scored(champion)}): "
            f"{paired.candidate_only} only the candidate gets right, {paired.champion_only} only "
            f"the champion; exact McNemar p = {paired.p_worse:.4f}")
    if paired.p_worse < 1 - confidence:
        return False, f"significantly worse than the champion at {confidence:.0%} confidence: {line}"
    return True, f"not significantly worse at {confidence:.0%} confidence: {line}"


def accuracy_judgement(accuracy: float, labels: tuple[str, ...], champion: Champion, best: Champion | None,
                       floor: float, tolerance: float, overall: float | None = None) -> tuple[bool, str]:
    """Whether the accuracy is within ``tolerance`` of the reference (the champion, or the best
    champion this label set had when that is higher: no ratchet down), and why. With another
    class set than the champion's, ``accuracy`` is the candidate's on the classes both have and
    ``overall`` its own test accuracy, which the best champion of its label set is held to."""
    overall = accuracy if overall is None else overall
    same = tuple(champion.labels) == tuple(labels)
    where = "" if same else " on the shared classes"
    checks = [(accuracy, champion, f"champion v{champion.version} {champion.accuracy:.4f} ({_where_scored(champion)})")]
    if best is not None and tuple(best.labels) == tuple(labels) and (not same or best.accuracy > champion.accuracy):
        who = (f"the best champion of this label set, v{best.version} {best.accuracy:.4f} "
               f"({_where_scored(best)})")
        checks = [(overall, best, who)] + (checks if not same else [])
    lines = []
    for value, reference, who in checks:
        bar = reference.accuracy - tolerance
        scope = where if reference is champion else ""
        if value < bar:
            return False, f"test accuracy{scope} {value:.4f} is below {who} - tolerance {tolerance:.4f} = {bar:.4f}"
        lines.append(f"test accuracy{scope} {value:.4f} >= {who} - tolerance {tolerance:.4f}")
    return True, "; ".join(lines) + f"; >= floor {floor:.4f}"


def false_rate_judgement(false_rate: float | None, champion: Champion, tolerance: float) -> tuple[bool, str]:
    """Whether the false-suggestion rate is within ``tolerance`` of the champion's (refusals only)."""
    if false_rate is None or champion.false_suggestion_rate is None or \
            false_rate <= champion.false_suggestion_rate + tolerance:
        return True, ""
    return False, (f"false-suggestion rate {false_rate:.4f} is above champion "
                   f"v{champion.version} {champion.false_suggestion_rate:.4f} ({_where_scored(champion)}) + "
                   f"tolerance {tolerance:.4f} = {champion.false_suggestion_rate + tolerance:.4f}")
