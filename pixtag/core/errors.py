"""The one base class of pixtag's expected failures: the CLI prints these without a traceback."""


class PixtagError(Exception):
    """An expected failure with a message meant for the user (no secrets, no stack needed)."""
