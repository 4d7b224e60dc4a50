"""The ``pixtag`` command: every sub-command, on top of everything else."""
