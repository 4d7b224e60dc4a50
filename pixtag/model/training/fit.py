"""One fit-and-score, shared by ``train`` and ``compare``: k-fold CV on the train part (grouped by
origin), the refit on all of it, and the closed-set scores of the held-out test part."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.model.classifier.crossval import cv_and_refit
from pixtag.model.classifier.openset import BACKGROUND, closed_predict
from pixtag.model.training.protocol import Data, held_out_metrics
from pixtag.model.training.runs import new_classifier

if TYPE_CHECKING:
    from pixtag.core.config import Settings


@dataclass
class Scored:
    """A classifier fitted and scored by the study's protocol (class images only in every figure)."""

    labels: list[str]  # the classes (never the background)
    model: Any  # refitted on the whole train part
    folds: list[float]  # closed-set accuracy of each CV fold
    cv_confusions: list[list[list[int]]]  # each fold's confusion matrix over its held-out class images
    oof: np.ndarray  # out-of-fold calibrated probabilities of the train rows (rows, fitted labels)
    test_predictions: np.ndarray  # the closed-set prediction of every test row
    test: dict[str, Any]  # held_out_metrics of the test class images: accuracy, per class, confusion
    seconds: float  # CV and refit

    @property
    def cv_confusion_mean(self) -> list[list[float]]:
        return np.mean(np.array(self.cv_confusions, dtype=float), axis=0).tolist()


def fit_and_score(settings: Settings, data: Data) -> Scored:
    """CV and refit of a new classifier on ``data``'s train part, scored on its test part (an
    image with several labels is trained positive for each; its closed-set prediction is right
    when it is any of them)."""
    labels = sorted({label for s in data.sets for label in s} - {BACKGROUND})
    Xtr, ytr = data.X[data.train], data.y[data.train]
    several = data.targets(data.train)
    targets, classes = several if several is not None else (None, None)
    start = time.perf_counter()
    oof: list[np.ndarray] = []
    fold_predictions: list[tuple[np.ndarray, np.ndarray]] = []
    folds, model = cv_and_refit(new_classifier(settings), Xtr, ytr, settings.cv_folds, settings.seed, oof,
                                groups=data.groups[data.train], predictions=fold_predictions,
                                targets=targets, classes=classes)
    seconds = time.perf_counter() - start
    confusions = [held_out_metrics(data.truth(data.train[rows], predicted), predicted, labels)["confusion"]
                  for rows, predicted in fold_predictions]
    yte = data.y[data.test]
    predicted = closed_predict(model, data.X[data.test])
    inside = yte != BACKGROUND
    truth = data.truth(data.test[inside], predicted[inside])
    return Scored(labels, model, folds, confusions, oof[0], predicted,
                  held_out_metrics(truth, predicted[inside], labels), seconds)
