"""Promotion: every candidate is registered; ``@champion`` moves only to a good enough one.

- :mod:`.gate`: **where the gate decides**, :func:`~.gate.decide`, a pure function of the figures
  (floors, the paired test against the champion, no ratchet down);
- :mod:`.versions`: the registry's versions, aliases and the runs behind them;
- :mod:`.rescoring`: the champion (and the best champion ever) scored on the candidate's own
  test images, from the feature cache;
- :mod:`.register`: the stage: register, gate, tag, card, alias (:func:`~.register.register`);
- :mod:`.approval`: a person's answer in Airflow (:func:`~.approval.record_approval`);
- :mod:`.card`: the model card every version carries as its description.
"""
