"""Checks and optimizer steps shared by the training tasks (model settings that need the optimizer's help)."""

from ..models.param_groups import groups_without_encoder, zero_fills_missing_grads
from ..models.pretrained_encoder import PretrainedEncoderError

COMPOSITE_HINT = (
    "use optimizer._name=composite with dynamic_groups=true, groups 'default' and 'no_decay', and "
    "lr_scheduler._name=pass_through (see configs/finetune_base.yaml)"
)


def check_training_setup(model, optimizer) -> None:
    """Run at the first training step: stop with a clear message instead of training silently wrong."""
    pending = getattr(model, "pending_pretrained_encoder", None)
    if pending:
        raise PretrainedEncoderError(
            f"{pending}: pretrained checkpoint not found (model.pretrained_encoder), and no training checkpoint "
            f"was restored that would replace it"
        )
    problems = model.optimizer_problems(optimizer) if hasattr(model, "optimizer_problems") else []
    if problems:
        raise ValueError(f"the optimizer cannot apply {'; '.join(problems)}: {COMPOSITE_HINT}")


def step_optimizer(optimizer, model, update_num: int) -> None:
    """``optimizer.step()``, leaving a frozen encoder's groups alone where the optimizer would change them."""
    encoder = getattr(model, "encoder", None)
    if encoder is not None and hasattr(encoder, "frozen") and encoder.frozen(update_num) and zero_fills_missing_grads(optimizer):
        optimizer.step(groups=set(groups_without_encoder(optimizer)))
    else:
        optimizer.step()
