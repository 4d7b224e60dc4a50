"""The served model's answer: every tag past its own threshold, ranked, at most top_k (a stand-in
backbone, so no weights are loaded)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pixtag.model.classifier.estimator import LinearSVMClassifier
from pixtag.model.classifier.openset import BACKGROUND
from pixtag.model.serving.tagmodel import TagModel, combine

COLOURS = {"cat": (220, 30, 30), "dog": (30, 200, 30), "both": (220, 200, 30), BACKGROUND: (30, 30, 220)}


class MeanColour:
    """A backbone whose feature is the image's mean colour."""

    input_size = 32

    def embed(self, batch: np.ndarray) -> np.ndarray:
        return batch.reshape(len(batch), 3, -1).mean(axis=-1).astype(np.float32) / 255


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def classifier() -> LinearSVMClassifier:
    """Red is cat, green dog, blue none of them, and yellow (a photo of both) is labelled both."""
    rng = np.random.default_rng(0)
    names = [BACKGROUND, "cat", "dog"]
    X, Y = [], []
    for kind, labels in (("cat", ["cat"]), ("dog", ["dog"]), ("both", ["cat", "dog"]), (BACKGROUND, [BACKGROUND])):
        X.append(np.array(COLOURS[kind]) / 255 + rng.normal(scale=0.05, size=(40, 3)))
        Y += [[int(n in labels) for n in names]] * 40
    return LinearSVMClassifier(C=10).fit(np.concatenate(X).astype(np.float32), np.array(Y), classes=names)


def tag_model(classifier: LinearSVMClassifier, **config: Any) -> TagModel:
    base = {"window": "off", "window_combine": "mean", "top_k": 3, "max_image_bytes": 10**6,
            "max_image_pixels": 10**7, "trained_threshold": 0.9, "thresholds": {"cat": 0.5, "dog": 0.6}}
    return TagModel(MeanColour(), classifier, base | config, None)


def tags(model: TagModel, kind: str, **params: Any) -> list[dict[str, Any]]:
    (answer,) = model.suggest([png(COLOURS[kind])], record=False, **params)
    return answer["tags"]


def test_a_photo_of_two_classes_gets_both_tags_ranked(classifier: LinearSVMClassifier) -> None:
    model = tag_model(classifier)
    both = tags(model, "both")  # the bot reads this shape: a ranked list of {"tag", "probability"}
    assert {t["tag"] for t in both} == {"cat", "dog"} and all(set(t) == {"tag", "probability"} for t in both)
    assert both[0]["probability"] >= both[1]["probability"]
    assert [t["tag"] for t in tags(model, "cat")] == ["cat"]
    assert tags(model, BACKGROUND) == []
    assert len(tags(model, "both", top_k=1)) == 1  # at most top_k


def test_each_tag_is_held_to_its_own_threshold(classifier: LinearSVMClassifier) -> None:
    model = tag_model(classifier)
    dog = next(t["probability"] for t in tags(model, "both") if t["tag"] == "dog")
    stricter = tag_model(classifier, thresholds={"cat": 0.5, "dog": min(dog + 0.01, 1.0)})
    assert [t["tag"] for t in tags(stricter, "both")] == ["cat"]
    assert stricter.thresholds().tolist() == [0.5, min(dog + 0.01, 1.0)]
    # one threshold for every tag: the request's, else the configuration's
    assert stricter.thresholds(0.2).tolist() == [0.2, 0.2]
    assert {t["tag"] for t in tags(stricter, "both", threshold=0.2)} == {"cat", "dog"}
    assert tag_model(classifier, threshold=0.99).thresholds().tolist() == [0.99, 0.99]
    assert stricter.thresholds(-1).tolist() == stricter.thresholds().tolist()  # -1: the trained ones


def test_a_model_logged_before_serves_its_one_threshold(classifier: LinearSVMClassifier) -> None:
    old = tag_model(classifier, thresholds=None, trained_threshold=0.42)
    assert old.thresholds().tolist() == [0.42, 0.42] and old.config["threshold"] == 0.42


def test_views_are_combined_against_each_tags_threshold() -> None:
    views = np.array([[0.7, 0.55], [0.5, 0.65], [0.6, 0.4]])
    mean, passed, votes = combine(views, "mean", np.array([0.55, 0.6]))
    assert passed.tolist() == [True, False] and votes is None
    _, passed, votes = combine(views, "vote", np.array([0.55, 0.5]))
    assert passed.tolist() == [True, True] and np.allclose(votes, [2 / 3, 2 / 3])
