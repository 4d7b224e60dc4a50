"""Hashtags to classes: NLTK data, normalisation, trending counts, class selection, drift."""
