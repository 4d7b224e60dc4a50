"""Crash points for the bot: ``python -m tests.reliability.bot_crashpoint N pixtag-args...`` runs a
``pixtag`` command (``bot --once``) and SIGKILLs it at point N (0: never). The points are every
write of the bot's state, and the moments just before and just after each answer it posts (a
comment or a direct message): together, every step between reading a notification and recording
its answer."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any


def main(argv: list[str]) -> None:
    target, args = int(argv[0]), argv[1:]
    count = 0

    def point(name: str) -> None:
        nonlocal count
        count += 1
        if count == target:
            sys.stderr.write(f"botcrash: SIGKILL at point {count} ({name})\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    def around(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*a: Any, **kw: Any) -> Any:
            point("before post")
            result = func(*a, **kw)
            point("after post")
            return result
        return wrapper

    def before(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*a: Any, **kw: Any) -> Any:
            point("state write")
            return func(*a, **kw)
        return wrapper

    from pixtag.bot.state import BotState
    from pixtag.cli.app import main as pixtag
    from pixtag.sources.bot_api import BotClient

    BotState.save = before(BotState.save)  # type: ignore[method-assign]
    BotClient.reply = around(BotClient.reply)  # type: ignore[method-assign]
    BotClient.send_dm = around(BotClient.send_dm)  # type: ignore[method-assign]
    pixtag(args)


if __name__ == "__main__":
    main(sys.argv[1:])
