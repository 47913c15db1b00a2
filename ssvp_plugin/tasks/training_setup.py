"""Checks and optimizer steps shared by the training tasks (model settings that need the optimizer's help).

The trainer hands the task its model wrapped for distributed training (fairseq's
``ModuleProxyWrapper`` around torch's or fairseq's DDP); everything here looks through the
wrappers at the plugin's model, and at the wrapper only to learn what it does to gradients.
"""

import logging

import torch

from ..models.param_groups import groups_without_encoder, inner_optimizer, zero_fills_missing_grads
from ..models.pretrained_encoder import PretrainedEncoderError

logger = logging.getLogger(__name__)

COMPOSITE_HINT = (
    "use optimizer._name=composite with dynamic_groups=true, groups 'default' and 'no_decay', and "
    "lr_scheduler._name=pass_through (see configs/finetune_base.yaml)"
)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The plugin's model inside fairseq's distributed wrappers (ModuleProxyWrapper -> DDP -> model)."""
    while isinstance(getattr(model, "module", None), torch.nn.Module):
        model = model.module
    return model


def wrapper_zero_fills_missing_grads(model: torch.nn.Module) -> bool:
    """fairseq's ``legacy_ddp`` all-reduces a zero gradient for every parameter that got none."""
    from fairseq.distributed import LegacyDistributedDataParallel

    while True:
        if isinstance(model, LegacyDistributedDataParallel):
            return True
        inner = getattr(model, "module", None)
        if not isinstance(inner, torch.nn.Module):
            return False
        model = inner


def check_training_setup(model, optimizer) -> None:
    """Run at the first training step: stop with a clear message instead of training silently wrong."""
    wrapped, model = model, unwrap_model(model)
    pending = getattr(model, "pending_pretrained_encoder", None)
    if pending:
        raise PretrainedEncoderError(
            f"{pending}: pretrained checkpoint not found (model.pretrained_encoder), and no training checkpoint "
            f"was restored that would replace it"
        )
    zero_fills = zero_fills_missing_grads(optimizer) or wrapper_zero_fills_missing_grads(wrapped)
    problems = model.optimizer_problems(optimizer, zero_fills) if hasattr(model, "optimizer_problems") else []
    if problems:
        raise ValueError(f"the optimizer cannot apply {'; '.join(problems)}: {COMPOSITE_HINT}")


def step_optimizer(optimizer, model, update_num: int) -> None:
    """``optimizer.step()``, leaving a frozen encoder's groups alone.

    Not stepping them at all is the only safe way: fairseq's fp16/bf16 optimizer and its
    ``legacy_ddp`` backend give parameters without gradients zero gradients, and Adam's weight
    decay (and momentum) would then still change the "frozen" weights.
    """
    encoder = getattr(unwrap_model(model), "encoder", None)
    composite = getattr(inner_optimizer(optimizer), "supports_groups", False)
    if encoder is not None and hasattr(encoder, "frozen") and encoder.frozen(update_num) and composite:
        optimizer.step(groups=set(groups_without_encoder(optimizer)))
    else:
        optimizer.step()


class RankBatchesCheck:
    """Task mixin: in distributed training, every rank must get real training batches.

    fairseq deals each epoch's batches out to the ranks and pads a rank that runs short with
    empty batches. With fewer batches than ranks, some ranks would train on nothing for the whole
    run while looking busy: stop at the start instead, with the numbers to change.
    """

    def get_batch_iterator(self, dataset, *args, **kwargs):
        itr = super().get_batch_iterator(dataset, *args, **kwargs)
        num_shards = kwargs.get("num_shards", 1)
        if num_shards > 1 and getattr(dataset, "train", False) and hasattr(itr, "frozen_batches"):
            n = len(itr.frozen_batches)
            split = getattr(dataset, "split", "training split")
            if n < num_shards:
                raise ValueError(
                    f"{split}: {n} batch(es) per epoch for {num_shards} ranks (distributed_training.distributed_world_size): "
                    f"{num_shards - n} rank(s) would get no batch at all and train on nothing. Use fewer ranks, smaller "
                    f"batches (dataset.max_tokens, dataset.batch_size), or more training data"
                )
            if kwargs.get("shard_id", 0) == 0:
                logger.info(f"{split}: {n} batches per epoch, {-(-n // num_shards)} per rank over {num_shards} ranks")
        return itr
