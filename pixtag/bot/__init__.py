"""The bot (``pixtag bot``): an opt-in account on the instance that answers a mention in a post with
photos by suggesting hashtags for them, with the current champion.

Modules: :mod:`~pixtag.bot.inbox` (the notifications, paged without gaps or repeats),
:mod:`~pixtag.bot.consent` (who may ask about what), :mod:`~pixtag.bot.photos` (the photos, read
into memory only, and the model's suggestions), :mod:`~pixtag.bot.answer` (the text),
:mod:`~pixtag.bot.deliver` (one answer per mention, across crashes and retries),
:mod:`~pixtag.bot.state` (cursor, answered mentions and per-account counts in pixtag's storage),
:mod:`~pixtag.bot.champion` (the ``@champion`` alias, followed without a restart) and
:mod:`~pixtag.bot.run` (the loop and ``--once``). It uses ``sources``, ``data``, ``model`` and
``core``; nothing below imports it.
"""
