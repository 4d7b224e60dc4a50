"""The study's tag figures: top tags before/after normalisation, Wu-Palmer matrix, overlap
graph, candidate table, sample size (matplotlib, Agg)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixtag.core import logs

if TYPE_CHECKING:
    from pixtag.core.config import Settings
    from pixtag.core.storage import Storage
from pixtag.tags.normalize import _sorted_counts
from pixtag.tags.select import CANDIDATE_LIMIT, _bar, choose_classes, first_sense, read_vocabulary, wup_matrix
from pixtag.tags.trending import Selection, TagCounts, latest_run, list_runs

log = logs.get_logger(__name__)


def plot_before_after(counts: TagCounts, path: Path, n: int = 20) -> Path:
    """Two bar charts: the top ``n`` raw tags and the top ``n`` normalised words."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5), layout="constrained")
    before, after = fig.subplots(1, 2)
    _bar(before, counts.raw, f"Top {min(n, len(counts.raw))} hashtags (raw)", n)
    _bar(after, counts.words, f"Top {min(n, len(counts.words))} words (normalised)", n)
    fig.savefig(path, dpi=100)
    return path


def top_tags_figure(counts: TagCounts, n: int = 100) -> Any:
    """The bar chart of the top ``n`` words after normalisation (the study's Fig. 2)."""
    from matplotlib.figure import Figure

    shown = min(n, len(counts.words))
    fig = Figure(figsize=(max(8, shown * 0.18), 5), layout="constrained")
    _bar(fig.subplots(), counts.words, f"Top {shown} words (normalised) of {counts.posts} posts", n)
    return fig


def plot_top_tags(counts: TagCounts, path: Path, n: int = 100) -> Path:
    """:func:`top_tags_figure` as a PNG."""
    top_tags_figure(counts, n).savefig(path, dpi=100)
    return path


def plot_wup(selection: Selection, path: Path) -> Path:
    """Heat map of the classes' Wu-Palmer similarity, values written in the cells."""
    import numpy as np
    from matplotlib.figure import Figure

    labels = selection.classes
    matrix = np.array([[np.nan if v is None else v for v in row] for row in selection.wup],
                      dtype=float).reshape(len(labels), len(labels))
    size = max(4, min(0.8, 11 / max(len(labels), 1)) * len(labels) + 2)  # 0.8 in a cell for five, ~0.55 at twenty
    fig = Figure(figsize=(size, size * 0.85), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for (i, j), value in np.ndenumerate(matrix):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center",
                    color="black" if value > 0.6 else "white", fontsize=8)
    ax.set_title("Wu-Palmer similarity of the classes")
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.savefig(path, dpi=100)
    return path


OVERLAP_RELATIONS = ("hyponym of ", "hypernym of ", "synonym of ")


def sample_size(counts: TagCounts) -> dict[str, Any]:
    """The sample's size: posts, hashtag uses, per-post mean, unique tags before and after
    normalisation."""
    uses = sum(counts.raw.values())
    return {"posts": counts.posts, "posts_with_tags": counts.tagged_posts, "hashtags": uses,
            "hashtags_per_post": round(uses / counts.posts, 4) if counts.posts else 0.0,
            "unique_before": len(counts.raw), "unique_after": len(counts.words),
            "instance": counts.instance, "timeline": counts.extra.get("timeline", "local"), "time": counts.time}


def overlap_edges(rejected: Mapping[str, str], counts: Mapping[str, int]) -> list[dict[str, Any]]:
    """The candidates rejected for overlapping a class: word, relation, class, senses, Wu-Palmer."""
    edges = []
    for word, reason in rejected.items():
        relation = next((r for r in OVERLAP_RELATIONS if reason.startswith(r)), None)
        if relation is None:
            continue
        other = reason[len(relation):].split(" (")[0]
        a, b = first_sense(word), first_sense(other)
        edges.append({"word": word, "count": counts.get(word, 0), "relation": relation.split()[0],
                      "class": other, "word_sense": a.name() if a else None,
                      "class_sense": b.name() if b else None,
                      "wup": round(a.wup_similarity(b), 4) if a is not None and b is not None else None})
    return edges


def plot_overlap_graph(classes: Sequence[str], edges: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """The classes on top, the candidates rejected as their hyponym/hypernym/synonym below, an
    arrow from each to its class labelled with the relation (the study's Fig. 4)."""
    from matplotlib.figure import Figure

    words = list(dict.fromkeys(e["word"] for e in edges))
    width = max(6.0, 1.3 * max(len(classes), len(words), 1))
    fig = Figure(figsize=(width, 4), layout="constrained")
    ax = fig.subplots()
    top = {c: (i + 0.5) * width / max(len(classes), 1) for i, c in enumerate(classes)}
    bottom = {w: (i + 0.5) * width / max(len(words), 1) for i, w in enumerate(words)}
    for c, x in top.items():
        ax.text(x, 1.0, c, ha="center", va="center", bbox={"boxstyle": "round", "fc": "#c6dbef"})
    for w, x in bottom.items():
        ax.text(x, 0.0, w, ha="center", va="center", bbox={"boxstyle": "round", "fc": "#fdd0a2"})
    for e in edges:
        if e["class"] not in top:  # a class removed since: still drawn, at the side
            top[e["class"]] = width
            ax.text(width, 1.0, e["class"], ha="center", va="center")
        x0, x1 = bottom[e["word"]], top[e["class"]]
        ax.annotate("", xy=(x1, 0.9), xytext=(x0, 0.1), arrowprops={"arrowstyle": "->", "color": "grey"})
        ax.text((x0 + x1) / 2, 0.5, e["relation"], ha="center", fontsize=7, color="dimgrey")
    if not edges:
        ax.text(width / 2, 0.5, "no candidate was rejected for overlapping a class", ha="center")
    ax.set_xlim(0, width + 0.5)
    ax.set_ylim(-0.3, 1.3)
    ax.axis("off")
    ax.set_title("Candidates rejected as hyponym, hypernym or synonym of a class")
    fig.savefig(path, dpi=100)
    return path


def candidate_table(counts: Mapping[str, int], classes: Sequence[str], rejected: Mapping[str, str],
                    removed: Iterable[str] = (), limit: int = CANDIDATE_LIMIT) -> list[dict[str, Any]]:
    """Every one of the ``limit`` most frequent words: its rank, count and fate (class, or why not)."""
    removed = set(removed)
    rows = []
    for rank, (word, count) in enumerate(list(_sorted_counts(counts).items())[:limit], start=1):
        if word in removed:
            status, reason = "removed", "removed by a manual trigger (Param remove_tags)"
        elif word in classes:
            status, reason = "class", ""
        else:
            status, reason = "rejected", rejected.get(word, "not considered")
        rows.append({"rank": rank, "word": word, "count": count, "status": status, "reason": reason})
    return rows


def _reason_kind(reason: str) -> str:
    for sep in (" (", ":", " of "):
        reason = reason.split(sep)[0]
    return reason or "class"


def plot_reasons(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Bar chart: how many of the top candidates each kind of reason rejected."""
    from matplotlib.figure import Figure

    kinds = Counter(_reason_kind(r["reason"]) if r["status"] != "class" else "class" for r in rows)
    items = sorted(kinds.items(), key=lambda kv: -kv[1])
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    ax.barh([k for k, _ in items][::-1], [v for _, v in items][::-1], color="#4c72b0")
    ax.set(title=f"Fate of the top {len(rows)} candidate words", xlabel="words")
    fig.savefig(path, dpi=100)
    return path


def plot_sample_size(size: Mapping[str, Any], path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    names = ["posts", "posts_with_tags", "hashtags", "unique_before", "unique_after"]
    ax.barh(names[::-1], [size[n] for n in names][::-1], color="#4c72b0")
    ax.set_title(f"Sample: {size['hashtags_per_post']:.2f} hashtags per post")
    fig.savefig(path, dpi=100)
    return path


def write_selection_figures(settings: Settings, store: Storage, labels: Sequence[str], out: Path) -> bool:
    """The tag figures of the newest stored trending run into ``out/tags`` and the class figures
    of the trained ``labels`` into ``out/classes`` (PNG + JSON/CSV each). False (nothing written)
    when no trending run is stored."""
    import csv

    counts = latest_run(store)
    if counts is None:
        return False
    tags, classes = out / "tags", out / "classes"
    tags.mkdir(parents=True, exist_ok=True)
    classes.mkdir(parents=True, exist_ok=True)
    size = sample_size(counts) | {"run": list_runs(store)[-1]}
    (tags / "sample.json").write_text(json.dumps(size, indent=1))
    plot_sample_size(size, tags / "sample.png")
    plot_before_after(counts, tags / "top20_before_after.png")
    (tags / "top20_before_after.json").write_text(json.dumps(
        {"before": list(counts.raw.items())[:20], "after": list(counts.words.items())[:20]}))
    plot_top_tags(counts, tags / "top100_normalised.png")
    (tags / "top100_normalised.json").write_text(json.dumps(list(counts.words.items())[:100]))

    vocab = read_vocabulary(store)
    # the automatic ranking's reasons, also beside fixed classes (the overlap graph is the study's Fig. 4)
    selection = choose_classes(settings.model_copy(update={"classes": []}), store, counts.words)
    chosen = Selection(list(labels), {}, wup_matrix([first_sense(w) for w in labels]))
    plot_wup(chosen, classes / "wup.png")
    (classes / "wup.json").write_text(json.dumps(chosen.to_dict()["wup"]))
    edges = overlap_edges(selection.rejected, counts.words)
    plot_overlap_graph(list(labels), edges, classes / "overlap_graph.png")
    (classes / "overlap_graph.json").write_text(json.dumps(edges, indent=1))
    rows = candidate_table(counts.words, list(labels), selection.rejected, vocab["removed"])
    (classes / "candidates.json").write_text(json.dumps(rows, indent=1))
    with (classes / "candidates.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["rank", "word", "count", "status", "reason"])
        writer.writeheader()
        writer.writerows(rows)
    plot_reasons(rows, classes / "candidates.png")
    return True
