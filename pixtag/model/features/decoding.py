"""Images decoded ahead of the backbone: DataLoader worker processes for PyTorch, a thread pool
for ONNX Runtime (Pillow releases the GIL while decoding)."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.core.storage import Storage, open_storage
from pixtag.model.features.cache import FeaturesError

if TYPE_CHECKING:
    from pixtag.model.backbones.onnx_runtime import OnnxBackbone
    from pixtag.model.backbones.pytorch import Backbone

log = logging.getLogger(__name__)


class ImageSet:
    """Map-style dataset: storage key → ``(3, size, size)`` uint8 array (decoded in workers)."""

    def __init__(self, store: Storage, keys: Sequence[str], size: int):
        self.keys = list(keys)
        self.size = size
        self._uri = store.uri
        self._endpoint = getattr(store, "endpoint_url", None)
        self._store: Storage | None = store
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.keys)

    def _storage(self) -> Storage:
        if self._store is None or self._pid != os.getpid():  # fresh client per worker process
            self._store, self._pid = open_storage(self._uri, self._endpoint), os.getpid()
        return self._store

    def __getitem__(self, index: int) -> np.ndarray:
        return decode_image(self._storage().read_bytes(self.keys[index]), self.size)


def decode_image(data: bytes, size: int) -> np.ndarray:
    """JPEG/PNG bytes → ``(3, size, size)`` uint8 RGB (the study's resize rule if not square;
    a larger JPEG decodes at the DCT scale the scraper uses, see :func:`pixtag.data.images.decode`)."""
    from PIL import Image

    from pixtag.data.images import square_resize

    try:
        image = Image.open(io.BytesIO(data))
        if image.format == "JPEG" and image.mode in ("RGB", "L") and image.size != (size, size):
            image.draft(image.mode, (size, size))
        image = image.convert("RGB")
    except Exception as exc:
        raise FeaturesError(f"cannot decode image: {type(exc).__name__}: {exc}") from None
    if image.size != (size, size):
        image, _ = square_resize(image, size)
    return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1))


def _worker_init(_: int) -> None:
    import torch

    torch.set_num_threads(1)


def loader_workers(device_type: str) -> int:
    cpus = len(os.sched_getaffinity(0))
    return min(8, cpus) if device_type == "cuda" else max(1, cpus // 4)


def allow_worker_processes() -> bool:
    """Let this process start DataLoader workers even if it inherited a daemon flag.

    An Airflow task on a Celery worker runs in a process forked (by Airflow's supervisor) from
    a prefork pool child, which is daemonic, and daemonic processes may not have children:
    the DataLoader would fail with "daemonic processes are not allowed to have children". The
    task process is not that pool child (the supervisor waits for it, and the decode workers
    are daemons that end with it), so its inherited flag is cleared. Returns whether it was set.
    """
    import multiprocessing

    config = multiprocessing.current_process()._config  # no public way to clear it
    return bool(config.pop("daemon", False))


def iter_batches(images: ImageSet, batch_size: int, device_type: str,
                 workers: int | None = None) -> Iterator[Any]:
    """Batches of uint8 images, decoded ahead by DataLoader workers (pinned for CUDA)."""
    from torch.utils.data import DataLoader

    workers = loader_workers(device_type) if workers is None else workers
    if workers and allow_worker_processes():
        log.info("cleared the daemon flag this task process inherited (Celery prefork), for the decode workers")
    yield from DataLoader(
        images, batch_size=batch_size, num_workers=workers, pin_memory=device_type == "cuda",
        prefetch_factor=4, worker_init_fn=_worker_init, persistent_workers=False,
    )


def iter_batches_threaded(images: ImageSet, batch_size: int, ahead: int = 2) -> Iterator[np.ndarray]:
    """Batches of uint8 images decoded by a thread pool, ``ahead`` batches in advance.

    For ONNX Runtime on a CPU: Pillow releases the GIL while decoding, so threads keep up with
    the model without a worker process, its copy of the batches through shared memory, or torch.
    """
    from concurrent.futures import ThreadPoolExecutor

    starts = range(0, len(images), batch_size)
    with ThreadPoolExecutor(max(1, min(4, len(os.sched_getaffinity(0))))) as pool:
        def batch(start: int) -> np.ndarray:
            return np.stack(list(pool.map(images.__getitem__, range(start, min(start + batch_size, len(images))))))

        with ThreadPoolExecutor(1) as planner:
            pending = [planner.submit(batch, s) for s in starts[:ahead]]
            for i in range(len(starts)):
                if i + ahead < len(starts):
                    pending.append(planner.submit(batch, starts[i + ahead]))
                yield pending[i].result()
                pending[i] = None  # type: ignore[call-overload]  # drop decoded batches once used


def embed_keys(backbone: Backbone | OnnxBackbone, store: Storage, keys: Sequence[str],
               batch_size: int, workers: int | None = None) -> Iterator[np.ndarray]:
    """Feature vectors for images at ``keys``, one array per batch. PyTorch: decoded by DataLoader
    processes (``workers``, default :func:`loader_workers`); ONNX Runtime: by threads."""
    images = ImageSet(store, keys, backbone.input_size)
    if backbone.runtime == "onnx":
        batches: Iterator[Any] = iter_batches_threaded(images, batch_size)
    else:
        batches = iter_batches(images, batch_size, backbone.device.type, workers)
    for batch in batches:
        yield backbone.embed(batch)
