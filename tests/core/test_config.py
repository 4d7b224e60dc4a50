from pathlib import Path

import pytest

from pixtag.core.config import SettingsError, load_settings, read_credentials, write_credentials


def test_defaults_are_valid() -> None:
    s = load_settings()
    assert s.per_class == 1000
    assert s.promotion == "auto"
    assert s.instance_url is None


def test_env_overrides_yaml_and_lists_parse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "conf.yaml"
    cfg.write_text("per_class: 10\nclasses: [cat, dog]\nrequest_rate: 3\n")
    monkeypatch.setenv("PIXTAG_REQUEST_RATE", "0.5")
    monkeypatch.setenv("PIXTAG_ADD_TAGS", "#Ferret, otter")
    s = load_settings(cfg)
    assert s.per_class == 10
    assert s.classes == ["cat", "dog"]
    assert s.request_rate == 0.5
    assert s.add_tags == ["ferret", "otter"]


def test_mlflow_tracking_uri_is_honoured_below_pixtag_settings(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    # by default, the local stack's registry (what `make run` promotes the champion in)
    from pixtag.model.tracking import local_artifact_root, sqlite_path
    from pixtag.stack.process import Layout, mlflow_argv

    default = load_settings().mlflow_uri
    assert default == "sqlite:///var/mlflow/mlflow.db"
    assert sqlite_path(default) == Layout(tmp_path).mlflow_db.resolve()  # the tests run in tmp_path
    assert local_artifact_root(default) == (Layout(tmp_path).mlflow_dir / "mlruns").resolve().as_uri()
    argv = mlflow_argv(Layout(tmp_path), 5000)  # the stack's server: same database, same plain-file artifacts
    assert argv[argv.index("--backend-store-uri") + 1] == f"sqlite:///{Layout(tmp_path).mlflow_db}"
    assert argv[argv.index("--default-artifact-root") + 1] == local_artifact_root(default)
    assert "--no-serve-artifacts" in argv
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert load_settings().mlflow_uri == "http://mlflow.example:5000"
    cfg = tmp_path / "conf.yaml"
    cfg.write_text("mlflow_uri: http://from-yaml:5000\n")
    assert load_settings(cfg).mlflow_uri == "http://from-yaml:5000"
    monkeypatch.setenv("PIXTAG_MLFLOW_URI", "http://from-pixtag-env:5000")
    assert load_settings(cfg).mlflow_uri == "http://from-pixtag-env:5000"
    assert load_settings(mlflow_uri="sqlite:///x.db").mlflow_uri == "sqlite:///x.db"


def test_pixtag_yaml_in_cwd_is_read(tmp_path: Path) -> None:
    (tmp_path / "pixtag.yaml").write_text("model_name: tagger\n")
    assert load_settings().model_name == "tagger"


@pytest.mark.parametrize(
    ("env", "value", "field"),
    [
        ("PIXTAG_REQUEST_RATE", "-1", "request_rate"),
        ("PIXTAG_INSTANCE_URL", "ftp://example.org", "instance_url"),
        ("PIXTAG_PROMOTION", "sometimes", "promotion"),
        ("PIXTAG_STORAGE", "gs://bucket/x", "storage"),
        ("PIXTAG_ACCURACY_FLOOR", "1.5", "accuracy_floor"),
        ("PIXTAG_PER_CLASS", "many", "per_class"),
    ],
)
def test_invalid_setting_names_the_field(monkeypatch: pytest.MonkeyPatch, env: str, value: str, field: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert f"'{field}'" in message
    assert env in message


def test_unknown_yaml_key_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("per_clas: 3\n")
    with pytest.raises(SettingsError, match="unknown setting 'per_clas'"):
        load_settings(cfg)


def test_invalid_token_value_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXTAG_INSTANCE_URL", "https://user:s3cr3tpassw0rd@example.org")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "s3cr3tpassw0rd" not in str(err.value)


def test_token_is_hidden_from_repr_and_public_dict() -> None:
    s = load_settings(token="tok-abcdef123456", instance_url="https://pixel.example")
    assert "tok-abcdef123456" not in repr(s)
    assert "tok-abcdef123456" not in str(s.public_dict())
    assert "token" not in s.public_dict()
    assert s.token_value() == "tok-abcdef123456"


def test_the_bot_token_is_a_secret_too() -> None:
    from pixtag.core import logs

    s = load_settings(token="tok-abcdef123456", bot_token="bot-9f8e7d6c5b4a", instance_url="https://pixel.example")
    assert "bot-9f8e7d6c5b4a" not in repr(s) + str(s.public_dict())
    assert "bot_token" not in s.public_dict() and s.bot_token_value() == "bot-9f8e7d6c5b4a"
    assert logs.redact("Authorization: Bearer bot-9f8e7d6c5b4a") == "Authorization: Bearer ***"


def test_the_bot_token_from_pixtag_auth_bot_is_kept_apart() -> None:
    write_credentials("https://pixel.example", "reader-tok-1234")
    path = write_credentials("https://pixel.example/", "bot-tok-5678", bot=True)
    assert path.stat().st_mode & 0o077 == 0
    s = load_settings(instance_url="https://pixel.example")
    assert (s.token_value(), s.bot_token_value()) == ("reader-tok-1234", "bot-tok-5678")
    assert load_settings(instance_url="https://other.example").bot_token_value() is None


def test_credentials_file_is_private_and_found_per_instance() -> None:
    path = write_credentials("https://pixel.example/", "tok-from-oauth-flow")
    assert path.stat().st_mode & 0o077 == 0
    assert read_credentials() == {"https://pixel.example": "tok-from-oauth-flow"}
    s = load_settings(instance_url="https://pixel.example")
    assert s.token_value() == "tok-from-oauth-flow"
    assert load_settings(instance_url="https://other.example").token_value() is None
