"""Distributed training runs on fairseq's own engine; two things its default DDP backend needs here.

1. fairseq's ``pytorch_ddp`` backend (``c10d``, the default, and what every GPU run uses) wraps the
model in torch's ``DistributedDataParallel`` with ``device_ids=[device_id]``, which torch refuses
for a model on the CPU ("device_ids ... only work with ... GPU modules"). Two CPU ranks over gloo
are how this project tests distributed training on machines without GPUs, and they must take the
same path as GPU runs (bucketed gradient all-reduce, unused-parameter detection), not only
fairseq's ``legacy_ddp``. So, for a model whose parameters are all on the CPU, the device ids are
dropped, which is torch's documented form for CPU modules. GPU runs are unchanged.

2. A model that leaves parameters without gradients in some updates (a video encoder frozen for
   the first ``model.freeze_encoder_updates``) stops torch's DDP at the second update ("Expected to
   have finished reduction in the prior iteration...") unless ``find_unused_parameters`` is on. The
   model says so (``unused_parameters_reason()``) and the wrapper turns it on, with a log line,
   instead of every such config needing ``distributed_training.find_unused_parameters=true``.

Resuming on several ranks: see :mod:`ssvp_plugin.runtime.trainer_restore`.
"""

import logging


import torch.distributed as dist
from fairseq.models import distributed_fairseq_model
from torch.nn.parallel import DistributedDataParallel


logger = logging.getLogger(__name__)


class PluginDistributedDataParallel(DistributedDataParallel):
    """torch's DDP as fairseq builds it, for CPU models too, detecting unused parameters when the model needs it."""

    def __init__(self, module, device_ids=None, output_device=None, **kwargs):
        if all(p.device.type == "cpu" for p in module.parameters()):
            device_ids = output_device = None
        reason = getattr(module, "unused_parameters_reason", lambda: None)()
        if reason and not kwargs.get("find_unused_parameters"):
            logger.info(f"DDP: find_unused_parameters turned on: {reason}")
            kwargs["find_unused_parameters"] = True
        super().__init__(module, device_ids=device_ids, output_device=output_device, **kwargs)


if distributed_fairseq_model.DistributedDataParallel is DistributedDataParallel:
    distributed_fairseq_model.DistributedDataParallel = PluginDistributedDataParallel


def rank() -> int:
    """This process's rank in the training job (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
