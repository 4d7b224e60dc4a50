"""The study's protocol (reproducible from ``settings.seed``): rows sorted by sha256; split into
train and test (``settings.test_size``) stratified by class and grouped by origin
(``settings.group_by``: every image of one post, or of one account, falls on one side); the
k folds of the train part are grouped the same way (:mod:`pixtag.model.classifier.crossval`).
Background images (label :data:`~pixtag.model.classifier.openset.BACKGROUND`) are split with
the classes. An image with several labels (manifest column ``labels``) is split and stratified by
its ``label``, and trained positive for each of its labels (:attr:`Data.targets`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core.dataset import BACKGROUND, label_sets, read_manifest
from pixtag.core.storage import Storage
from pixtag.model.classifier.crossval import TrainError, check_groups, check_sides
from pixtag.model.features.compute import compute, select

if TYPE_CHECKING:
    import pandas as pd

    from pixtag.core.config import Settings


def dataset_hash(rows: pd.DataFrame) -> str:
    """Identity of a labelled dataset: sha256 of its sorted ``sha256<TAB>label`` lines (an image
    with several labels: ``<TAB>`` and all of them after its label)."""
    lines = sorted(f"{s}\t{label}" + (f"\t{','.join(sets)}" if len(sets) > 1 else "")
                   for s, label, sets in zip(rows["sha256"], rows["label"], label_sets(rows), strict=True))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def check_trainable(y: np.ndarray, test_size: float, folds: int) -> None:
    labels, counts = np.unique(y, return_counts=True)
    if len(labels) < 2:
        raise TrainError(f"need at least 2 classes to train, found {list(labels)}")
    # Each class needs one test image and `folds` train images.
    need = max(folds + 1, int(np.ceil(1 / test_size)))
    small = {str(label): int(c) for label, c in zip(labels, counts, strict=True) if c < need}
    if small:
        raise TrainError(f"classes with fewer than {need} images cannot be split for "
                         f"{folds}-fold CV and a test set: {small}")


def split(y: np.ndarray, test_size: float, seed: int,
          groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Train/test row indices, stratified by class; with ``groups`` (one origin per row), every
    row of a group falls on the same side (``StratifiedGroupKFold``'s first fold is the test
    part). Groups of one row each are the plain stratified split."""
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    if groups is None or len(np.unique(groups)) == len(y):
        return train_test_split(np.arange(len(y)), test_size=test_size, stratify=y,
                                random_state=seed)
    n_splits = max(2, round(1 / test_size))
    check_groups(y, groups, n_splits, "the test split")
    train, test = next(StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
                       .split(np.zeros(len(y)), y, groups))
    check_sides(y, [(train, test)], "the test split")
    return train, test


def origin_groups(rows: pd.DataFrame, group_by: str) -> np.ndarray:
    """One group per row: its post, or its account (a row without an account: its post)."""
    posts = np.asarray(rows["post_id"].fillna("").astype(str), dtype=object)
    posts = np.where(posts == "", np.asarray(rows["sha256"], dtype=object), posts)
    if group_by == "post":
        return posts.astype(str)
    accounts = np.asarray(rows["account"].fillna("").astype(str), dtype=object)
    return np.where(accounts == "", "post:" + posts, "account:" + accounts).astype(str)


def held_out_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=list(labels),
                                                 zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "by_class": {label: {"precision": float(p[i]), "recall": float(r[i]),
                              "f1": float(f[i]), "support": int(n[i])}
                      for i, label in enumerate(labels)},
        "confusion": confusion_matrix(y_true, y_pred, labels=list(labels)).tolist(),
    }


@dataclass
class Data:
    rows: pd.DataFrame
    X: np.ndarray
    y: np.ndarray  # one label per row: the split's strata, the closed-set figures' truth
    train: np.ndarray
    test: np.ndarray
    features: dict[str, Any]
    groups: np.ndarray
    sets: list[tuple[str, ...]] | None = None  # every label of each row (None: y alone)

    def __post_init__(self) -> None:
        if self.sets is None:
            self.sets = [(str(label),) for label in self.y]

    @property
    def several(self) -> bool:
        """Whether some image carries several labels."""
        return any(len(s) > 1 for s in self.sets or ())

    def targets(self, rows: np.ndarray) -> tuple[np.ndarray, list[str]] | None:
        """The 0/1 indicator matrix of ``rows`` (columns: every label, sorted) when some image has
        several labels, else None (one label per row: the classifier's plain targets)."""
        if not self.several:
            return None
        names = sorted({label for s in self.sets for label in s})
        column = {name: k for k, name in enumerate(names)}
        out = np.zeros((len(rows), len(names)), dtype=np.int8)
        for i, row in enumerate(rows):
            out[i, [column[label] for label in self.sets[row]]] = 1
        return out, names

    def truth(self, rows: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """The label a closed-set prediction is scored against: the prediction where it is one of
        the row's labels, else the row's ``label``."""
        return np.array([p if p in self.sets[r] else self.y[r] for r, p in zip(rows, predicted, strict=True)])


def load_data(settings: Settings, store: Storage, backbone: str | None = None) -> Data:
    """Manifest rows (sorted by sha256), their features (computing missing ones) and the split."""
    rows = select(read_manifest(store))
    y = np.asarray(rows["label"], dtype=str)
    check_trainable(y, settings.test_size, settings.cv_folds)
    run = compute(settings, rows, store, backbone)
    X = run.vectors(list(rows["sha256"]))
    groups = origin_groups(rows, settings.group_by)
    train_idx, test_idx = split(y, settings.test_size, settings.seed, groups)
    sets = [s if label != BACKGROUND else (BACKGROUND,) for s, label in zip(label_sets(rows), y, strict=True)]
    return Data(rows, X, y, train_idx, test_idx, run.summary, groups, sets)


def post_time(rows: pd.DataFrame, pick: Any) -> str | None:
    """The oldest or newest post's ``created_at`` (ISO 8601 strings sort by time)."""
    values = [v for v in rows["created_at"].dropna().astype(str) if v]
    return pick(values) if values else None
