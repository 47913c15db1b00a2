"""How training runs survive faults: fairseq behaviour the plugin changes at import time.

fairseq imports the plugin (``--user-dir``) before it builds the task, restores a checkpoint or
starts the training loop, so each module here is applied to every ``fairseq-hydra-train``,
``fairseq-generate`` and Python API run that loads the plugin. Each module says what it changes
in fairseq and why.
"""

from . import checkpoint_files, distributed, skipped_batches, stop_saves, trainer_restore  # noqa: F401
