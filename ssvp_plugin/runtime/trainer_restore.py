"""How fairseq's trainer restores a checkpoint when a run resumes: two fixes.

1. Several ranks: fairseq reads the checkpoint on rank 0 and sends it to the others with
   ``torch.save``/``torch.load``, whose receiving end (torch >= 2.6: weights-only by default) refuses
   the ``DictConfig`` fairseq has put in the state ("Unsupported global: omegaconf.dictconfig.
   DictConfig"): every multi-GPU resume died. Each rank reads the checkpoint file itself instead
   (fairseq's own ``checkpoint.load_checkpoint_on_all_dp_ranks``), with the same weights-only loading
   as a single process.
2. fairseq replaces any error raised while the weights are loaded with "Cannot load model parameters
   from checkpoint ...; please ensure that the architectures match". The plugin's own refusals
   (a checkpoint trained with another vocabulary) say what is wrong and what to do: they are raised
   as they are.
"""

import logging

from fairseq.trainer import Trainer
from omegaconf import open_dict

from ..models.vocabulary_check import VocabularyMismatchError

logger = logging.getLogger(__name__)

# errors the plugin raises on purpose while weights load, whose message is the one to show
PLUGIN_LOAD_ERRORS = (VocabularyMismatchError,)

_fairseq_load_checkpoint = getattr(Trainer.load_checkpoint, "__wrapped__", Trainer.load_checkpoint)


def load_checkpoint(self, filename, *args, **kwargs):
    if self.data_parallel_world_size > 1 and not self.cfg.checkpoint.load_checkpoint_on_all_dp_ranks:
        with open_dict(self.cfg.checkpoint):
            self.cfg.checkpoint.load_checkpoint_on_all_dp_ranks = True
        logger.info("resuming on several ranks: each rank reads the checkpoint itself (ssvp_plugin/runtime/trainer_restore.py)")
    try:
        return _fairseq_load_checkpoint(self, filename, *args, **kwargs)
    except Exception as e:
        cause = e.__cause__ or e.__context__
        if isinstance(cause, PLUGIN_LOAD_ERRORS) and not isinstance(e, PLUGIN_LOAD_ERRORS):
            raise cause from None
        raise


load_checkpoint.__wrapped__ = _fairseq_load_checkpoint
Trainer.load_checkpoint = load_checkpoint
