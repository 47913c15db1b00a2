"""Which tokens MAE hides, and pixel patches as MAE targets.

Tokens of a clip are indexed t-major: ``index = time_step * g + spatial_position``
with ``g = gh * gw`` (the order :meth:`VideoViT.patchify` produces).
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ..runtime.distributed import rank

MASK_TYPES = ("tube", "random")


def training_mask_generator() -> torch.Generator:
    """The generator training masks are drawn from: seeded from torch's global RNG and this rank.

    fairseq seeds torch's RNG with ``common.seed + num_updates`` at every update on every rank (so a
    resumed run draws what it would have drawn), which makes draws from the global RNG the SAME on
    all ranks: every GPU would hide the same tokens of its clips. Taking the seed from the global RNG
    keeps masks reproducible and resumable; adding the rank gives each rank masks of its own.
    """
    seed = int(torch.randint(0, 2**62, (1,)).item()) + 1_000_003 * rank()
    return torch.Generator().manual_seed(seed)


def num_kept(n: int, mask_ratio: float) -> int:
    """Tokens left visible out of ``n`` (at least one, as in MAE: ``int(n * (1 - ratio))``)."""
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {mask_ratio}")
    # the epsilon keeps float error from dropping a token: 100 * (1 - 0.9) is 9.999999999999998
    return max(1, int(n * (1.0 - mask_ratio) + 1e-6))


def _random_subset(batch: int, n: int, k: int, generator: Optional[torch.Generator]) -> torch.Tensor:
    """(batch, k) sorted indices of a uniformly random k-subset of range(n) per row."""
    noise = torch.rand(batch, n, generator=generator)
    return noise.argsort(dim=1)[:, :k].sort(dim=1).values


def make_mask(
    batch: int, t: int, g: int, mask_ratio: float, mask_type: str = "tube",
    generator: Optional[torch.Generator] = None, device=None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Draw a mask per clip.

    ``tube``: one random spatial mask shared by every time step (VideoMAE's tube
    masking: a hidden patch stays hidden for the whole clip, so it cannot be
    copied from a neighbouring frame). ``random``: any space-time tokens (mae_st).

    Returns ``keep`` (B, K) sorted indices of the visible tokens, and ``mask``
    (B, t*g) bool, True where a token is hidden.
    """
    if mask_type == "tube":
        spatial = _random_subset(batch, g, num_kept(g, mask_ratio), generator)  # (B, k)
        keep = (torch.arange(t).view(1, t, 1) * g + spatial.unsqueeze(1)).reshape(batch, -1)
    elif mask_type == "random":
        keep = _random_subset(batch, t * g, num_kept(t * g, mask_ratio), generator)
    else:
        raise ValueError(f"mask type must be one of {MASK_TYPES}, got {mask_type!r}")
    mask = torch.ones(batch, t * g, dtype=torch.bool)
    mask.scatter_(1, keep, False)
    return keep.to(device), mask.to(device)


def patchify_pixels(x: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, t*g, tubelet*patch*patch*C) pixel patches, in token order.

    T is zero-padded to a multiple of the tubelet, as the patch embedding does.
    """
    b, c, t, h, w = x.shape
    if t % tubelet:
        x = F.pad(x, (0, 0, 0, 0, 0, tubelet - t % tubelet))
        t = x.shape[2]
    gh, gw = h // patch, w // patch
    x = x.reshape(b, c, t // tubelet, tubelet, gh, patch, gw, patch)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # (B, t, gh, gw, u, p, p, C)
    return x.reshape(b, (t // tubelet) * gh * gw, tubelet * patch * patch * c)


def unpatchify_pixels(patches: torch.Tensor, t: int, grid: Tuple[int, int], tubelet: int, patch: int) -> torch.Tensor:
    """Inverse of :func:`patchify_pixels`: (B, t*g, u*p*p*C) -> (B, C, t*u, H, W)."""
    b = patches.shape[0]
    gh, gw = grid
    c = patches.shape[-1] // (tubelet * patch * patch)
    x = patches.reshape(b, t, gh, gw, tubelet, patch, patch, c)
    x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # (B, C, t, u, gh, p, gw, p)
    return x.reshape(b, c, t * tubelet, gh * patch, gw * patch)


def normalise_patches(patches: torch.Tensor, eps: float = 1e-6):
    """Per-patch zero mean / unit variance (MAE's ``norm_pix_loss`` target); also returns mean and std."""
    mean = patches.mean(dim=-1, keepdim=True)
    std = (patches.var(dim=-1, unbiased=True, keepdim=True) + eps).sqrt()
    return (patches - mean) / std, mean, std
