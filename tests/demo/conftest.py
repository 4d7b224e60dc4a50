"""Fixtures for the demo-instance tests (world, demo, fresh_demo, make_client and client live in
tests/conftest.py, shared with the other stages' end-to-end tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.conftest import DEMO_TOKEN as TOKEN


@pytest.fixture(scope="session")
def http() -> Iterator[requests.Session]:
    """A requests session that sends the token and asks for JSON, like an API client."""
    with requests.Session() as session:
        session.headers.update({"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"})
        session.trust_env = False
        yield session
