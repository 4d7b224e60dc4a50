"""The README's try-it commands for the bot, run as written in a plain shell (bash, the venv not
activated), from a checkout whose ``var/mlflow`` holds a champion, as after ``make run``."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers import shared_champion

pytestmark = pytest.mark.slow


def readme_blocks() -> tuple[str, str]:
    """The bot section's try-it commands and the output it shows."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Suggestions for the people who post: the bot", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(sh|text)\n(.*?)```", section, re.S)
    commands = next(body for kind, body in blocks if kind == "sh" and "pixtag bot --once" in body)
    output = next(body for kind, body in blocks if kind == "text")
    return commands, output


def test_the_readme_try_it_commands_work_as_written(photos: Path, tmp_path: Path) -> None:
    commands, shown = readme_blocks()
    bin_dir = Path(sys.executable).parent
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    script = commands.replace(".venv/bin/", f"{bin_dir}/").replace("8765", port)
    # a checkout after `make run`: the champion in var/mlflow (artifacts where they are), the
    # photos at ../shared/data as beside the repository
    checkout = tmp_path / "checkout"
    (checkout / "var" / "mlflow").mkdir(parents=True)
    shutil.copy(Path(shared_champion(photos).removeprefix("sqlite:///")), checkout / "var" / "mlflow" / "mlflow.db")
    (tmp_path / "shared").symlink_to(REPO.parent / "shared")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIXTAG_", "MLFLOW_", "VIRTUAL_ENV"))}
    env |= {"HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p).resolve() != bin_dir.resolve())
    proc = subprocess.Popen(["bash", "-e", "-c", script], cwd=checkout, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the instance, whatever happened
    assert proc.returncode == 0, err[-3000:]
    assert out.strip().splitlines()[-1] == shown.strip(), (out, err[-2000:])
    deadline = time.monotonic() + 15  # `kill %1` stopped the instance (it shuts down gracefully)
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", int(port))) != 0:
                break
        assert time.monotonic() < deadline, "the README's instance is still listening"
        time.sleep(0.2)
