"""Concurrent calls to a backbone, run as one batch.

``mlflow models serve`` answers each request in its own thread. Left alone, eight concurrent
single-image requests make eight backbone calls that fight over the same cores (each ONNX
Runtime call wants all of them). :class:`Batcher` makes them take turns and share: a caller
that finds the backbone idle runs every crop waiting at that moment, up to ``max_batch``, in one
call, and hands each caller its rows. A request never waits for a timer: alone, it runs at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Waiting:
    images: np.ndarray
    result: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class Batcher:
    """``embed(images)`` for many threads; ``batches``/``rows`` count what ran (for tests)."""

    embed_fn: Callable[[np.ndarray], np.ndarray]
    max_batch: int = 32
    batches: int = 0
    rows: int = 0
    _queue: list[_Waiting] = field(default_factory=list, repr=False)
    _busy: bool = field(default=False, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {self.max_batch}")

    def embed(self, images: np.ndarray) -> np.ndarray:
        me = _Waiting(np.asarray(images))
        with self._cond:
            self._queue.append(me)
            while not me.done:
                if self._busy:
                    self._cond.wait()
                    continue
                batch = self._take()
                self._busy = True
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if me.error is not None:
            raise me.error
        assert me.result is not None
        return me.result

    def _take(self) -> list[_Waiting]:
        """The oldest waiting calls whose rows fit in ``max_batch`` (at least one)."""
        batch, rows = [], 0
        while self._queue and (not batch or rows + len(self._queue[0].images) <= self.max_batch):
            item = self._queue.pop(0)
            batch.append(item)
            rows += len(item.images)
        return batch

    def _run(self, batch: list[_Waiting]) -> None:
        try:
            out = self.embed_fn(np.concatenate([w.images for w in batch]) if len(batch) > 1 else batch[0].images)
        except BaseException as exc:  # every caller of this batch gets the error
            for w in batch:
                w.error, w.done = exc, True
            return
        self.batches += 1
        self.rows += len(out)
        start = 0
        for w in batch:
            w.result, w.done = out[start:start + len(w.images)], True
            start += len(w.images)
