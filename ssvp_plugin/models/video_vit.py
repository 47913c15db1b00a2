"""Video Vision Transformer: tubelet patches, separable position embeddings, pre-norm blocks.

This module knows nothing about fairseq; the translation model wraps it, and
MAE pretraining reuses it unchanged so encoder weights transfer one to one.
"""

import logging
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

logger = logging.getLogger(__name__)


class DropPath(nn.Module):
    """Stochastic depth per sample (residual branch dropped as a whole)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: (B, N, C); attn_mask: (B, 1, 1, N) bool, True where a key may be attended."""
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.attn_drop if self.training else 0.0
        )
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm Transformer block."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=True, drop=0.0, attn_drop=0.0, drop_path=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x, attn_mask=None):
        x = x + self.drop_path(self.attn(self.norm1(x), attn_mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def resize_spatial_pos_embed(pos: torch.Tensor, old_grid: Tuple[int, int], new_grid: Tuple[int, int]) -> torch.Tensor:
    """(N, gh*gw, C) -> (N, nh*nw, C) by bicubic interpolation."""
    if tuple(old_grid) == tuple(new_grid):
        return pos
    n, c = pos.shape[0], pos.shape[-1]
    grid = pos.reshape(n, old_grid[0], old_grid[1], c).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=tuple(new_grid), mode="bicubic", align_corners=False).to(pos.dtype)
    return grid.permute(0, 2, 3, 1).reshape(n, new_grid[0] * new_grid[1], c)


def resize_temporal_pos_embed(pos: torch.Tensor, new_len: int) -> torch.Tensor:
    """(1, T, C) -> (1, new_len, C) by linear interpolation."""
    if pos.shape[1] == new_len:
        return pos
    out = F.interpolate(pos.transpose(1, 2).float(), size=new_len, mode="linear", align_corners=False)
    return out.transpose(1, 2).to(pos.dtype)


def resize_joint_pos_embed(
    pos: torch.Tensor, old_t: int, old_grid: Tuple[int, int], new_t: int, new_grid: Tuple[int, int]
) -> torch.Tensor:
    """(1, old_t*gh*gw, C) -> (1, new_t*nh*nw, C): bicubic over space per time step, then linear over time."""
    if old_t == new_t and tuple(old_grid) == tuple(new_grid):
        return pos
    c = pos.shape[-1]
    x = resize_spatial_pos_embed(pos.reshape(old_t, old_grid[0] * old_grid[1], c), old_grid, new_grid)  # (old_t, n, C)
    x = resize_temporal_pos_embed(x.permute(1, 0, 2), new_t)  # (n, new_t, C)
    return x.permute(1, 0, 2).reshape(1, new_t * new_grid[0] * new_grid[1], c)


def sinusoid_table(n_positions: int, dim: int) -> torch.Tensor:
    """(1, n_positions, dim) fixed sin/cos table as in "Attention is all you need" (VideoMAE's position code)."""
    pos = torch.arange(n_positions, dtype=torch.float64).unsqueeze(1)
    exponent = (2 * (torch.arange(dim) // 2)).double() / dim
    angles = pos / torch.pow(10000.0, exponent)
    table = torch.empty(n_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.float().unsqueeze(0)


POS_EMBED_TYPES = ("separable", "joint")


class VideoViT(nn.Module):
    """Video ViT over (B, C, T, H, W) clips.

    Position embeddings are ``separable`` (the default, as in mae_st: one table
    over the spatial patch grid and one over tubelet time steps, summed) or
    ``joint`` (one table over all space-time positions, as in VideoMAE). Clips
    shorter than ``num_frames`` use the first time steps; other sizes
    interpolate the tables. ``cls_token`` adds a class token that takes part
    in attention but is not returned (needed only to reproduce mae_st
    encoders trained with one).
    """

    def __init__(
        self,
        img_size: int = 224,
        num_frames: int = 16,
        patch_size: int = 16,
        tubelet_size: int = 2,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        pos_embed_type: str = "separable",
        cls_token: bool = False,
        activation_checkpointing: bool = False,
    ):
        super().__init__()
        self.activation_checkpointing = activation_checkpointing
        if pos_embed_type not in POS_EMBED_TYPES:
            raise ValueError(f"pos_embed_type must be one of {POS_EMBED_TYPES}, got {pos_embed_type!r}")
        if img_size % patch_size:
            raise ValueError(f"crop size {img_size} is not a multiple of the patch size {patch_size}")
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.embed_dim = embed_dim
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.temporal_size = max(1, math.ceil(num_frames / tubelet_size))
        self.patch_embed = nn.Conv3d(
            in_chans, embed_dim, kernel_size=(tubelet_size, patch_size, patch_size), stride=(tubelet_size, patch_size, patch_size)
        )
        self.pos_embed_type = pos_embed_type
        n_spatial = self.grid_size[0] * self.grid_size[1]
        if pos_embed_type == "separable":
            self.pos_embed_spatial = nn.Parameter(torch.zeros(1, n_spatial, embed_dim))
            self.pos_embed_temporal = nn.Parameter(torch.zeros(1, self.temporal_size, embed_dim))
        else:
            self.pos_embed_joint = nn.Parameter(torch.zeros(1, self.temporal_size * n_spatial, embed_dim))
        if cls_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
            self.pos_embed_class = nn.Parameter(torch.zeros(1, 1, embed_dim))
        else:
            self.cls_token = self.pos_embed_class = None
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # deeper blocks drop more
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, dpr[i]) for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._warned_longer = False
        self._init_weights()

    def _init_weights(self):
        if self.pos_embed_type == "separable":
            nn.init.trunc_normal_(self.pos_embed_spatial, std=0.02)
            nn.init.trunc_normal_(self.pos_embed_temporal, std=0.02)
        else:
            self.pos_embed_joint.data.copy_(sinusoid_table(self.pos_embed_joint.shape[1], self.embed_dim))
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
            nn.init.trunc_normal_(self.pos_embed_class, std=0.02)
        w = self.patch_embed.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def pos_embed(self, t: int, grid: Tuple[int, int]) -> torch.Tensor:
        """(1, t, gh*gw, C) position embedding for t tubelet steps on a spatial grid."""
        if t > self.temporal_size and not self._warned_longer:
            logger.warning(
                f"clip of {t} tubelet steps is longer than the {self.temporal_size} the model was built for; "
                f"interpolating the temporal position embedding"
            )
            self._warned_longer = True
        n = grid[0] * grid[1]
        if self.pos_embed_type == "joint":
            t_table = max(t, self.temporal_size)
            table = resize_joint_pos_embed(self.pos_embed_joint, self.temporal_size, self.grid_size, t_table, grid)
            return table.reshape(1, t_table, n, -1)[:, :t]
        spatial = resize_spatial_pos_embed(self.pos_embed_spatial, self.grid_size, grid)
        temporal = self.pos_embed_temporal
        temporal = temporal[:, :t] if t <= temporal.shape[1] else resize_temporal_pos_embed(temporal, t)
        return temporal.unsqueeze(2) + spatial.unsqueeze(1)

    def tubelet_padding_mask(self, padding_mask: Optional[torch.Tensor], t_tokens: int) -> Optional[torch.Tensor]:
        """(B, T) frame padding -> (B, t_tokens) tubelet padding: a tubelet is padding if all its frames are."""
        if padding_mask is None:
            return None
        valid_frames = (~padding_mask).sum(1)
        starts = torch.arange(t_tokens, device=padding_mask.device) * self.tubelet_size
        return starts.unsqueeze(0) >= valid_frames.unsqueeze(1)

    def patchify(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None):
        """Embed tubelets and add positions.

        Returns tokens (B, t, g, C) with g = gh*gw, and the (B, t) tubelet padding mask (or None).
        """
        b, _, t, h, w = x.shape
        if t % self.tubelet_size:
            pad = self.tubelet_size - t % self.tubelet_size
            x = F.pad(x, (0, 0, 0, 0, 0, pad))
            if padding_mask is not None:
                padding_mask = F.pad(padding_mask, (0, pad), value=True)
        x = self.patch_embed(x)  # (B, C, t', gh, gw)
        _, c, tt, gh, gw = x.shape
        x = x.flatten(3).permute(0, 2, 3, 1)  # (B, t', g, C)
        x = x + self.pos_embed(tt, (gh, gw))
        return x, self.tubelet_padding_mask(padding_mask, tt)

    def forward_tokens(self, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Run the blocks over (B, N, C) tokens (positions already added) -> (B, N, C).

        key_padding_mask (B, N) is True at padding. Any subset of a clip's
        tokens may be passed (MAE encodes the visible ones only).
        """
        if self.cls_token is not None:
            cls = (self.cls_token + self.pos_embed_class).expand(x.shape[0], -1, -1)
            x = torch.cat([cls, x], dim=1)
            if key_padding_mask is not None:
                key_padding_mask = F.pad(key_padding_mask, (1, 0), value=False)
        attn_mask = None
        if key_padding_mask is not None and key_padding_mask.any():
            attn_mask = (~key_padding_mask)[:, None, None, :]
        recompute = self.activation_checkpointing and self.training and torch.is_grad_enabled()
        for blk in self.blocks:
            # torch's non-reentrant checkpoint: keeps only each block's input, replays the block
            # (with the same dropout / drop-path draws) in the backward pass
            x = checkpoint(blk, x, attn_mask, use_reentrant=False) if recompute else blk(x, attn_mask)
        x = self.norm(x)
        return x[:, 1:] if self.cls_token is not None else x

    def forward(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None):
        """(B, C, T, H, W) clips, (B, T) frame padding -> (B, t, g, C) features, (B, t) padding or None."""
        tokens, time_padding = self.patchify(x, padding_mask)
        b, t, g, c = tokens.shape
        key_padding = None if time_padding is None else time_padding.unsqueeze(2).expand(b, t, g).reshape(b, t * g)
        out = self.forward_tokens(tokens.reshape(b, t * g, c), key_padding)
        return out.reshape(b, t, g, c), time_padding
