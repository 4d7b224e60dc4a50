"""Backbones: ImageNet feature extractors, one factory where the name is the configuration.

- :mod:`.weights`: where a backbone's weights come from (a local file, the lite0 package, the
  hub), offline detection, the feature-cache key of a backbone, ``auto`` resolved;
- :mod:`.pytorch`: the timm model on PyTorch (:func:`~.pytorch.create_backbone`);
- :mod:`.onnx_runtime`: the same model exported to ONNX and run by ONNX Runtime on a CPU;
- :mod:`.factory`: :func:`~.factory.create_extractor`, the one place that picks the runtime.

The names pixtag knows are :data:`pixtag.core.config.BACKBONES` (the settings validator and the
DAG's Params read the same list).
"""
