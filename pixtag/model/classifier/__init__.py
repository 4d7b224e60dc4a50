"""The classifier: the study's linear SVM on backbone features, and what turns its scores into tags.

- :mod:`.estimator`: :class:`~.estimator.LinearSVMClassifier`, a scikit-learn estimator with
  calibrated one-vs-rest probabilities;
- :mod:`.solver`: its L2-SVM solver (Newton's method, closed-form leave-one-out values, Platt);
- :mod:`.folds`: k fold fits and the refit sharing work (each fold starts from the refit's optimum);
- :mod:`.crossval`: grouped, stratified folds and :func:`~.crossval.cv_and_refit`;
- :mod:`.openset`: the background class, **where the suggestion threshold is chosen**
  (:func:`~.openset.pick_thresholds`: one per tag), the closed-set prediction and the suggestions' figures.
"""
