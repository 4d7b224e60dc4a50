"""A local, deterministic, Pixelfed-compatible instance for the demo and the offline tests.

:mod:`pixtag_demo.world` builds the instance's content (accounts, posts, media, hashtags and
the planted traps) from a folder of labelled photos; :mod:`pixtag_demo.app` serves it over the
Pixelfed API (:func:`~pixtag_demo.app.create_app`, :class:`~pixtag_demo.app.DemoInstance`) with
the routes of :mod:`pixtag_demo.routes`, the OAuth flows of :mod:`pixtag_demo.oauth` and the
faults of :mod:`pixtag_demo.faults`; ``pixtag-demo`` (:mod:`pixtag_demo.cli`) runs it in the
foreground. It is writable as Pixelfed is (uploads, statuses, mentions, notifications, direct
messages, a bot account): what is written lives in :mod:`pixtag_demo.live`, over the unchanged
world. Nothing in ``pixtag`` imports this package.
"""
