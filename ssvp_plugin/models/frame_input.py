"""From the collater's uint8 frames to what the video encoder reads, on the model's device.

Batches arrive as uint8 (B, T, H, W, C) with a (B, T) padding mask and, for
clips longer than one window, the first frame of each encoder window
(``window_starts``, -1 where a clip has fewer windows). Normalising here
rather than in the loader sends a quarter of the bytes to the GPU and does
the arithmetic there, in the model's dtype (fp16/bf16 included).
"""

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn


class FrameNormalizer(nn.Module):
    """uint8 (..., T, H, W, C) RGB -> (..., C, T, H, W) in the module's dtype: ``(x / 255 - mean) / std``.

    mean/std come from the data config when the model is built; they are buffers that are not
    saved in checkpoints, so the data config stays the one place that defines them.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.mean, self.std = [float(v) for v in mean], [float(v) for v in std]
        std_t = torch.tensor(std, dtype=torch.float32)
        # one fused multiply-add per value: x * scale + shift
        self.register_buffer("scale", 1.0 / (255.0 * std_t), persistent=False)
        self.register_buffer("shift", -torch.tensor(mean, dtype=torch.float32) / std_t, persistent=False)

    def forward(self, frames: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``padding_mask`` (B, T), True at padded frames: they become 0 (the mean colour), as the
        ViT's own zero-padding of a last, incomplete tubelet is, so a clip encodes the same padded or not."""
        if frames.dtype != torch.uint8:
            raise TypeError(f"expected uint8 frames (B, T, H, W, C) from the collater, got {frames.dtype}")
        x = torch.addcmul(self.shift, frames.to(self.scale.dtype), self.scale)
        if padding_mask is not None:
            x.masked_fill_(padding_mask[:, :, None, None, None], 0.0)  # x is a fresh tensor: no second copy
        return x.movedim(-1, -4)  # channels before time: (..., C, T, H, W)


def cut_windows(
    frames: torch.Tensor, padding_mask: Optional[torch.Tensor], window_starts: Optional[torch.Tensor], num_frames: int
) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
    """The encoder windows of a batch, each up to ``num_frames`` long.

    Returns ``(windows (N, T_w, H, W, C), window padding (N, T_w) or None, slots (N, 2))``
    where ``slots`` holds each window's (clip, window) position. Without ``window_starts``
    every clip is one window (its frames as given).
    """
    b, t = frames.shape[:2]
    if window_starts is None or window_starts.shape[1] == 1:  # one window per clip: it starts at frame 0
        slots = torch.stack([torch.arange(b, device=frames.device), torch.zeros(b, dtype=torch.long, device=frames.device)], 1)
        return frames, padding_mask, slots
    slots = (window_starts >= 0).nonzero()  # (N, 2): clip, window; row-major, so each clip's windows stay in order
    starts = window_starts[slots[:, 0], slots[:, 1]]
    t_w = min(num_frames, t)
    frame_idx = starts.unsqueeze(1) + torch.arange(t_w, device=frames.device)  # (N, T_w)
    lengths = t - padding_mask.sum(1) if padding_mask is not None else torch.full((b,), t, device=frames.device)
    window_padding = frame_idx >= lengths[slots[:, 0]].unsqueeze(1)
    windows = frames[slots[:, :1], frame_idx.clamp(max=t - 1)]  # gathered as uint8: the cheapest copy
    return windows, (window_padding if window_padding.any() else None), slots


def join_windows(
    features: torch.Tensor, padding: Optional[torch.Tensor], slots: torch.Tensor, batch_size: int, max_windows: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-window features (N, L, C) back to per-clip sequences (B, max_windows * L, C), windows
    concatenated in time, with the (B, max_windows * L) padding mask (True at padding and at the
    windows a clip does not have)."""
    n, length, c = features.shape
    out = features.new_zeros(batch_size * max_windows, length, c)
    pad = torch.ones(batch_size * max_windows, length, dtype=torch.bool, device=features.device)
    flat = slots[:, 0] * max_windows + slots[:, 1]
    out[flat] = features
    pad[flat] = padding if padding is not None else False
    return out.view(batch_size, max_windows * length, c), pad.view(batch_size, max_windows * length)


def sinusoidal_positions(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(...) float positions -> (..., dim) sin/cos encodings (fairseq's layout: all sines, then all cosines).

    Positions may be fractional: a clip's last window ends on its last frame, so its first time
    step can fall between two steps of the window before it.
    """
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=positions.device, dtype=torch.float32) * -(math.log(10000.0) / max(half - 1, 1)))
    angles = positions.float().unsqueeze(-1) * freqs
    enc = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return nn.functional.pad(enc, (0, dim - 2 * half))
