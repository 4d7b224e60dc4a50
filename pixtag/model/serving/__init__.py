"""Serving: the registered model as an MLflow pyfunc that goes from images to tags.

- :mod:`.tagmodel`: :class:`~.tagmodel.TagModel`, what a request meets (decoding, sliding
  windows, the backbone call shared by concurrent requests, the tags above the threshold, the
  suggestion ledger);
- :mod:`.batching`: concurrent calls run as one batch;
- :mod:`.loader`: the pyfunc loader (``loader_module`` of every logged model; models logged
  before the rooms were made name ``pixtag.model.suggest``, which still loads them);
- :mod:`.packaging`: what a logged model holds (classifier arrays, backbone graph or weights,
  configuration, requirements, pixtag's own code);
- :mod:`.suggest`: ``pixtag suggest`` and ``pixtag serve`` on the champion;
- :mod:`.evaluate`: a model scored on labelled folders of photos.

Nothing here imports :mod:`pixtag.model.training` or :mod:`pixtag.model.promotion`.
"""
