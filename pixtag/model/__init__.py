"""Backbones and their runtimes, features, the classifier, training, the promotion gate,
evaluation, the served model."""
