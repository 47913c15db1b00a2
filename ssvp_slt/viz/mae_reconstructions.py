"""Pictures of MAE reconstructions: is pretraining learning anything?

``scripts/render_mae_reconstructions.py`` is the command-line front end. The
pieces here work on plain tensors and arrays, so they are testable without a
checkpoint:

* :func:`clip_views` turns the output of ``MaeVitModel.reconstruct`` (normalised
  pixels) into uint8 RGB frames per clip: input, masked input (hidden pixels a
  flat grey) and reconstruction, plus the hidden-pixel mask, the valid (not
  padded) frames and two errors: the model's and a trivial baseline's.
* :func:`render_grid` lays clips out as an RGB image: per clip three rows
  (input / masked / reconstruction) of evenly spaced frames, upscaled by
  nearest neighbour, with thin separators and a row label in a left margin.
  :class:`GridLayout` says where every cell is.
* :func:`load_mae_checkpoint` and :func:`reconstruct_split` load a ``mae_vit``
  or ``mae_hiera`` checkpoint and run it on the first clips of a split, as
  evaluation sees them (centre window, centre crop, the validation masks).
  ``mae_hiera`` predicts only the first frame of each 2-frame time unit, so its
  pictures and errors are on those frames (its ``reconstruct`` returns them).

Errors are in [0, 1] pixel units, over hidden pixels of valid frames only: the
mean squared difference between reconstruction and input, and the same for two
baselines:

* frame mean: each hidden pixel is the mean colour of its frame's visible
  pixels (the clip's visible mean where a frame shows nothing); it uses only
  what the model saw.
* patch mean (models trained with ``norm_pix_loss``): each hidden tubelet patch
  is flat at its own true mean, which is exactly what ``reconstruct`` shows for
  a model that predicts nothing (zeros): with ``norm_pix_loss`` predictions
  are per-patch normalised and ``reconstruct`` puts back every hidden patch's
  *true* mean and spread, information the model never saw. So an untrained
  model already beats the frame-mean baseline; learning shows as a
  reconstruction error clearly below the patch-mean baseline.
"""

import math
from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "ssvp_plugin"  # fairseq user dir: registers mae_vit, mae_hiera

ROW_LABELS = ("input", "masked", "reconstruction")
MAE_MODELS = ("mae_vit", "mae_hiera")  # registered pretraining models with a ``reconstruct`` method
MASK_GREY = 170  # hidden pixels in the "masked" row; not the mean colour (0.45 -> 115) that zeroing gives
BACKGROUND = 24  # separators, margin and empty cells
LABEL_COLOUR = (235, 235, 235)
NOTE_COLOUR = (160, 160, 160)
LABEL_WIDTH = 112  # left margin, px
SEP = 2  # separator between rows and between columns, px (also the outer border)
CLIP_GAP = 6  # extra space between clips, px
FONT = cv2.FONT_HERSHEY_SIMPLEX


class ReconstructionError(ValueError):
    """A one-line problem with the user's input (checkpoint, data root, split)."""


@dataclass
class ClipViews:
    """One clip, as uint8 RGB frames (T, H, W, 3) and per-pixel masks."""

    id: int
    input: np.ndarray
    masked: np.ndarray  # input with hidden pixels MASK_GREY
    reconstruction: np.ndarray  # predicted hidden pixels, visible pixels from the input
    hidden: np.ndarray  # (T, H, W) bool, True where the model did not see the pixel
    valid: np.ndarray  # (T,) bool, False for padded frames
    mse: float  # reconstruction vs input over hidden pixels of valid frames ([0, 1] units)
    baseline_mse: float  # frame-mean baseline vs input, same pixels
    patch_mean_mse: Optional[float] = None  # flat-patch ("nothing learnt") baseline, norm_pix_loss models
    name: Optional[str] = None  # shown in the picture (the manifest id); ``id`` if unset

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum())


# --- pixels ------------------------------------------------------------------------------------------


def to_unit_pixels(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Normalised (B, C, T, H, W) -> (B, T, H, W, C) float in [0, 1] (inverse of the collater's normalisation)."""
    mean_t = torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1, 1)
    std_t = torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1, 1)
    return (x.detach().float().cpu() * std_t + mean_t).clamp_(0.0, 1.0).permute(0, 2, 3, 4, 1).contiguous()


def to_uint8(x01: torch.Tensor) -> np.ndarray:
    """[0, 1] floats -> uint8 (rounded)."""
    return x01.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()


def mean_colour_baseline(target01: torch.Tensor, hidden: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The trivial guess: every hidden pixel of a frame is that frame's mean visible colour.

    target01 (T, H, W, C), hidden (T, H, W) bool, valid (T,) bool -> (T, H, W, C). A frame with
    no visible pixel gets the mean visible colour of the clip's valid frames (mid grey if none).
    """
    seen = (~hidden).unsqueeze(-1).float()  # (T, H, W, 1)
    seen_sum = (target01 * seen).sum(dim=(1, 2))  # (T, C)
    seen_n = seen.sum(dim=(1, 2))  # (T, 1)
    v = valid.view(-1, 1).float()
    clip_n = (seen_n * v).sum()
    clip_mean = (seen_sum * v).sum(0) / clip_n if clip_n > 0 else torch.full_like(seen_sum[0], 0.5)
    frame_mean = torch.where(seen_n > 0, seen_sum / seen_n.clamp(min=1), clip_mean.unsqueeze(0))  # (T, C)
    guess = frame_mean.view(-1, 1, 1, target01.shape[-1]).expand_as(target01)
    return torch.where(hidden.unsqueeze(-1), guess, target01)


def hidden_mse(pred01: torch.Tensor, target01: torch.Tensor, hidden: torch.Tensor, valid: torch.Tensor) -> float:
    """Mean squared difference over hidden pixels (all channels) of valid frames; NaN if there are none."""
    sel = hidden & valid.view(-1, 1, 1)
    if not bool(sel.any()):
        return math.nan
    return float(((pred01 - target01) ** 2)[sel].mean())


def flat_patch_reconstruction(source: torch.Tensor, mask: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """What ``MaeVitModel.reconstruct`` returns, with ``norm_pix_loss``, for a model predicting zeros:
    every hidden tubelet patch flat at its own mean (over its frames, pixels and channels), visible
    patches as given. source and mask (B, C, T, H, W) -> normalised (B, C, T, H, W)."""
    from ssvp_plugin.models.masking import normalise_patches, patchify_pixels, unpatchify_pixels

    b, _, t, h, w = source.shape
    patches = patchify_pixels(source, tubelet, patch)
    hidden = patchify_pixels(mask.to(source.dtype), tubelet, patch)[..., :1] > 0.5  # one value per token
    _, patch_mean, _ = normalise_patches(patches)
    flat = torch.where(hidden, patch_mean.expand_as(patches), patches)
    return unpatchify_pixels(flat, -(-t // tubelet), (h // patch, w // patch), tubelet, patch)[:, :, :t]


def clip_views(
    recon: dict,
    source: torch.Tensor,
    padding_mask: Optional[torch.Tensor],
    mean,
    std,
    ids: Optional[Sequence[int]] = None,
    patch_mean: Optional[torch.Tensor] = None,
) -> List[ClipViews]:
    """``MaeVitModel.reconstruct`` output plus the batch it was given -> one :class:`ClipViews` per clip.

    ``recon["mask"]`` is 1 where a pixel was hidden (the same for every channel); ``source`` and
    ``recon["reconstruction"]`` are normalised (B, C, T, H, W); ``padding_mask`` (B, T) is True at
    padded frames. ``patch_mean``: :func:`flat_patch_reconstruction` of the batch, for the
    patch-mean baseline's error.
    """
    b, _, t = source.shape[:3]
    inp = to_unit_pixels(source, mean, std)
    rec = to_unit_pixels(recon["reconstruction"], mean, std)
    flat = None if patch_mean is None else to_unit_pixels(patch_mean, mean, std)
    hidden_all = recon["mask"].detach().cpu()[:, 0] > 0.5  # (B, T, H, W)
    valid_all = torch.ones(b, t, dtype=torch.bool) if padding_mask is None else ~padding_mask.detach().cpu().bool()
    ids = list(range(b)) if ids is None else [int(i) for i in ids]
    out = []
    for i in range(b):
        hidden, valid = hidden_all[i], valid_all[i]
        input_u8 = to_uint8(inp[i])
        masked = input_u8.copy()
        masked[hidden.numpy()] = MASK_GREY
        baseline = mean_colour_baseline(inp[i], hidden, valid)
        out.append(
            ClipViews(
                id=ids[i],
                input=input_u8,
                masked=masked,
                reconstruction=to_uint8(rec[i]),
                hidden=hidden.numpy(),
                valid=valid.numpy(),
                mse=hidden_mse(rec[i], inp[i], hidden, valid),
                baseline_mse=hidden_mse(baseline, inp[i], hidden, valid),
                patch_mean_mse=None if flat is None else hidden_mse(flat[i], inp[i], hidden, valid),
            )
        )
    return out


# --- layout ------------------------------------------------------------------------------------------


def evenly_spaced(n_valid: int, k: int) -> List[int]:
    """Up to ``k`` distinct frame indices spread evenly over ``range(n_valid)``, first and last included."""
    if n_valid <= 0 or k <= 0:
        return []
    if k == 1:
        return [n_valid // 2]
    return sorted(set(int(round(v)) for v in np.linspace(0, n_valid - 1, k)))


@dataclass(frozen=True)
class GridLayout:
    """Geometry of the picture: ``n_clips`` x 3 rows of ``n_frames`` cells of (frame_h, frame_w) * scale px.

    Every row and column is preceded by a SEP px separator, the last ones are followed by one,
    clips are CLIP_GAP px further apart, and a LABEL_WIDTH px margin on the left holds the labels.
    """

    n_clips: int
    n_frames: int
    frame_h: int
    frame_w: int
    scale: int

    @property
    def cell_h(self) -> int:
        return self.frame_h * self.scale

    @property
    def cell_w(self) -> int:
        return self.frame_w * self.scale

    @property
    def height(self) -> int:
        return SEP + self.n_clips * len(ROW_LABELS) * (self.cell_h + SEP) + max(0, self.n_clips - 1) * CLIP_GAP

    @property
    def width(self) -> int:
        return LABEL_WIDTH + SEP + self.n_frames * (self.cell_w + SEP)

    def cell(self, clip: int, row: int, col: int) -> Tuple[int, int]:
        """(y, x) of the top-left pixel of a cell."""
        y = SEP + clip * (len(ROW_LABELS) * (self.cell_h + SEP) + CLIP_GAP) + row * (self.cell_h + SEP)
        return y, LABEL_WIDTH + SEP + col * (self.cell_w + SEP)


def _wrap(text: str, font_scale: float, width: int) -> List[str]:
    """``text`` cut into pieces no wider than ``width`` px (at any character: ids have no spaces)."""
    lines, current = [], ""
    for ch in text:
        if current and cv2.getTextSize(current + ch, FONT, font_scale, 1)[0][0] > width:
            lines.append(current)
            current = ""
        current += ch
    return lines + [current] if current else lines


def _draw_label(image: np.ndarray, label: str, y: int, cell_h: int, note: str = "") -> None:
    """The row label (and a smaller, wrapped note under it) in the left margin, centred on a cell;
    note lines that do not fit in the cell's height are left out."""
    width = LABEL_WIDTH - 8
    scale = 0.45
    tw = cv2.getTextSize(label, FONT, scale, 1)[0][0]
    if tw > width:
        scale *= width / tw
    lines = [(label, scale, LABEL_COLOUR)] + [(t, 0.32, NOTE_COLOUR) for t in _wrap(note, 0.32, width)]
    sizes = [cv2.getTextSize(t, FONT, sc, 1) for t, sc, _ in lines]
    heights = [th + base + 3 for (_, th), base in sizes]
    while len(lines) > 1 and sum(heights) > cell_h:
        lines.pop(), heights.pop(), sizes.pop()
    top = y + max(0, (cell_h - sum(heights)) // 2)
    for (text, sc, colour), ((_, th), _), h in zip(lines, sizes, heights):
        cv2.putText(image, text, (4, top + th + 1), FONT, sc, colour, 1, cv2.LINE_AA)
        top += h


def render_grid(clips: Sequence[ClipViews], n_frames: int, scale: int) -> np.ndarray:
    """The picture as an RGB uint8 array (see :class:`GridLayout` for where each cell is).

    Columns are :func:`evenly_spaced` valid frames of each clip (padded frames are never shown;
    a clip with fewer valid frames than ``n_frames`` leaves its last cells empty).
    """
    if not clips:
        raise ValueError("no clips to render")
    if n_frames < 1 or scale < 1:
        raise ValueError(f"frames and scale must be at least 1, got {n_frames} and {scale}")
    _, fh, fw, _ = clips[0].input.shape
    layout = GridLayout(len(clips), n_frames, fh, fw, scale)
    image = np.full((layout.height, layout.width, 3), BACKGROUND, dtype=np.uint8)
    for c, clip in enumerate(clips):
        valid_idx = np.flatnonzero(clip.valid)
        frames = [int(valid_idx[j]) for j in evenly_spaced(len(valid_idx), n_frames)]
        for r, (label, views) in enumerate(zip(ROW_LABELS, (clip.input, clip.masked, clip.reconstruction))):
            y, _ = layout.cell(c, r, 0)
            _draw_label(image, label, y, layout.cell_h, note=f"clip {clip.name or clip.id}" if r == 0 else "")
            for col, f in enumerate(frames):
                y, x = layout.cell(c, r, col)
                big = np.repeat(np.repeat(views[f], scale, axis=0), scale, axis=1)
                image[y : y + layout.cell_h, x : x + layout.cell_w] = big
    return image


def check_output_path(path: Union[str, Path]) -> Path:
    """Fail early (before any model work) on an output path that cannot be written as an image."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ReconstructionError(f"output folder not found: {path.parent}")
    if not cv2.haveImageWriter(str(path)):
        raise ReconstructionError(f"{path}: not an image file name OpenCV can write (use e.g. recon.png)")
    return path


def write_png(path: Union[str, Path], rgb: np.ndarray) -> Path:
    """Write an RGB image (cv2 wants BGR); raises ReconstructionError if it cannot be written."""
    path = check_output_path(path)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise ReconstructionError(f"could not write {path}")
    return path


# --- model and data ----------------------------------------------------------------------------------


def checkpoint_model_name(state) -> Optional[str]:
    """The registered model name a fairseq checkpoint state was trained with, or None."""
    if not isinstance(state, dict):
        return None
    cfg = state.get("cfg")
    if cfg is not None:
        try:
            return str(cfg["model"]["_name"])
        except (KeyError, TypeError):
            return None
    args = state.get("args")
    return getattr(args, "arch", None) if args is not None else None


def load_mae_checkpoint(checkpoint: Union[str, Path], data: Union[str, Path], device: str = "cpu"):
    """(model in eval mode, task) from a ``mae_vit`` or ``mae_hiera`` checkpoint; ``data`` replaces the data root it recorded."""
    from fairseq import checkpoint_utils, utils

    checkpoint, data = Path(checkpoint), Path(data)
    if not checkpoint.is_file():
        raise ReconstructionError(f"checkpoint not found: {checkpoint}")
    if not data.is_dir():
        raise ReconstructionError(f"data root not found: {data}")
    utils.import_user_module(Namespace(user_dir=str(PLUGIN_DIR)))
    overrides = {"data": str(data)}
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(str(checkpoint), overrides)
    except Exception as e:  # torch.load and fairseq's upgrade step raise many kinds for other files
        detail = f"{type(e).__name__}: {e}".splitlines()[0][:120]
        raise ReconstructionError(f"{checkpoint}: not a fairseq checkpoint (loading it failed with {detail})") from e
    name = checkpoint_model_name(state)
    if name is None:
        raise ReconstructionError(f"{checkpoint}: not a fairseq checkpoint (no model settings in it)")
    if name not in MAE_MODELS:
        raise ReconstructionError(
            f"{checkpoint}: a '{name}' checkpoint; MAE reconstructions need a 'mae_vit' or 'mae_hiera' (pretraining) checkpoint"
        )
    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(checkpoint)], arg_overrides=overrides, state=state)
    model = models[0].to(device).eval()
    return model, task


def use_mask_seed(model, seed: int) -> None:
    """Draw the model's masks from ``seed`` (outside training ``mae_vit`` always uses its validation
    seed, ``EVAL_MASK_SEED``; the same seed here gives the masks validation uses)."""
    from ssvp_plugin.models.masking import make_mask

    if hasattr(model, "use_mask_seed"):  # mae_hiera draws its own (padding-aware) masks
        model.use_mask_seed(seed)
        return

    cfg = model.cfg

    def draw_mask(b, t, g, device):
        generator = torch.Generator().manual_seed(seed)
        return make_mask(b, t, g, cfg.mask_ratio, str(cfg.mask_type), generator, device)

    model.draw_mask = draw_mask


def reconstruct_split(model, task, split: str, n_clips: int) -> List[ClipViews]:
    """Reconstruct the first ``n_clips`` clips of ``split`` in one batch, as evaluation sees them."""
    task.load_dataset(split)  # a missing or bad manifest raises ManifestError naming it
    dataset = task.dataset(split)
    n = min(n_clips, len(dataset))
    batch = dataset.collater([dataset[i] for i in range(n)])
    device = next(model.parameters()).device
    source = batch["net_input"]["source"].to(device)
    padding_mask = batch["net_input"]["padding_mask"].to(device)
    recon = model.reconstruct(source, padding_mask)
    # a model that predicts other frames than it reads (mae_hiera) returns the frames it shows,
    # their padding and its flat-patch baseline
    normalised = recon.get("input")
    if normalised is None:
        normalised = model.frames(source, padding_mask)  # (B, C, T, H, W), as the model saw the clips
    padding_mask = recon.get("padding_mask", padding_mask)
    flat = recon.get("patch_mean")
    if flat is None and getattr(model.cfg, "norm_pix_loss", False):
        flat = flat_patch_reconstruction(normalised, recon["mask"], model.cfg.tubelet_size, model.cfg.patch_size)
    views = clip_views(
        recon, normalised, padding_mask, task.data_cfg.mean, task.data_cfg.std, batch["id"].tolist(), patch_mean=flat
    )
    for v in views:
        v.name = str(dataset.rows[v.id].id)
    return views
