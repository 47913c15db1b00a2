"""A frozen video encoder that turns a batch of clips into per-clip feature sequences.

It computes exactly what ``mae_vit_slt``'s encoder computes before its projection: the
collater's uint8 frames are cut into the data config's windows (``frame_input.cut_windows``),
normalised (``FrameNormalizer``), each window is encoded alone by the backbone, the features are
averaged over the spatial grid, and the windows' time steps (padding dropped) are concatenated:
one D-vector per encoder time step, as SSVP-SLT extracts SignHiera features.

Encoder files: a ``mae_vit_slt`` checkpoint, a ``mae_vit`` pretraining checkpoint, or an encoder
file from ``scripts/convert_video_mae_checkpoint.py``, loaded by the plugin's
``load_pretrained_vit`` (position tables interpolated to the data config's clip length and crop).
:func:`build_backbone` is the one place where the backbone is built from (arch, preset, file).
"""

import contextlib
import hashlib
import logging
import os
from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import torch
import torch.nn as nn

from ssvp_plugin.models.frame_input import FrameNormalizer, cut_windows
from ssvp_plugin.models.hiera_encoder import build_hiera_encoder
from ssvp_plugin.models.hiera_presets import HIERA_PRESETS
from ssvp_plugin.models.pretrained_encoder import ENCODER_FILE_FORMAT, load_checkpoint_safely, load_pretrained_vit
from ssvp_plugin.models.signhiera_checkpoint import hiera_preset_of, load_pretrained_hiera
from ssvp_plugin.models.video_encoder_config import ENCODER_PRESETS, VideoEncoderConfig, build_video_vit, resolve_preset
from ssvp_slt.corpus.data_config import VideoDataConfig

logger = logging.getLogger(__name__)

AUTOCAST_DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
# fairseq models whose checkpoints hold a VideoViT encoder (see pretrained_encoder.FAIRSEQ_ENCODER_PREFIXES)
VIT_MODELS = ("mae_vit", "mae_vit_slt")


class FrozenEncoderError(ValueError):
    """An encoder file cannot be used for extraction; the message names the file."""


@dataclass
class EncoderFile:
    """What an encoder file holds: the backbone architecture, its preset and its size settings."""

    path: Path
    arch: str  # "vit" or "hiera"
    kind: str  # for the log and the store's config
    preset: Optional[str] = None
    settings: Optional[Namespace] = None  # VideoEncoderConfig fields, for arch "vit"


def _vit_settings_from_geometry(geometry: dict) -> Namespace:
    """A converted encoder file's geometry as VideoEncoderConfig fields (for build_video_vit)."""
    return Namespace(
        preset=None, encoder_embed_dim=geometry["embed_dim"], encoder_layers=geometry["depth"],
        encoder_attention_heads=geometry["num_heads"], encoder_mlp_ratio=geometry.get("mlp_ratio", 4.0),
        patch_size=geometry["patch_size"], tubelet_size=geometry["tubelet_size"], encoder_dropout=0.0,
        encoder_drop_path=0.0, encoder_pos_embed=geometry.get("pos_embed_type", "separable"),
        encoder_activation_checkpointing=False, encoder_cls_token=bool(geometry.get("cls_token", False)),
    )


def inspect_encoder_file(path) -> EncoderFile:
    """Read ``path`` once (torch.load, weights only) and say which backbone it holds."""
    path = Path(path)
    try:
        ckpt = load_checkpoint_safely(path)
    except ValueError as e:  # PretrainedEncoderError: missing, unreadable, unsafe pickles
        raise FrozenEncoderError(str(e)) from e
    if ckpt.get("format") == ENCODER_FILE_FORMAT:
        geometry = ckpt.get("geometry") or {}
        try:
            settings = _vit_settings_from_geometry(geometry)
        except KeyError as e:
            raise FrozenEncoderError(f"{path}: encoder file without geometry field {e}") from None
        return EncoderFile(path, "vit", f"encoder file ({ckpt.get('source', 'unknown source')})", None, settings)
    if "model" in ckpt and isinstance(ckpt.get("cfg"), dict):
        model_cfg = ckpt["cfg"].get("model") or {}
        name = model_cfg.get("_name") if isinstance(model_cfg, dict) else None
        preset = str(model_cfg.get("preset")) if isinstance(model_cfg, dict) and model_cfg.get("preset") else None
        if name == "mae_hiera" or (preset in HIERA_PRESETS):
            return EncoderFile(path, "hiera", f"fairseq {name} checkpoint", preset)
        if name not in VIT_MODELS:
            raise FrozenEncoderError(f"{path}: a fairseq checkpoint of model {name!r}; expected one of {VIT_MODELS} (or a Hiera model)")
        if preset not in ENCODER_PRESETS:
            raise FrozenEncoderError(f"{path}: model preset {preset!r} is not a ViT preset ({sorted(ENCODER_PRESETS)})")
        fields = {k: v for k, v in model_cfg.items() if not k.startswith("_")}
        settings = resolve_preset(Namespace(**fields), VideoEncoderConfig, ENCODER_PRESETS)
        settings.encoder_dropout, settings.encoder_drop_path, settings.encoder_activation_checkpointing = 0.0, 0.0, False
        return EncoderFile(path, "vit", f"fairseq {name} checkpoint", preset, settings)
    state = ckpt.get("model", ckpt.get("model_state"))
    if isinstance(state, dict) and any(str(k).endswith("patch_embed.proj.weight") for k in state):
        return EncoderFile(path, "hiera", "Hiera/SignHiera weights (patch_embed.proj: Hiera naming)")
    raise FrozenEncoderError(
        f"{path}: not an encoder this extraction reads (a mae_vit_slt or mae_vit checkpoint, or an encoder file of "
        f"scripts/convert_video_mae_checkpoint.py); top-level keys: {sorted(map(str, ckpt))[:8]}"
    )


def build_backbone(spec: EncoderFile, data_cfg: VideoDataConfig) -> Tuple[nn.Module, int, int]:
    """``(backbone, feature dim D, frames per time step)`` for an encoder file, weights loaded.

    The backbone is called as ``backbone(x (N, C, T, H, W), padding (N, T) or None) ->
    (features (N, t, g, D), time padding (N, t) or None)``, like ``mae_vit_slt``'s encoder.
    """
    # ===== BACKBONE HOOK: the one place the frozen backbone is built from (arch, preset, file). =====
    # A new encoder family adds a branch here that builds the module for the data config's clip length
    # and crop, loads its weights from spec.path, and returns (module, D, frames per time step).
    if spec.arch == "vit":
        vit = build_video_vit(spec.settings, data_cfg.num_frames, data_cfg.crop_size)
        load_pretrained_vit(vit, spec.path, data_cfg.mean, data_cfg.std)  # strict; logs what it loaded
        return vit, vit.embed_dim, vit.tubelet_size
    if spec.arch == "hiera":
        # SignHiera (dm_70h_ub_signhiera.pth), mae_hiera checkpoints, mae_vit_slt checkpoints with a signhiera_*
        # preset: the preset is the one recorded in the fairseq config, else the one whose sizes the weights have
        try:
            preset = spec.preset if spec.preset in HIERA_PRESETS else hiera_preset_of(spec.path)
            hiera = build_hiera_encoder(preset, data_cfg.num_frames, data_cfg.crop_size, where=f"{spec.path} with the data config")
            load_pretrained_hiera(hiera, spec.path, data_cfg.mean, data_cfg.std)
        except ValueError as e:  # PretrainedEncoderError / geometry errors already name the file
            raise FrozenEncoderError(str(e)) from e
        return hiera, hiera.embed_dim, hiera.tubelet_size
    raise FrozenEncoderError(f"{spec.path}: {spec.kind} holds a {spec.arch!r} backbone, which feature extraction does not build")


def file_fingerprint(path, block: int = 16 << 20) -> dict:
    """Path, size, mtime and sha256 of a file: what a store records about the encoder it was made with."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            digest.update(chunk)
    st = os.stat(path)
    return {"path": str(path.resolve()), "size": st.st_size, "mtime": int(st.st_mtime), "sha256": digest.hexdigest()}


class FrozenVideoEncoder(nn.Module):
    """uint8 clips -> one (T_i, D) float32 feature sequence per clip; no gradients, eval mode."""

    def __init__(self, backbone: nn.Module, dim: int, frames_per_step: int, data_cfg: VideoDataConfig):
        super().__init__()
        self.backbone = backbone.eval().requires_grad_(False)
        self.frames = FrameNormalizer(data_cfg.mean, data_cfg.std)
        self.num_frames = data_cfg.num_frames
        self.dim, self.frames_per_step = dim, frames_per_step

    @classmethod
    def from_file(cls, path, data_cfg: VideoDataConfig) -> Tuple["FrozenVideoEncoder", EncoderFile]:
        spec = inspect_encoder_file(path)
        backbone, dim, frames_per_step = build_backbone(spec, data_cfg)
        return cls(backbone, dim, frames_per_step, data_cfg), spec

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: dropout and drop-path stay off whatever a caller asks

    @torch.inference_mode()
    def forward(
        self,
        frames: torch.Tensor,
        padding_mask: Optional[torch.Tensor] = None,
        window_starts: Optional[torch.Tensor] = None,
        autocast: Optional[torch.dtype] = None,
        window_batch: int = 0,
    ) -> List[torch.Tensor]:
        """frames (B, T, H, W, C) uint8, padding (B, T), window_starts (B, W) as the collater gives them.

        ``autocast``: run the backbone under torch.autocast in this dtype (None: fp32). ``window_batch``:
        encode at most this many windows at once (0: all of the batch's windows together).
        """
        device = self.frames.scale.device
        frames = frames.to(device, non_blocking=True)
        padding_mask = padding_mask.to(device, non_blocking=True) if padding_mask is not None else None
        window_starts = window_starts.to(device, non_blocking=True) if window_starts is not None else None
        windows, window_padding, slots = cut_windows(frames, padding_mask, window_starts, self.num_frames)
        n = windows.shape[0]
        step = window_batch if window_batch > 0 else n
        ctx = torch.autocast(device.type, dtype=autocast) if autocast is not None else contextlib.nullcontext()
        pooled, valid = [], []
        for s in range(0, n, step):
            pad = window_padding[s : s + step] if window_padding is not None else None
            x = self.frames(windows[s : s + step], pad)
            with ctx:
                feats, time_padding = self.backbone(x, pad)
            pooled.append(feats.float().mean(2))  # (n, t, D): the spatial mean, in fp32 whatever autocast did
            valid.append(~time_padding if time_padding is not None else torch.ones(feats.shape[:2], dtype=torch.bool, device=device))
        pooled_t, valid_t = torch.cat(pooled).cpu(), torch.cat(valid).cpu()  # one transfer per batch
        per_clip: List[List[torch.Tensor]] = [[] for _ in range(frames.shape[0])]
        for k, clip in enumerate(slots[:, 0].tolist()):  # slots are clip-major, windows in time order
            per_clip[clip].append(pooled_t[k][valid_t[k]])
        return [torch.cat(parts) for parts in per_clip]
