"""The figures and tables a candidate's run holds: test confusion (counts, row-normalised), the
confusion averaged over the CV folds, the fold accuracies, the t-SNE of the features, and the
study's descriptive and tag figures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core.dataset import BACKGROUND
from pixtag.core.storage import Storage, open_storage

if TYPE_CHECKING:
    from pixtag.core.config import Settings
    from pixtag.model.training.protocol import Data

TSNE_MAX_POINTS = 1000


def confusion_size(classes: int) -> tuple[float, float]:
    """Inches of a confusion matrix of ``classes``: ~1.2 in a cell for the study's five, ~0.55
    at twenty (cells stay large enough for their numbers, the figure small enough to read whole)."""
    cell = max(0.5, min(1.2, 6.0 / max(classes, 1)))
    return cell * classes + 2.5, cell * classes + 2.0


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], path: Path, normalise: bool,
                   title: str | None = None) -> None:
    """Heat map with the value in every non-zero cell (zeros left blank: at twenty classes the
    off-diagonal confusions must stand out), class names on both axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(matrix, dtype=float)
    if normalise:
        values = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
    n = len(labels)
    fig, ax = plt.subplots(figsize=confusion_size(n))
    ax.imshow(values, cmap="Blues", vmin=0, vmax=max(float(values.max()), 1e-9))
    whole = not normalise and np.allclose(values, np.round(values))
    font = 10 if n <= 8 else 8 if n <= 16 else 7
    top = float(values.max()) or 1.0
    for (i, j), value in np.ndenumerate(values):
        if value == 0:
            continue
        text = f"{value:.0f}" if whole else f"{value:.2f}".lstrip("0") if value < 1 else "1"
        ax.text(j, i, text, ha="center", va="center", fontsize=font,
                color="white" if value > 0.6 * top else "black")
    ax.set_xticks(range(n), list(labels), rotation=45 if n > 6 else 0, ha="right" if n > 6 else "center",
                  fontsize=font + 1)
    ax.set_yticks(range(n), list(labels), fontsize=font + 1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or ("test confusion (row-normalised)" if normalise else "test confusion (counts)"))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def class_colours(count: int) -> list[Any]:
    """Distinct colours for ``count`` classes: tab10, or from 11 classes tab20 without its greys
    (grey is the background's) followed by tab20b's darker ones."""
    import matplotlib

    if count <= 10:
        return list(matplotlib.colormaps["tab10"].colors)
    tab20 = [c for i, c in enumerate(matplotlib.colormaps["tab20"].colors) if i not in (14, 15)]
    return tab20 + list(matplotlib.colormaps["tab20b"].colors)[::2]


def plot_tsne(X: np.ndarray, y: np.ndarray, path: Path, seed: int,
              title: str) -> tuple[np.ndarray, np.ndarray]:
    """2-D t-SNE of the features (after PCA to 50 dims), at most TSNE_MAX_POINTS points;
    returns the rows shown and their 2-D coordinates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    idx = np.sort(rng.permutation(len(X))[:TSNE_MAX_POINTS])
    Xs, ys = X[idx], y[idx]
    with threadpool_limits(1):  # 4x faster than 2 busy-waiting threads on a shared 2-core box
        Xs = PCA(n_components=min(50, *Xs.shape), random_state=seed).fit_transform(Xs)
        emb = TSNE(n_components=2, perplexity=min(30.0, (len(Xs) - 1) / 3), init="pca",
                   random_state=seed).fit_transform(Xs)
    names = [str(v) for v in np.unique(ys)]
    classes = [v for v in names if v != BACKGROUND]
    fig, ax = plt.subplots(figsize=(9.5 if len(classes) > 10 else 8, 6.5))
    colours = class_colours(len(classes))
    markers = "osD^v<>p"
    for label in names:
        pts = emb[ys == label]
        if label == BACKGROUND:  # grey, behind the classes; a legend name without matplotlib's "_" rule
            ax.scatter(pts[:, 0], pts[:, 1], s=6, c="#b0b0b0", alpha=0.6, label="background", zorder=1)
            continue
        k = classes.index(label)
        ax.scatter(pts[:, 0], pts[:, 1], s=8, color=colours[k % len(colours)],
                   marker=markers[k // len(colours) % len(markers)], label=label, alpha=0.85, zorder=2)
        if len(classes) > 10:  # at many classes the name beside its cloud reads faster than the legend
            x, y = np.median(pts, axis=0)
            ax.annotate(label, (x, y), fontsize=7, ha="center", va="center", zorder=3,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7})
    ax.legend(markerscale=2, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0,
              ncols=2 if len(names) > 24 else 1)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return idx, emb


def plot_folds(folds: Sequence[float], test_accuracy: float, path: Path, title: str) -> None:
    """Bar per CV fold's accuracy, their mean and the test accuracy as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([str(i + 1) for i in range(len(folds))], folds, color="#4c72b0")
    ax.axhline(float(np.mean(folds)), color="black", ls="--", label=f"CV mean {np.mean(folds):.3f}")
    ax.axhline(test_accuracy, color="#dd8452", label=f"test {test_accuracy:.3f}")
    ax.set(title=title, xlabel="fold", ylabel="accuracy (class images)",
           ylim=(max(0.0, min(*folds, test_accuracy) - 0.1), 1.0))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_model_figures(summary: dict[str, Any], data: Data, out: Path, seed: int,
                        prefix: str = "") -> None:
    """The model's figures and tables into ``out``: test confusion (counts, row-normalised),
    the confusion averaged over the CV folds, the fold accuracies and the t-SNE."""
    import pandas as pd

    labels, name = summary["labels"], summary["backbone"]
    test = np.array(summary["confusion"])
    cv_mean = np.array(summary["cv_confusion_mean"])
    plot_confusion(test, labels, out / f"{prefix}confusion_counts.png", False)
    plot_confusion(test, labels, out / f"{prefix}confusion_normalised.png", True)
    plot_confusion(cv_mean, labels, out / f"{prefix}confusion_cv_mean.png", False,
                   f"confusion averaged over {len(summary['cv_confusion'])} CV folds")
    (out / f"{prefix}confusion_test.json").write_text(json.dumps(
        {"labels": labels, "rows": "true", "columns": "predicted", "matrix": summary["confusion"]}))
    (out / f"{prefix}confusion_cv_mean.json").write_text(json.dumps(
        {"labels": labels, "rows": "true", "columns": "predicted", "matrix": summary["cv_confusion_mean"],
         "folds": summary["cv_confusion"]}))
    plot_folds(summary["cv_accuracy"], summary["test_accuracy"], out / f"{prefix}fold_accuracy.png",
               f"{name}: accuracy per CV fold")
    (out / f"{prefix}fold_accuracy.json").write_text(json.dumps(
        {"folds": summary["cv_accuracy"], "mean": summary["cv_mean"], "var": summary["cv_var"],
         "test_accuracy": summary["test_accuracy"]}))
    idx, emb = plot_tsne(data.X, data.y, out / f"{prefix}tsne.png", seed, f"t-SNE of {name} features")
    pd.DataFrame({"sha256": data.rows["sha256"].to_numpy()[idx], "label": data.y[idx],
                  "x": emb[:, 0], "y": emb[:, 1]}).to_csv(out / f"{prefix}tsne.csv", index=False)


def log_study_figures(settings: Settings, data: Data, labels: Sequence[str], tmp: Path,
                      store: Storage | None = None) -> None:
    """The dataset's descriptive figures (``describe/``) and, when the classes came from a
    stored trending run, its tag and class figures (``tags/``, ``classes/``), on the active run.
    ``store``: the dataset's storage (``data.features["storage"]``) already opened."""
    import mlflow

    from pixtag.data.describe import describe

    storage = data.features["storage"]
    store = store or open_storage(storage, settings.s3_endpoint_url)
    describe(storage, settings, out=str(tmp / "describe"), store=store)
    mlflow.log_artifacts(str(tmp / "describe"), "describe")
    if settings.classes:
        return
    from pixtag.tags.figures import write_selection_figures

    if write_selection_figures(settings, store, labels, tmp):
        mlflow.log_artifacts(str(tmp / "tags"), "tags")
        mlflow.log_artifacts(str(tmp / "classes"), "classes")
