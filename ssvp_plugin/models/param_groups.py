"""Optimizer parameter groups of the translation model, for fairseq's ``composite`` optimizer.

fairseq's composite optimizer (``dynamic_groups: true``) builds one optimizer
per distinct ``param.param_group`` / ``param.optim_overrides``. This module
sets those attributes for three things plain Adam cannot do:

- **selective weight decay**: norms, biases, position tables and tokens go to
  the ``no_decay`` group (configured with ``weight_decay: 0``), as MAE / BEiT
  fine-tuning does;
- **layer-wise lr decay**: each ViT depth gets its ``lr_scale``;
- **a truly frozen encoder**: the ViT's parameters are marked, so that while
  it is frozen its optimizer groups are not stepped at all. Merely cutting
  its gradients is not enough under fairseq's fp16/bf16 optimizer, which
  fills missing gradients with zeros: Adam's weight decay would still shrink
  the "frozen" weights.
"""

from typing import Dict, Iterable, List, Optional

import torch

NO_DECAY_GROUP = "no_decay"
# key in a parameter's optim_overrides marking the video encoder's groups (composite ignores it)
ENCODER_MARK = "video_encoder"
_NO_DECAY_NAMES = ("pos_embed", "cls_token", "mask_token")


def is_no_decay(name: str, param: torch.Tensor) -> bool:
    """Norm weights and biases (1-D), position tables and learned tokens."""
    return param.ndim <= 1 or any(key in name.rsplit(".", 1)[-1] for key in _NO_DECAY_NAMES)


def assign_param_groups(
    model: torch.nn.Module, encoder: torch.nn.Module, selective_weight_decay: bool,
    encoder_lr_scales: Optional[Dict[str, float]], mark_encoder: bool,
) -> None:
    """Tag ``model``'s parameters for the composite optimizer (see the module doc)."""
    if selective_weight_decay:
        for name, p in model.named_parameters():
            if is_no_decay(name, p):
                p.param_group = NO_DECAY_GROUP
    if encoder_lr_scales is not None or mark_encoder:
        for name, p in encoder.named_parameters():
            scale = 1.0 if encoder_lr_scales is None else encoder_lr_scales[name]
            p.optim_overrides = {"optimizer": {"lr_scale": scale}, ENCODER_MARK: True}


def inner_optimizer(optimizer):
    """The optimizer inside fairseq's fp16 / bf16 / amp wrappers."""
    return getattr(optimizer, "fp32_optimizer", None) or getattr(optimizer, "wrapped_optimizer", None) or optimizer


def zero_fills_missing_grads(optimizer) -> bool:
    """fairseq's FP16Optimizer (fp16 and bf16, not memory-efficient) turns a missing gradient into zeros."""
    from fairseq.optim.fp16_optimizer import FP16Optimizer

    return isinstance(optimizer, FP16Optimizer)


def groups_without_encoder(optimizer) -> List[str]:
    """Names of the composite optimizer's groups that hold none of the video encoder's parameters."""
    inner = inner_optimizer(optimizer)
    names = []
    for name, opt in inner.optimizers.items():
        params: Iterable[torch.Tensor] = (p for g in opt.param_groups for p in g["params"])
        if not any(getattr(p, "optim_overrides", {}).get(ENCODER_MARK) for p in params):
            names.append(name)
    return names


def weight_decays(optimizer) -> List[float]:
    return [g.get("weight_decay", 0.0) for g in inner_optimizer(optimizer).param_groups]
