"""The demo instance's exceptions: its own start-up errors and the API errors it renders.

The app (:mod:`pixtag_demo.app`) turns them into the responses Pixelfed sends: ``{"error": msg}``
with the status (:class:`ApiError`), a Laravel validation error (HTTP 422 ``{"message", "errors"}``,
:class:`Invalid`) and, for no or an unknown token, HTTP 500 JSON or a 302 to ``/login``
(:class:`Unauthenticated`).
"""

from __future__ import annotations

from pixtag.core.errors import PixtagError


class DemoError(PixtagError):
    """The demo instance cannot start (no photos, port in use, bad option)."""



class ApiError(Exception):
    """Rendered the way Pixelfed's exception handler does for JSON clients: ``{"error": msg}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class Unauthenticated(Exception):
    """No or unknown bearer token."""


class Invalid(Exception):
    """A Laravel validation error (HTTP 422 ``{"message", "errors"}``)."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name, self.message = name, message
