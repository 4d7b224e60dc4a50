"""The real local stack (MLflow, the local instance, ``airflow standalone``) in a tmp folder, and a
headless Chromium; both must leave no process behind. On failure the page (DOM + screenshot)
and the services' logs are kept in ``test-artifacts/ui/``."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.browser import Page, chromium

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
# Small and fast: four automatic classes (bird, car, dog, cat on the local instance), 30 images each.
RUN_SETTINGS = {
    "PIXTAG_PER_CLASS": "30",
    "PIXTAG_MIN_PER_CLASS": "25",
    "PIXTAG_MAX_CLASSES": "4",
    "PIXTAG_BACKBONE": "efficientnet_lite0",
    "PIXTAG_ACCURACY_FLOOR": "0.8",
    "PIXTAG_REQUEST_RATE": "100",
    # a person in the loop: the run waits for a review and for the promotion's approval
    "PIXTAG_REVIEW": "new_images",
    "PIXTAG_PROMOTION": "human",
}
MARKER = "PIXTAG_UI_TEST_MARKER"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's report on the item, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "report_call", None)
    return report is None or report.failed


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports nothing listens on (on 127.0.0.1) right now."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def survivors(needle: str) -> list[str]:
    """Other processes whose command line or environment mentions ``needle``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if needle.encode() in cmdline or needle.encode() in environ:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{proc.name}: {command[:160]}")
    return found


def keep_logs(run_dir: Path, artifacts: Path) -> None:
    """The services' logs, for CI, minus the line where Airflow prints the admin password."""
    for log in run_dir.glob("*.log"):
        lines = log.read_text(errors="replace").splitlines(keepends=True)
        (artifacts / log.name).write_text("".join(line for line in lines if "Password for user" not in line))


@pytest.fixture
def artifacts() -> Path:
    """``test-artifacts/ui/``, emptied of an earlier run's files."""
    if ARTIFACTS.is_dir():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture
def airflow_stack(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                  photos: Path, artifacts: Path) -> Iterator[Any]:
    """``pixtag.stack.local.stack`` on free ports with all state under tmp (the developer's var/ is
    untouched); afterwards no process that inherited this test's marker may be left."""
    from pixtag.core.config import load_settings
    from pixtag.stack.local import stack
    from pixtag.stack.process import Layout, Ports

    marker = f"pixtag-ui-{uuid.uuid4().hex}"
    monkeypatch.setenv(MARKER, marker)  # every process the stack starts inherits it
    for key, value in RUN_SETTINGS.items():
        monkeypatch.setenv(key, value)
    layout = Layout(project=REPO, var=tmp_path / "var")
    try:
        with stack(load_settings(), photos=photos, ports=Ports(*free_ports(3)), layout=layout,
                   echo=lambda line: print(line, flush=True)) as running:
            yield running
    finally:
        if _failed(request) and layout.run_dir.is_dir():
            keep_logs(layout.run_dir, artifacts)
        left = survivors(marker)
        assert not left, "processes of the stack survived it:\n" + "\n".join(left)


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path, artifacts: Path) -> Iterator[Page]:
    """Headless Chromium with a fresh profile; every Chromium process is gone afterwards."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    with chromium(profile) as driver:
        page = Page(driver, artifacts)
        yield page
        if _failed(request):
            page.shot("failure")
            page.dump("failure")
    left = survivors(str(profile))
    assert not left, "Chromium processes survived driver.quit():\n" + "\n".join(left)
