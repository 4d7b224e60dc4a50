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
