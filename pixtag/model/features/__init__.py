"""Features: backbone vectors of a dataset's images, cached per (backbone, image sha256).

- :mod:`.cache`: the cache in the dataset's storage (shards of vectors, read without loading all);
- :mod:`.decoding`: images decoded ahead of the backbone (DataLoader workers, or threads);
- :mod:`.compute`: the stage (:func:`~.compute.features`), computing only what the cache lacks.
"""
