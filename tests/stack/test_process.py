"""The instance a local stack reads (pixtag.stack.process): the configured one, or the local
instance started on the default photo folders, one ``--photos`` per folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pixtag.core.config import load_settings
from pixtag.stack import process
from pixtag.stack.process import Layout, StackError, choose_instance, demo_photos, start_demo


def test_the_local_instance_gets_every_photo_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    layout = Layout(tmp_path / "project")
    monkeypatch.setenv("PIXTAG_PHOTOS", os.pathsep.join([str(a), str(b)]))
    assert demo_photos(layout) == [a, b]
    instance = choose_instance(load_settings(), layout, None, 8765)
    assert instance.demo and instance.photos == (a, b)
    assert choose_instance(load_settings(), layout, a, 8765).photos == (a,)  # --photos DIR
    started = []
    monkeypatch.setattr(process, "start_process", lambda layout, name, argv, env: started.append(argv))
    start_demo(layout, instance, 8765)
    (argv,) = started
    assert argv[1:] == ["--photos", str(a), "--photos", str(b), "--port", "8765"]


def test_the_default_folders_are_photos5_and_photos_more(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIXTAG_PHOTOS", raising=False)
    layout = Layout(tmp_path / "project")
    shared = tmp_path / "shared" / "data"
    assert demo_photos(layout) == [shared / "photos5"]  # none there: the error names photos5
    with pytest.raises(StackError, match=f"no photos at {shared / 'photos5'}: set PIXTAG_INSTANCE_URL"):
        choose_instance(load_settings(), layout, None, 8765)
    (shared / "photos5").mkdir(parents=True)
    assert demo_photos(layout) == [shared / "photos5"]
    (shared / "photos_more").mkdir()
    assert demo_photos(layout) == [shared / "photos5", shared / "photos_more"]
    assert choose_instance(load_settings(), layout, None, 8765).photos == (shared / "photos5", shared / "photos_more")


def test_the_local_instance_has_a_bot_account_with_a_token_of_its_own(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "photos").mkdir()
    layout = Layout(tmp_path / "project")
    instance = choose_instance(load_settings(), layout, tmp_path / "photos", 8765)
    assert instance.bot_token and instance.bot_token != instance.token
    assert instance.bot_token not in repr(instance)
    assert (layout.run_dir / process.DEMO_BOT_TOKEN_FILE).stat().st_mode & 0o077 == 0
    assert choose_instance(load_settings(), layout, tmp_path / "photos", 8765).bot_token == instance.bot_token
    started = []
    monkeypatch.setattr(process, "start_process", lambda layout, name, argv, env: started.append((argv, env)))
    start_demo(layout, instance, 8765)
    ((argv, env),) = started
    assert env["PIXTAG_DEMO_BOT_TOKEN"] == instance.bot_token and instance.bot_token not in " ".join(argv)
    configured = load_settings(instance_url="https://pixelfed.example", token="reader-token-1234")
    assert choose_instance(configured, layout, None, 8765).bot_token is None  # no bot unless configured
    configured = configured.model_copy(update={"bot_token": load_settings(bot_token="bot-token-5678").bot_token})
    assert choose_instance(configured, layout, None, 8765).bot_token == "bot-token-5678"


@pytest.mark.slow
def test_the_stack_starts_and_stops_the_bot(world: object, tmp_path: Path) -> None:
    """``start_bot`` runs ``pixtag bot`` in its own process group (its token by environment only);
    ``stop_all`` stops it with the rest."""
    import time

    from pixtag.stack.process import Instance, start_bot, stop_all
    from pixtag_demo.app import DemoInstance
    from tests.conftest import DEMO_TOKEN, REPO

    layout = Layout(REPO, var=tmp_path / "var")
    with DemoInstance(world=world, token=DEMO_TOKEN, bot_token="stack-bot-token-91x") as inst:  # type: ignore[arg-type]
        instance = Instance(inst.url, DEMO_TOKEN, demo=False, bot_token="stack-bot-token-91x")
        env = {"PIXTAG_MLFLOW_URI": f"sqlite:///{tmp_path / 'none.db'}", "PIXTAG_STORAGE": str(tmp_path / "store"),
               "PIXTAG_ALLOW_PRIVATE_HOSTS": "127.0.0.1", "PIXTAG_BOT_POLL_INTERVAL": "0.5",
               "PIXTAG_BOT_CHAMPION_CHECK": "1", "PYTHONPATH": str(REPO)}
        assert start_bot(layout, instance, env)
        pid = int(layout.pidfile("bot").read_text())
        assert b"stack-bot-token-91x" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        log = layout.logfile("bot")
        deadline = time.monotonic() + 120
        while "mentions wait until the first model is promoted" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
            assert Path(f"/proc/{pid}").exists(), log.read_text()
            time.sleep(0.5)
        assert stop_all(layout) == ["bot"]
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        assert "stack-bot-token-91x" not in log.read_text()
    assert not start_bot(layout, Instance("https://x.example", "t", demo=False), env)  # no bot token: no bot
