"""Model ``mae_vit_slt``: a video ViT encoder and fairseq's stock Transformer decoder.

Sizes come from a preset (``tiny``, ``base``, ``large``); any size field set
explicitly overrides the preset. Presets are applied in ``build_model``
because fairseq-hydra-train ignores named architectures. A checkpoint records
the preset name and the explicit overrides, so a preset's sizes must never
change: add a new preset instead. Clip length and crop size come from the
task's data config, the one place they are defined.
"""

import logging
from argparse import Namespace
from dataclasses import dataclass, field, fields
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.models import (
    FairseqEncoder,
    FairseqEncoderDecoderModel,
    register_model,
    register_model_architecture,
)
from fairseq.models.transformer import Embedding, TransformerDecoder
from fairseq.models.transformer import base_architecture as transformer_base_architecture
from omegaconf import II

from .video_vit import VideoViT

logger = logging.getLogger(__name__)

# Checkpoints store only the preset name: never change an existing preset's sizes.
PRESETS: Dict[str, Dict[str, object]] = {
    # CPU demo and tests (~1.5M parameters; ~100 clips/s training on 2 cores at 48 px)
    "tiny": dict(
        encoder_embed_dim=128, encoder_layers=4, encoder_attention_heads=4,
        decoder_embed_dim=128, decoder_ffn_embed_dim=512, decoder_layers=2, decoder_attention_heads=4,
    ),
    # ViT-B/16 encoder (~86M parameters), Transformer-base decoder
    "base": dict(
        encoder_embed_dim=768, encoder_layers=12, encoder_attention_heads=12,
        decoder_embed_dim=512, decoder_ffn_embed_dim=2048, decoder_layers=6, decoder_attention_heads=8,
    ),
    # ViT-L/16 encoder (~303M parameters), Transformer-big-width decoder
    "large": dict(
        encoder_embed_dim=1024, encoder_layers=24, encoder_attention_heads=16,
        decoder_embed_dim=1024, decoder_ffn_embed_dim=4096, decoder_layers=6, decoder_attention_heads=16,
    ),
}
PRESET_CHOICES = ChoiceEnum(list(PRESETS))
POOLING_CHOICES = ChoiceEnum(["spatial", "none"])


@dataclass
class MaeVitSltConfig(FairseqDataclass):
    preset: PRESET_CHOICES = field(default="base", metadata={"help": "model size; explicit size fields override it"})
    # encoder
    encoder_embed_dim: Optional[int] = field(default=None, metadata={"help": "ViT width (preset if unset)"})
    encoder_layers: Optional[int] = field(default=None, metadata={"help": "ViT depth (preset if unset)"})
    encoder_attention_heads: Optional[int] = field(default=None, metadata={"help": "ViT heads (preset if unset)"})
    encoder_mlp_ratio: float = field(default=4.0, metadata={"help": "ViT MLP width / embed width"})
    patch_size: int = field(default=16, metadata={"help": "spatial patch size in pixels"})
    tubelet_size: int = field(default=2, metadata={"help": "frames per tubelet (temporal patch size)"})
    encoder_dropout: float = field(default=0.0, metadata={"help": "dropout inside the ViT"})
    encoder_drop_path: float = field(default=0.1, metadata={"help": "stochastic depth rate of the last ViT block"})
    encoder_pooling: POOLING_CHOICES = field(
        default="spatial",
        metadata={
            "help": "'spatial': the decoder attends to one feature per tubelet time step (spatial mean); "
            "'none': to every spatio-temporal token (much more memory in beam search)"
        },
    )
    # decoder (fairseq's TransformerDecoder)
    decoder_embed_dim: Optional[int] = field(default=None, metadata={"help": "decoder width (preset if unset)"})
    decoder_ffn_embed_dim: Optional[int] = field(default=None, metadata={"help": "decoder FFN width (preset if unset)"})
    decoder_layers: Optional[int] = field(default=None, metadata={"help": "decoder depth (preset if unset)"})
    decoder_attention_heads: Optional[int] = field(default=None, metadata={"help": "decoder heads (preset if unset)"})
    dropout: float = field(default=0.1, metadata={"help": "decoder dropout"})
    attention_dropout: float = field(default=0.1, metadata={"help": "decoder attention dropout"})
    activation_dropout: float = field(default=0.0, metadata={"help": "decoder FFN activation dropout"})
    share_decoder_input_output_embed: bool = field(default=True, metadata={"help": "tie decoder input and output embeddings"})
    max_target_positions: int = II("task.max_target_positions")


def resolve_preset(cfg) -> Namespace:
    """All model settings, with the size fields left unset filled from the preset."""
    resolved = Namespace(**{f.name: getattr(cfg, f.name, f.default) for f in fields(MaeVitSltConfig)})
    for k, v in PRESETS[str(cfg.preset)].items():
        if getattr(resolved, k) is None:
            setattr(resolved, k, v)
    return resolved


class VideoEncoder(FairseqEncoder):
    """Wraps :class:`VideoViT` in fairseq's encoder interface (list-valued outputs, T x B x C)."""

    def __init__(self, cfg, num_frames: int, crop_size: int, out_dim: int):
        super().__init__(dictionary=None)
        self.vit = VideoViT(
            img_size=crop_size,
            num_frames=num_frames,
            patch_size=cfg.patch_size,
            tubelet_size=cfg.tubelet_size,
            embed_dim=cfg.encoder_embed_dim,
            depth=cfg.encoder_layers,
            num_heads=cfg.encoder_attention_heads,
            mlp_ratio=cfg.encoder_mlp_ratio,
            drop_rate=cfg.encoder_dropout,
            drop_path_rate=cfg.encoder_drop_path,
        )
        self.pooling = str(cfg.encoder_pooling)
        self.proj = nn.Linear(cfg.encoder_embed_dim, out_dim) if cfg.encoder_embed_dim != out_dim else None

    def forward(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None, **kwargs):
        """source: (B, C, T, H, W) normalised frames; padding_mask: (B, T), True at padded frames."""
        feats, time_padding = self.vit(source, padding_mask)  # (B, t, g, C), (B, t)
        b, t, g, _ = feats.shape
        if time_padding is None:
            time_padding = torch.zeros(b, t, dtype=torch.bool, device=feats.device)
        if self.pooling == "spatial":
            x, pad = feats.mean(2), time_padding
        else:
            x, pad = feats.flatten(1, 2), time_padding.unsqueeze(2).expand(b, t, g).reshape(b, t * g)
        if self.proj is not None:
            x = self.proj(x)
        x = x.masked_fill(pad.unsqueeze(-1), 0.0)
        return {
            "encoder_out": [x.transpose(0, 1)],  # T x B x C
            "encoder_padding_mask": [pad],  # B x T
            "encoder_embedding": [],
            "encoder_states": [],
            "src_tokens": [],
            "src_lengths": [(~pad).sum(1)],
        }

    @torch.jit.export
    def reorder_encoder_out(self, encoder_out: Dict[str, List[torch.Tensor]], new_order):
        return {
            "encoder_out": [x.index_select(1, new_order) for x in encoder_out["encoder_out"]],
            "encoder_padding_mask": [x.index_select(0, new_order) for x in encoder_out["encoder_padding_mask"]],
            "encoder_embedding": [x.index_select(0, new_order) for x in encoder_out["encoder_embedding"]],
            "encoder_states": [x.index_select(1, new_order) for x in encoder_out["encoder_states"]],
            "src_tokens": [x.index_select(0, new_order) for x in encoder_out["src_tokens"]],
            "src_lengths": [x.index_select(0, new_order) for x in encoder_out["src_lengths"]],
        }

    def max_positions(self):
        return int(1e6)  # frames; longer clips interpolate the temporal position table


def build_decoder(cfg, dictionary) -> TransformerDecoder:
    args = Namespace(
        decoder_embed_dim=cfg.decoder_embed_dim,
        decoder_ffn_embed_dim=cfg.decoder_ffn_embed_dim,
        decoder_layers=cfg.decoder_layers,
        decoder_attention_heads=cfg.decoder_attention_heads,
        decoder_normalize_before=True,
        decoder_learned_pos=False,
        encoder_embed_dim=cfg.decoder_embed_dim,  # the encoder projects to the decoder width
        dropout=cfg.dropout,
        attention_dropout=cfg.attention_dropout,
        activation_dropout=cfg.activation_dropout,
        activation_fn="gelu",
        share_decoder_input_output_embed=cfg.share_decoder_input_output_embed,
        max_target_positions=cfg.max_target_positions,
    )
    transformer_base_architecture(args)  # fills the remaining stock defaults
    embed_tokens = Embedding(len(dictionary), cfg.decoder_embed_dim, dictionary.pad())
    return TransformerDecoder(args, dictionary, embed_tokens)


@register_model("mae_vit_slt", dataclass=MaeVitSltConfig)
class MaeVitSltModel(FairseqEncoderDecoderModel):
    @classmethod
    def build_model(cls, cfg, task):
        cfg = resolve_preset(cfg)
        data_cfg = task.data_cfg
        encoder = VideoEncoder(cfg, data_cfg.num_frames, data_cfg.crop_size, out_dim=cfg.decoder_embed_dim)
        decoder = build_decoder(cfg, task.target_dictionary)
        model = cls(encoder, decoder)
        n_enc = sum(p.numel() for p in encoder.parameters())
        n_dec = sum(p.numel() for p in decoder.parameters())
        logger.info(f"mae_vit_slt preset={cfg.preset}: encoder {n_enc / 1e6:.1f}M, decoder {n_dec / 1e6:.1f}M parameters")
        return model

    def forward(self, source, padding_mask, prev_output_tokens, **kwargs):
        encoder_out = self.encoder(source, padding_mask)
        return self.decoder(prev_output_tokens, encoder_out=encoder_out)


def _preset_architecture(name):
    def arch(args):
        args.preset = name  # the arch name is the preset; explicit size flags still override it
        vars(args).update(vars(resolve_preset(args)))

    return arch


# named architectures for the legacy `fairseq-train --arch` path; under hydra use model.preset
for _name in PRESETS:
    register_model_architecture("mae_vit_slt", f"mae_vit_slt_{_name}")(_preset_architecture(_name))
