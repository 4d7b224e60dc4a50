"""Concurrent calls to one function, run as one batch.

``mlflow models serve`` answers each request in its own thread. Left alone, eight concurrent
single-image requests make eight backbone calls that fight over the same cores (each ONNX
Runtime call wants all of them), and eight ledger writes. :class:`Batcher` makes them take
turns and share: a caller that finds the function idle runs every row waiting at that moment,
up to ``max_batch``, in one call, and hands each caller its rows (group commit, for a write). A
call never waits for a timer: alone, it runs at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class _Waiting:
    rows: Any  # an array (rows along axis 0) or a list
    result: Any = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class Batcher:
    """``batcher(rows)`` for many threads: ``fn`` on the rows of every waiting call at once.

    ``fn`` takes an array (or a list) of rows and gives one result row per row; ``batches``
    and ``rows`` count what ran (for tests).
    """

    fn: Callable[[Any], Any]
    max_batch: int = 32
    batches: int = 0
    rows: int = 0
    _queue: list[_Waiting] = field(default_factory=list, repr=False)
    _busy: bool = field(default=False, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {self.max_batch}")

    def __call__(self, rows: Any) -> Any:
        me = _Waiting(rows if isinstance(rows, list) else np.asarray(rows))
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
        while self._queue and (not batch or rows + len(self._queue[0].rows) <= self.max_batch):
            item = self._queue.pop(0)
            batch.append(item)
            rows += len(item.rows)
        return batch

    def _run(self, batch: list[_Waiting]) -> None:
        try:
            out = self.fn(_join([w.rows for w in batch]))
        except BaseException as exc:  # every caller of this batch gets the error
            for w in batch:
                w.error, w.done = exc, True
            return
        self.batches += 1
        self.rows += len(out)
        start = 0
        for w in batch:
            w.result, w.done = out[start:start + len(w.rows)], True
            start += len(w.rows)


def _join(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], list):
        return [row for part in parts for row in part]
    return np.concatenate(parts)
