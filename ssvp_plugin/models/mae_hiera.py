"""Model ``mae_hiera``: masked-autoencoder pretraining of SignHiera (Hiera), as SSVP-SLT pretrains it.

The network is the ``hiera-transformer`` package's ``MaskedAutoencoderHiera`` as it is (the code
SSVP-SLT's SignHiera was copied from), stored as ``self.mae``: checkpoint keys are ``mae.`` + the
package's own names (``mae.patch_embed.proj.weight``, ``mae.blocks.N...``, ``mae.decoder_*``), which
is what the translation side's SignHiera loader strips. This module adds what the package lacks
for fairseq:

* frames: uint8 batches from the collater, normalised with the data config's mean/std, padded up
  to the window length Hiera was built for (its position tables and unrolling are fixed-size);
* padding: the package has no padding mask. Here a mask unit whose time unit (``patch_stride[0]``
  frames) starts on a padded frame is *padding*: padded units are left out of the loss, and the
  visible share is drawn per clip over real units only (so a half-padded clip is masked at the
  same ratio as a full one; padded units fill the rest of the fixed visible budget, because the
  package needs the same number of visible units in every clip);
* the loss: per-token predictions and targets go to the ``mae_reconstruction`` criterion (the same
  per-patch MSE the package computes, per-patch normalised pixels, always), which sums over
  hidden, non-padding tokens and logs ``loss`` and ``hidden_share`` like ``mae_vit``;
* ``reconstruct`` for ``scripts/render_mae_reconstructions.py``.

What the package predicts: one ``pred_stride`` x ``pred_stride`` pixel patch (32 px for
SignHiera-Base) of the *first* frame of each time unit per final-stage token (Hiera's
"time-strided" loss), so pictures and errors are on those frames.
"""

import logging
import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model

from .frame_input import FrameNormalizer
from .hiera_package import MaskedAutoencoderHiera
from .hiera_presets import HIERA_PRESETS
from .masking import normalise_patches, training_mask_generator

logger = logging.getLogger(__name__)

HIERA_PRESET_CHOICES = ChoiceEnum(list(HIERA_PRESETS))
EVAL_MASK_SEED = 0
# what translation leaves out of the checkpoint (as SSVP-SLT's SignHiera loader does): the rest is the encoder
MAE_ONLY_PREFIXES = ("decoder", "multi_scale_fusion", "encoder_norm", "mask_token")


@dataclass
class MaeHieraConfig(FairseqDataclass):
    preset: HIERA_PRESET_CHOICES = field(
        default="signhiera_base_128x224", metadata={"help": "Hiera encoder size (ssvp_plugin/models/hiera_presets.py)"}
    )
    mask_ratio: float = field(default=0.9, metadata={"help": "share of (real) mask units hidden; 0.9 in SSVP-SLT"})
    decoder_embed_dim: int = field(default=512, metadata={"help": "MAE decoder width (SSVP-SLT: 512)"})
    decoder_depth: int = field(default=8, metadata={"help": "MAE decoder blocks (SSVP-SLT: 8)"})
    decoder_num_heads: int = field(default=8, metadata={"help": "MAE decoder attention heads (SSVP-SLT: 8)"})
    drop_path: float = field(
        default=0.2, metadata={"help": "stochastic depth of the encoder's last block (linear from 0); SSVP-SLT: 0.2"}
    )


@dataclass(frozen=True)
class HieraGeometry:
    """Where a (num_frames, crop, crop) clip's pixels go in a Hiera preset."""

    time_unit: int  # frames per temporal token (patch_stride[0]) and per mask unit; labels: each one's first frame
    mask_units: Tuple[int, int, int]  # (t, h, w) grid of mask units, the masking granularity
    pred_tokens: Tuple[int, int, int]  # (t, h, w) grid of predicted patches
    pred_stride: int  # px per predicted patch side


def hiera_geometry(preset: str, num_frames: int, crop: int, where: str = "data config") -> HieraGeometry:
    """Check that a clip fits a preset's unrolling and masking; raise ValueError naming ``where`` if not.

    Hiera patches with ``patch_stride``, then unrolls the token grid for ``len(stages) - 1`` poolings
    of ``q_stride`` and masks whole ``mask_unit_size`` blocks: every token-grid side must be divisible
    by both, or the package fails deep inside a reshape."""
    p = HIERA_PRESETS[preset]
    stride, q, mu = p["patch_stride"], p["q_stride"], p["mask_unit_size"]
    n_pool = len(p["stages"]) - 1
    if len(stride) != 3 or q[0] != 1 or mu[0] != 1:
        # the package's labels take one frame per temporal token: it assumes no pooling in time
        raise ValueError(f"preset {preset!r}: mae_hiera needs a 3-D preset without temporal pooling or deeper mask units")
    multiples = [s * math.lcm(m, k**n_pool) for s, m, k in zip(stride, mu, q)]
    if num_frames % multiples[0] or crop % multiples[1] or crop % multiples[2] or num_frames <= 0 or crop <= 0:
        ok_crops = [c for c in range(multiples[1], 2 * max(crop, multiples[1]) + 1, multiples[1])]
        nearest = min(ok_crops, key=lambda c: abs(c - crop))
        raise ValueError(
            f"{where}: num_frames={num_frames}, crop_size={crop} do not fit Hiera preset {preset!r}: it needs "
            f"num_frames a multiple of {multiples[0]} and crop_size a multiple of {multiples[1]} px (patch stride "
            f"{tuple(stride)}, {n_pool} poolings of {tuple(q)}, mask units of {tuple(mu)} tokens); "
            f"e.g. crop_size={nearest}"
        )
    tokens = [n // s for n, s in zip((num_frames, crop, crop), stride)]
    final = [t // k ** p["q_pool"] for t, k in zip(tokens, q)]
    return HieraGeometry(
        time_unit=stride[0],
        mask_units=tuple(t // m for t, m in zip(tokens, mu)),
        pred_tokens=tuple(final),
        pred_stride=stride[-1] * q[-1] ** p["q_pool"],
    )


def draw_visible_units(
    unit_padding: torch.Tensor, mask_ratio: float, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """(B, U) True at padded mask units -> (B, U) True at *visible* units (the package's convention).

    Every clip shows the same number of units, ``int(U * (1 - ratio))`` (at least 1), as the package
    requires; of those, ``int(n_real * (1 - ratio))`` (at least 1) are real units chosen uniformly,
    the rest padded units, so the ratio on real video does not depend on how much of a clip is padding.
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {mask_ratio}")
    pad = unit_padding.detach().cpu().bool()
    b, u = pad.shape
    # the epsilon keeps float error from dropping a unit: 100 * (1 - 0.9) is 9.999999999999998
    k = max(1, int(u * (1.0 - mask_ratio) + 1e-6))
    n_real = (~pad).sum(1)
    k_real = (n_real.double() * (1.0 - mask_ratio) + 1e-6).floor().long().clamp(min=1)
    # never more than the budget or the real units, never so few that padded units run out
    k_real = torch.minimum(torch.maximum(k_real, k - (u - n_real)), torch.minimum(n_real, torch.tensor(k)))
    noise = torch.rand(b, u, generator=generator) + 2.0 * pad  # real units first, each group in random order
    order = noise.argsort(dim=1)
    rank = torch.arange(u).unsqueeze(0)
    visible_at_rank = (rank < k_real[:, None]) | ((rank >= n_real[:, None]) & (rank < (n_real + k - k_real)[:, None]))
    return torch.zeros(b, u, dtype=torch.bool).scatter(1, order, visible_at_rank).to(unit_padding.device)


@register_model("mae_hiera", dataclass=MaeHieraConfig)
class MaeHieraModel(BaseFairseqModel):
    def __init__(self, cfg: MaeHieraConfig, mae: MaskedAutoencoderHiera, frames: FrameNormalizer, num_frames: int, crop: int):
        super().__init__()
        self.cfg = cfg
        self.frames = frames  # no parameters, no saved buffers: checkpoint keys are mae.* only
        self.mae = mae
        self.num_frames, self.crop = num_frames, crop
        self.geometry = hiera_geometry(str(cfg.preset), num_frames, crop)
        self.mask_seed: Optional[int] = None  # set: every mask drawn from this seed (pictures)

    @classmethod
    def build_model(cls, cfg: MaeHieraConfig, task):
        data_cfg = task.data_cfg
        num_frames, crop = data_cfg.num_frames, data_cfg.crop_size
        hiera_geometry(str(cfg.preset), num_frames, crop, where=str(data_cfg.path or "data config"))
        mae = build_mae_hiera(cfg, num_frames, crop)
        n_all = sum(p.numel() for p in mae.parameters())
        n_mae = sum(p.numel() for n, p in mae.named_parameters() if n.startswith(MAE_ONLY_PREFIXES))
        logger.info(
            f"mae_hiera preset={cfg.preset} input {num_frames}x{crop}x{crop}: encoder {(n_all - n_mae) / 1e6:.2f}M, "
            f"MAE-only parts {n_mae / 1e6:.2f}M parameters; mask ratio {cfg.mask_ratio}, drop path {cfg.drop_path}"
        )
        return cls(cfg, mae, FrameNormalizer(data_cfg.mean, data_cfg.std), num_frames, crop)

    # --- input ----------------------------------------------------------------------------------

    def fit_window(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor]):
        """uint8 (B, T, H, W, C) -> exactly (B, num_frames, crop, crop, C) and its (B, num_frames) padding.

        The collater pads to the batch's longest clip; Hiera's tables are built for num_frames, so
        shorter batches are padded further (padded frames become the mean colour, 0)."""
        b, t, h, w = source.shape[:4]
        if (h, w) != (self.crop, self.crop) or t > self.num_frames:
            raise ValueError(
                f"mae_hiera was built for clips of at most {self.num_frames} frames of {self.crop}x{self.crop} px "
                f"(the data config's num_frames, crop_size), got {t} frames of {h}x{w}"
            )
        if padding_mask is None:
            padding_mask = torch.zeros(b, t, dtype=torch.bool, device=source.device)
        if t < self.num_frames:
            source = torch.cat([source, source.new_zeros((b, self.num_frames - t) + tuple(source.shape[2:]))], 1)
            padding_mask = torch.cat([padding_mask, padding_mask.new_ones(b, self.num_frames - t)], 1)
        return source, padding_mask

    def unit_padding(self, padding_mask: torch.Tensor) -> torch.Tensor:
        """(B, num_frames) frame padding -> (B, #mask units) True where the unit's first frame is padding."""
        _, h, w = self.geometry.mask_units
        return padding_mask[:, :: self.geometry.time_unit].repeat_interleave(h * w, dim=1)

    def token_padding(self, padding_mask: torch.Tensor) -> torch.Tensor:
        """(B, num_frames) -> (B, #predicted tokens) True where the token's label frame is padding."""
        _, h, w = self.geometry.pred_tokens
        return padding_mask[:, :: self.geometry.time_unit].repeat_interleave(h * w, dim=1)

    def use_mask_seed(self, seed: Optional[int]) -> None:
        """Draw every mask from ``seed`` (None: fresh masks in training, the validation ones otherwise)."""
        self.mask_seed = seed

    def draw_visible(self, unit_padding: torch.Tensor) -> torch.Tensor:
        seed = self.mask_seed if self.mask_seed is not None else (None if self.training else EVAL_MASK_SEED)
        # outside training the same masks every time, so validation losses are comparable
        generator = training_mask_generator() if seed is None else torch.Generator().manual_seed(seed)
        return draw_visible_units(unit_padding, self.cfg.mask_ratio, generator)

    # --- forward ----------------------------------------------------------------------------------

    def forward(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None, **kwargs):
        """source (B, T, H, W, C) uint8 frames, padding_mask (B, T) -> what ``mae_reconstruction`` reads.

        Returns a dict: ``pred`` and ``target`` (B, N, pred_stride^2 * 3) per predicted patch (target:
        normalised per patch), ``mask`` (B, N) True at hidden patches, ``loss_mask`` (B, N) hidden and
        not padding, ``token_padding`` (B, N), ``visible`` (B, #mask units) the package's mask
        (True = visible) and ``padding_mask`` (B, num_frames)."""
        source, padding_mask = self.fit_window(source, padding_mask)
        return self.forward_normalised(self.frames(source, padding_mask), padding_mask)

    def forward_normalised(self, x: torch.Tensor, padding_mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        """:meth:`forward` on normalised clips (B, C, num_frames, crop, crop)."""
        visible = self.draw_visible(self.unit_padding(padding_mask))
        latent, _ = self.mae.forward_encoder(x, self.cfg.mask_ratio, mask=visible)
        pred, pred_visible = self.mae.forward_decoder(latent, visible)  # (B, N, D), (B, N) True = visible
        b, n = pred_visible.shape
        # the package's own labels (first frame of each time unit, per-patch normalised), for every token;
        # in fp32 so bf16 training does not round the per-patch statistics
        everything = torch.ones_like(pred_visible)
        target = self.mae.get_pixel_label_3d(x.float(), everything, norm=True).view(b, n, -1)
        hidden = ~pred_visible
        token_padding = self.token_padding(padding_mask)
        return {
            "pred": pred, "target": target, "mask": hidden, "loss_mask": hidden & ~token_padding,
            "token_padding": token_padding, "visible": visible, "padding_mask": padding_mask,
        }

    # --- pictures -------------------------------------------------------------------------------

    def patches_to_frames(self, patches: torch.Tensor) -> torch.Tensor:
        """Inverse of the package's label layout: (B, N, s*s*C) -> (B, C, t, h*s, w*s)."""
        t, h, w = self.geometry.pred_tokens
        s = self.geometry.pred_stride
        b = patches.shape[0]
        x = patches.reshape(b, t, h, w, s, s, -1).permute(0, 6, 1, 2, 4, 3, 5)  # (B, C, t, h, s, w, s)
        return x.reshape(b, x.shape[1], t, h * s, w * s)

    @torch.no_grad()
    def reconstruct(self, source: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """For uint8 frames (B, T, H, W, C): normalised-pixel clips (B, C, t, H, W) of the frames the
        model predicts (the first of each time unit, t = num_frames / patch_stride[0]):

        ``input`` those frames, ``padding_mask`` (B, t) theirs, ``masked`` (hidden patches zeroed),
        ``reconstruction`` (predicted patches, visible ones from the input), ``mask`` (1 where hidden)
        and ``patch_mean`` (every hidden patch flat at its true mean: what predicting zeros shows).

        Predictions are per-patch normalised, so each hidden patch gets its *true* mean and spread
        back (as MAE's figures do); judge learning against the ``patch_mean`` baseline."""
        source, padding_mask = self.fit_window(source, padding_mask)
        x = self.frames(source, padding_mask)
        out = self.forward_normalised(x, padding_mask)
        b, n = out["mask"].shape
        raw = self.mae.get_pixel_label_3d(x.float(), torch.ones_like(out["mask"]), norm=False).view(b, n, -1)
        _, mean, std = normalise_patches(raw)  # the package's statistics: unbiased variance + 1e-6
        pred = out["pred"].float() * std + mean
        hidden = out["mask"].unsqueeze(-1)
        to_frames = self.patches_to_frames
        return {
            "input": to_frames(raw),
            "padding_mask": padding_mask[:, :: self.geometry.time_unit],
            "masked": to_frames(raw.masked_fill(hidden, 0.0)),
            "reconstruction": to_frames(torch.where(hidden, pred, raw)),
            "mask": to_frames(hidden.expand_as(raw).to(raw.dtype)),
            "patch_mean": to_frames(torch.where(hidden, mean.expand_as(raw), raw)),
        }


def build_mae_hiera(cfg: MaeHieraConfig, num_frames: int, crop: int) -> MaskedAutoencoderHiera:
    """The package's MAE at ``input_size=(num_frames, crop, crop)`` with the preset's encoder."""
    return MaskedAutoencoderHiera(
        input_size=(num_frames, crop, crop),
        decoder_embed_dim=cfg.decoder_embed_dim,
        decoder_depth=cfg.decoder_depth,
        decoder_num_heads=cfg.decoder_num_heads,
        drop_path_rate=cfg.drop_path,
        **HIERA_PRESETS[str(cfg.preset)],
    )
