"""The demo instance's content, built deterministically from a folder of labelled photos.

:mod:`~pixtag_demo.world.entities` (accounts, media, posts, hashtags, traps, snowflakes),
:mod:`~pixtag_demo.world.model` (:class:`World` and its queries),
:mod:`~pixtag_demo.world.builder` (:func:`build_world`) with its helpers
(:mod:`~pixtag_demo.world.vocab`, :mod:`~pixtag_demo.world.traps`,
:mod:`~pixtag_demo.world.finalise`, :mod:`~pixtag_demo.world.images`).
"""
