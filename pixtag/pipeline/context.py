"""What one task of the retraining flow works with, built once per task: the run's settings,
its storage (opened once, then passed down to every stage the task calls) and the run's
backbone (``auto`` resolved once per run, in ``select_classes``, and carried to the later
tasks through their typed results)."""

from __future__ import annotations

from dataclasses import dataclass

from pixtag.core.config import Settings
from pixtag.core.storage import Storage, open_storage


@dataclass
class RunContext:
    """One task's settings, opened storage and (once known) the run's resolved backbone."""

    settings: Settings
    store: Storage
    backbone: str | None = None  # resolved (never "auto"); None until resolved or carried

    @classmethod
    def open(cls, settings: Settings, backbone: str | None = None) -> RunContext:
        """Open ``settings.storage`` (the one place a task does) and carry ``backbone``."""
        return cls(settings, open_storage(settings.storage, settings.s3_endpoint_url), backbone)

    def resolve_backbone(self) -> str:
        """The run's backbone: the carried name, else ``settings.backbone`` with ``auto``
        resolved (:func:`pixtag.model.backbones.weights.resolve_name`), remembered for this context."""
        if self.backbone is None:
            from pixtag.model.backbones import weights

            self.backbone = weights.resolve_name(self.settings.backbone, self.settings.weights)
        return self.backbone


def as_context(run: RunContext | Settings) -> RunContext:
    """``run`` itself, or a context opened from bare settings (callers outside the DAG)."""
    return run if isinstance(run, RunContext) else RunContext.open(run)
