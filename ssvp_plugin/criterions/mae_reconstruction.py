"""Criterion ``mae_reconstruction``: mean squared error on the hidden tubelet patches."""

from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass


@register_criterion("mae_reconstruction", dataclass=FairseqDataclass)
class MaeReconstructionCriterion(FairseqCriterion):
    """Sum of per-patch MSE over hidden, non-padding patches; ``sample_size`` is their count,
    so the logged ``loss`` is the mean error per hidden patch (in per-patch normalised
    pixel units with ``norm_pix_loss``: ~1.0 means predicting each patch's mean).
    ``hidden_share`` is the share of (non-padding) tokens the model had to predict."""

    def forward(self, model, sample, reduce=True):
        out = model(**sample["net_input"])
        per_patch = (out["pred"].float() - out["target"].float()).pow(2).mean(dim=-1)  # (B, N)
        weights = out["loss_mask"].to(per_patch.dtype)
        loss = (per_patch * weights).sum()
        n_hidden = int(weights.sum().item())
        padding = out.get("token_padding")
        n_tokens = out["mask"].numel() - (int(padding.sum().item()) if padding is not None else 0)
        logging_output = {
            "loss": loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"],
            "sample_size": n_hidden,
            "n_hidden": n_hidden,
            "n_tokens": n_tokens,  # clip tokens that are not padding
        }
        return loss, max(n_hidden, 1), logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        loss = sum(log.get("loss", 0.0) for log in logging_outputs)
        n_hidden = sum(log.get("n_hidden", 0) for log in logging_outputs)
        n_tokens = sum(log.get("n_tokens", 0) for log in logging_outputs)
        metrics.log_scalar("loss", float(loss) / max(n_hidden, 1), n_hidden, round=4)
        metrics.log_scalar("hidden_share", n_hidden / max(n_tokens, 1), n_tokens, round=3)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
