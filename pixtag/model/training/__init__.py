"""Training: the study's protocol, run and logged to MLflow.

- :mod:`.protocol`: the labelled rows, their features and the grouped train/test split;
- :mod:`.fit`: :func:`~.fit.fit_and_score`, cross-validation, refit and test scoring, shared by
  ``train`` and ``compare``;
- :mod:`.statistics`: the tests between backbones (the study's Mann-Whitney U, a paired test);
- :mod:`.figures`: confusion matrices, fold accuracies, t-SNE, the study's figures;
- :mod:`.runs`: what a candidate's MLflow run holds, and its reuse key;
- :mod:`.train`: the stages, :func:`~.train.train` and :func:`~.train.compare`.
"""
