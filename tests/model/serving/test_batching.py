"""Concurrent backbone calls share batches, each caller gets its own rows, errors reach all."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pixtag.model.serving.batching import Batcher


def gated(release: threading.Event, calls: list[int], fail: bool = False):
    """An embed whose first call waits for ``release`` (so the others queue up behind it)."""
    def embed(images: np.ndarray) -> np.ndarray:
        calls.append(len(images))
        if len(calls) == 1:
            assert release.wait(30)
        if fail and len(calls) > 1:
            raise RuntimeError("backbone failed")
        return images.reshape(len(images), -1).sum(axis=1, keepdims=True).astype(np.float32)
    return embed


def queued(batcher: Batcher, count: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        with batcher._cond:
            if len(batcher._queue) >= count:
                return
        assert time.monotonic() < deadline, "the callers never queued"
        time.sleep(0.001)


def run_concurrently(batcher: Batcher, inputs: list[np.ndarray], release: threading.Event) -> list:
    with ThreadPoolExecutor(len(inputs)) as pool:
        first = pool.submit(batcher, inputs[0])
        while not batcher._busy:  # the first call is running (and held)
            time.sleep(0.001)
        rest = [pool.submit(batcher, x) for x in inputs[1:]]
        queued(batcher, len(inputs) - 1)
        release.set()
        return [f.result() if f.exception() is None else f.exception() for f in [first, *rest]]


def test_waiting_calls_run_as_one_batch_and_get_their_own_rows() -> None:
    release, calls = threading.Event(), []
    batcher = Batcher(gated(release, calls), max_batch=8)
    inputs = [np.full((n, 3, 2, 2), k, dtype=np.uint8) for k, n in enumerate([1, 1, 2, 1, 3, 1, 1], start=1)]
    results = run_concurrently(batcher, inputs, release)
    for x, out in zip(inputs, results, strict=True):
        np.testing.assert_array_equal(out, x.reshape(len(x), -1).sum(axis=1, keepdims=True))
    # the held first call, then the 9 waiting rows in batches of at most 8, oldest first
    assert calls == [1, 8, 1] and batcher.batches == 3 and batcher.rows == 10


def test_an_error_reaches_every_caller_of_its_batch_and_the_batcher_recovers() -> None:
    release, calls = threading.Event(), []
    batcher = Batcher(gated(release, calls, fail=True), max_batch=32)
    inputs = [np.ones((1, 3, 2, 2), dtype=np.uint8) for _ in range(4)]
    results = run_concurrently(batcher, inputs, release)
    assert isinstance(results[0], np.ndarray)
    assert all(isinstance(r, RuntimeError) for r in results[1:]) and calls == [1, 3]
    batcher.fn = lambda x: np.zeros((len(x), 1), np.float32)
    assert batcher(inputs[0]).shape == (1, 1)


def test_a_lone_call_larger_than_a_batch_runs_whole() -> None:
    batcher = Batcher(lambda x: x.reshape(len(x), -1)[:, :1].astype(np.float32), max_batch=4)
    assert batcher(np.zeros((9, 3, 2, 2), np.uint8)).shape == (9, 1) and batcher.batches == 1
    with pytest.raises(ValueError):
        Batcher(lambda x: x, max_batch=0)


def test_lists_are_grouped_too_as_the_served_model_groups_ledger_writes() -> None:
    release, writes = threading.Event(), []

    def write(hashes: list[str]) -> list[str]:
        writes.append(list(hashes))
        if len(writes) == 1:
            assert release.wait(30)
        return hashes

    batcher = Batcher(write, max_batch=1024)
    inputs = [[f"{k:016x}"] * n for k, n in enumerate([1, 2, 1, 3], start=1)]
    assert run_concurrently(batcher, inputs, release) == inputs
    assert writes == [inputs[0], [h for part in inputs[1:] for h in part]]  # one write for the waiting three
