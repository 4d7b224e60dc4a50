"""Bad settings and bad Params: one clear error naming the field (and where its value came
from), before any work starts: no request to the instance, nothing written, no task run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pixtag.cli import main
from pixtag.core.config import SettingsError
from pixtag.pipeline.flow import PARAM_FIELDS, run_settings
from pixtag_demo.app import DemoInstance
from tests.conftest import DEMO_TOKEN
from tests.reliability.cases import BAD_ENV, BAD_FOR_SETTINGS, BAD_PARAMS, BAD_YAML


def run_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_code:
        main(args)
    return exit_code.value.code, capsys.readouterr().err


@pytest.fixture
def valid_env(monkeypatch: pytest.MonkeyPatch, fresh_demo: DemoInstance, tmp_path: Path) -> Path:
    """A working configuration (a bad value is then set on top of it)."""
    values = {"PIXTAG_INSTANCE_URL": fresh_demo.url, "PIXTAG_TOKEN": DEMO_TOKEN,
              "PIXTAG_ALLOW_PRIVATE_HOSTS": "127.0.0.1", "PIXTAG_STORAGE": str(tmp_path / "store"),
              "PIXTAG_CLASSES": "cat,dog", "PIXTAG_PER_CLASS": "5"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return tmp_path / "store"


@pytest.mark.parametrize("env", list(BAD_ENV))
def test_a_bad_setting_stops_the_command_with_one_line_naming_it(
        env: str, valid_env: Path, fresh_demo: DemoInstance, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    value, field = BAD_ENV[env]
    monkeypatch.setenv(env, value)
    code, err = run_cli(["scrape", "--no-progress"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"pixtag: error: invalid setting '{field}' (env {env} or YAML key '{field}')")
    if len(value) >= 4:
        assert value not in lines[0]  # a value is never echoed: it may be a secret
    assert fresh_demo.stats()["requests"] == {}  # no work started
    assert not valid_env.exists()


@pytest.mark.parametrize("content", list(BAD_YAML))
def test_a_bad_yaml_file_names_each_field(content: str, valid_env: Path, tmp_path: Path, fresh_demo: DemoInstance,
                                          capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "pixtag.yaml"
    config.write_text(content)
    code, err = run_cli(["--config", str(config), "scrape"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("pixtag: error: ")
    for named in BAD_YAML[content]:
        assert named in err
    assert fresh_demo.stats()["requests"] == {} and not valid_env.exists()


def test_a_command_line_value_is_named_as_such(valid_env: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(["scrape", "--per-class", "0"], capsys)
    assert code == 2 and "invalid setting 'per_class' (given as an option)" in err


@pytest.mark.parametrize("param", list(BAD_FOR_SETTINGS))
def test_run_settings_name_the_param_when_its_value_is_bad(param: str) -> None:
    """Should a Param get past the form's schema (an API client, an edited DAG), the settings
    still refuse it, naming the Param rather than an environment variable."""
    field = PARAM_FIELDS[param]
    with pytest.raises(SettingsError) as err:
        run_settings({param: BAD_FOR_SETTINGS[param]})
    assert f"invalid setting '{field}' (DAG Param '{param}')" in str(err.value)
    assert "env PIXTAG_" not in str(err.value)


def test_run_settings_name_the_connection_for_a_bad_host() -> None:
    with pytest.raises(SettingsError, match="'instance_url' \\(the Pixelfed connection's host\\)"):
        run_settings({}, instance_url="ftp://pixel.example", token="x" * 12)


# --- the DAG -------------------------------------------------------------------------------------
@pytest.fixture
def dag_env(monkeypatch: pytest.MonkeyPatch, fresh_demo: DemoInstance, tmp_path: Path) -> Path:
    for key, value in {"PIXTAG_STORAGE": str(tmp_path / "store"), "PIXTAG_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
                       "PIXTAG_MLFLOW_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AIRFLOW_CONN_PIXELFED_DEFAULT",
                       json.dumps({"conn_type": "http", "host": fresh_demo.url, "password": DEMO_TOKEN}))
    return tmp_path / "store"


@pytest.mark.slow
def test_bad_params_are_refused_before_the_run_starts(airflow_db: Path, dagbag: Any, dag_env: Path,
                                                      fresh_demo: DemoInstance) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    dag = dagbag.dags["pixtag_retrain"]
    for param, value in BAD_PARAMS.items():
        with pytest.raises(ParamValidationError, match=param):
            dag.test(run_conf={param: value})
    assert fresh_demo.stats()["requests"] == {}
    assert not dag_env.exists()


@pytest.mark.slow
def test_a_bad_connection_fails_the_first_task_for_good(
        airflow_db: Path, dagbag: Any, dag_env: Path, fresh_demo: DemoInstance,
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture) -> None:
    """The DAG parses (settings are fine where it is parsed); the worker's Pixelfed connection is
    not. The first task fails once (no retry: retrying cannot fix a setting) naming the field
    and its source; nothing else runs."""
    monkeypatch.setenv("AIRFLOW_CONN_PIXELFED_DEFAULT",
                       json.dumps({"conn_type": "http", "host": "ftp://pixel.example", "password": DEMO_TOKEN}))
    run = dagbag.dags["pixtag_retrain"].test(run_conf={})
    assert run.state == "failed"
    states = {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
    assert states["refresh_trending"] == ("failed", 1), states
    assert all(state in ("upstream_failed", None) for task, (state, _) in states.items()
               if task != "refresh_trending"), states
    assert fresh_demo.stats()["requests"] == {}
    assert not dag_env.exists()
    out = capfd.readouterr()  # dag.test() logs the tasks to the console
    assert ("AirflowFailException: invalid setting 'instance_url' (the Pixelfed connection's host): "
            "Value error, must be an http(s) URL") in out.out + out.err
