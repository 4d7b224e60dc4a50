"""The one factory: :func:`create_extractor` builds backbone ``name`` on the runtime that suits.

``runtime="auto"`` means ONNX Runtime on a CPU and PyTorch on CUDA; a graph that cannot be
exported, or that differs from PyTorch by more than the tolerance, falls back to PyTorch.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from pixtag.model.backbones.onnx_runtime import OnnxBackbone, find_or_export, from_graph, matches
from pixtag.model.backbones.pytorch import Backbone, create_backbone

if TYPE_CHECKING:
    from pixtag.core.storage import Storage

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "onnx")


def cuda_available() -> bool:
    """Whether PyTorch sees a GPU. Without torch installed, or on Linux without an NVIDIA device
    node, the answer is no and torch is not imported (a served model on a CPU host never loads it)."""
    if importlib.util.find_spec("torch") is None:
        return False
    if "torch" not in sys.modules and sys.platform == "linux" and not glob.glob("/dev/nvidia[0-9]*"):
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_runtime(runtime: str, device: str | None = None) -> str:
    """``auto`` → ``onnx`` on a CPU, ``torch`` on CUDA (``device`` as given, else the best)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}: one of {', '.join(RUNTIMES)}")
    if runtime != "auto":
        return runtime
    cuda = device.startswith("cuda") if device else cuda_available()
    return "torch" if cuda else "onnx"


def create_extractor(name: str, weights: dict[str, str] | None = None, *, runtime: str = "auto",
                     tolerance: float = 1e-4, device: str | None = None,
                     store: Storage | None = None, key: str | None = None,
                     samples: Callable[[int], np.ndarray] | None = None) -> Backbone | OnnxBackbone:
    """The backbone ``name`` on the runtime ``runtime`` resolves to.

    For ONNX, the graph of :func:`find_or_export` runs if it matches PyTorch within
    ``tolerance``; a failed export or check falls back to PyTorch with a warning.
    """
    if resolve_runtime(runtime, device) == "torch":
        return create_backbone(name, weights, device)
    graph, record, backbone = find_or_export(name, weights, tolerance, store=store, key=key, samples=samples)
    which = "exported" if backbone is not None else "cached"
    if graph is not None and matches(record, tolerance):
        log.info("backbone %s on ONNX Runtime (%s graph, max |diff| %.2g)", name, which, record["max_abs_diff"])
        return from_graph(graph, record)
    if graph is not None:
        log.warning("backbone %s: its %s ONNX graph differs from PyTorch by %.3g > tolerance %.3g: "
                    "using PyTorch", name, which, record.get("max_abs_diff", np.nan), tolerance)
    else:
        log.warning("backbone %s: no ONNX graph: using PyTorch", name)
    return backbone or create_backbone(name, weights, "cpu")
