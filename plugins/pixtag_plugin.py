"""Airflow plugin that makes pixtag runs easy to follow from the Airflow UI.

* task buttons: **MLflow run** on ``train``, **Model version** on ``register`` (both from the
  task's own result), **Data Docs** on ``validate``, all of pixtag's own DAG only (Airflow asks
  a global link of every task of every DAG; another DAG's ``train`` gets no button);
* ``/pixtag/data-docs/...``: the Great Expectations Data Docs of the dataset, served from pixtag's
  storage (local folder or S3) by a small FastAPI app inside the API server;
* ``/pixtag/review/...``: the contact sheets the DAG's required actions link (images new since
  the champion, images the candidate and the champion disagree on), likewise;
* navigation entries for the MLflow UI and the Data Docs.

It reads pixtag's settings (env ``PIXTAG_*``) for the storage and the MLflow address.
"""

from __future__ import annotations

import json
import mimetypes
import os
from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

DOCS_ROUTE = "/pixtag/data-docs"
REVIEW_ROUTE = "/pixtag/review"
DAG_ID = "pixtag_retrain"


def _ours(ti_key: Any, task_id: str) -> bool:
    """Whether ``ti_key`` is task ``task_id`` of pixtag's DAG."""
    return ti_key.dag_id == DAG_ID and ti_key.task_id == task_id


def _mlflow_ui() -> str | None:
    uri = (os.environ.get("PIXTAG_MLFLOW_UI_URL") or os.environ.get("PIXTAG_MLFLOW_URI")
           or os.environ.get("MLFLOW_TRACKING_URI", ""))
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else None


def _api_base() -> str:
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="").rstrip("/")


def task_result(ti_key: Any) -> dict[str, Any]:
    """The ``return_value`` XCom of a finished task instance, read in the API server."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.execute(
            XComModel.get_many(key="return_value", run_id=ti_key.run_id, dag_ids=ti_key.dag_id,
                               task_ids=ti_key.task_id, map_indexes=ti_key.map_index)
            .with_only_columns(XComModel.value)
        ).first()
    if not row:
        return {}
    value = row.value
    try:
        value = json.loads(value) if isinstance(value, str | bytes) else value
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class _ResultLink(BaseOperatorLink):
    """A button whose URL is a field of the task's own result (only on ``task_id``)."""

    name = ""
    task_id = ""
    field = ""

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        if not _ours(ti_key, self.task_id):
            return ""
        return str(task_result(ti_key).get(self.field) or "")


class MlflowRunLink(_ResultLink):
    name = "MLflow run"
    task_id = "train"
    field = "mlflow_run_url"


class ModelVersionLink(_ResultLink):
    name = "Model version"
    task_id = "register"
    field = "model_version_url"


class DataDocsLink(BaseOperatorLink):
    name = "Data Docs"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        if not _ours(ti_key, "validate"):
            return ""
        return f"{_api_base()}{DOCS_ROUTE}/index.html"


def _docs_app(route: str = DOCS_ROUTE, folder: str = "reports/data_docs",
              missing: str = "no Data Docs yet: they appear after a run's validate task") -> Any:
    """Serve ``folder`` of pixtag's storage to logged-in users (read-only, no path escapes)."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import RedirectResponse, Response

    app = FastAPI(title=f"pixtag {folder}", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/")
    def root() -> RedirectResponse:
        return RedirectResponse(f"{route}/index.html")

    @app.get("/{path:path}")
    def page(path: str, user: Any = Depends(get_user)) -> Response:  # noqa: B008
        """Only for people logged in to Airflow (its JWT: the UI's cookie or a bearer token)."""
        from pixtag.core.config import load_settings
        from pixtag.core.storage import StorageError, open_storage

        if not path or any(part in ("", "..") for part in path.split("/")):
            raise HTTPException(404)
        settings = load_settings()
        store = open_storage(settings.storage, settings.s3_endpoint_url).child(folder)
        try:
            body = store.read_bytes(path)
        except (FileNotFoundError, StorageError):
            raise HTTPException(404, missing) from None
        media = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return Response(body, media_type=media)

    return app


def _nav() -> list[dict[str, str]]:
    views = [{"name": "Data Docs (pixtag)", "href": f"{DOCS_ROUTE}/index.html", "destination": "nav"}]
    if _mlflow_ui():
        views.append({"name": "MLflow (pixtag)", "href": str(_mlflow_ui()), "destination": "nav"})
    return views


class PixtagPlugin(AirflowPlugin):
    name = "pixtag"
    global_operator_extra_links: ClassVar[list[Any]] = [MlflowRunLink(), ModelVersionLink(), DataDocsLink()]
    fastapi_apps: ClassVar[list[Any]] = [
        {"app": _docs_app(), "url_prefix": DOCS_ROUTE, "name": "pixtag Data Docs"},
        {"app": _docs_app(REVIEW_ROUTE, "reports/review", "no contact sheets here yet: a review or approval "
                          "writes them"), "url_prefix": REVIEW_ROUTE, "name": "pixtag contact sheets"}]
    external_views: ClassVar[list[Any]] = _nav()
