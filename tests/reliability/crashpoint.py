"""Crash points for the crash-safety tests: number every write pixtag makes to MLflow (tracking
store, model registry, artifact repository) and SIGKILL the process just before the Nth.

    python -m tests.reliability.crashpoint N pixtag-args...   # a pixtag command, killed at write N

``counting()`` numbers the writes of an in-process run without killing anything (the reference
run tells how many points there are). Only the outermost write of a nested call counts.
"""

from __future__ import annotations

import functools
import inspect
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

WRITE_PREFIXES = ("create_", "log_", "set_", "update_", "delete_", "record_", "finalize_")


def _classes() -> list[type]:
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    return [TrackingStore, RegistryStore, LocalArtifactRepository]


class Writes:
    """Counts outermost writes; calls ``at(n, name)`` before write number ``n`` (1-based)."""

    def __init__(self, at: Callable[[int, str], None] | None = None):
        self.count = 0
        self.names: list[str] = []
        self.at = at
        self._depth = threading.local()

    def wrap(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._depth, "n", 0)
            if depth == 0:
                self.count += 1
                self.names.append(name)
                if self.at is not None:
                    self.at(self.count, name)
            self._depth.n = depth + 1
            try:
                return func(*args, **kwargs)
            finally:
                self._depth.n = depth

        return wrapper


@contextmanager
def counting(at: Callable[[int, str], None] | None = None) -> Iterator[Writes]:
    """Number MLflow writes while the block runs (the patch is undone after)."""
    writes = Writes(at)
    saved: list[tuple[type, str, Any]] = []
    for cls in _classes():
        for name, func in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith(WRITE_PREFIXES) and not name.endswith("_async"):
                saved.append((cls, name, cls.__dict__.get(name)))
                setattr(cls, name, writes.wrap(f"{cls.__name__}.{name}", func))
    try:
        yield writes
    finally:
        for cls, name, original in saved:
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)


def kill_at(n: int) -> Callable[[int, str], None]:
    def at(count: int, name: str) -> None:
        if count == n:
            sys.stderr.write(f"crashpoint: SIGKILL before write {n} ({name})\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    return at


def main(argv: list[str]) -> None:
    n, args = int(argv[0]), argv[1:]
    from pixtag.cli.app import main as pixtag

    with counting(kill_at(n)):
        pixtag(args)


if __name__ == "__main__":
    main(sys.argv[1:])
