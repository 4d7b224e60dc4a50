"""The base layer: settings, errors, logging, storage and the dataset layout. Imports nothing else of pixtag."""
