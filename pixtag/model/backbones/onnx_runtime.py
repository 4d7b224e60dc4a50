"""A backbone on ONNX Runtime (about twice as fast as PyTorch on a CPU).

The timm model (with the uint8 → float → ImageNet normalisation in front of it, so the graph
takes the same uint8 batches :meth:`~pixtag.model.backbones.pytorch.Backbone.embed` takes) is
exported once per feature-cache key (backbone + weights digest) and kept beside the features::

    features/<cache key>/onnx/model.onnx       the graph (batch dimension dynamic)
    features/<cache key>/onnx/model.onnx.json  its verification record (written last)

At export the graph is checked against PyTorch on a few images: if the largest absolute
difference of the features exceeds ``tolerance`` (or the export fails) a warning says so and
PyTorch runs instead (:func:`pixtag.model.backbones.factory.create_extractor`). The runtime is
not part of the cache key: features from either runtime agree within the tolerance, so cached
vectors stay valid whichever computed them.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixtag.model.backbones.weights import cache_prefix

if TYPE_CHECKING:
    from pixtag.core.storage import Storage
    from pixtag.model.backbones.pytorch import Backbone

log = logging.getLogger(__name__)

ONNX_DIR = "onnx"
GRAPH = "model.onnx"
RECORD = "model.onnx.json"
INPUT, OUTPUT = "images", "features"
OPSET = 17
VERIFY_IMAGES = 8  # images compared with PyTorch at export


@dataclass(frozen=True)
class Device:
    """Where an :class:`OnnxBackbone` runs (the part of ``torch.device`` the stages read)."""

    type: str = "cpu"

    def __str__(self) -> str:
        return self.type


@dataclass
class OnnxBackbone:
    """A backbone exported to ONNX and run by ONNX Runtime's CPU provider; it takes and gives
    what :class:`pixtag.model.backbones.pytorch.Backbone` does (uint8 ``(N, 3, S, S)`` → float32 ``(N, dim)``)."""

    name: str
    session: Any  # onnxruntime.InferenceSession
    input_size: int
    dim: int
    record: dict[str, Any] = field(default_factory=dict)
    device: Device = field(default_factory=Device)
    runtime: str = "onnx"

    def embed(self, images: Any) -> np.ndarray:
        batch = np.ascontiguousarray(np.asarray(images), dtype=np.uint8)
        return self.session.run([OUTPUT], {INPUT: batch})[0].astype(np.float32, copy=False)


def graph_key(key: str) -> str:
    """Storage key of the graph cached for feature-cache key ``key``."""
    return f"{cache_prefix(key)}{ONNX_DIR}/{GRAPH}"


def record_key(key: str) -> str:
    return f"{graph_key(key)}.json"


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "missing"


def export(backbone: Backbone, path: Path) -> None:
    """Write ``backbone`` (normalisation included, uint8 input, dynamic batch) as ONNX."""
    import torch

    class Normalised(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = backbone.model
            self.register_buffer("mean", torch.tensor(backbone.mean).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(backbone.std).view(1, 3, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model((x.float() / 255 - self.mean) / self.std)

    module = Normalised().eval().to("cpu")
    example = torch.zeros((2, 3, backbone.input_size, backbone.input_size), dtype=torch.uint8)
    with torch.inference_mode():
        torch.onnx.export(module, (example,), str(path), input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                          opset_version=OPSET, dynamo=False)


def open_session(graph: Path | bytes, threads: int | None = None, server: bool = False) -> Any:
    """An ONNX Runtime CPU session on ``graph`` using ``threads`` cores (default: all this
    process may use).

    A ``server`` session's idle threads sleep instead of busy-waiting for the next call (the
    server's other threads, HTTP and decoding, need the cores). It keeps ONNX Runtime's CPU
    arena: without it every call allocates its buffers afresh, 20-25 % slower at batches of 4-16
    on 2 cores, and the process's memory still grew. The arena grows to the largest batch the
    server has run (the served model caps calls at ``serve_batch`` crops) and is reused after that.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    if server:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = str(graph) if isinstance(graph, Path) else graph
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def sample_images(size: int, count: int = VERIFY_IMAGES, seed: int = 0) -> np.ndarray:
    """Random uint8 images, for checking an export when no real ones are at hand."""
    return np.random.default_rng(seed).integers(0, 256, (count, 3, size, size), dtype=np.uint8)


def max_difference(reference: Backbone, candidate: OnnxBackbone, images: np.ndarray) -> float:
    """Largest absolute difference between the two backbones' features of ``images``."""
    return float(np.abs(reference.embed(images) - candidate.embed(images)).max())


def to_onnx(backbone: Backbone, tolerance: float, images: np.ndarray | None = None,
            threads: int | None = None) -> tuple[bytes, OnnxBackbone]:
    """Export ``backbone`` and check it on ``images`` (random ones if ``None``); returns the
    graph and the ONNX backbone, whose ``record`` says how it compared (``verified``)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / GRAPH
        export(backbone, path)
        graph = path.read_bytes()
    candidate = from_graph(graph, {"backbone": backbone.name, "input_size": backbone.input_size,
                                   "dim": backbone.dim}, threads)
    images = sample_images(backbone.input_size) if images is None or not len(images) else images
    difference = max_difference(backbone, candidate, images)
    candidate.record.update(
        max_abs_diff=difference, tolerance=tolerance, verified=difference <= tolerance,
        verified_on=len(images), opset=OPSET, torch=_package_version("torch"),
        onnxruntime=_package_version("onnxruntime"))
    return graph, candidate


def from_graph(graph: Path | bytes, record: dict[str, Any], threads: int | None = None,
               server: bool = False) -> OnnxBackbone:
    """An :class:`OnnxBackbone` on ``graph`` described by ``record`` (backbone, input_size, dim)."""
    return OnnxBackbone(name=str(record["backbone"]), session=open_session(graph, threads, server),
                        input_size=int(record["input_size"]), dim=int(record["dim"]), record=dict(record))


def cached_graph(store: Storage, key: str) -> tuple[bytes, dict[str, Any]] | None:
    """The graph cached for ``key`` and its record, or ``None`` if there is none yet."""
    if not store.exists(record_key(key)):
        return None
    return store.read_bytes(graph_key(key)), store.read_json(record_key(key))


def find_or_export(name: str, weights: dict[str, str] | None, tolerance: float, *,
                   store: Storage | None = None, key: str | None = None,
                   samples: Callable[[int], np.ndarray] | None = None
                   ) -> tuple[bytes | None, dict[str, Any], Backbone | None]:
    """The ONNX graph of backbone ``name``: the one cached in ``store`` under ``key``, else one
    exported now, checked on ``samples(size)`` (random images if not given) and cached.

    Returns the graph (``None`` if the export failed), its record (``max_abs_diff`` against
    PyTorch; see :func:`matches`) and the PyTorch backbone if one had to be built.
    """
    from pixtag.model.backbones.pytorch import create_backbone

    cached = cached_graph(store, key) if store is not None and key else None
    if cached is not None:
        return cached[0], cached[1], None
    backbone = create_backbone(name, weights, "cpu")
    try:
        graph, candidate = to_onnx(backbone, tolerance,
                                   samples(backbone.input_size) if samples else None)
    except Exception as exc:  # an op the exporter or runtime lacks, onnx not installed, ...
        log.warning("backbone %s: ONNX export failed (%s: %s)", name, type(exc).__name__, str(exc)[:300])
        return None, {}, backbone
    if store is not None and key:  # a failed check is kept too: later runs do not export again
        store.write_bytes(graph_key(key), graph)
        store.write_text(record_key(key), json.dumps(candidate.record, indent=2))
    log.info("backbone %s exported to ONNX (max |diff| %.2g on %d images)", name,
             candidate.record["max_abs_diff"], candidate.record["verified_on"])
    return graph, candidate.record, backbone


def matches(record: dict[str, Any], tolerance: float) -> bool:
    """Whether a graph's record says it gives PyTorch's features within ``tolerance``."""
    return float(record.get("max_abs_diff", np.inf)) <= tolerance
