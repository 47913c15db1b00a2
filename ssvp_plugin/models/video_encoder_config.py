"""The video encoder's settings, shared by ``mae_vit`` (pretraining) and ``mae_vit_slt`` (translation).

Two encoder architectures: ``vit`` (:class:`VideoViT`, presets ``tiny``/``base``/``large``), which
both models build with :func:`build_video_vit`, so a pretrained encoder is the very module the
translation model uses and its weights transfer one to one; and ``hiera`` (SSVP-SLT's SignHiera,
:class:`~.hiera_encoder.HieraEncoder`, presets in :data:`~.hiera_presets.HIERA_PRESETS`),
translation only (its pretraining is ``mae_hiera``). The preset decides the architecture;
``encoder_arch`` may state it too, and must then agree. :func:`build_video_encoder` builds either.
"""

from argparse import Namespace
from dataclasses import dataclass, field, fields
from typing import Dict, Optional, Type, Union

from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from .hiera_encoder import HieraEncoder, build_hiera_encoder
from .hiera_presets import HIERA_PRESETS
from .video_vit import POS_EMBED_TYPES, VideoViT

# Checkpoints store only the preset name: never change an existing preset's sizes.
ENCODER_PRESETS: Dict[str, Dict[str, int]] = {
    "tiny": dict(encoder_embed_dim=128, encoder_layers=4, encoder_attention_heads=4),  # CPU demo and tests
    "base": dict(encoder_embed_dim=768, encoder_layers=12, encoder_attention_heads=12),  # ViT-B/16, ~86M
    "large": dict(encoder_embed_dim=1024, encoder_layers=24, encoder_attention_heads=16),  # ViT-L/16, ~303M
}
PRESET_CHOICES = ChoiceEnum(list(ENCODER_PRESETS))
POS_EMBED_CHOICES = ChoiceEnum(list(POS_EMBED_TYPES))
ENCODER_ARCH_CHOICES = ChoiceEnum(["vit", "hiera"])
# settings that size or shape the ViT only; a Hiera preset fixes all of its sizes
VIT_SIZE_FIELDS = ("encoder_embed_dim", "encoder_layers", "encoder_attention_heads")


@dataclass
class VideoEncoderConfig(FairseqDataclass):
    preset: PRESET_CHOICES = field(default="base", metadata={"help": "model size; explicit size fields override it"})
    encoder_arch: Optional[ENCODER_ARCH_CHOICES] = field(
        default=None,
        metadata={
            "help": "encoder architecture: 'vit' (presets tiny, base, large) or 'hiera' (SignHiera: presets "
            "signhiera_*, translation models only). Unset: the preset's; set, it must match the preset"
        },
    )
    encoder_embed_dim: Optional[int] = field(default=None, metadata={"help": "ViT width (preset if unset)"})
    encoder_layers: Optional[int] = field(default=None, metadata={"help": "ViT depth (preset if unset)"})
    encoder_attention_heads: Optional[int] = field(default=None, metadata={"help": "ViT heads (preset if unset)"})
    encoder_mlp_ratio: float = field(default=4.0, metadata={"help": "ViT MLP width / embed width (ViT only)"})
    patch_size: int = field(default=16, metadata={"help": "spatial patch size in pixels (ViT only)"})
    tubelet_size: int = field(default=2, metadata={"help": "frames per tubelet (temporal patch size; ViT only)"})
    encoder_dropout: float = field(default=0.0, metadata={"help": "dropout inside the ViT (ViT only)"})
    encoder_drop_path: float = field(
        default=0.1, metadata={"help": "stochastic depth rate of the last encoder block (ViT and Hiera)"}
    )
    encoder_pos_embed: POS_EMBED_CHOICES = field(
        default="separable",
        metadata={
            "help": "'separable': spatial + temporal tables (mae_st); 'joint': one space-time table "
            "(VideoMAE; set this to fine-tune a converted VideoMAE encoder). ViT only"
        },
    )
    encoder_activation_checkpointing: bool = field(
        default=False,
        metadata={
            "help": "recompute each encoder block's activations (ViT or Hiera) in the backward pass instead of keeping "
            "them: 13-15x less activation memory kept for 25-35% more compute (ViT-B/L, measured on CPU by "
            "scripts/benchmark_train.py)"
        },
    )
    encoder_cls_token: bool = field(
        default=False,
        metadata={"help": "a class token inside the ViT (only to reuse mae_st encoders trained with one; ViT only)"},
    )


def resolve_preset(cfg, config_class: Type[FairseqDataclass], presets: Dict[str, Dict[str, object]]) -> Namespace:
    """All of ``config_class``'s settings from ``cfg``, size fields left unset filled from the preset."""
    resolved = Namespace(**{f.name: getattr(cfg, f.name, f.default) for f in fields(config_class)})
    if hasattr(resolved, "encoder_arch"):
        # before the preset fills the ViT sizes: set ones are the user's
        resolved.encoder_arch = resolve_encoder_arch(resolved)
    for k, v in presets[str(cfg.preset)].items():
        if getattr(resolved, k) is None:
            setattr(resolved, k, v)
    return resolved


def resolve_encoder_arch(cfg) -> str:
    """'vit' or 'hiera', from the preset; a clear error when ``encoder_arch`` or a ViT size contradicts it."""
    preset = str(cfg.preset)
    implied = "hiera" if preset in HIERA_PRESETS else "vit"
    stated = getattr(cfg, "encoder_arch", None)
    stated = None if stated is None else str(stated)
    if stated is not None and stated != implied:
        presets = sorted(HIERA_PRESETS) if stated == "hiera" else sorted(ENCODER_PRESETS)
        raise ValueError(
            f"model.encoder_arch={stated} contradicts model.preset={preset}, a {implied} preset: choose one of the "
            f"{stated} presets {presets}, or leave encoder_arch unset (the preset decides it)"
            + (" (Hiera presets are for mae_vit_slt; Hiera pretraining is the mae_hiera model)" if stated == "hiera" else "")
        )
    if implied == "hiera":
        set_sizes = [f"model.{k}={getattr(cfg, k)}" for k in VIT_SIZE_FIELDS if getattr(cfg, k, None) is not None]
        if set_sizes:
            raise ValueError(
                f"{', '.join(set_sizes)}: ViT size settings, but model.preset={preset} is a Hiera preset, whose "
                f"sizes are fixed (ssvp_plugin/models/hiera_presets.py); unset them"
            )
    return implied


def build_video_encoder(cfg, num_frames: int, crop_size: int, where: str = "data config") -> Union[VideoViT, HieraEncoder]:
    """The encoder (ViT or Hiera) for resolved settings ``cfg`` (:func:`resolve_preset`); clip length and
    crop come from the data config (``where`` names it in errors)."""
    if resolve_encoder_arch(cfg) == "hiera":
        return build_hiera_encoder(
            str(cfg.preset), num_frames, crop_size, drop_path_rate=cfg.encoder_drop_path,
            activation_checkpointing=bool(getattr(cfg, "encoder_activation_checkpointing", False)), where=where,
        )
    return build_video_vit(cfg, num_frames, crop_size)


def build_video_vit(cfg, num_frames: int, crop_size: int) -> VideoViT:
    """The ViT for resolved settings ``cfg``; clip length and crop come from the data config."""
    if getattr(cfg, "encoder_arch", None) is not None and str(cfg.encoder_arch) != "vit":
        raise ValueError(
            f"model.encoder_arch={cfg.encoder_arch}: this model builds a ViT only (Hiera is pretrained with mae_hiera)"
        )
    return VideoViT(
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
        pos_embed_type=str(cfg.encoder_pos_embed),
        cls_token=bool(cfg.encoder_cls_token),
        activation_checkpointing=bool(getattr(cfg, "encoder_activation_checkpointing", False)),
    )
