"""pixtag: keep a photo hashtag-suggestion model fresh for a Pixelfed instance."""

__version__ = "0.1.0"
