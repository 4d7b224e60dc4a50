"""Fixtures of the tag-pipeline tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_python(code: str, *args: str, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter of this venv (NLTK state is per process)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, check=False)


@pytest.fixture
def empty_nltk_dir(tmp_path: Path) -> Path:
    path = tmp_path / "empty_nltk_data"
    path.mkdir()
    return path
