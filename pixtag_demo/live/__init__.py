"""The instance's writable side: what it gains while it runs, over the read-only world.

:mod:`~pixtag_demo.live.store` (:class:`~pixtag_demo.live.store.Live`: accounts, uploads,
statuses, notifications, direct messages, follows), :mod:`~pixtag_demo.live.feeds` (timelines,
hashtags and contexts of world and live statuses together), :mod:`~pixtag_demo.live.text`
(hashtags, mentions and HTML as Pixelfed's lexer reads a status), :mod:`~pixtag_demo.live.uploads`
(MIME sniffing, size caps) and :mod:`~pixtag_demo.live.entities`.
"""
