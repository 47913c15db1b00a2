"""Model ``mae_vit_slt``: a video encoder and fairseq's stock Transformer decoder.

The encoder is a ViT (presets ``tiny``, ``base``, ``large``) or SSVP-SLT's
SignHiera (presets ``signhiera_tiny``, ``signhiera_base_128x224``; see
docs/signhiera.md): the preset decides which. Any ViT or decoder size field
set explicitly overrides the preset. Presets are applied in ``build_model``
because fairseq-hydra-train ignores named architectures. A checkpoint records
the preset name and the explicit overrides, so a preset's sizes must never
change: add a new preset instead. Clip length and crop size come from the
task's data config, the one place they are defined.
"""

import contextlib
import logging
from argparse import Namespace
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from fairseq.dataclass import ChoiceEnum
from fairseq.models import (
    FairseqEncoder,
    FairseqEncoderDecoderModel,
    register_model,
)
from fairseq.models.transformer import Embedding, TransformerDecoder
from fairseq.models.transformer import base_architecture as transformer_base_architecture
from omegaconf import II

from .fairseq_glue import register_preset_architectures, reorder_encoder_out
from .param_groups import assign_param_groups, inner_optimizer, weight_decays, zero_fills_missing_grads
from .frame_input import FrameNormalizer, cut_windows, join_windows, sinusoidal_positions
from .hiera_encoder import HieraEncoder
from .pretrained_encoder import load_pretrained_vit
from .signhiera_checkpoint import load_pretrained_hiera
from .video_encoder_config import ENCODER_PRESETS, VideoEncoderConfig, build_video_encoder
from .video_encoder_config import resolve_preset as _resolve_preset
from .vocabulary_check import attach_vocabulary, check_loaded_vocabulary

logger = logging.getLogger(__name__)

# Checkpoints store only the preset name: never change an existing preset's sizes.
DECODER_PRESETS: Dict[str, Dict[str, int]] = {
    "tiny": dict(decoder_embed_dim=128, decoder_ffn_embed_dim=512, decoder_layers=2, decoder_attention_heads=4),
    "base": dict(decoder_embed_dim=512, decoder_ffn_embed_dim=2048, decoder_layers=6, decoder_attention_heads=8),
    "large": dict(decoder_embed_dim=1024, decoder_ffn_embed_dim=4096, decoder_layers=6, decoder_attention_heads=16),
}
# SignHiera encoders (sizes in hiera_presets.HIERA_PRESETS) with the decoder of the ViT preset named here
HIERA_DECODERS: Dict[str, str] = {"signhiera_base_128x224": "base", "signhiera_tiny": "tiny"}
PRESETS: Dict[str, Dict[str, object]] = {
    **{name: {**ENCODER_PRESETS[name], **DECODER_PRESETS[name]} for name in ENCODER_PRESETS},
    **{name: dict(DECODER_PRESETS[decoder]) for name, decoder in HIERA_DECODERS.items()},
}
SLT_PRESET_CHOICES = ChoiceEnum(list(PRESETS))
POOLING_CHOICES = ChoiceEnum(["spatial", "none"])


@dataclass
class MaeVitSltConfig(VideoEncoderConfig):
    preset: SLT_PRESET_CHOICES = field(
        default="base",
        metadata={
            "help": "model size: ViT encoders tiny, base (ViT-B/16), large (ViT-L/16); SignHiera encoders "
            "signhiera_tiny, signhiera_base_128x224 (SSVP-SLT's, for dm_70h_ub_signhiera.pth). The preset decides "
            "model.encoder_arch; explicit ViT and decoder size fields override it"
        },
    )
    encoder_pooling: POOLING_CHOICES = field(
        default="spatial",
        metadata={
            "help": "'spatial': the decoder attends to one feature per tubelet time step (spatial mean); "
            "'none': to every spatio-temporal token (much more memory in beam search)"
        },
    )
    # starting from a pretrained encoder
    pretrained_encoder: Optional[str] = field(
        default=None,
        metadata={
            "help": "initialise the encoder from this file. ViT: a mae_vit pretraining checkpoint, a mae_vit_slt "
            "checkpoint, or an encoder file from scripts/convert_video_mae_checkpoint.py; SignHiera: SSVP-SLT's "
            "dm_70h_ub_signhiera.pth (or another SignHiera/Hiera file with the preset's sizes), a mae_hiera "
            "pretraining checkpoint, or a mae_vit_slt checkpoint with the same Hiera preset. Read once when "
            "training starts; the fine-tuned checkpoint does not need it"
        },
    )
    freeze_encoder_updates: int = field(
        default=0,
        metadata={
            "help": "keep the ViT fixed for this many updates, training the rest (under fp16/bf16 this needs "
            "optimizer._name=composite, so that the ViT's groups are not stepped at all)"
        },
    )
    encoder_layer_decay: float = field(
        default=1.0,
        metadata={
            "help": "layer-wise learning-rate decay: ViT block i of L trains at lr * decay^(L - i), the patch "
            "embedding at lr * decay^(L + 1); needs optimizer._name=composite with dynamic_groups=true"
        },
    )
    selective_weight_decay: bool = field(
        default=False,
        metadata={
            "help": "no weight decay on norms, biases, position tables and tokens (as MAE/BEiT fine-tuning): "
            "they go to the composite optimizer's 'no_decay' group (see configs/finetune_base.yaml)"
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
    return _resolve_preset(cfg, MaeVitSltConfig, PRESETS)


def encoder_layer_lr_scales(vit, decay: float) -> Dict[str, float]:
    """Learning-rate scale per encoder (ViT or Hiera) parameter name: the further from the output, the smaller."""
    depth = len(vit.blocks)
    scales = {}
    for name, _ in vit.named_parameters():
        if name.startswith("blocks."):
            layer = int(name.split(".")[1]) + 1
        elif name.startswith("norm."):
            layer = depth + 1
        else:  # patch embedding, position tables, class token
            layer = 0
        scales[name] = decay ** (depth + 1 - layer)
    return scales


class VideoEncoder(FairseqEncoder):
    """Wraps the video backbone (:class:`VideoViT` or :class:`HieraEncoder`, attribute ``vit`` either
    way, so checkpoint keys stay ``encoder.vit.*``) in fairseq's encoder interface (list-valued
    outputs, T x B x C).

    Reads the collater's uint8 frames, normalises them on the model's device,
    encodes each window on its own and concatenates the windows' features in
    time. A sinusoidal encoding of each feature's time step in the clip is
    added, so that the decoder can tell the windows' order apart (the ViT's
    own temporal positions restart in every window).
    """

    def __init__(self, cfg, data_cfg, out_dim: int):
        super().__init__(dictionary=None)
        self.num_frames = data_cfg.num_frames
        self.frames = FrameNormalizer(data_cfg.mean, data_cfg.std)
        where = str(getattr(data_cfg, "path", None) or "data config")
        self.vit = build_video_encoder(cfg, data_cfg.num_frames, data_cfg.crop_size, where=where)
        self.pooling = str(cfg.encoder_pooling)
        width = self.vit.embed_dim  # the ViT's width, or Hiera's last stage
        self.proj = nn.Linear(width, out_dim) if width != out_dim else None
        self.out_dim = out_dim
        self.freeze_updates = cfg.freeze_encoder_updates
        self.num_updates = 0

    def set_num_updates(self, num_updates):
        self.num_updates = num_updates

    def frozen(self, num_updates: Optional[int] = None) -> bool:
        """Whether the ViT is held fixed at this update (model.freeze_encoder_updates)."""
        return (self.num_updates if num_updates is None else num_updates) < self.freeze_updates

    def forward(
        self,
        source: torch.Tensor,
        padding_mask: Optional[torch.Tensor] = None,
        window_starts: Optional[torch.Tensor] = None,
        **kwargs,
    ):
        """source: (B, T, H, W, C) uint8 frames; padding_mask: (B, T), True at padded frames;
        window_starts: (B, W) first frame of each encoder window (-1: none), or None for one window."""
        b = source.shape[0]
        windows, window_padding, slots = cut_windows(source, padding_mask, window_starts, self.num_frames)
        x = self.frames(windows, window_padding)
        frozen = self.training and self.frozen()
        # no graph through a frozen ViT: no gradients for it, and its activations are not kept
        with torch.no_grad() if frozen else contextlib.nullcontext():
            feats, time_padding = self.vit(x, window_padding)  # (N, t, g, C), (N, t)
        n, t, g, _ = feats.shape
        if time_padding is None:
            time_padding = torch.zeros(n, t, dtype=torch.bool, device=feats.device)
        # time step of each feature in its clip, in tubelets: a window starting at sampled frame s starts at s / tubelet
        starts = torch.zeros(n, device=feats.device) if window_starts is None else window_starts[slots[:, 0], slots[:, 1]]
        steps = starts.unsqueeze(1) / self.vit.tubelet_size + torch.arange(t, device=feats.device)  # (N, t)
        if self.pooling == "spatial":
            x, pad = feats.mean(2), time_padding
        else:
            x = feats.flatten(1, 2)
            pad = time_padding.unsqueeze(2).expand(n, t, g).reshape(n, t * g)
            steps = steps.unsqueeze(2).expand(n, t, g).reshape(n, t * g)
        if self.proj is not None:
            x = self.proj(x)
        x = x + sinusoidal_positions(steps, self.out_dim).to(x.dtype)
        n_windows = 1 if window_starts is None else window_starts.shape[1]
        x, pad = join_windows(x, pad, slots, b, n_windows)
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
        return reorder_encoder_out(encoder_out, new_order)

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
        encoder = VideoEncoder(cfg, data_cfg, out_dim=cfg.decoder_embed_dim)
        decoder = build_decoder(cfg, task.target_dictionary)
        model = cls(encoder, decoder)
        n_enc = sum(p.numel() for p in encoder.parameters())
        n_dec = sum(p.numel() for p in decoder.parameters())
        logger.info(f"mae_vit_slt preset={cfg.preset}: encoder {n_enc / 1e6:.1f}M, decoder {n_dec / 1e6:.1f}M parameters")
        scales = None
        if cfg.encoder_layer_decay != 1.0:
            scales = encoder_layer_lr_scales(encoder.vit, cfg.encoder_layer_decay)
            logger.info(
                f"layer-wise lr decay {cfg.encoder_layer_decay}: ViT lr scales from {min(scales.values()):.3g} "
                f"(patch embedding) to {max(scales.values()):.3g} (output side)"
            )
        assign_param_groups(
            model, encoder.vit, cfg.selective_weight_decay, scales, mark_encoder=cfg.freeze_encoder_updates > 0
        )
        model.settings = cfg
        attach_vocabulary(model, task)  # checked when a checkpoint is loaded into it (vocabulary_check)
        return model

    def optimizer_problems(self, optimizer, zero_fills_grads: Optional[bool] = None) -> List[str]:
        """What this model's settings need from the optimizer that ``optimizer`` cannot give.

        ``zero_fills_grads``: whether missing gradients become zeros before the step (fairseq's
        fp16/bf16 optimizer, its legacy_ddp backend); worked out from ``optimizer`` when not given.
        """
        s = self.settings
        composite = getattr(inner_optimizer(optimizer), "supports_groups", False)
        if zero_fills_grads is None:
            zero_fills_grads = zero_fills_missing_grads(optimizer)
        problems = []
        if s.encoder_layer_decay != 1.0 and not composite:
            problems.append(f"model.encoder_layer_decay={s.encoder_layer_decay} (per-layer learning rates)")
        if s.selective_weight_decay and not composite and any(wd > 0 for wd in weight_decays(optimizer)):
            problems.append("model.selective_weight_decay=true (no weight decay on norms, biases, position tables)")
        if s.freeze_encoder_updates > 0 and zero_fills_grads and not composite:
            problems.append(
                f"model.freeze_encoder_updates={s.freeze_encoder_updates} under fp16/bf16 or "
                f"distributed_training.ddp_backend=legacy_ddp (both give the frozen weights zero gradients, and "
                f"weight decay would still change them)"
            )
        return problems

    def unused_parameters_reason(self) -> Optional[str]:
        """Why some parameters get no gradient in some updates (DDP must then look for them), or None."""
        n = self.encoder.freeze_updates
        return f"model.freeze_encoder_updates={n}: the video encoder gets no gradients for {n} updates" if n > 0 else None

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        # restoring a checkpoint (resume, generation) replaces any pretrained encoder that is pending
        self.pending_pretrained_encoder = None
        check_loaded_vocabulary(self, state_dict)  # before any tensor is copied: names dict.txt, not a tensor shape
        return super().load_state_dict(state_dict, strict=strict, model_cfg=model_cfg, args=args)

    def load_pretrained_encoder(self, path):
        """Initialise the encoder from a pretraining checkpoint or encoder file (see pretrained_encoder,
        signhiera_checkpoint)."""
        frames = self.encoder.frames
        load = load_pretrained_hiera if isinstance(self.encoder.vit, HieraEncoder) else load_pretrained_vit
        return load(self.encoder.vit, path, frames.mean, frames.std)

    def forward(self, source, padding_mask, prev_output_tokens, window_starts=None, **kwargs):
        encoder_out = self.encoder(source, padding_mask, window_starts)
        return self.decoder(prev_output_tokens, encoder_out=encoder_out)


register_preset_architectures("mae_vit_slt", PRESETS, resolve_preset)
