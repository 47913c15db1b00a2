"""The video encoder's settings, shared by ``mae_vit`` (pretraining) and ``mae_vit_slt`` (translation).

Both models build their encoder with :func:`build_video_vit` from these
fields, so a pretrained encoder is the very module the translation model
uses and its weights transfer one to one.
"""

from argparse import Namespace
from dataclasses import dataclass, field, fields
from typing import Dict, Optional, Type

from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from .video_vit import POS_EMBED_TYPES, VideoViT

# Checkpoints store only the preset name: never change an existing preset's sizes.
ENCODER_PRESETS: Dict[str, Dict[str, int]] = {
    "tiny": dict(encoder_embed_dim=128, encoder_layers=4, encoder_attention_heads=4),  # CPU demo and tests
    "base": dict(encoder_embed_dim=768, encoder_layers=12, encoder_attention_heads=12),  # ViT-B/16, ~86M
    "large": dict(encoder_embed_dim=1024, encoder_layers=24, encoder_attention_heads=16),  # ViT-L/16, ~303M
}
PRESET_CHOICES = ChoiceEnum(list(ENCODER_PRESETS))
POS_EMBED_CHOICES = ChoiceEnum(list(POS_EMBED_TYPES))


@dataclass
class VideoEncoderConfig(FairseqDataclass):
    preset: PRESET_CHOICES = field(default="base", metadata={"help": "model size; explicit size fields override it"})
    encoder_embed_dim: Optional[int] = field(default=None, metadata={"help": "ViT width (preset if unset)"})
    encoder_layers: Optional[int] = field(default=None, metadata={"help": "ViT depth (preset if unset)"})
    encoder_attention_heads: Optional[int] = field(default=None, metadata={"help": "ViT heads (preset if unset)"})
    encoder_mlp_ratio: float = field(default=4.0, metadata={"help": "ViT MLP width / embed width"})
    patch_size: int = field(default=16, metadata={"help": "spatial patch size in pixels"})
    tubelet_size: int = field(default=2, metadata={"help": "frames per tubelet (temporal patch size)"})
    encoder_dropout: float = field(default=0.0, metadata={"help": "dropout inside the ViT"})
    encoder_drop_path: float = field(default=0.1, metadata={"help": "stochastic depth rate of the last ViT block"})
    encoder_pos_embed: POS_EMBED_CHOICES = field(
        default="separable",
        metadata={
            "help": "'separable': spatial + temporal tables (mae_st); 'joint': one space-time table "
            "(VideoMAE; set this to fine-tune a converted VideoMAE encoder)"
        },
    )
    encoder_activation_checkpointing: bool = field(
        default=False,
        metadata={
            "help": "recompute each ViT block's activations in the backward pass instead of keeping them: "
            "13-15x less activation memory kept for 25-35% more compute (ViT-B/L, measured on CPU by scripts/benchmark_train.py)"
        },
    )
    encoder_cls_token: bool = field(
        default=False, metadata={"help": "a class token inside the ViT (only to reuse mae_st encoders trained with one)"}
    )


def resolve_preset(cfg, config_class: Type[FairseqDataclass], presets: Dict[str, Dict[str, object]]) -> Namespace:
    """All of ``config_class``'s settings from ``cfg``, size fields left unset filled from the preset."""
    resolved = Namespace(**{f.name: getattr(cfg, f.name, f.default) for f in fields(config_class)})
    for k, v in presets[str(cfg.preset)].items():
        if getattr(resolved, k) is None:
            setattr(resolved, k, v)
    return resolved


def build_video_vit(cfg, num_frames: int, crop_size: int) -> VideoViT:
    """The encoder for resolved settings ``cfg``; clip length and crop come from the data config."""
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
