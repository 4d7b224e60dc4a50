"""The registry's versions, aliases and the MLflow runs behind them (what the gate, re-scoring and
the approval read and write)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pixtag.core.errors import PixtagError

if TYPE_CHECKING:
    from mlflow import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"
TAG = "pixtag.gate."  # prefix of the gate's version tags


class RegistryError(PixtagError):
    """The candidate run cannot be registered (missing run, metric or model)."""


class RegistryUnavailable(RegistryError):
    """MLflow could not be reached, or failed, during the gate: retrying is safe (the candidate's
    version is reused and the decision applied again)."""


def not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """alias → version of a registered model ({} if the model does not exist yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}
    except MlflowException as exc:
        if not_found(exc):
            return {}
        raise


def version_for_run(client: MlflowClient, name: str, run: Any) -> Any:
    """The version registered from ``run`` (a retried task reuses it), or register one."""
    import mlflow

    run_id = run.info.run_id
    found = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    if found:
        return sorted(found, key=lambda v: int(v.version))[-1]
    return mlflow.register_model(run.data.tags.get("pixtag.model_uri") or f"runs:/{run_id}/model",
                                 name)


def run_labels(run: Any) -> tuple[str, ...]:
    labels = run.data.tags.get("pixtag.labels")
    if not labels:
        raise RegistryError(f"run {run.info.run_id} has no pixtag.labels tag: not a pixtag run")
    return tuple(labels.split(","))


def run_accuracy(run: Any) -> float:
    if "test_accuracy" not in run.data.metrics:
        raise RegistryError(f"run {run.info.run_id} has no test_accuracy metric")
    return float(run.data.metrics["test_accuracy"])


def run_false_rate(run: Any) -> float | None:
    value = run.data.metrics.get("false_suggestion_rate")
    return None if value is None else float(value)


def load_split(run_id: str) -> dict[str, Any]:
    from pixtag.model.tracking import load_dict

    return load_dict(f"runs:/{run_id}/split.json")


def test_truth(split: dict[str, Any]) -> tuple[list[str], list[tuple[str, ...]]]:
    """Each test image's label (its stratum), and all its labels (an image of a post tagged with
    several classes: a prediction is right when it is any of them)."""
    labels = [str(v) for v in split["test_labels"]]
    sets = split.get("test_label_sets") or [[v] for v in labels]
    return labels, [tuple(map(str, s)) for s in sets]


def finished_run(client: MlflowClient, run_id: str) -> Any:
    """The run, only if it finished: a training task killed mid-way (SIGKILL, OOM) leaves its
    run RUNNING, one that raised leaves it FAILED; such a run is never registered (the retried
    task trains a new one). Orphans are left as they are, for a person to look at."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if not_found(exc):
            raise RegistryError(f"no MLflow run {run_id!r}") from None
        raise
    if run.info.status != "FINISHED":
        raise RegistryError(f"run {run_id} is {run.info.status}, not FINISHED: a killed or failed "
                            "training run is never registered")
    return run
