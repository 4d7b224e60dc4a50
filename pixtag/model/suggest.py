"""The loader module path of models logged before the model layer was split into rooms.

Their ``MLmodel`` names ``loader_module: pixtag.model.suggest``; this keeps them loading (checked by
``tests/model/serving/test_suggest.py``). New models name :mod:`pixtag.model.serving.loader`.
"""

from pixtag.model.serving.loader import _load_pyfunc

__all__ = ["_load_pyfunc"]
