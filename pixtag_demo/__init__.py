"""A local, deterministic, Pixelfed-compatible instance for the demo and the offline tests.

:mod:`pixtag_demo.world` builds the instance's content (accounts, posts, media, hashtags and
the planted traps) from a folder of labelled photos; :mod:`pixtag_demo.server` serves it over
the Pixelfed API (``pixtag demo-instance``, :class:`~pixtag_demo.server.DemoInstance`).
"""
