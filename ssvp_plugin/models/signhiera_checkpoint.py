"""Initialise a :class:`~.hiera_encoder.HieraEncoder` (SignHiera) from pretrained weights.

Three kinds of file are accepted, all read with ``torch.load(weights_only=True)``:

* SSVP-SLT's SignHiera checkpoints, e.g. the released ``dm_70h_ub_signhiera.pth``: the state dict
  under ``model`` (older files: ``model_state``, as FAIR's Hiera files) in ``hiera-transformer``'s
  parameter names, plus MAE-only weights that are ignored (``decoder*``,
  ``multi_scale_fusion_heads*``, ``encoder_norm*``, ``mask_token``) and, in classifier files, a
  final ``norm`` and ``head`` (also ignored: features are read before them);
* a fairseq ``mae_hiera`` pretraining checkpoint (``mae.`` + the package's MaskedAutoencoderHiera
  names);
* a fairseq ``mae_vit_slt`` checkpoint with a Hiera preset (``encoder.vit.*``).

The key map is the identity on the encoder's own names (:func:`map_hiera_key`); position tables
are interpolated when the clip length or crop differs; anything else that does not fit (a ViT
file, a Hiera of other sizes, a file without encoder weights) is an error naming the file.
"""

import logging
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from .hiera_encoder import HieraEncoder
from .hiera_presets import HIERA_PRESETS
from .pretrained_encoder import (
    ENCODER_FILE_FORMAT,
    EncoderSource,
    LoadReport,
    PretrainedEncoderError,
    check_normalisation,
    load_checkpoint_safely,
)
from .video_vit import resize_spatial_pos_embed, resize_temporal_pos_embed

logger = logging.getLogger(__name__)

# keys of SSVP-SLT's / the package's MAE that are not encoder weights (SSVP-SLT's loader drops the same)
MAE_ONLY_PREFIXES = ("decoder", "multi_scale_fusion_heads", "encoder_norm", "mask_token")
# Hiera's final norm and classifier: the translation features are taken before them
CLASSIFIER_PREFIXES = ("norm.", "head.")
# key prefix of the Hiera inside each fairseq model of this project that holds one
FAIRSEQ_HIERA_PREFIXES = {"mae_hiera": "mae.", "mae_vit_slt": "encoder.vit."}
# SSVP-SLT normalised SignHiera's frames with these in pretraining and feature extraction; their files do not say
SIGNHIERA_NORMALISATION = {
    "mean": [0.45, 0.45, 0.45], "std": [0.225, 0.225, 0.225],
    "origin": "SSVP-SLT's SignHiera pretraining and feature extraction; not recorded in the file",
}
POS_EMBED_KEYS = ("pos_embed_spatial", "pos_embed_temporal")


def map_hiera_key(name: str) -> Optional[str]:
    """The :class:`HieraEncoder` parameter a file key (its model prefix removed) loads into; None: not an
    encoder weight. HieraEncoder keeps the package's names, so the map is the identity on them."""
    if name.startswith(MAE_ONLY_PREFIXES) or name.startswith(CLASSIFIER_PREFIXES):
        return None
    return name


def _fairseq_model_name(ckpt: dict) -> Optional[str]:
    """The registered model name of a fairseq checkpoint (cfg.model._name), None for other files."""
    cfg = ckpt.get("cfg")
    model_cfg = cfg.get("model") if isinstance(cfg, dict) else None
    return model_cfg.get("_name") if isinstance(model_cfg, dict) else None


def _vit_file_error(path: Path, what: str) -> PretrainedEncoderError:
    return PretrainedEncoderError(
        f"{path}: {what} holds a ViT encoder (VideoViT), not a Hiera: the model's preset is a SignHiera one. "
        f"Fine-tune it with a ViT preset (model.preset=tiny/base/large), or give a SignHiera file "
        f"(SSVP-SLT's dm_70h_ub_signhiera.pth, a mae_hiera checkpoint)"
    )


def read_hiera_source(path) -> EncoderSource:
    """The Hiera encoder weights of ``path`` in HieraEncoder naming, and where they came from."""
    path = Path(path)
    ckpt = load_checkpoint_safely(path)
    if ckpt.get("format") == ENCODER_FILE_FORMAT:
        raise _vit_file_error(path, "this encoder file (scripts/convert_video_mae_checkpoint.py)")
    name = _fairseq_model_name(ckpt)
    normalisation = None
    if name is not None:
        if name == "mae_vit":
            raise _vit_file_error(path, "this fairseq mae_vit pretraining checkpoint")
        if name not in FAIRSEQ_HIERA_PREFIXES:
            raise PretrainedEncoderError(
                f"{path}: a fairseq checkpoint of model {name!r}; a Hiera encoder loads from "
                f"{sorted(FAIRSEQ_HIERA_PREFIXES)} checkpoints or SSVP-SLT's SignHiera files"
            )
        prefix, kind = FAIRSEQ_HIERA_PREFIXES[name], f"fairseq {name} checkpoint"
        model_state = ckpt.get("model")
        if not isinstance(model_state, dict):
            raise PretrainedEncoderError(f"{path}: a fairseq {name} checkpoint without model weights ('model')")
        raw = {k[len(prefix):]: v for k, v in model_state.items() if k.startswith(prefix)}
        ignored = [k for k in model_state if not k.startswith(prefix)]
    else:
        key = next((k for k in ("model", "model_state") if isinstance(ckpt.get(k), dict)), None)
        if key is None:
            raise PretrainedEncoderError(
                f"{path}: neither a SignHiera/Hiera checkpoint (weights under 'model' or 'model_state') nor a "
                f"fairseq mae_hiera / mae_vit_slt checkpoint (top-level keys: {sorted(map(str, ckpt))[:8]})"
            )
        raw, ignored, kind = ckpt[key], [], f"SignHiera/Hiera checkpoint, weights under {key!r}"
        normalisation = SIGNHIERA_NORMALISATION
    state: Dict[str, torch.Tensor] = {}
    for k, v in raw.items():
        dst = map_hiera_key(k) if isinstance(v, torch.Tensor) else None
        if dst is None:
            ignored.append(k)
        else:
            state[dst] = v
    if "patch_embed.proj.weight" not in state:
        if "patch_embed.weight" in state or ("norm.weight" in raw and "blocks.0.attn.qkv.weight" in raw):
            raise _vit_file_error(path, f"this {kind}")
        raise PretrainedEncoderError(
            f"{path}: {kind} without Hiera encoder weights (no patch_embed.proj.weight; "
            f"{len(state)} candidate tensors, e.g. {sorted(state)[:4]})"
        )
    return EncoderSource(path, kind, state, ignored, None, normalisation)


def hiera_layout(state: Dict[str, torch.Tensor]) -> Tuple[int, Tuple[int, ...], int]:
    """(first width, blocks per stage, last width) of Hiera weights: a stage starts at each block
    that changes width (it has a ``proj``)."""
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("blocks.")})
    stages: List[int] = []
    for i in blocks:
        if not stages or f"blocks.{i}.proj.weight" in state:
            stages.append(0)
        stages[-1] += 1
    width = state["patch_embed.proj.weight"].shape[0] if "patch_embed.proj.weight" in state else 0
    last = f"blocks.{blocks[-1]}.mlp.fc2.weight" if blocks else None
    return width, tuple(stages), (state[last].shape[0] if last in state else width)


def presets_fitting(state: Dict[str, torch.Tensor]) -> List[str]:
    """The Hiera presets with the sizes (first width, blocks per stage) of these weights."""
    width, stages, _ = hiera_layout(state)
    return [n for n, p in HIERA_PRESETS.items() if p["embed_dim"] == width and tuple(p["stages"]) == stages]


def hiera_preset_of(path) -> str:
    """The preset to build for a Hiera file (e.g. ``signhiera_base_128x224`` for dm_70h_ub_signhiera.pth),
    read from its weights; PretrainedEncoderError naming the file when none fits or it holds no Hiera."""
    source = read_hiera_source(path)
    fits = presets_fitting(source.state)
    if not fits:
        width, stages, last = hiera_layout(source.state)
        raise PretrainedEncoderError(
            f"{source.path}: a Hiera of width {width} -> {last}, stages {stages}: no preset has these sizes "
            f"(presets: {sorted(HIERA_PRESETS)})"
        )
    return fits[0]


def _hint(source: EncoderSource, encoder: HieraEncoder) -> str:
    """What the file holds and which preset has those sizes."""
    width, stages, last = hiera_layout(source.state)
    fits = presets_fitting(source.state)
    model = (encoder.patch_embed.proj.out_channels, hiera_layout(encoder.state_dict())[1], encoder.embed_dim)
    return (
        f"The file's Hiera: width {width} -> {last}, stages {stages}; the model's: width {model[0]} -> {model[2]}, "
        f"stages {model[1]}. "
        + (f"Set model.preset={fits[0]}." if fits else f"No preset has the file's sizes (presets: {sorted(HIERA_PRESETS)}).")
    )


def _fit_pos_embed(key: str, value: torch.Tensor, encoder: HieraEncoder) -> torch.Tensor:
    """A separable position table of another clip length or crop, interpolated to the encoder's."""
    t, h, w = encoder.tokens_spatial_shape
    if key == "pos_embed_temporal":
        return resize_temporal_pos_embed(value, t)
    side = math.isqrt(value.shape[1])
    if side * side != value.shape[1]:
        raise PretrainedEncoderError(f"{key}: {value.shape[1]} spatial positions do not form a square grid")
    return resize_spatial_pos_embed(value, (side, side), (h, w))


def load_pretrained_hiera(encoder: HieraEncoder, path, mean=None, std=None) -> LoadReport:
    """Copy the Hiera weights of ``path`` into ``encoder`` in place; log and return the report.

    Raises :class:`PretrainedEncoderError` (naming the file) when it is missing or unreadable, holds
    no Hiera (a ViT, another model), or holds a Hiera whose weights do not fit: other sizes, weights
    missing or left over. Position tables of another clip length or crop are interpolated."""
    source = read_hiera_source(path)
    warning = check_normalisation(source, mean, std) if mean is not None else None
    if warning:
        logger.warning(warning)
    target = encoder.state_dict()
    report = LoadReport(ignored=source.ignored)
    new_state, mismatched = {}, []
    for dst, want in target.items():
        if dst not in source.state:
            report.missing.append(dst)
            continue
        value = source.state[dst]
        if value.shape != want.shape and dst in POS_EMBED_KEYS and value.ndim == 3 and value.shape[-1] == want.shape[-1]:
            fitted = _fit_pos_embed(dst, value, encoder)
            report.interpolated.append((dst, tuple(value.shape), tuple(fitted.shape)))
            value = fitted
        if value.shape != want.shape:
            mismatched.append(f"{dst}: file {tuple(value.shape)} vs model {tuple(want.shape)}")
            continue
        new_state[dst] = value.to(want.dtype)
        report.loaded.append(dst)
    report.unexpected = sorted(set(source.state) - set(target))
    for line in report.lines(source):
        logger.info(line)
    if source.normalisation:
        norm = source.normalisation
        logger.info(f"  frames were normalised with mean {norm['mean']} / std {norm['std']} ({norm['origin']})")
    if mismatched:
        raise PretrainedEncoderError(
            f"{source.path}: Hiera weights do not fit the model ({len(mismatched)} shape mismatches, e.g. "
            f"{'; '.join(mismatched[:3])}). {_hint(source, encoder)}"
        )
    for problem, keys in (("the model has {} encoder weights the file lacks", report.missing),
                          ("the file has {} encoder weights the model has no place for", report.unexpected)):
        if keys:
            raise PretrainedEncoderError(
                f"{source.path}: {problem.format(len(keys))} ({', '.join(keys[:6])}{', ...' if len(keys) > 6 else ''}). "
                f"{_hint(source, encoder)}"
            )
    encoder.load_state_dict(new_state, strict=True)
    return report
