"""Shared pieces of the checkpoint converters: reading weights, explicit key bookkeeping, reports.

A converter takes every tensor it uses by its exact source name
(:class:`KeyTaker`), sets aside the tensors known not to be encoder weights
(MAE decoder, classification head, ...) and fails on anything left over, so
nothing is dropped or left half-initialised without a word.
"""

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch

from ssvp_plugin.models.pretrained_encoder import PretrainedEncoderError, load_checkpoint_safely, save_encoder_file
from ssvp_plugin.models.video_vit import VideoViT

# entries under which training scripts keep the weights (VideoMAE: "model" / "module"; mae_st: "model" / "model_state")
WRAPPER_KEYS = ("model", "module", "model_state", "state_dict")
# Hugging Face file names looked for when the input is a model directory
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# attention heads of the standard ViT widths (ViT-S/B/L/H); the weights cannot tell the head count
STANDARD_HEADS = {384: 6, 768: 12, 1024: 16, 1280: 16}
# this project's presets (ssvp_plugin/models/video_encoder_config.py): width, depth, heads
PRESETS = {"tiny": (128, 4, 4), "base": (768, 12, 12), "large": (1024, 24, 16)}
TARGET_LAYER_NORM_EPS = 1e-6


class ConversionError(PretrainedEncoderError):
    """A source checkpoint cannot be converted; the message names the file and the problem."""


@dataclass
class GeometryOverrides:
    """Command-line values for what the weights cannot tell (``None``: not given)."""

    num_frames: Optional[int] = None
    img_size: Optional[int] = None
    tubelet_size: Optional[int] = None
    patch_size: Optional[int] = None
    num_heads: Optional[int] = None


@dataclass
class SourceWeights:
    path: Path
    state: Dict[str, torch.Tensor]
    container: str  # how the weights were stored, for the report
    args: Dict[str, object] = field(default_factory=dict)  # training arguments saved beside the weights


@dataclass
class Conversion:
    """Encoder weights in VideoViT naming, their geometry, and what was done to get them."""

    source: Path
    source_kind: str
    state: Dict[str, torch.Tensor]
    geometry: Dict[str, object]
    geometry_origin: Dict[str, str]  # geometry field -> where its value came from
    n_source_mapped: int
    ignored: Dict[str, int]  # group -> number of source tensors set aside
    steps: List[str]  # what the conversion did beyond renaming (fusing, generated tables, ...)
    notes: List[str] = field(default_factory=list)  # things the user should know
    norm_absent: bool = False
    # mean/std (RGB, 0-1) the source's inputs were normalised with, and where that fact comes from
    normalisation: Optional[Dict[str, object]] = None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _load_safetensors(path: Path) -> Dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError as e:
        raise ConversionError(
            f"{path}: reading .safetensors needs the 'safetensors' package (pip install safetensors)"
        ) from e
    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # SafetensorError, OSError, ...
        raise ConversionError(f"{path}: not a readable safetensors file ({_first_line(e)})") from e


def _resolve_input(path: Path) -> Path:
    if path.is_dir():
        for name in HF_WEIGHT_FILES:
            if (path / name).is_file():
                return path / name
        if any(path.glob("*.safetensors.index.json")) or any(path.glob("*.bin.index.json")):
            raise ConversionError(f"{path}: sharded weights are not supported; merge the shards into one file first")
        raise ConversionError(f"{path}: a directory without {' or '.join(HF_WEIGHT_FILES)}")
    if not path.is_file():
        raise ConversionError(f"{path}: checkpoint not found")
    return path


def _as_dict(args) -> Dict[str, object]:
    if args is None:
        return {}
    if isinstance(args, dict):
        return dict(args)
    try:
        return dict(vars(args))
    except TypeError:
        return {}


def read_source(path) -> SourceWeights:
    """The state dict of a checkpoint (.pth / .bin / .safetensors, or a Hugging Face model directory)."""
    path = _resolve_input(Path(path))
    if path.suffix == ".safetensors":
        state, container, args = _load_safetensors(path), "safetensors file", {}
    else:
        ckpt = load_checkpoint_safely(path)
        if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            state, container, args = ckpt, "plain state dict", {}
        else:
            wrapper = next((k for k in WRAPPER_KEYS if isinstance(ckpt.get(k), dict)), None)
            if wrapper is None:
                raise ConversionError(
                    f"{path}: no weights found: expected a state dict, or one under "
                    f"{' / '.join(repr(k) for k in WRAPPER_KEYS)} (top-level keys: {sorted(map(str, ckpt))[:8]})"
                )
            state, container, args = ckpt[wrapper], f"{wrapper!r} entry of a training checkpoint", _as_dict(ckpt.get("args"))
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ConversionError(f"{path}: the state dict holds non-tensor entries ({', '.join(map(str, bad[:5]))})")
    if not state:
        raise ConversionError(f"{path}: the state dict is empty")
    if all(k.startswith("module.") for k in state):  # saved from a DistributedDataParallel wrapper
        state = {k[len("module."):]: v for k, v in state.items()}
        container += ", 'module.' prefix removed"
    return SourceWeights(path, dict(state), container, args)


def read_json_config(path: Path) -> Dict[str, object]:
    try:
        config = json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise ConversionError(f"{path}: config file not found") from e
    except (OSError, ValueError) as e:
        raise ConversionError(f"{path}: not a readable JSON config ({_first_line(e)})") from e
    if not isinstance(config, dict):
        raise ConversionError(f"{path}: expected a JSON object")
    return config


class KeyTaker:
    """Hands out a state dict's tensors by exact name and keeps account of what was used or set aside."""

    def __init__(self, source: SourceWeights):
        self.path = source.path
        self.state = source.state
        self.used: set = set()
        self.ignored: Dict[str, str] = {}  # key -> group

    def has(self, key: str) -> bool:
        return key in self.state

    def take(self, key: str, what: str = "") -> torch.Tensor:
        if key not in self.state:
            raise ConversionError(f"{self.path}: missing tensor {key!r}{f' ({what})' if what else ''}")
        if key in self.used:
            raise ConversionError(f"{self.path}: tensor {key!r} mapped twice (converter bug)")
        self.used.add(key)
        return self.state[key]

    def take_optional(self, key: str) -> Optional[torch.Tensor]:
        return self.take(key) if key in self.state else None

    def ignore(self, group_of: Callable[[str], Optional[str]]):
        """Set aside every unused key for which ``group_of`` returns a group name."""
        for key in self.state:
            if key not in self.used and key not in self.ignored:
                group = group_of(key)
                if group:
                    self.ignored[key] = group

    def finish(self, hint: str = ""):
        left = sorted(k for k in self.state if k not in self.used and k not in self.ignored)
        if left:
            raise ConversionError(
                f"{self.path}: {len(left)} tensor(s) neither mapped to the encoder nor known as non-encoder "
                f"weights: {', '.join(left[:6])}{', ...' if len(left) > 6 else ''}{f'. {hint}' if hint else ''}"
            )

    def ignored_counts(self) -> Dict[str, int]:
        return dict(sorted(Counter(self.ignored.values()).items()))


def count_blocks(path: Path, keys, pattern: str) -> int:
    """Number of transformer blocks, from keys matching ``pattern`` (one group: the block index); must be 0..n-1."""
    rx = re.compile(pattern)
    indices = {int(m.group(1)) for k in keys for m in [rx.match(k)] if m}
    if not indices:
        return 0
    n = max(indices) + 1
    if indices != set(range(n)):
        raise ConversionError(f"{path}: transformer blocks {sorted(set(range(n)) - indices)} are missing")
    return n


def patch_geometry(path: Path, key: str, weight: torch.Tensor, overrides: GeometryOverrides) -> Tuple[int, int, int]:
    """(embed_dim, tubelet, patch) from a Conv3d patch-embedding weight (C, 3, t, p, p)."""
    if weight.dim() != 5:
        raise ConversionError(f"{path}: {key} has shape {tuple(weight.shape)}; expected a Conv3d weight (C, 3, t, p, p)")
    dim, chans, tubelet, ph, pw = weight.shape
    if chans != 3:
        raise ConversionError(f"{path}: {key} takes {chans} input channels; only RGB (3) encoders are supported")
    if ph != pw:
        raise ConversionError(f"{path}: {key} has non-square {ph}x{pw} patches, which the encoder does not support")
    for flag, given, actual in (("--tubelet-size", overrides.tubelet_size, tubelet), ("--patch-size", overrides.patch_size, ph)):
        if given is not None and given != actual:
            raise ConversionError(f"{path}: {flag} {given} contradicts the weights ({key} has size {actual})")
    return dim, tubelet, ph


def pick(name: str, *candidates: Tuple[Optional[object], str]) -> Tuple[object, str]:
    """The first candidate value that is set, with where it came from."""
    for value, origin in candidates:
        if value is not None:
            return value, origin
    raise AssertionError(f"no value for {name}")  # callers end with a default


def heads_for(path: Path, dim: int, candidates: List[Tuple[Optional[int], str]]) -> Tuple[int, str]:
    for value, origin in candidates:
        if value is not None:
            heads, source = int(value), origin
            break
    else:
        if dim not in STANDARD_HEADS:
            raise ConversionError(
                f"{path}: cannot tell the number of attention heads of a width-{dim} encoder from its weights; "
                f"pass --num-heads"
            )
        heads, source = STANDARD_HEADS[dim], f"standard for width {dim}"
    if heads <= 0 or dim % heads:
        raise ConversionError(f"{path}: width {dim} is not divisible into {heads} attention heads")
    return heads, source


def check_fits_video_vit(path: Path, state: Dict[str, torch.Tensor], geometry: Dict[str, object]):
    """The converted tensors are exactly what a VideoViT of ``geometry`` holds (built on the meta device: no memory)."""
    with torch.device("meta"):
        vit = VideoViT(
            img_size=geometry["img_size"], num_frames=geometry["num_frames"], patch_size=geometry["patch_size"],
            tubelet_size=geometry["tubelet_size"], embed_dim=geometry["embed_dim"], depth=geometry["depth"],
            num_heads=geometry["num_heads"], mlp_ratio=geometry["mlp_ratio"],
            pos_embed_type=geometry["pos_embed_type"], cls_token=geometry["cls_token"],
        )
    expected = {k: tuple(v.shape) for k, v in vit.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    problems = [f"{k} missing" for k in expected if k not in got]
    problems += [f"{k} unexpected" for k in got if k not in expected]
    problems += [f"{k}: {got[k]} vs {expected[k]}" for k in expected if k in got and got[k] != expected[k]]
    if problems:
        raise ConversionError(
            f"{path}: the converted weights do not form an encoder of the inferred geometry "
            f"({'; '.join(problems[:4])}); check --num-frames / --img-size / --num-heads"
        )


def mlp_ratio_of(path: Path, fc1_weight: torch.Tensor, dim: int) -> float:
    hidden = fc1_weight.shape[0]
    ratio = hidden / dim
    if int(dim * ratio) != hidden:
        raise ConversionError(f"{path}: MLP width {hidden} is not a ratio of the width {dim} the encoder can express")
    return ratio


def temporal_steps(path: Path, num_frames: int, tubelet: int) -> int:
    if num_frames % tubelet:
        raise ConversionError(f"{path}: {num_frames} frames is not a multiple of the tubelet size {tubelet}")
    return num_frames // tubelet


def spatial_side(path: Path, key: str, n: int) -> int:
    side = math.isqrt(n)
    if side * side != n:
        raise ConversionError(f"{path}: {key} has {n} spatial positions, not a square grid")
    return side


def write_conversion(conversion: Conversion, output) -> Path:
    return save_encoder_file(
        output, conversion.state, conversion.geometry, source=f"{conversion.source} ({conversion.source_kind})",
        normalisation=conversion.normalisation,
    )


def data_config_lines(conversion: Conversion) -> List[str]:
    """What to put in the data config so that frames are normalised as the encoder was pretrained."""
    norm = conversion.normalisation
    if not norm:
        return []
    mean, std = norm["mean"], norm["std"]
    return [
        f"its inputs were normalised with mean {mean} / std {std} ({norm['origin']}); put these in the data config:",
        f"  config.yaml:  mean: {mean}  std: {std}",
        f"  (or scripts/build_vocab.py ... --mean {' '.join(map(str, mean))} --std {' '.join(map(str, std))})",
    ]


def model_settings(geometry: Dict[str, object], output: Path) -> List[str]:
    """Fine-tuning settings (hydra overrides of mae_vit_slt) that build the encoder this file fits."""
    size = (geometry["embed_dim"], geometry["depth"], geometry["num_heads"])
    preset = next((name for name, sizes in PRESETS.items() if sizes == size), None)
    out = [
        f"model.encoder_pos_embed={geometry['pos_embed_type']}",
        f"model.encoder_cls_token={'true' if geometry['cls_token'] else 'false'}",
    ]
    if preset:
        out.append(f"model.preset={preset}")
    else:
        out += [f"model.encoder_embed_dim={size[0]}", f"model.encoder_layers={size[1]}", f"model.encoder_attention_heads={size[2]}"]
    if float(geometry["mlp_ratio"]) != 4.0:
        out.append(f"model.encoder_mlp_ratio={geometry['mlp_ratio']:g}")
    out += [
        f"model.patch_size={geometry['patch_size']}",
        f"model.tubelet_size={geometry['tubelet_size']}",
        f"model.pretrained_encoder={Path(output).resolve()}",
    ]
    return out


def report_lines(conversion: Conversion, output) -> List[str]:
    g, origin = conversion.geometry, conversion.geometry_origin
    n_out = len(conversion.state)
    lines = [
        f"converted {conversion.source} ({conversion.source_kind}) -> {Path(output).resolve()}",
        f"  encoder: width {g['embed_dim']}, {g['depth']} blocks, {g['num_heads']} heads ({origin['num_heads']}), "
        f"MLP ratio {g['mlp_ratio']:g}, patch {g['patch_size']}, tubelet {g['tubelet_size']}, "
        f"position tables {g['pos_embed_type']}, class token {'yes' if g['cls_token'] else 'no'}",
        f"  pretrained on {g['num_frames']}-frame clips ({origin['num_frames']}) at {g['img_size']} px ({origin['img_size']})",
        f"  mapped {conversion.n_source_mapped} source tensors to {n_out} encoder tensors",
    ]
    lines += [f"  {step}" for step in conversion.steps]
    if conversion.norm_absent:
        lines.append(
            "  final norm: ABSENT in the source (mean-pooling model); 'norm' is left as an identity-affine LayerNorm "
            "(weight 1, bias 0), so features are the last block's output layer-normalised without affine"
        )
    else:
        lines.append("  final norm: mapped from the source")
    if conversion.ignored:
        total = sum(conversion.ignored.values())
        groups = ", ".join(f"{name} ({n})" for name, n in conversion.ignored.items())
        lines.append(f"  ignored {total} non-encoder tensors: {groups}")
    else:
        lines.append("  ignored: none")
    lines += [f"  note: {note}" for note in conversion.notes]
    return lines
