"""The classifier: the study's linear SVM on backbone features, and what turns its scores into tags.

- :mod:`.estimator`: :class:`~.estimator.LinearSVMClassifier`, a scikit-learn estimator with
  calibrated one-vs-rest probabilities;
- :mod:`.solver`: its L2-SVM solver (Newton's method, closed-form leave-one-out values, Platt);
- :mod:`.folds`: k fold fits and the refit sharing work (each fold starts from the refit's optimum);
- :mod:`.crossval`: grouped, stratified folds and :func:`~.crossval.cv_and_refit`;
- :mod:`.openset`: the background class, the closed-set prediction, the tags a photo gets and
  the suggestions' figures;
- :mod:`.thresholds`: **where the suggestion thresholds are chosen** (:func:`~.thresholds.pick_thresholds`:
  one per tag, on out-of-fold images).
"""
