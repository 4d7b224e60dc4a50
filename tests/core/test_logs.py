import logging

import pytest

from pixtag.core import logs
from pixtag.core.config import load_settings


def test_registered_token_never_reaches_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    load_settings(token="sekrit-token-9f8e7d", instance_url="https://pixel.example")
    log = logs.get_logger("pixtag.test")
    with caplog.at_level(logging.DEBUG, logger="pixtag.test"):
        log.debug("header Authorization: Bearer %s", "sekrit-token-9f8e7d")
        try:
            raise RuntimeError("failed with sekrit-token-9f8e7d inside")
        except RuntimeError:
            log.exception("boom")
    text = caplog.text + "".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "sekrit-token-9f8e7d" not in text
    assert "Bearer ***" in text


def test_redact_replaces_every_occurrence() -> None:
    logs.register_secret("abcd1234wxyz")
    assert logs.redact("x abcd1234wxyz y abcd1234wxyz") == "x *** y ***"
