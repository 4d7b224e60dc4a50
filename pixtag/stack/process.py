"""Process control for the local stacks: the project's folders (:class:`Layout`), free ports,
processes started in their own process group (pid files, logs) and stopped with nothing left
behind, and the Pixelfed instance a stack reads (a configured one, or the local instance,
started as the ``pixtag-demo`` command, never imported)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import string
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from pixtag.core import logs
from pixtag.core.config import Settings
from pixtag.core.errors import PixtagError

log = logs.get_logger(__name__)

DEMO_TOKEN_FILE = "demo-token"
DEMO_BOT_TOKEN_FILE = "demo-bot-token"  # the local instance's bot account ``pixtag`` (``pixtag-demo --bot-token``)
DEMO_PHOTO_FOLDERS = ("photos5", "photos_more")  # the local instance's photos, under ../shared/data


def echo(message: object = "") -> None:
    """The default progress printer of the stacks: a line on stdout."""
    print(message, flush=True)


class StackError(PixtagError):
    """A service of the local stack did not start or the run did not finish."""


@dataclass
class Layout:
    """Where the local stack keeps its state (by default all under ``<project>/var``)."""

    project: Path
    var: Path | None = None

    def __post_init__(self) -> None:
        self.var = Path(self.var) if self.var else self.project / "var"

    @property
    def airflow_home(self) -> Path:
        return self.var / "airflow"

    @property
    def mlflow_dir(self) -> Path:
        return self.var / "mlflow"

    @property
    def mlflow_db(self) -> Path:
        """The registry's database: what ``sqlite:///var/mlflow/mlflow.db`` (the commands'
        default) names from the project folder."""
        return self.mlflow_dir / "mlflow.db"

    @property
    def data(self) -> Path:
        return self.var / "data"

    @property
    def run_dir(self) -> Path:
        return self.var / "run"

    def pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def logfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"


def find_project(start: Path | None = None) -> Path:
    """The project folder: the nearest one (from cwd) holding ``dags/`` and ``airflow/``."""
    here = (start or Path.cwd()).resolve()
    for path in (here, *here.parents, Path(__file__).resolve().parents[2]):  # pixtag/stack/process.py
        if (path / "dags").is_dir() and (path / "airflow" / "pools.json").is_file():
            return path
    raise StackError("cannot find the pixtag project (a folder with dags/ and airflow/): "
                     "run from the repository")


def free_port(preferred: int) -> int:
    """``preferred`` if nothing listens on it on 127.0.0.1, else a free port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])


# ------------------------------------------------------------------------- processes -------
def start_process(layout: Layout, name: str, argv: list[str], env: dict[str, str]) -> int:
    """Start ``argv`` in a new session (its own process group), logging to var/run/NAME.log."""
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    logfile = layout.logfile(name).open("ab")
    proc = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, cwd=layout.project, start_new_session=True)
    layout.pidfile(name).write_text(str(proc.pid))
    log.info("started %s (pid %d), log %s", name, proc.pid, layout.logfile(name))
    return proc.pid


def stop_process(layout: Layout, name: str, grace: float = 20.0) -> bool:
    """SIGTERM the process group of NAME, then SIGKILL what is left after ``grace`` seconds."""
    pidfile = layout.pidfile(name)
    if not pidfile.is_file():
        return False
    pid = int(pidfile.read_text().strip() or 0)
    pidfile.unlink(missing_ok=True)
    if pid <= 0:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)  # our own child: a zombie leader would keep its group "alive"
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.3)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _reap(pid)
    log.info("stopped %s", name)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_all(layout: Layout) -> list[str]:
    stopped = []
    for name in ("bot", "airflow", "mlflow", "demo-instance"):
        if stop_process(layout, name):
            stopped.append(name)
    return stopped


def wait_http(url: str, timeout: float, name: str, layout: Layout) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=3).status_code < 500:
                return
        except requests.RequestException:
            pass
        pid = layout.pidfile(name)
        if pid.is_file() and not _alive(int(pid.read_text())):
            raise StackError(f"{name} exited during start-up; see {layout.logfile(name)}")
        time.sleep(1)
    raise StackError(f"{name} did not answer at {url} within {timeout:.0f} s; see {layout.logfile(name)}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ------------------------------------------------------------------------- services --------
def bin_path(name: str) -> str:
    """An executable of this virtual environment (falls back to PATH)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def mlflow_argv(layout: Layout, port: int) -> list[str]:
    """The local stack's MLflow server on the registry every command finds by default
    (:data:`pixtag.core.config.DEFAULT_MLFLOW_URI`, ``var/mlflow/mlflow.db``), its artifacts plain
    files beside it (``mlruns/``, as :func:`pixtag.model.tracking.local_artifact_root` puts them):
    clients on this machine read and write them directly, so ``pixtag suggest`` finds the champion
    with the server up or stopped."""
    layout.mlflow_dir.mkdir(parents=True, exist_ok=True)
    return [
        bin_path("mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{layout.mlflow_db}",
        "--default-artifact-root", (layout.mlflow_dir / "mlruns").resolve().as_uri(), "--no-serve-artifacts",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]


def demo_token(layout: Layout, name: str = DEMO_TOKEN_FILE) -> str:
    """A random token for the local instance, kept in var/run (mode 0600), never printed
    (``name``: :data:`DEMO_BOT_TOKEN_FILE` for its bot account's)."""
    path = layout.run_dir / name
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        token = "demo-" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token)
    token = path.read_text().strip()
    logs.register_secret(token)
    return token


@dataclass
class Ports:
    airflow: int = 8080
    mlflow: int = 5000
    demo: int = 8765


@dataclass
class Instance:
    """The Pixelfed instance a local stack reads: a configured one, or the local demo instance."""

    url: str
    token: str | None = field(repr=False)  # never in a log line or traceback
    demo: bool
    photos: tuple[Path, ...] = ()  # the local instance's photo folders
    bot_token: str | None = field(default=None, repr=False)  # its bot account's; None: no bot


def demo_photos(layout: Layout) -> list[Path]:
    """The local instance's photo folders: $PIXTAG_PHOTOS (several separated by ``os.pathsep``),
    else ../shared/data/photos5 and photos_more, those that exist (photos5 when none does);
    the same default as ``pixtag-demo``'s."""
    env = os.environ.get("PIXTAG_PHOTOS")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    shared = layout.project.parent / "shared" / "data"
    return [shared / d for d in DEMO_PHOTO_FOLDERS if (shared / d).is_dir()] or [shared / DEMO_PHOTO_FOLDERS[0]]


def choose_instance(settings: Settings, layout: Layout, photos: Path | Sequence[Path] | None,
                    demo_port: int) -> Instance:
    """The configured instance (URL + token), else the local instance on ``photos`` (one folder or
    several; default :func:`demo_photos`)."""
    if settings.instance_url and settings.token_value():
        return Instance(str(settings.instance_url), settings.token_value(), demo=False,
                        bot_token=settings.bot_token_value())
    folders = [photos] if isinstance(photos, Path) else list(photos or ()) or demo_photos(layout)
    missing = [str(p) for p in folders if not Path(p).is_dir()]
    if missing:
        raise StackError(f"no Pixelfed instance configured and no photos at {', '.join(missing)}: set "
                         "PIXTAG_INSTANCE_URL + PIXTAG_TOKEN, or pass --photos DIR")
    return Instance(f"http://127.0.0.1:{demo_port}", demo_token(layout), demo=True,
                    photos=tuple(Path(p) for p in folders), bot_token=demo_token(layout, DEMO_BOT_TOKEN_FILE))


def start_demo(layout: Layout, instance: Instance, port: int) -> None:
    """Start the local instance (nothing for a configured one) on its photo folders, one
    ``--photos`` each, with the bot account ``pixtag``; its tokens go by environment."""
    if instance.demo:
        photos = [arg for p in instance.photos for arg in ("--photos", str(p))]
        start_process(layout, "demo-instance", [bin_path("pixtag-demo"), *photos, "--port", str(port)],
                      {**os.environ, "PIXTAG_DEMO_TOKEN": instance.token or "",
                       **({"PIXTAG_DEMO_BOT_TOKEN": instance.bot_token} if instance.bot_token else {})})


def start_bot(layout: Layout, instance: Instance, pixtag_env: dict[str, str]) -> bool:
    """Start ``pixtag bot`` on the instance when it has a bot token (the local instance always
    does); its token goes by environment, the rest is the stack's ``PIXTAG_*`` settings. It waits
    for the first champion by itself and follows every promotion."""
    if not instance.bot_token:
        log.info("no bot token for %s (PIXTAG_BOT_TOKEN or `pixtag auth --bot`): the bot is not started",
                 instance.url)
        return False
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PIXTAG_")}, **pixtag_env,
           "PIXTAG_INSTANCE_URL": instance.url, "PIXTAG_BOT_TOKEN": instance.bot_token}
    start_process(layout, "bot", [bin_path("pixtag"), "bot"], env)
    return True
