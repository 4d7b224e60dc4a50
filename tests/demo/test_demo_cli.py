"""``pixtag-demo`` (``pixtag_demo.cli``): options, clear errors, and a real foreground run."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from pixtag_demo.cli import default_photos, demo_cmd, main

REPO = Path(__file__).resolve().parents[2]


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(demo_cmd, ["--help"])
    assert result.exit_code == 0
    for option in ("--photos", "--port", "--seed", "--token", "--now", "--rate-429",
                   "--truncate-media-rate", "PIXTAG_DEMO_TOKEN"):
        assert option in result.output


def test_default_photos_are_the_shared_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIXTAG_PHOTOS", raising=False)
    shared = REPO.parent / "shared" / "data"
    more = shared / "photos_more"
    assert default_photos() == [shared / "photos5", *([more] if more.is_dir() else [])]
    monkeypatch.setenv("PIXTAG_PHOTOS", "/somewhere/else")
    assert default_photos() == [Path("/somewhere/else")]
    monkeypatch.setenv("PIXTAG_PHOTOS", os.pathsep.join(["/a", "/b", ""]))
    assert default_photos() == [Path("/a"), Path("/b")]


def test_photos_may_be_given_several_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    import pixtag_demo.cli as cli

    for folder, cls in (("a", "boat"), ("b", "kite"), ("b", "boat")):
        (tmp_path / folder / cls).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (90, 120, 200)).save(tmp_path / folder / cls / f"{folder}.jpg")
    served = []
    monkeypatch.setattr(cli, "create_app", lambda world, token, faults, bot_token=None: served.append(world))
    monkeypatch.setattr(cli, "make_server", lambda app: type("S", (), {"run": lambda self, sockets: None})())
    args = ["--photos", str(tmp_path / "a"), "--photos", str(tmp_path / "b"), "--no-others", "--port", "0"]
    assert main(args) == 0
    (world,) = served
    assert world.classes == ["boat", "kite"]
    assert sorted(world.photo_files) == ["boat/a.jpg", "boat/b.jpg", "kite/b.jpg"]


def test_missing_photos_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--photos", str(tmp_path / "nope"), "--port", "0"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_taken_port_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 2
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


def test_bad_now_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "0", "--now", "yesterday"]) == 2
    assert "--now must be an ISO 8601 time" in capsys.readouterr().err


@pytest.mark.slow
def test_runs_in_the_foreground_and_stops_on_ctrl_c(photos: Path) -> None:
    env = {**os.environ, "PIXTAG_PHOTOS": str(photos), "PIXTAG_DEMO_TOKEN": "from-env-token",
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pixtag_demo", "--port", "0"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        output = "".join(lines)
        url = re.search(r"export PIXTAG_INSTANCE_URL=(http://127\.0\.0\.1:\d+) "
                        r"PIXTAG_ALLOW_PRIVATE_HOSTS=127\.0\.0\.1", output)
        assert url, output
        assert "PIXTAG_DEMO_TOKEN" in output and "from-env-token" not in output
        headers = {"Authorization": "Bearer from-env-token", "Accept": "application/json"}
        resp = requests.get(f"{url[1]}/api/v1/timelines/tag/cat", headers=headers, timeout=10)
        assert resp.status_code == 200 and len(resp.json()) == 20
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0
    assert "demo instance stopped" in rest


def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rate-429", "2"]) == 2
    assert "--rate-429" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "Usage: pixtag-demo" in capsys.readouterr().out


def test_pixtag_does_not_import_the_demo() -> None:
    """The layers stay one-way: nothing in pixtag/ imports pixtag_demo."""
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "pixtag").rglob("*.py")
                 if re.search(r"^\s*(from|import) pixtag_demo\b", p.read_text(), re.M)]
    assert offenders == []
