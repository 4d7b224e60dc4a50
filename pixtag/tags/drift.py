"""``pixtag drift``: how the instance's hashtags moved between two trending runs.

New, vanished and moving words, and the overlap of the top words, so a user can pick the
retraining cadence from data: a top that barely moves between weekly runs does not need
daily ones; a top that turns over does not keep a model fresh for long.
"""

from __future__ import annotations

from typing import Any

from pixtag.core.config import Settings
from pixtag.core.storage import Storage, open_storage
from pixtag.tags.trending import TagCounts, latest_run, list_runs

DRIFT_PREFIX = "tags/drift/"


def _ranks(words: dict[str, int], top: int) -> dict[str, int]:
    ordered = sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return {word: rank for rank, (word, _) in enumerate(ordered, start=1)}


def _share(counts: TagCounts, word: str) -> float:
    return counts.words.get(word, 0) / counts.posts if counts.posts else 0.0


def drift_report(old: TagCounts, new: TagCounts, top: int = 20) -> dict[str, Any]:
    """Pure comparison of two runs' normalised word counts (top ``top`` words)."""
    before, after = _ranks(old.words, top), _ranks(new.words, top)
    both = set(before) & set(after)
    moving = sorted(
        ({"word": w, "rank_before": before[w], "rank_after": after[w], "moved": before[w] - after[w],
          "share_before": round(_share(old, w), 4), "share_after": round(_share(new, w), 4)}
         for w in both if before[w] != after[w]),
        key=lambda m: (-abs(m["moved"]), m["word"]),
    )
    union = set(before) | set(after)
    return {
        "before": old.time, "after": new.time, "top": top,
        "posts_before": old.posts, "posts_after": new.posts,
        "new": sorted(set(after) - set(before), key=lambda w: after[w]),
        "vanished": sorted(set(before) - set(after), key=lambda w: before[w]),
        "moving": moving,
        "top_overlap": round(len(both) / top, 4) if top else 1.0,
        "jaccard": round(len(both) / len(union), 4) if union else 1.0,
    }


def drift(settings: Settings, top: int = 20, store: Storage | None = None) -> dict[str, Any] | None:
    """Compare the two newest trending runs and store the report (``None`` with fewer than two)."""
    store = store or open_storage(settings.storage, settings.s3_endpoint_url)
    keys = list_runs(store)
    if len(keys) < 2:
        return None
    new = TagCounts.from_dict(store.read_json(keys[-1]))
    old = latest_run(store, before=keys[-1])
    assert old is not None
    report = drift_report(old, new, top)
    stamp = keys[-1].rsplit("/", 1)[-1]
    report["key"] = f"{DRIFT_PREFIX}{stamp}"
    store.write_json(report["key"], report)
    return report


def describe(report: dict[str, Any]) -> str:
    lines = [f"tag drift {report['before']} -> {report['after']}: top-{report['top']} overlap "
             f"{report['top_overlap']:.0%} (Jaccard {report['jaccard']:.2f})"]
    if report["new"]:
        lines.append("  new:      " + ", ".join(report["new"]))
    if report["vanished"]:
        lines.append("  vanished: " + ", ".join(report["vanished"]))
    for m in report["moving"][:10]:
        lines.append(f"  {m['word']:<16} #{m['rank_before']} -> #{m['rank_after']}")
    return "\n".join(lines)
