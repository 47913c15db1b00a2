"""Model ``mae_vit``: masked-autoencoder pretraining of the translation model's video encoder.

The encoder is built by the same function, from the same settings, as
``mae_vit_slt``'s, and sees only the visible tokens (with 90% hidden that is
~10x fewer tokens through the big network: where MAE's speed comes from). A
light Transformer decoder gets the encoded visible tokens plus a shared mask
token at every hidden position and predicts each hidden tubelet's pixels,
normalised per patch. Fine-tuning loads ``encoder.*`` from the checkpoint
(``model.pretrained_encoder``); the decoder is thrown away.
"""

import logging
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
from fairseq.dataclass import ChoiceEnum
from fairseq.models import BaseFairseqModel, register_model

from .frame_input import FrameNormalizer
from .masking import MASK_TYPES, make_mask, training_mask_generator, normalise_patches, patchify_pixels, unpatchify_pixels
from .video_encoder_config import ENCODER_PRESETS, VideoEncoderConfig, build_video_vit, resolve_preset
from .video_vit import Block, resize_spatial_pos_embed, resize_temporal_pos_embed

logger = logging.getLogger(__name__)

# Checkpoints store only the preset name: never change an existing preset's sizes.
MAE_DECODER_PRESETS: Dict[str, Dict[str, int]] = {
    "tiny": dict(mae_decoder_embed_dim=64, mae_decoder_layers=2, mae_decoder_attention_heads=4),
    "base": dict(mae_decoder_embed_dim=384, mae_decoder_layers=4, mae_decoder_attention_heads=6),  # VideoMAE-B
    "large": dict(mae_decoder_embed_dim=512, mae_decoder_layers=4, mae_decoder_attention_heads=8),  # VideoMAE-L
}
MAE_PRESETS = {name: {**ENCODER_PRESETS[name], **MAE_DECODER_PRESETS[name]} for name in ENCODER_PRESETS}
MASK_TYPE_CHOICES = ChoiceEnum(list(MASK_TYPES))
EVAL_MASK_SEED = 0


@dataclass
class MaeVitConfig(VideoEncoderConfig):
    mask_ratio: float = field(default=0.9, metadata={"help": "share of tokens hidden (0.9 in SSVP-SLT, 0.75 in MAE)"})
    mask_type: MASK_TYPE_CHOICES = field(
        default="tube", metadata={"help": "'tube': one spatial mask for all time steps; 'random': any space-time tokens"}
    )
    norm_pix_loss: bool = field(default=True, metadata={"help": "predict pixels normalised per patch"})
    mae_decoder_embed_dim: Optional[int] = field(default=None, metadata={"help": "MAE decoder width (preset if unset)"})
    mae_decoder_layers: Optional[int] = field(default=None, metadata={"help": "MAE decoder depth (preset if unset)"})
    mae_decoder_attention_heads: Optional[int] = field(default=None, metadata={"help": "MAE decoder heads (preset if unset)"})


class MaeDecoder(nn.Module):
    """Visible tokens + mask tokens -> pixels of every tubelet patch."""

    def __init__(self, in_dim: int, dim: int, depth: int, heads: int, temporal_size: int, grid: Tuple[int, int], patch_dim: int):
        super().__init__()
        self.grid = tuple(grid)
        self.embed = nn.Linear(in_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed_spatial = nn.Parameter(torch.zeros(1, grid[0] * grid[1], dim))
        self.pos_embed_temporal = nn.Parameter(torch.zeros(1, temporal_size, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pred = nn.Linear(dim, patch_dim)
        for p in (self.mask_token, self.pos_embed_spatial, self.pos_embed_temporal):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, latent, keep, t: int, grid: Tuple[int, int], key_padding: Optional[torch.Tensor]):
        """latent (B, K, C_enc) at token indices ``keep`` (B, K) of a (t, grid) clip -> (B, t*g, patch_dim)."""
        x = self.embed(latent)
        b, _, d = x.shape
        g = grid[0] * grid[1]
        # out-of-place scatter: one new tensor, mask tokens everywhere but at the visible positions
        full = self.mask_token.expand(b, t * g, d).scatter(1, keep.unsqueeze(-1).expand(-1, -1, d), x)
        spatial = resize_spatial_pos_embed(self.pos_embed_spatial, self.grid, grid)
        temporal = self.pos_embed_temporal
        temporal = temporal[:, :t] if t <= temporal.shape[1] else resize_temporal_pos_embed(temporal, t)
        full = full + (temporal.unsqueeze(2) + spatial.unsqueeze(1)).reshape(1, t * g, d)
        attn_mask = None
        if key_padding is not None and key_padding.any():
            attn_mask = (~key_padding)[:, None, None, :]
        for blk in self.blocks:
            full = blk(full, attn_mask)
        return self.pred(self.norm(full))


@register_model("mae_vit", dataclass=MaeVitConfig)
class MaeVitModel(BaseFairseqModel):
    def __init__(self, cfg, encoder, decoder, frames: FrameNormalizer):
        super().__init__()
        self.cfg = cfg
        self.frames = frames
        self.encoder = encoder
        self.decoder = decoder

    @classmethod
    def build_model(cls, cfg, task):
        cfg = resolve_preset(cfg, MaeVitConfig, MAE_PRESETS)
        data_cfg = task.data_cfg
        encoder = build_video_vit(cfg, data_cfg.num_frames, data_cfg.crop_size)
        patch_dim = cfg.tubelet_size * cfg.patch_size * cfg.patch_size * 3
        decoder = MaeDecoder(
            cfg.encoder_embed_dim, cfg.mae_decoder_embed_dim, cfg.mae_decoder_layers, cfg.mae_decoder_attention_heads,
            encoder.temporal_size, encoder.grid_size, patch_dim,
        )
        n_enc = sum(p.numel() for p in encoder.parameters())
        n_dec = sum(p.numel() for p in decoder.parameters())
        logger.info(
            f"mae_vit preset={cfg.preset}: encoder {n_enc / 1e6:.2f}M, MAE decoder {n_dec / 1e6:.2f}M parameters; "
            f"{cfg.mask_type} masking, ratio {cfg.mask_ratio}"
        )
        return cls(cfg, encoder, decoder, FrameNormalizer(data_cfg.mean, data_cfg.std))

    def draw_mask(self, b: int, t: int, g: int, device):
        # outside training the same masks every time, so validation losses are comparable
        generator = training_mask_generator() if self.training else torch.Generator().manual_seed(EVAL_MASK_SEED)
        return make_mask(b, t, g, self.cfg.mask_ratio, str(self.cfg.mask_type), generator, device)

    def forward(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None, **kwargs):
        """source (B, T, H, W, C) uint8 frames, padding_mask (B, T) -> predictions, targets and which tokens count.

        Returns a dict: ``pred`` and ``target`` (B, N, patch_dim), ``mask`` (B, N)
        True at hidden tokens, ``loss_mask`` (B, N) hidden and not padding,
        ``token_padding`` (B, N) True at padding (or None), ``keep`` (B, K)
        visible token indices, ``t`` and ``grid``.
        """
        return self.forward_normalised(self.frames(source, padding_mask), padding_mask)

    def forward_normalised(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None):
        """:meth:`forward` on normalised clips (B, C, T, H, W)."""
        tokens, time_padding = self.encoder.patchify(source, padding_mask)  # (B, t, g, C), (B, t)
        b, t, g, c = tokens.shape
        grid = (source.shape[3] // self.cfg.patch_size, source.shape[4] // self.cfg.patch_size)
        keep, mask = self.draw_mask(b, t, g, source.device)
        token_padding = None if time_padding is None else time_padding.unsqueeze(2).expand(b, t, g).reshape(b, t * g)
        visible = tokens.reshape(b, t * g, c).gather(1, keep.unsqueeze(-1).expand(-1, -1, c))
        visible_padding = None if token_padding is None else token_padding.gather(1, keep)
        latent = self.encoder.forward_tokens(visible, visible_padding)  # the encoder sees visible tokens only
        pred = self.decoder(latent, keep, t, grid, token_padding)
        target = patchify_pixels(source, self.cfg.tubelet_size, self.cfg.patch_size)
        if self.cfg.norm_pix_loss:
            target = normalise_patches(target)[0]
        loss_mask = mask if token_padding is None else mask & ~token_padding
        return {
            "pred": pred, "target": target, "mask": mask, "loss_mask": loss_mask, "token_padding": token_padding,
            "keep": keep, "t": t, "grid": grid,
        }

    @torch.no_grad()
    def reconstruct(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """For uint8 frames (B, T, H, W, C), normalised-pixel clips (B, C, T, H, W): ``masked`` input
        (hidden patches zeroed), ``reconstruction``
        (predicted patches, visible ones from the input) and ``mask`` (1 where hidden).

        With ``norm_pix_loss`` the model predicts only each patch's normalised pattern, so each hidden
        patch gets its *true* mean and spread back (as MAE's figures do): even an untrained model then
        shows flat patches of the right colour. Judge learning against that flat-patch baseline
        (``scripts/render_mae_reconstructions.py`` prints it)."""
        source = self.frames(source, padding_mask)
        out = self.forward_normalised(source, padding_mask)
        u, p = self.cfg.tubelet_size, self.cfg.patch_size
        patches = patchify_pixels(source, u, p)
        pred = out["pred"]
        if self.cfg.norm_pix_loss:
            # predictions are in per-patch normalised units: put each patch's own mean and spread back
            _, mean, std = normalise_patches(patches)
            pred = pred * std + mean
        hidden = out["mask"].unsqueeze(-1)
        t_frames = source.shape[2]

        def to_clip(x):
            return unpatchify_pixels(x, out["t"], out["grid"], u, p)[:, :, :t_frames]

        return {
            "masked": to_clip(patches.masked_fill(hidden, 0.0)),
            "reconstruction": to_clip(torch.where(hidden, pred, patches)),
            "mask": to_clip(hidden.expand_as(patches).to(source.dtype)),
        }
