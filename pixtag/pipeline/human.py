"""A person in the loop: what the DAG's two required actions (Airflow human-in-the-loop
operators) show, and what is done with the answers. No Airflow import here.

* **Review** (``review: new_images``): after validation, contact sheets of the images that are
  new since the champion's dataset; the answer lists exclusions (``label:n`` as on the sheets,
  or a sha256, one per line) that go to ``exclusions.json``, honoured by this run's training
  and by later scrapes.
* **Promotion** (``promotion: human``): the candidate beside the champion on the same test
  images; approving moves ``@champion`` (:func:`pixtag.model.promotion.approval.record_approval`). What
  became of it (approved, rejected, timed out, not needed) is an :class:`~pixtag.pipeline.results.Approval`,
  which the run's report states.

Both forms' fields are optional (an empty answer is no exclusions, no note): Airflow's form marks
a Param required, and keeps its buttons disabled while it is empty, unless its type allows null.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pixtag.core import logs
from pixtag.core.config import Settings
from pixtag.core.errors import PixtagError
from pixtag.core.storage import Storage, open_storage
from pixtag.pipeline.results import Approval, Decision

log = logs.get_logger(__name__)

NEW_SHEETS = "reports/review/new"
DISAGREE_SHEETS = "reports/review/disagreements"
ROUTE = "/pixtag/review"  # where the Airflow plugin serves reports/review/ to logged-in users


class ReviewInputError(PixtagError, ValueError):
    """The reviewer's answer cannot be applied (unknown index, malformed id)."""


def champion_images(settings: Settings) -> set[str] | None:
    """The sha256 of the images the champion was trained and tested on (``None``: no champion)."""
    from pixtag.model.promotion.versions import CHAMPION, aliases
    from pixtag.model.tracking import connect, load_dict

    client = connect(settings)
    version = aliases(client, settings.model_name).get(CHAMPION)
    if version is None:
        return None
    run_id = client.get_model_version(settings.model_name, version).run_id
    split = load_dict(f"runs:/{run_id}/split.json")
    return set(split.get("train", [])) | set(split.get("test", []))


def _opened(settings: Settings, store: Storage | None) -> Storage:
    return store or open_storage(settings.storage, settings.s3_endpoint_url)


def review_request(settings: Settings, base_url: str, store: Storage | None = None) -> dict[str, Any]:
    """Write contact sheets of the images new since the champion's dataset (all of them without
    a champion) and return what the review's body shows. ``store``: ``settings.storage`` opened."""
    from pixtag.data.review import contact_refs, excluded_mask, read_exclusions, read_raw_manifest, write_sheets

    store = _opened(settings, store)
    frame = read_raw_manifest(store)
    rows = frame.assign(ref=contact_refs(frame), excluded=excluded_mask(frame, read_exclusions(store)))
    known = champion_images(settings)
    new = rows if known is None else rows[~rows["sha256"].isin(known)]
    new = new[~new["excluded"]]
    target = store.child(NEW_SHEETS)
    _, counts = write_sheets(store, new, target) if len(new) else ({}, {})
    base = base_url.rstrip("/")
    return {"new_images": len(new), "since": "the champion's dataset" if known is not None else "ever (no champion)",
            "counts": {k: v["images"] for k, v in counts.items()},
            "sheets": f"{base}{ROUTE}/new/index.html" if len(new) else None,
            "data_docs": f"{base}/pixtag/data-docs/index.html"}


def review_body(request: Mapping[str, Any]) -> str:
    """Markdown for the review's required action."""
    lines = [f"**{request['new_images']} images** are new since {request['since']}."]
    if request["counts"]:
        lines.append("Per class: " + ", ".join(f"{k} {v}" for k, v in sorted(request["counts"].items())) + ".")
        lines.append(f"\n[Contact sheets of the new images]({request['sheets']}) · "
                     f"[Data Docs]({request['data_docs']})")
    else:
        lines.append(f"\n[Data Docs]({request['data_docs']})")
    lines.append("\nList the images to leave out under *Exclusions*, one per line: `label:n` as "
                 "captioned on the sheets, or a sha256. They are excluded from this run and later "
                 "ones; the run then goes on without them.")
    return "\n".join(lines)


def parse_exclusions(text: str | None) -> list[str]:
    """One reference per line (commas and blank lines tolerated)."""
    return [part.strip() for line in (text or "").splitlines() for part in line.split(",") if part.strip()]


def apply_review(settings: Settings, text: str | None, user: str, store: Storage | None = None) -> dict[str, Any]:
    """Add the reviewer's exclusions to ``exclusions.json``; unknown references are refused
    (nothing is written) with the list of them."""
    from pixtag.data.review import ReviewError, read_raw_manifest, resolve_refs, update_exclusions

    store = _opened(settings, store)
    refs = parse_exclusions(text)
    bad = [r for r in refs if not re.fullmatch(r"[^:\s]+:\d+|[0-9a-fA-F]{64}", r)]
    if bad:
        raise ReviewInputError(f"exclusions must be label:n or a sha256, one per line; not understood: "
                               f"{', '.join(bad[:20])}")
    try:
        shas = resolve_refs(read_raw_manifest(store), refs)
    except ReviewError as exc:
        raise ReviewInputError(str(exc)) from None
    added, _ = update_exclusions(store, shas, [])
    log.info("review by %s: %d exclusions asked, %d new", user, len(refs), len(added))
    return {"reviewed_by": user, "asked": refs, "excluded": added}


def disagreement_sheet(settings: Settings, decision: Mapping[str, Any], base_url: str,
                       store: Storage | None = None) -> str | None:
    """A contact sheet of the test images the candidate and the champion disagree on."""
    from pixtag.data.review import contact_refs, excluded_mask, read_exclusions, read_raw_manifest, write_sheets

    shas = [d["sha256"] for d in (decision.get("comparison") or {}).get("disagreements", [])]
    if not shas:
        return None
    store = _opened(settings, store)
    frame = read_raw_manifest(store)
    rows = frame.assign(ref=contact_refs(frame), excluded=excluded_mask(frame, read_exclusions(store)))
    write_sheets(store, rows[rows["sha256"].isin(shas)], store.child(DISAGREE_SHEETS))
    return f"{base_url.rstrip('/')}{ROUTE}/disagreements/index.html"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{float(value):.1%}"


def approval_body(decision: Mapping[str, Any], sheet: str | None, version_url: str | None) -> str:
    """Markdown for the promotion approval: the candidate beside the champion."""
    comp = decision.get("comparison") or {}
    cand, champ = comp.get("candidate") or {}, comp.get("champion") or {}
    head = f"{decision['model_name']} v{decision['version']}"
    lines = [f"**{head}** passed the gate and is `@challenger`: {decision['reason']}", ""]
    if version_url:
        lines.append(f"[Model version and its card in MLflow]({version_url})\n")
    cv = f"champion v{champ['version']}" if champ else "champion (none)"
    lines += [f"| | candidate | {cv} |", "|---|---|---|",
              f"| accuracy | {_pct(cand.get('accuracy'))} | {_pct(champ.get('accuracy'))} |",
              f"| false-suggestion rate | {_pct(cand.get('false_suggestion_rate'))} | "
              f"{_pct(champ.get('false_suggestion_rate'))} |"]
    for label in sorted(cand.get("recall", {})):
        lines.append(f"| recall {label} | {_pct(cand['recall'][label])} | "
                     f"{_pct((champ.get('recall') or {}).get(label))} |")
    if comp.get("disagreements"):
        won = sum(d["right"] == "candidate" for d in comp["disagreements"])
        lines.append(f"\nThey disagree on {comp.get('disagreement_count', len(comp['disagreements']))} "
                     f"test images: the candidate is right on {won}, the champion on "
                     f"{len(comp['disagreements']) - won}" + (f" ([contact sheet]({sheet}))." if sheet else "."))
    lines.append("\n*Approve* moves `@champion` to this version; *Reject* keeps the champion "
                 "(say why under *Note*).")
    return "\n".join(lines)


# ------------------------------------------------------------------------ the answer ------
def approval_not_needed(decision: Decision) -> Approval:
    """The gate decided by itself (promoted or rejected; or promotion is ``auto``): nobody is asked."""
    return Approval(outcome="not needed", version=decision.version, new_champion=decision.new_champion,
                    message=decision.message)


def record_answer(settings: Settings, decision: Decision, approved: bool, user: str, note: str | None,
                  at: datetime | str | None = None) -> Approval:
    """A person's answer to the approval: *Approve* moves ``@champion`` and records who, *Reject*
    keeps the champion and records why (an empty or null note is no note). ``at``: when they
    answered (Airflow's ``responded_at``)."""
    from pixtag.model.promotion.approval import record_approval

    recorded = record_approval(settings, decision.version, approved, user, note or "")
    return Approval(outcome="approved" if approved else "rejected", approved=approved, version=decision.version,
                    by=user, at=_iso(at), note=note or "", new_champion=bool(recorded["new_champion"]),
                    message=str(recorded["message"]))


def approval_timed_out(decision: Decision, hours: float) -> Approval:
    """Nobody answered within ``hours``: the champion stays and the candidate stays ``@challenger``
    (a person can still move ``@champion`` to it in MLflow)."""
    return Approval(outcome="timed out", version=decision.version,
                    message=f"{decision.model_name} v{decision.version} stays @challenger: nobody answered within "
                            f"{hours:g} h (move @champion to it in MLflow to promote it)")


def _iso(at: datetime | str | None) -> str | None:
    if isinstance(at, datetime):
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat(timespec="seconds")
    return at or datetime.now(UTC).isoformat(timespec="seconds")
