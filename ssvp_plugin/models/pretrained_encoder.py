"""Initialise a video encoder from pretrained weights, with an explicit key map and a report.

Three kinds of file are accepted, all read with ``torch.load(weights_only=True)``:

* a ``mae_vit`` pretraining checkpoint written by fairseq (``encoder.*`` keys);
* a ``mae_vit_slt`` translation checkpoint (``encoder.vit.*`` keys), to start
  from another translation model's encoder;
* an *encoder file* written by ``scripts/convert_video_mae_checkpoint.py``
  from public VideoMAE / mae_st weights (keys already in :class:`VideoViT`
  naming, plus the geometry they were trained at).

Position tables are interpolated when the pretraining clip length or crop
size differs. Anything else that does not fit is an error that names the file
and the setting to change: a half-initialised encoder would train, slowly and
silently worse. Hiera (SignHiera) files are read by :mod:`.signhiera_checkpoint`;
given to a ViT, they are refused with the presets to choose.
"""

import argparse
import logging
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from .video_vit import VideoViT, resize_joint_pos_embed, resize_spatial_pos_embed, resize_temporal_pos_embed

logger = logging.getLogger(__name__)

ENCODER_FILE_FORMAT = "ssvp_slt.video_vit.v1"
# key prefix of the VideoViT inside each fairseq model this project trains
FAIRSEQ_ENCODER_PREFIXES = {"mae_vit": "encoder.", "mae_vit_slt": "encoder.vit."}
# types a foreign training checkpoint may pickle besides tensors (mae_st and VideoMAE save their argparse args)
SAFE_GLOBALS = [argparse.Namespace]
HIERA_HINT = (
    "it holds a Hiera (SignHiera) encoder: fine-tune it with a SignHiera preset, "
    "model.preset=signhiera_base_128x224 (SSVP-SLT's dm_70h_ub_signhiera.pth) or signhiera_tiny"
)


def holds_hiera(state) -> bool:
    """Whether weights (any model prefix) are a Hiera's: its patch embedding is ``patch_embed.proj``,
    a VideoViT's ``patch_embed`` itself."""
    return isinstance(state, dict) and any(str(k).endswith("patch_embed.proj.weight") for k in state)


class PretrainedEncoderError(ValueError):
    """A pretrained encoder file is missing, unreadable or does not fit the model."""


def load_checkpoint_safely(path) -> dict:
    """``torch.load`` with ``weights_only=True`` and only :data:`SAFE_GLOBALS` allowed; clear errors."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedEncoderError(f"{path}: pretrained checkpoint not found")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        # torch's first line is generic; the one naming the refused GLOBAL is what tells the user why
        detail = next((line for line in lines if "GLOBAL" in line), lines[0] if lines else type(e).__name__)
        raise PretrainedEncoderError(
            f"{path}: refused by torch.load(weights_only=True): {detail} "
            f"(the file pickles objects other than tensors; only {[g.__name__ for g in SAFE_GLOBALS]} are allowed)"
        ) from e
    except Exception as e:  # truncated zip, not a torch file at all, ...
        raise PretrainedEncoderError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict):
        raise PretrainedEncoderError(f"{path}: expected a dict of weights, got {type(ckpt).__name__}")
    return ckpt


def save_encoder_file(
    path, state: Dict[str, torch.Tensor], geometry: Dict[str, object], source: str,
    normalisation: Optional[Dict[str, object]] = None,
) -> Path:
    """Write an encoder file: VideoViT-named tensors plus the geometry they were trained at.

    ``geometry`` holds ``embed_dim, depth, num_heads, mlp_ratio, patch_size,
    tubelet_size, img_size, num_frames, pos_embed_type, cls_token``;
    ``normalisation`` the ``mean``/``std`` (RGB, 0-1 scale) its inputs were
    normalised with, and where that fact comes from (``origin``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": ENCODER_FILE_FORMAT,
        "source": source,
        "geometry": dict(geometry),
        "normalisation": dict(normalisation) if normalisation else None,
        "encoder": {k: v.detach().cpu().contiguous() for k, v in state.items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


@dataclass
class EncoderSource:
    """Encoder weights in VideoViT naming, where they came from, and the source's geometry if known."""

    path: Path
    kind: str
    state: Dict[str, torch.Tensor]
    ignored: List[str]  # keys of the file that are not encoder weights (MAE decoder, text decoder, ...)
    geometry: Optional[Dict[str, object]] = None
    normalisation: Optional[Dict[str, object]] = None  # mean/std its inputs were normalised with, if recorded


def read_encoder_source(path) -> EncoderSource:
    path = Path(path)
    ckpt = load_checkpoint_safely(path)
    if ckpt.get("format") == ENCODER_FILE_FORMAT:
        return EncoderSource(
            path, f"encoder file ({ckpt.get('source', 'unknown source')})", dict(ckpt["encoder"]), [],
            ckpt.get("geometry"), ckpt.get("normalisation"),
        )
    if "model" in ckpt and isinstance(ckpt.get("cfg"), dict):
        model_cfg = ckpt["cfg"].get("model") or {}
        name = model_cfg.get("_name") if isinstance(model_cfg, dict) else None
        if name not in FAIRSEQ_ENCODER_PREFIXES:
            hiera = f"; {HIERA_HINT}" if holds_hiera(ckpt["model"]) else ""
            raise PretrainedEncoderError(
                f"{path}: a fairseq checkpoint of model {name!r}; expected one of {sorted(FAIRSEQ_ENCODER_PREFIXES)}{hiera}"
            )
        prefix = FAIRSEQ_ENCODER_PREFIXES[name]
        state = {k[len(prefix):]: v for k, v in ckpt["model"].items() if k.startswith(prefix)}
        ignored = [k for k in ckpt["model"] if not k.startswith(prefix)]
        return EncoderSource(path, f"fairseq {name} checkpoint", state, ignored, _mae_decoder_grid(ckpt["model"]))
    if any(holds_hiera(ckpt.get(k)) for k in ("model", "model_state")):
        raise PretrainedEncoderError(f"{path}: not a ViT checkpoint; {HIERA_HINT}")
    raise PretrainedEncoderError(
        f"{path}: neither a mae_vit / mae_vit_slt checkpoint of this project nor an encoder file "
        f"(top-level keys: {sorted(ckpt)[:8]}). Convert public VideoMAE or mae_st weights first with "
        f"scripts/convert_video_mae_checkpoint.py"
    )


def _mae_decoder_grid(model_state) -> Optional[Dict[str, object]]:
    """(time steps, spatial grid) a mae_vit checkpoint was trained at, read off its decoder's separable
    tables (its encoder's joint table alone cannot tell clip length from crop size)."""
    spatial = model_state.get("decoder.pos_embed_spatial")
    temporal = model_state.get("decoder.pos_embed_temporal")
    if spatial is None or temporal is None:
        return None
    side = math.isqrt(spatial.shape[1])
    return {"time_steps": temporal.shape[1], "grid": (side, side)} if side * side == spatial.shape[1] else None


@dataclass
class LoadReport:
    loaded: List[str] = field(default_factory=list)
    interpolated: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)

    def lines(self, source: EncoderSource) -> List[str]:
        out = [f"pretrained encoder from {source.path} ({source.kind}):",
               f"  loaded {len(self.loaded)} tensors"]
        for key, old, new in self.interpolated:
            out.append(f"  interpolated {key}: {tuple(old)} -> {tuple(new)}")
        out.append(f"  missing (left as initialised): {self.missing or 'none'}")
        out.append(f"  unexpected (not used): {self.unexpected or 'none'}")
        if self.ignored:
            groups = sorted({k.split('.')[0] for k in self.ignored})
            out.append(f"  ignored {len(self.ignored)} non-encoder tensors ({', '.join(groups)})")
        return out


def _source_grid(key: str, src: torch.Tensor, vit: VideoViT, geometry: Optional[dict]) -> Tuple[int, Tuple[int, int]]:
    """(time steps, spatial grid) a source position table was trained for."""
    if geometry and "grid" in geometry:
        return geometry["time_steps"], tuple(geometry["grid"])
    if geometry:
        g = geometry["img_size"] // geometry["patch_size"]
        return max(1, math.ceil(geometry["num_frames"] / geometry["tubelet_size"])), (g, g)
    n = src.shape[1]
    if key == "pos_embed_spatial":
        side = math.isqrt(n)
        if side * side != n:
            raise PretrainedEncoderError(f"{key}: {n} spatial positions do not form a square grid")
        return vit.temporal_size, (side, side)
    if key == "pos_embed_temporal":
        return n, vit.grid_size
    raise PretrainedEncoderError(
        f"{key}: the file's joint table has {n} positions and the model's {vit.temporal_size * vit.grid_size[0] * vit.grid_size[1]}; "
        f"this file does not record the clip length and crop it was trained at, so the table cannot be "
        f"interpolated: fine-tune with the pretraining num_frames / crop_size"
    )


def _fit_pos_embed(key, src, vit, geometry):
    t0, grid0 = _source_grid(key, src, vit, geometry)
    if key == "pos_embed_spatial":
        return resize_spatial_pos_embed(src, grid0, vit.grid_size)
    if key == "pos_embed_temporal":
        return resize_temporal_pos_embed(src, vit.temporal_size)
    return resize_joint_pos_embed(src, t0, grid0, vit.temporal_size, vit.grid_size)


POS_EMBED_KEYS = ("pos_embed_spatial", "pos_embed_temporal", "pos_embed_joint")


def check_normalisation(source: EncoderSource, mean, std) -> Optional[str]:
    """A warning when the data config normalises frames otherwise than the encoder was pretrained with."""
    norm = source.normalisation
    if not norm:
        return None
    want_mean, want_std = [float(v) for v in norm["mean"]], [float(v) for v in norm["std"]]
    if all(abs(a - b) < 1e-3 for a, b in zip(list(mean) + list(std), want_mean + want_std)):
        return None
    return (
        f"{source.path}: the encoder was pretrained on frames normalised with mean {want_mean} / std {want_std} "
        f"({norm.get('origin', 'recorded in the file')}), the data config uses mean {list(mean)} / std {list(std)}: "
        f"set mean and std in config.yaml to the encoder's, or expect a slower start"
    )


def load_pretrained_vit(vit: VideoViT, path, mean=None, std=None) -> LoadReport:
    """Copy a pretrained encoder into ``vit`` in place; log and return the report.

    Raises :class:`PretrainedEncoderError` when the file is missing or
    unreadable, when a weight's shape does not fit (other than position
    tables, which are interpolated), or when the model has weights the file
    lacks.
    """
    source = read_encoder_source(path)  # keys already in VideoViT naming (prefix map or converter key map)
    warning = check_normalisation(source, mean, std) if mean is not None else None
    if warning:
        logger.warning(warning)
    target = vit.state_dict()
    report = LoadReport(ignored=source.ignored)
    new_state, mismatched = {}, []
    for dst in target:
        if dst not in source.state:
            report.missing.append(dst)
            continue
        value = source.state[dst]
        if value.shape != target[dst].shape and dst in POS_EMBED_KEYS and value.shape[-1] == target[dst].shape[-1]:
            fitted = _fit_pos_embed(dst, value, vit, source.geometry)
            report.interpolated.append((dst, tuple(value.shape), tuple(fitted.shape)))
            value = fitted
        if value.shape != target[dst].shape:
            mismatched.append(f"{dst}: file {tuple(value.shape)} vs model {tuple(target[dst].shape)}")
            continue
        new_state[dst] = value.to(target[dst].dtype)
        report.loaded.append(dst)
    report.unexpected = sorted(set(source.state) - set(target))
    for line in report.lines(source):
        logger.info(line)
    hint = _hint(source, report, vit)
    if mismatched:
        raise PretrainedEncoderError(
            f"{source.path}: encoder weights do not fit the model ({len(mismatched)} shape mismatches, e.g. "
            f"{'; '.join(mismatched[:3])}). {hint}"
        )
    if report.missing:
        raise PretrainedEncoderError(
            f"{source.path}: the model has {len(report.missing)} encoder weights the file lacks "
            f"({', '.join(report.missing[:6])}{', ...' if len(report.missing) > 6 else ''}). {hint}"
        )
    if report.unexpected:
        raise PretrainedEncoderError(
            f"{source.path}: the file has {len(report.unexpected)} encoder weights the model has no place for "
            f"({', '.join(report.unexpected[:6])}{', ...' if len(report.unexpected) > 6 else ''}). {hint}"
        )
    vit.load_state_dict(new_state, strict=True)
    return report


def _hint(source: EncoderSource, report: LoadReport, vit: VideoViT) -> str:
    """The model setting most likely to be wrong, from what does not fit."""
    src, missing = set(source.state), set(report.missing)
    if holds_hiera(source.state):
        return f"The file {HIERA_HINT}."
    if "pos_embed_joint" in src and "pos_embed_joint" in missing.union(report.unexpected) and vit.pos_embed_type != "joint":
        return "The file has a joint space-time position table: set model.encoder_pos_embed=joint."
    if "pos_embed_spatial" in src and vit.pos_embed_type != "separable":
        return "The file has separable position tables: set model.encoder_pos_embed=separable."
    if "cls_token" in src and vit.cls_token is None:
        return "The file has a class token: set model.encoder_cls_token=true."
    if "cls_token" in missing:
        return "The file has no class token: set model.encoder_cls_token=false."
    geometry = source.geometry
    if geometry and "embed_dim" in geometry:
        return (
            f"The file's encoder: embed_dim={geometry.get('embed_dim')}, depth={geometry.get('depth')}, "
            f"heads={geometry.get('num_heads')}, patch={geometry.get('patch_size')}, tubelet={geometry.get('tubelet_size')}; "
            f"set model.preset or model.encoder_embed_dim / encoder_layers / encoder_attention_heads / patch_size / "
            f"tubelet_size to match."
        )
    n_blocks = len({k.split(".")[1] for k in src if k.startswith("blocks.")})
    width = source.state["norm.weight"].shape[0] if "norm.weight" in source.state else "?"
    return (
        f"The file's encoder has {n_blocks} blocks of width {width}; set model.preset (or encoder_embed_dim / "
        f"encoder_layers / encoder_attention_heads / patch_size / tubelet_size) to match."
    )
