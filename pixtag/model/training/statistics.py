"""Tests between backbones scored on the same folds: the study's Mann-Whitney U, and the paired
test (Wilcoxon signed-rank on the per-fold differences) that uses the pairing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

PAIRING_NOTE = ("Mann-Whitney U (the study's test) treats the backbones' fold accuracies as independent "
                "samples, but every backbone is scored on the same folds; the paired test (Wilcoxon "
                "signed-rank on the per-fold differences) uses that pairing. With {k} folds its two-sided "
                "p cannot go below {floor:.4f}.")


def pairwise(folds: dict[str, list[float]], test: Callable[[list[float], list[float]], dict[str, Any]]
             ) -> list[dict[str, Any]]:
    """``test(a's folds, b's folds)`` for every pair of backbones, with the pair's names."""
    names = list(folds)
    return [{"a": a, "b": b, **test(folds[a], folds[b])} for i, a in enumerate(names) for b in names[i + 1:]]


def mann_whitney(folds: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Two-sided Mann-Whitney U test of fold accuracies, for every pair of backbones."""
    from scipy.stats import mannwhitneyu

    def test(a: list[float], b: list[float]) -> dict[str, Any]:
        res = mannwhitneyu(a, b, alternative="two-sided")
        return {"u": float(res.statistic), "p": float(res.pvalue)}

    return pairwise(folds, test)


def paired_tests(folds: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Two-sided Wilcoxon signed-rank test of the per-fold accuracy differences, for every pair
    (p = 1 where the two backbones score alike on every fold)."""
    from scipy.stats import wilcoxon

    def test(a: list[float], b: list[float]) -> dict[str, Any]:
        diff = np.asarray(a) - np.asarray(b)
        if not np.any(diff):
            return {"w": 0.0, "p": 1.0, "mean_difference": 0.0}
        res = wilcoxon(a, b, alternative="two-sided")
        return {"w": float(res.statistic), "p": float(res.pvalue), "mean_difference": float(diff.mean())}

    return pairwise(folds, test)
