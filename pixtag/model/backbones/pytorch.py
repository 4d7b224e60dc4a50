"""A backbone on PyTorch: the timm model with its ImageNet weights and without its classifier.

``create_backbone("vit_base_patch16_224")`` gives the model in eval mode on the best device
(weights from :mod:`pixtag.model.backbones.weights`).
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixtag.model.backbones.weights import (
    BackboneError,
    WeightsSource,
    missing_weights_message,
    timm_arch,
    weights_source,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

log = logging.getLogger(__name__)


def pick_device(device: str | None = None) -> torch.device:
    """CUDA when available, else CPU using every core this process may run on."""
    import torch

    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    return torch.device("cpu")


@dataclass
class Backbone:
    """An ImageNet model without its classifier; :meth:`embed` maps uint8 images to vectors.

    ``autocast`` (bf16) and ``channels_last`` are on for CUDA, off on CPU (see :func:`wrap`).
    """

    name: str
    model: torch.nn.Module
    device: torch.device
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int
    interpolation: str
    dim: int
    source: WeightsSource
    autocast: bool = False
    channels_last: bool = False
    runtime: str = "torch"
    _norm: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False, compare=False)

    def normaliser(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``mean`` and ``std`` as ``(1, 3, 1, 1)`` tensors on the device (made once)."""
        import torch

        if self._norm is None:
            self._norm = tuple(torch.tensor(v, device=self.device).view(1, 3, 1, 1)
                               for v in (self.mean, self.std))  # type: ignore[assignment]
        return self._norm  # type: ignore[return-value]

    def embed(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        """``(N, 3, H, W)`` uint8 RGB at ``input_size`` → ``(N, dim)`` float32 features.

        The uint8 batch goes to the device as is (``non_blocking``: pinned batches copy while the
        host goes on) and is made float and normalised there.
        """
        import torch

        mean, std = self.normaliser()
        x = torch.as_tensor(images).to(self.device, non_blocking=True).float().div_(255)
        x = x.sub_(mean).div_(std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(self.device.type, torch.bfloat16,
                                                    enabled=self.autocast):
            out = self.model(x)
        return out.float().cpu().numpy()


def _read_state_dict(path: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BackboneError(f"cannot read weights file {path}: {exc}") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise BackboneError(f"{path} does not hold a state dict")
    return state


def load_weights(model: torch.nn.Module, state: dict[str, Any], name: str) -> None:
    """Load by key, or by position when keys differ but order and shapes match one to one.

    The classifier head may be absent from ``state`` (it is discarded anyway).
    """
    target = model.state_dict()
    head = str(getattr(model, "pretrained_cfg", {}).get("classifier") or "head")
    if set(state) <= set(target) and set(state) != set():
        missing = [k for k in set(target) - set(state) if not k.startswith(head)]
        if not missing:
            model.load_state_dict(state, strict=False, assign=True)
            return
    values = list(state.values())
    shapes_match = len(values) == len(target) and all(
        tuple(v.shape) == tuple(t.shape) for v, t in zip(values, target.values(), strict=True)
    )
    if not shapes_match:
        raise BackboneError(
            f"weights do not fit {name!r} (timm {timm_arch(name)}): neither the keys nor the "
            f"order and shapes of the {len(values)} tensors match the model's {len(target)}"
        )
    model.load_state_dict(dict(zip(target, values, strict=True)), assign=True)


def _instantiate(name: str, source: WeightsSource) -> torch.nn.Module:
    """The timm model with its weights and without its classifier."""
    import timm
    import torch

    arch = timm_arch(name)
    if source.path is None:
        try:
            model = timm.create_model(arch, pretrained=True)
        except Exception as exc:  # offline with HF_HUB_OFFLINE, hub errors, ...
            raise BackboneError(f"{missing_weights_message(name)} ({type(exc).__name__})") from None
        model.reset_classifier(0)
        return model
    state = _read_state_dict(source.path)
    with torch.device("meta"):  # skip the random init: every tensor comes from the file
        model = timm.create_model(arch)
    load_weights(model, state, name)
    model.reset_classifier(0)
    if any(t.is_meta for t in itertools.chain(model.parameters(), model.buffers())):
        model = timm.create_model(arch)  # the file lacks a tensor (a non-persistent buffer)
        load_weights(model, state, name)
        model.reset_classifier(0)
    return model


def create_backbone(name: str, weights: dict[str, str] | None = None,
                    device: str | None = None) -> Backbone:
    """Build ``name`` (a timm model name, or ``efficientnet_lite0``) with ImageNet weights."""
    import timm

    arch = timm_arch(name)
    if not timm.is_model(arch):
        raise BackboneError(f"unknown backbone {name!r}: not a timm model name")
    source = weights_source(name, weights)
    backbone = wrap(name, _instantiate(name, source), source, device)
    log.info("backbone %s (timm %s) weights from %s on %s", name, arch, source.describe(),
             backbone.device)
    return backbone


def wrap(name: str, model: torch.nn.Module, source: WeightsSource, device: str | None = None, *,
         autocast: bool | None = None, channels_last: bool | None = None,
         compile: str | None = None) -> Backbone:
    """A headless timm ``model`` as a :class:`Backbone` in eval mode on ``device`` (best if
    ``None``). bf16 autocast and channels-last default to on for CUDA only; ``compile`` names a
    ``torch.compile`` backend (``"inductor"``...) to apply, static shapes: the first batch of
    each shape pays for compiling."""
    import timm
    import torch

    config = timm.data.resolve_data_config({}, model=model)
    dim = int(getattr(model, "head_hidden_size", None) or model.num_features)
    dev = pick_device(device)
    cuda = dev.type == "cuda"
    autocast = cuda if autocast is None else autocast
    channels_last = cuda if channels_last is None else channels_last
    model = model.eval().to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile:
        model = torch.compile(model, backend=compile, dynamic=False)
    return Backbone(
        name=name,
        model=model,
        device=dev,
        mean=tuple(config["mean"]),
        std=tuple(config["std"]),
        input_size=int(config["input_size"][-1]),
        interpolation=str(config.get("interpolation", "bicubic")),
        dim=dim,
        source=source,
        autocast=autocast,
        channels_last=channels_last,
    )
