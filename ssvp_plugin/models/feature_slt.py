"""Model ``feature_slt``: a Transformer over per-frame feature vectors and fairseq's stock decoder.

The text model of two-stage translation: input (B, T, D) features (a frozen video encoder's,
keypoints, any one vector per time step) -> dropout -> linear projection to the model width ->
sinusoidal (or learned) positions -> pre-norm fairseq ``TransformerEncoderLayer`` stack -> final
layer norm; the decoder is ``mae_vit_slt``'s (``build_decoder``: fairseq's ``TransformerDecoder``).

Presets: ``ssvp_slt_fairseq`` is SSVP-SLT's fairseq setting after Tarrés et al. 2023 (6 encoder
and 3 decoder layers, width 256, 4 heads, FFN 1024, dropout 0.3); ``tiny`` is for CPU tests and
the synthetic corpus; ``landmarks_base`` the keypoint baseline (4 encoder and 3 decoder layers,
width 384, 6 heads, FFN 1536, dropout 0.3). Any size field set explicitly overrides the preset;
checkpoints store the preset name and the overrides, so never change an existing preset's values:
add a new one.
``input_dim`` (D) comes from the task's feature store when the model is first built: the task
``sign_features`` records it in the model settings (and so in checkpoints), and a checkpoint then
refuses a store of another D.
"""

import logging
from argparse import Namespace
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.models import FairseqEncoder, FairseqEncoderDecoderModel, register_model
from fairseq.models.transformer import base_architecture as transformer_base_architecture
from fairseq.modules import FairseqDropout, LayerNorm, PositionalEmbedding, TransformerEncoderLayer
from omegaconf import II

from .fairseq_glue import register_preset_architectures, reorder_encoder_out
from .mae_vit_slt import build_decoder
from .video_encoder_config import resolve_preset as _resolve_preset
from .vocabulary_check import attach_vocabulary, check_loaded_vocabulary

logger = logging.getLogger(__name__)

# Checkpoints store only the preset name: never change an existing preset's values.
PRESETS: Dict[str, Dict[str, object]] = {
    "ssvp_slt_fairseq": dict(
        encoder_embed_dim=256, encoder_ffn_embed_dim=1024, encoder_layers=6, encoder_attention_heads=4,
        decoder_embed_dim=256, decoder_ffn_embed_dim=1024, decoder_layers=3, decoder_attention_heads=4, dropout=0.3,
    ),
    "tiny": dict(
        encoder_embed_dim=64, encoder_ffn_embed_dim=256, encoder_layers=2, encoder_attention_heads=4,
        decoder_embed_dim=64, decoder_ffn_embed_dim=256, decoder_layers=2, decoder_attention_heads=4, dropout=0.1,
    ),
    # the landmark baseline (OpenPose keypoints, docs/landmarks.md): a few Transformer layers a little wider than
    # SSVP-SLT's text model, since raw keypoints carry no encoder's abstraction; not tuned (no How2Sign keypoints here)
    "landmarks_base": dict(
        encoder_embed_dim=384, encoder_ffn_embed_dim=1536, encoder_layers=4, encoder_attention_heads=6,
        decoder_embed_dim=384, decoder_ffn_embed_dim=1536, decoder_layers=3, decoder_attention_heads=6, dropout=0.3,
    ),
}
PRESET_CHOICES = ChoiceEnum(list(PRESETS))
# the padding index fairseq's positional embeddings are built around (positions start after it)
POSITION_PADDING_IDX = 1


@dataclass
class FeatureSltConfig(FairseqDataclass):
    preset: PRESET_CHOICES = field(default="ssvp_slt_fairseq", metadata={"help": "model size; explicit fields override it"})
    input_dim: Optional[int] = field(
        default=None, metadata={"help": "D of the input features (default: the feature store's; recorded in checkpoints)"}
    )
    feature_transform: Optional[str] = field(
        default=None,
        metadata={"help": "the feature store's transform settings the model was trained with (JSON; '' for none), recorded "
                  "by the task like input_dim; a store whose transform differs is refused"},
    )
    input_dropout: float = field(default=0.0, metadata={"help": "dropout on the input features, before the projection"})
    encoder_embed_dim: Optional[int] = field(default=None, metadata={"help": "encoder width (preset if unset)"})
    encoder_ffn_embed_dim: Optional[int] = field(default=None, metadata={"help": "encoder FFN width (preset if unset)"})
    encoder_layers: Optional[int] = field(default=None, metadata={"help": "encoder depth (preset if unset)"})
    encoder_attention_heads: Optional[int] = field(default=None, metadata={"help": "encoder heads (preset if unset)"})
    encoder_learned_pos: bool = field(default=False, metadata={"help": "learned instead of sinusoidal encoder positions"})
    max_source_positions: int = field(
        default=1024, metadata={"help": "longest input in time steps (longer clips are skipped by fairseq's size filter)"}
    )
    decoder_embed_dim: Optional[int] = field(default=None, metadata={"help": "decoder width (preset if unset)"})
    decoder_ffn_embed_dim: Optional[int] = field(default=None, metadata={"help": "decoder FFN width (preset if unset)"})
    decoder_layers: Optional[int] = field(default=None, metadata={"help": "decoder depth (preset if unset)"})
    decoder_attention_heads: Optional[int] = field(default=None, metadata={"help": "decoder heads (preset if unset)"})
    dropout: Optional[float] = field(default=None, metadata={"help": "dropout in encoder and decoder (preset if unset)"})
    attention_dropout: float = field(default=0.1, metadata={"help": "attention dropout"})
    activation_dropout: float = field(default=0.1, metadata={"help": "FFN activation dropout"})
    share_decoder_input_output_embed: bool = field(default=True, metadata={"help": "tie decoder input and output embeddings"})
    max_target_positions: int = II("task.max_target_positions")


def resolve_preset(cfg) -> Namespace:
    """All model settings, the fields left unset filled from the preset."""
    return _resolve_preset(cfg, FeatureSltConfig, PRESETS)


class FeatureEncoder(FairseqEncoder):
    """(B, T, D) features + (B, T) padding mask -> fairseq's encoder output dict (T x B x C)."""

    def __init__(self, cfg: Namespace, input_dim: int, out_dim: int):
        super().__init__(dictionary=None)
        self.input_dim, self.max_source_positions = input_dim, cfg.max_source_positions
        width = cfg.encoder_embed_dim
        self.input_dropout = FairseqDropout(cfg.input_dropout, module_name=self.__class__.__name__)
        self.proj = nn.Linear(input_dim, width)
        self.embed_positions = PositionalEmbedding(
            cfg.max_source_positions, width, POSITION_PADDING_IDX, learned=cfg.encoder_learned_pos
        )
        self.dropout = FairseqDropout(cfg.dropout, module_name=self.__class__.__name__)
        layer_args = Namespace(
            encoder_embed_dim=width, encoder_ffn_embed_dim=cfg.encoder_ffn_embed_dim,
            encoder_attention_heads=cfg.encoder_attention_heads, encoder_normalize_before=True,
            dropout=cfg.dropout, attention_dropout=cfg.attention_dropout, activation_dropout=cfg.activation_dropout,
            activation_fn="gelu",
        )
        transformer_base_architecture(layer_args)  # the remaining stock defaults
        self.layers = nn.ModuleList(TransformerEncoderLayer(layer_args) for _ in range(cfg.encoder_layers))
        self.layer_norm = LayerNorm(width)  # pre-norm layers leave the last output unnormalised
        self.out_proj = nn.Linear(width, out_dim) if width != out_dim else None

    def forward(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None, **kwargs):
        """source: (B, T, D) float; padding_mask: (B, T), True at padded time steps."""
        b, t, d = source.shape
        if d != self.input_dim:
            raise ValueError(f"input features have D={d}, the model reads D={self.input_dim}")
        if t > self.max_source_positions:
            raise ValueError(
                f"input of {t} time steps is longer than model.max_source_positions={self.max_source_positions}"
            )
        if padding_mask is None:
            padding_mask = torch.zeros(b, t, dtype=torch.bool, device=source.device)
        x = self.proj(self.input_dropout(source))
        # fairseq's positions count the non-padding entries of a (B, T) tensor: padding_idx where padded
        x = x + self.embed_positions(padding_mask.long() * POSITION_PADDING_IDX).to(x.dtype)
        x = self.dropout(x).masked_fill(padding_mask.unsqueeze(-1), 0.0).transpose(0, 1)  # T x B x C
        attn_padding = padding_mask if padding_mask.any() else None
        for layer in self.layers:
            x = layer(x, encoder_padding_mask=attn_padding)
        x = self.layer_norm(x)
        if self.out_proj is not None:
            x = self.out_proj(x)
        return {
            "encoder_out": [x],  # T x B x C
            "encoder_padding_mask": [padding_mask],  # B x T
            "encoder_embedding": [],
            "encoder_states": [],
            "src_tokens": [],
            "src_lengths": [(~padding_mask).sum(1)],
        }

    @torch.jit.export
    def reorder_encoder_out(self, encoder_out: Dict[str, List[torch.Tensor]], new_order):
        return reorder_encoder_out(encoder_out, new_order)

    def max_positions(self):
        return self.max_source_positions


@register_model("feature_slt", dataclass=FeatureSltConfig)
class FeatureSltModel(FairseqEncoderDecoderModel):
    @classmethod
    def build_model(cls, cfg, task):
        s = resolve_preset(cfg)
        if s.input_dim is None:  # the task sign_features fills it; anything else building the model must say D
            s.input_dim = getattr(task, "feature_dim", None)
            if s.input_dim is None:
                raise ValueError("feature_slt needs model.input_dim, or a task with a feature store (task sign_features)")
        encoder = FeatureEncoder(s, s.input_dim, out_dim=s.decoder_embed_dim)
        decoder = build_decoder(s, task.target_dictionary)
        n_enc = sum(p.numel() for p in encoder.parameters())
        n_dec = sum(p.numel() for p in decoder.parameters())
        logger.info(
            f"feature_slt preset={s.preset}: input D={s.input_dim}, encoder {n_enc / 1e6:.2f}M, decoder {n_dec / 1e6:.2f}M parameters"
        )
        model = cls(encoder, decoder)
        attach_vocabulary(model, task)  # checked when a checkpoint is loaded into it (vocabulary_check)
        return model

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        check_loaded_vocabulary(self, state_dict)  # before any tensor is copied: names dict.txt, not a tensor shape
        return super().load_state_dict(state_dict, strict=strict, model_cfg=model_cfg, args=args)

    def forward(self, source, padding_mask, prev_output_tokens, **kwargs):
        encoder_out = self.encoder(source, padding_mask)
        return self.decoder(prev_output_tokens, encoder_out=encoder_out)


register_preset_architectures("feature_slt", PRESETS, resolve_preset)
