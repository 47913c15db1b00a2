"""A weighted ensemble for fairseq's stock SequenceGenerator, each model reading its own input.

``SequenceGenerator(models=WeightedEnsembleModel(...))`` uses this instead of fairseq's
``EnsembleModel`` (it accepts an instance). Two changes, nothing else:

- ``forward_encoder`` gives each model the inputs of its modality (video frames to ``mae_vit_slt``,
  feature sequences to ``feature_slt``; :func:`ssvp_plugin.data.joined_dataset.modality_input`).
- ``forward_decoder`` combines the models' next-token log-probabilities as a weighted mixture of
  their probabilities: ``log sum_i w_i p_i = logsumexp_i(log p_i + log w_i)``, weights normalised
  to sum 1. With equal weights it computes exactly fairseq's ``logsumexp_i(log p_i) - log N``.
  Attention (for ``--print-alignment``) is averaged with the same weights when every model attends
  over the same source length, and left out otherwise (a video and a landmark encoder have
  different time axes: there is no common alignment to average).
"""

import math
from typing import Dict, List, Optional, Sequence, Union

import torch
from fairseq.sequence_generator import EnsembleModel
from torch import Tensor

from ..data.joined_dataset import FEATURES, VIDEO, modality_input

# the model types an ensemble can route inputs to: fairseq model name -> the modality it reads
MODEL_MODALITIES: Dict[str, str] = {"mae_vit_slt": VIDEO, "feature_slt": FEATURES}


class EnsembleError(ValueError):
    """An ensemble that cannot be decoded: wrong weights, mismatched vocabularies, an unknown model type."""


def model_modality(model) -> Optional[str]:
    """The modality a built model reads (None: unknown; it gets the batch's primary input)."""
    from .feature_slt import FeatureSltModel
    from .mae_vit_slt import MaeVitSltModel

    if isinstance(model, FeatureSltModel):
        return FEATURES
    if isinstance(model, MaeVitSltModel):
        return VIDEO
    return None


def parse_ensemble_weights(weights, n_models: int, names: Optional[Sequence[str]] = None) -> Optional[List[float]]:
    """Weights normalised to sum 1, or None (equal weights, fairseq's average). ``weights``: None, a
    comma-separated string ("0.7,0.3") or a sequence of numbers, one per model in --path order."""
    if weights is None or (isinstance(weights, str) and not weights.strip()):
        return None
    if isinstance(weights, str):
        try:
            values = [float(w) for w in weights.split(",")]
        except ValueError:
            raise EnsembleError(f"--ensemble-weights {weights!r}: expected comma-separated numbers, e.g. 0.7,0.3") from None
    else:
        values = [float(w) for w in weights]
    if len(values) != n_models:
        which = f" ({', '.join(map(str, names))})" if names else ""
        raise EnsembleError(
            f"--ensemble-weights gives {len(values)} weight(s) for {n_models} model(s){which}: "
            f"give one weight per --path checkpoint, in the same order"
        )
    if not all(math.isfinite(w) and w > 0 for w in values):
        raise EnsembleError(
            f"--ensemble-weights {values}: every weight must be a positive number (leave a model out of --path "
            f"instead of giving it weight 0)"
        )
    total = sum(values)
    return [w / total for w in values]


class WeightedEnsembleModel(EnsembleModel):
    """fairseq's EnsembleModel with per-model inputs and weights (see the module doc).

    Args:
        models: the models, in --path order.
        weights: one per model (normalised here; a sequence or "0.7,0.3"), or None for equal weights.
        modalities: what each model reads (default: from its type, :func:`model_modality`).
    """

    def __init__(self, models, weights: Optional[Union[Sequence[float], str]] = None, modalities: Optional[Sequence[Optional[str]]] = None):
        super().__init__(models)
        normalised = parse_ensemble_weights(weights, len(models))
        self.weights = normalised or [1.0 / len(models)] * len(models)
        # equal weights take fairseq's own formula, so that they decode exactly as its EnsembleModel
        self.equal_weights = normalised is None or len(set(normalised)) == 1
        self.log_weights = [math.log(w) for w in self.weights]
        self.modalities = list(modalities) if modalities is not None else [model_modality(m) for m in models]
        if len(self.modalities) != len(models):
            raise EnsembleError(f"{len(self.modalities)} modalities given for {len(models)} models")

    def forward_encoder(self, net_input: Dict[str, Tensor]):
        if not self.has_encoder():
            return None
        return [
            model.encoder.forward_torchscript(modality_input(net_input, modality))
            for model, modality in zip(self.models, self.modalities)
        ]

    def _step(self, i: int, tokens, encoder_out, incremental_state, temperature: float):
        """Model i's log-probabilities of the next token (B x V) and its last-layer attention (or None):
        fairseq's EnsembleModel.forward_decoder for one model, unchanged."""
        model = self.models[i]
        if self.has_incremental_states():
            decoder_out = model.decoder.forward(tokens, encoder_out=encoder_out, incremental_state=incremental_state)
        elif hasattr(model, "decoder"):
            decoder_out = model.decoder.forward(tokens, encoder_out=encoder_out)
        else:
            decoder_out = model.forward(tokens)
        attn: Optional[Tensor] = None
        decoder_len = len(decoder_out)
        if decoder_len > 1 and decoder_out[1] is not None:
            if isinstance(decoder_out[1], Tensor):
                attn = decoder_out[1]
            else:
                attn_holder = decoder_out[1]["attn"]
                if isinstance(attn_holder, Tensor):
                    attn = attn_holder
                elif attn_holder is not None:
                    attn = attn_holder[0]
            if attn is not None:
                attn = attn[:, -1, :]
        decoder_out_tuple = (decoder_out[0][:, -1:, :].div_(temperature), None if decoder_len <= 1 else decoder_out[1])
        probs = model.get_normalized_probs(decoder_out_tuple, log_probs=True, sample=None)
        return probs[:, -1, :], attn

    def forward_decoder(
        self,
        tokens,
        encoder_outs: List[Dict[str, List[Tensor]]],
        incremental_states: List[Dict[str, Dict[str, Optional[Tensor]]]],
        temperature: float = 1.0,
    ):
        log_probs, attns = [], []
        for i in range(self.models_size):
            encoder_out = encoder_outs[i] if self.has_encoder() else None
            state = incremental_states[i] if self.has_incremental_states() else None
            probs, attn = self._step(i, tokens, encoder_out, state, temperature)
            if self.models_size == 1:
                return probs, attn
            log_probs.append(probs)
            attns.append(attn)
        stacked = torch.stack(log_probs, dim=0)
        if self.equal_weights:
            combined = torch.logsumexp(stacked, dim=0) - math.log(self.models_size)
        else:
            log_w = torch.tensor(self.log_weights, dtype=stacked.dtype, device=stacked.device)
            combined = torch.logsumexp(stacked + log_w.view(-1, 1, 1), dim=0)
        return combined, self._combine_attention(attns)

    def _combine_attention(self, attns: List[Optional[Tensor]]) -> Optional[Tensor]:
        present = [(w, a) for w, a in zip(self.weights, attns) if a is not None]
        if not present or len({tuple(a.shape) for _, a in present}) > 1:
            return None  # different source lengths (video vs landmarks): no common alignment
        if self.equal_weights:  # fairseq's order of operations: sum in place, then divide by N
            avg = present[0][1]
            for _, a in present[1:]:
                avg.add_(a)
            return avg.div_(self.models_size)
        return sum(w * a for w, a in present)
