"""SignHiera as a translation encoder: FAIR's Hiera with SSVP-SLT's temporal padding mask.

:class:`HieraEncoder` subclasses the ``hiera-transformer`` package's ``Hiera`` and drops its
classification ``head`` and final ``norm`` (translation features are taken before them), so its
``state_dict`` names are exactly the package's, which are also those of SSVP-SLT's released
``dm_70h_ub_signhiera.pth``: weights load with an identity key map
(:mod:`.signhiera_checkpoint`).

It has the backbone interface :class:`~.video_vit.VideoViT` has in ``mae_vit_slt``:
``forward(x (N, C, T, H, W), padding_mask (N, T)) -> (features (N, t, g, C), time padding (N, t))``
with ``tubelet_size`` (frames per output time step), ``embed_dim`` (output width) and ``blocks``
(for layer-wise lr decay). Features are the last stage in spatial order, without the final norm:
SSVP-SLT's ``extract_features`` averages exactly these over space, one vector per 2 frames.

Padding (SignHiera's semantics): padding frames sit at the end of a clip; the trailing
``floor(padded frames / (mask_unit_t * patch_stride_t))`` mask units in time are padding (a time
unit with at least one real frame is real). Padded units' frames are zeroed before the patch
embedding, and in the *global*-attention blocks no token attends to a padded token. Mask-unit
attention needs no mask: a mask unit spans one time unit, so real tokens only ever see real ones
there. A padded clip therefore encodes, at its real time steps, as the clip of its real length
would with the first entries of the temporal position table (``tests/test_hiera_encoder.py``
checks exactly that).
"""

import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .hiera_package import Hiera, hiera
from .hiera_presets import HIERA_PRESETS

do_pool = hiera.hiera_utils.do_pool  # Hiera's max-pool over the unrolled stride groups


def hiera_input_multiples(preset: Dict[str, object]) -> Tuple[int, int]:
    """(frame multiple, crop multiple) a clip must have for ``preset``.

    Hiera unrolls the token grid for ``len(stages) - 1`` poolings of ``q_stride`` and groups it
    in ``mask_unit_size`` blocks: every token-grid side must be divisible by both, or the package
    fails deep inside a reshape."""
    stride, q, mu = preset["patch_stride"], preset["q_stride"], preset["mask_unit_size"]
    n_pool = len(preset["stages"]) - 1
    t, h, w = [s * math.lcm(m, k**n_pool) for s, m, k in zip(stride, mu, q)]
    return t, math.lcm(h, w)


def check_hiera_input(preset_name: str, num_frames: int, crop_size: int, where: str = "data config") -> None:
    """Raise ValueError naming ``where`` when (num_frames, crop_size) does not fit the preset."""
    frames_multiple, crop_multiple = hiera_input_multiples(HIERA_PRESETS[preset_name])
    if num_frames <= 0 or crop_size <= 0 or num_frames % frames_multiple or crop_size % crop_multiple:
        nearest = max(crop_multiple, round(crop_size / crop_multiple) * crop_multiple)
        raise ValueError(
            f"{where}: num_frames={num_frames}, crop_size={crop_size} do not fit Hiera preset {preset_name!r}: "
            f"it needs num_frames a multiple of {frames_multiple} and crop_size a multiple of {crop_multiple} px "
            f"(e.g. crop_size={nearest})"
        )


def _global_attention(attn: nn.Module, x: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
    """The package's ``MaskUnitAttention`` in global mode (one window), keys restricted to ``key_valid``.

    x: (B, N, C) tokens; key_valid: (B, N) True at real tokens. Same parameters and arithmetic as the
    package (q max-pooled over the unrolled stride groups, SDPA), plus the key mask."""
    b, n, _ = x.shape
    q, k, v = attn.qkv(x).reshape(b, n, 3, attn.heads, attn.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    if attn.q_stride > 1:
        q = q.view(b, attn.heads, attn.q_stride, -1, attn.head_dim).max(dim=2).values
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_valid[:, None, None, :])
    return attn.proj(out.transpose(1, 2).reshape(b, -1, attn.dim_out))


def masked_block(block: nn.Module, x: torch.Tensor, key_valid: Optional[torch.Tensor]) -> torch.Tensor:
    """One package ``HieraBlock`` with SignHiera's padding mask (global-attention blocks only)."""
    if key_valid is None or block.attn.use_mask_unit_attn:
        return block(x)  # the package's own forward: nothing to mask (see the module doc)
    x_norm = block.norm1(x)
    if block.dim != block.dim_out:
        x = do_pool(block.proj(x_norm), stride=block.attn.q_stride)
    x = x + block.drop_path(_global_attention(block.attn, x_norm, key_valid))
    return x + block.drop_path(block.mlp(block.norm2(x)))


class HieraEncoder(Hiera):
    """Hiera without head and final norm, for clips of up to ``num_frames`` frames of ``crop_size`` px."""

    def __init__(
        self,
        preset: Dict[str, object],
        num_frames: int,
        crop_size: int,
        drop_path_rate: float = 0.0,
        activation_checkpointing: bool = False,
    ):
        super().__init__(
            input_size=(num_frames, crop_size, crop_size), num_classes=1, drop_path_rate=drop_path_rate, **preset
        )
        del self.norm, self.head  # not in SSVP-SLT's files; features are read before them
        self.input_size = (num_frames, crop_size, crop_size)
        self.activation_checkpointing = activation_checkpointing
        self.embed_dim = self.blocks[-1].dim_out
        # frames per output time step: the patch stride, times any temporal q-pooling (none in the presets)
        self.tubelet_size = self.patch_stride[0] * self.q_stride[0] ** self.q_pool
        self.frames_per_unit = self.mask_unit_size[0] * self.patch_stride[0]  # frames per mask unit in time

    # --- padding ------------------------------------------------------------------------------------

    def unit_validity(self, padding_mask: torch.Tensor) -> torch.Tensor:
        """(B, num_frames) frame padding -> (B, t_mu, h_mu, w_mu) True at real mask units (SignHiera's
        ``get_attention_mask``: the trailing floor(padded frames / frames per unit) time units are padding)."""
        t_mu, h_mu, w_mu = self.mask_spatial_shape
        padded_units = padding_mask.sum(1) // self.frames_per_unit
        real = torch.arange(t_mu, device=padding_mask.device).unsqueeze(0) < (t_mu - padded_units).unsqueeze(1)
        return real[:, :, None, None].expand(-1, t_mu, h_mu, w_mu)

    def token_validity(self, units: torch.Tensor) -> torch.Tensor:
        """(B, t_mu, h_mu, w_mu) unit validity -> (B, N) per token, in the package's unrolled order."""
        tokens = units
        for dim, size in enumerate(self.mask_unit_size):
            tokens = tokens.repeat_interleave(size, dim=dim + 1)
        return self.unroll(tokens.reshape(tokens.shape[0], -1, 1).float()).squeeze(-1) > 0.5

    def _fit_clip(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor]):
        """Pad a shorter clip with padding frames up to ``num_frames`` (Hiera's tables are built for it)."""
        n, _, t, h, w = x.shape
        num_frames, crop = self.input_size[0], self.input_size[1]
        if (h, w) != (crop, crop) or t > num_frames:
            raise ValueError(
                f"this Hiera encoder was built for windows of at most {num_frames} frames of {crop}x{crop} px "
                f"(the data config's num_frames and crop_size), got {t} frames of {h}x{w}"
            )
        if t < num_frames:
            x = F.pad(x, (0, 0, 0, 0, 0, num_frames - t))
            if padding_mask is None:
                padding_mask = torch.zeros(n, t, dtype=torch.bool, device=x.device)
            padding_mask = F.pad(padding_mask, (0, num_frames - t), value=True)
        return x, padding_mask

    # --- forward ------------------------------------------------------------------------------------

    def _run_block(self, block, x, key_valid):
        recompute = self.activation_checkpointing and self.training and torch.is_grad_enabled()
        if recompute:
            # non-reentrant: keeps only the block's input, replays it (same drop-path draws) in backward
            return checkpoint(masked_block, block, x, key_valid, use_reentrant=False)
        return masked_block(block, x, key_valid)

    def forward(
        self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(N, C, T, H, W) normalised clips, (N, T) frame padding (True = padded) or None ->
        (N, t, g, C) last-stage features (no final norm), (N, t) time padding or None."""
        x, padding_mask = self._fit_clip(x, padding_mask)
        units = None
        if padding_mask is not None and (padding_mask.sum(1) >= self.frames_per_unit).any():
            units = self.unit_validity(padding_mask)
            # zero the padded units' frames, as SignHiera's masked patch embedding does
            frame_valid = units[:, :, :1, :1].repeat_interleave(self.frames_per_unit, dim=1)  # (N, T, 1, 1)
            x = x * frame_valid.unsqueeze(1).to(x.dtype)
        tokens = self.patch_embed(x) + self.get_pos_embed()
        tokens = self.unroll(tokens)
        key_valid = None if units is None else self.token_validity(units)
        for block in self.blocks:
            tokens = self._run_block(block, tokens, key_valid)
            if key_valid is not None and block.attn.q_stride > 1:
                # keys of the next blocks are the pooled tokens: real if any pooled token is
                key_valid = do_pool(key_valid.unsqueeze(-1).float(), stride=block.attn.q_stride).squeeze(-1) > 0.5
        last = len(self.blocks) - 1
        feats = self.reroll(tokens, last)  # (N, t, h, w, C) in spatial order
        n, t, fh, fw, c = feats.shape
        feats = feats.reshape(n, t, fh * fw, c)
        if key_valid is None:
            return feats, None
        real = self.reroll(key_valid.unsqueeze(-1).float(), last).reshape(n, t, fh * fw)
        return feats, real.amax(2) < 0.5


def build_hiera_encoder(
    preset_name: str, num_frames: int, crop_size: int, drop_path_rate: float = 0.0,
    activation_checkpointing: bool = False, where: str = "data config",
) -> HieraEncoder:
    """The Hiera preset ``preset_name`` (hiera_presets.HIERA_PRESETS) for windows of num_frames x crop_size²."""
    if preset_name not in HIERA_PRESETS:
        raise ValueError(f"unknown Hiera preset {preset_name!r}; known: {sorted(HIERA_PRESETS)}")
    check_hiera_input(preset_name, num_frames, crop_size, where)
    return HieraEncoder(HIERA_PRESETS[preset_name], num_frames, crop_size, drop_path_rate, activation_checkpointing)
