"""facebookresearch/mae_st weights -> VideoViT encoder file, with an explicit key map.

mae_st keeps its weights under ``model`` (or ``model_state``) in a ``.pth``:
``patch_embed.proj`` (Conv3d), position tables ``pos_embed_spatial`` (1, gh*gw, C)
+ ``pos_embed_temporal`` (1, t, C) (+ ``pos_embed_class`` (1, 1, C) and
``cls_token`` when trained with ``cls_embed``) or, with ``sep_pos_embed`` off,
one ``pos_embed`` (1, [1 +] t*gh*gw, C) whose first row is the class position
when there is a class token; blocks ``blocks.N.{norm1, attn.q, attn.k, attn.v,
attn.proj, norm2, mlp.fc1, mlp.fc2}`` with separate q / k / v projections;
final ``norm``. The MAE decoder (``decoder_*``, ``mask_token``), a
fine-tuning ``head`` and the ``pred_head`` of the files released through
PySlowFast are not encoder weights.
"""

import re
from typing import Dict, Optional

import torch

from .common import (
    Conversion,
    ConversionError,
    GeometryOverrides,
    KeyTaker,
    SourceWeights,
    count_blocks,
    heads_for,
    mlp_ratio_of,
    patch_geometry,
    spatial_side,
    temporal_steps,
)

SEPARATE_Q = re.compile(r"^blocks\.\d+\.attn\.q\.weight$")
DEFAULT_IMG_SIZE = 224  # mae_st's default crop


def looks_like_mae_st(state) -> bool:
    return any(SEPARATE_Q.match(k) for k in state)


def _ignored_group(key: str) -> Optional[str]:
    if key.startswith("decoder_"):
        return key.split(".")[0]  # decoder_blocks, decoder_embed, decoder_pred, decoder_pos_embed_*, ...
    if key == "mask_token":
        return "mask_token"
    if key.startswith("head."):
        return "classification head"
    if key.startswith("fc_norm."):
        return "fc_norm"
    if key.startswith("pred_head."):  # the released Kinetics .pth files come from PySlowFast (mae_st issue #17)
        return "PySlowFast prediction head"
    return None


def convert_mae_st(source: SourceWeights, overrides: GeometryOverrides) -> Conversion:
    path = source.path
    if not looks_like_mae_st(source.state):
        raise ConversionError(f"{path}: no mae_st blocks found (expected 'blocks.N.attn.q.weight' keys)")
    keys = KeyTaker(source)
    steps, notes = [], []
    args = source.args

    patch_w = keys.take("patch_embed.proj.weight", "patch embedding")
    dim, tubelet, patch = patch_geometry(path, "patch_embed.proj.weight", patch_w, overrides)
    state: Dict[str, torch.Tensor] = {
        "patch_embed.weight": patch_w,
        "patch_embed.bias": keys.take("patch_embed.proj.bias", "patch embedding"),
    }
    heads, heads_origin = heads_for(path, dim, [(overrides.num_heads, "--num-heads")])
    cls = keys.has("cls_token")
    if cls:
        state["cls_token"] = keys.take("cls_token")

    # --- position tables and the geometry they were trained at
    if keys.has("pos_embed_spatial") or keys.has("pos_embed_temporal"):
        pos_type = "separable"
        spatial = keys.take("pos_embed_spatial", "separable position tables come in pairs")
        temporal = keys.take("pos_embed_temporal", "separable position tables come in pairs")
        side = spatial_side(path, "pos_embed_spatial", spatial.shape[1])
        img_size, img_origin = side * patch, "pos_embed_spatial"
        num_frames, frames_origin = temporal.shape[1] * tubelet, "pos_embed_temporal"
        for flag, given, actual in (("--img-size", overrides.img_size, img_size), ("--num-frames", overrides.num_frames, num_frames)):
            if given is not None and given != actual:
                raise ConversionError(f"{path}: {flag} {given} contradicts the position tables, which say {actual}")
        state["pos_embed_spatial"], state["pos_embed_temporal"] = spatial, temporal
        if cls:
            state["pos_embed_class"] = keys.take("pos_embed_class", "the class position of a model with cls_token")
        steps.append("position: separable tables pos_embed_spatial / pos_embed_temporal" + (" / pos_embed_class" if cls else "") + " copied")
    else:
        pos_type = "joint"
        pos = keys.take("pos_embed", "position table: neither pos_embed_spatial / pos_embed_temporal nor pos_embed found")
        if cls:
            state["pos_embed_class"], pos = pos[:, :1], pos[:, 1:]
        n = pos.shape[1]
        img_size, img_origin, num_frames, frames_origin = _joint_geometry(path, n, patch, tubelet, overrides, args)
        state["pos_embed_joint"] = pos
        steps.append(
            "position: joint table pos_embed -> pos_embed_joint"
            + (" (its first row, the class position, -> pos_embed_class)" if cls else "")
        )

    # --- blocks: separate q / k / v fused into one qkv projection
    depth = count_blocks(path, source.state, r"^blocks\.(\d+)\.")
    if depth == 0:
        raise ConversionError(f"{path}: no transformer blocks found")
    mlp_ratio, has_bias = None, None
    for i in range(depth):
        b = f"blocks.{i}."
        q, k, v = (keys.take(f"{b}attn.{x}.weight") for x in "qkv")
        if not (q.shape == k.shape == v.shape == (dim, dim)):
            raise ConversionError(f"{path}: block {i} attention projections are not {dim}x{dim}")
        biases = [keys.take_optional(f"{b}attn.{x}.bias") for x in "qkv"]
        present = [x is not None for x in biases]
        if any(present) and not all(present):
            raise ConversionError(f"{path}: block {i} has biases on only some of attn.q / attn.k / attn.v")
        if has_bias is not None and all(present) != has_bias:
            raise ConversionError(f"{path}: block {i} {'has' if all(present) else 'lacks'} qkv biases unlike block 0")
        has_bias = all(present)
        if not has_bias:
            biases = [torch.zeros(w.shape[0], dtype=w.dtype) for w in (q, k, v)]
        fc1 = keys.take(b + "mlp.fc1.weight")
        ratio = mlp_ratio_of(path, fc1, dim)
        if mlp_ratio is not None and ratio != mlp_ratio:
            raise ConversionError(f"{path}: block {i} has MLP ratio {ratio:g}, block 0 {mlp_ratio:g}")
        mlp_ratio = ratio
        state.update({
            b + "norm1.weight": keys.take(b + "norm1.weight"),
            b + "norm1.bias": keys.take(b + "norm1.bias"),
            b + "attn.qkv.weight": torch.cat([q, k, v], 0),
            b + "attn.qkv.bias": torch.cat(biases, 0),
            b + "attn.proj.weight": keys.take(b + "attn.proj.weight"),
            b + "attn.proj.bias": keys.take(b + "attn.proj.bias"),
            b + "norm2.weight": keys.take(b + "norm2.weight"),
            b + "norm2.bias": keys.take(b + "norm2.bias"),
            b + "mlp.fc1.weight": fc1,
            b + "mlp.fc1.bias": keys.take(b + "mlp.fc1.bias"),
            b + "mlp.fc2.weight": keys.take(b + "mlp.fc2.weight"),
            b + "mlp.fc2.bias": keys.take(b + "mlp.fc2.bias"),
        })
    steps.append(f"qkv: fused separate attn.q / attn.k / attn.v projections into one qkv projection in each of {depth} blocks")
    if not has_bias:
        steps.append("qkv: the source has no q/k/v biases (no_qkv_bias): all qkv biases are zeros")
    state["norm.weight"] = keys.take("norm.weight", "final LayerNorm")
    state["norm.bias"] = keys.take("norm.bias", "final LayerNorm")

    keys.ignore(_ignored_group)
    keys.finish()
    if any(k.startswith("head.") for k in keys.ignored):
        notes.append(
            "a mae_st fine-tuned classifier: its final 'norm' was trained on mean-pooled features, "
            "here it normalises every token"
        )
    if cls:
        notes.append("the class token takes part in attention and is dropped from the features (model.encoder_cls_token=true)")

    geometry = dict(
        embed_dim=dim, depth=depth, num_heads=heads, mlp_ratio=mlp_ratio, patch_size=patch, tubelet_size=tubelet,
        img_size=img_size, num_frames=num_frames, pos_embed_type=pos_type, cls_token=cls,
    )
    origin = dict(num_heads=heads_origin, num_frames=frames_origin, img_size=img_origin)
    return Conversion(
        source=path, source_kind=f"mae_st, {source.container}", state=state, geometry=geometry, geometry_origin=origin,
        n_source_mapped=len(keys.used), ignored=keys.ignored_counts(), steps=steps, notes=notes, norm_absent=False,
        # mae_st's Kinetics pipeline (also SSVP-SLT's and this project's default)
        normalisation={"mean": [0.45, 0.45, 0.45], "std": [0.225, 0.225, 0.225], "origin": "mae_st's mean/std"},
    )


def _joint_geometry(path, n: int, patch: int, tubelet: int, overrides: GeometryOverrides, args: dict):
    """(img_size, origin, num_frames, origin) of a joint table of n space-time positions."""
    img = (overrides.img_size, "--img-size") if overrides.img_size is not None else (args.get("input_size"), "checkpoint args")
    frames = (overrides.num_frames, "--num-frames") if overrides.num_frames is not None else (args.get("num_frames"), "checkpoint args")
    hint = "pass --num-frames and --img-size as pretrained"
    if img[0] is None and frames[0] is None:
        img = (DEFAULT_IMG_SIZE, "mae_st default")
    if img[0] is not None:
        img_size = int(img[0])
        if img_size % patch:
            raise ConversionError(f"{path}: crop size {img_size} ({img[1]}) is not a multiple of the patch size {patch}")
        g = (img_size // patch) ** 2
        if n % g:
            raise ConversionError(f"{path}: pos_embed has {n} positions, not a multiple of {g} patches at {img_size} px ({img[1]}); {hint}")
        num_frames = (n // g) * tubelet
        if frames[0] is not None and int(frames[0]) != num_frames:
            raise ConversionError(
                f"{path}: pos_embed has {n} positions: {num_frames} frames at {img_size} px, not {frames[0]} ({frames[1]}); {hint}"
            )
        return img_size, img[1], num_frames, frames[1] if frames[0] is not None else "pos_embed size"
    num_frames = int(frames[0])
    t = temporal_steps(path, num_frames, tubelet)
    if n % t:
        raise ConversionError(f"{path}: pos_embed has {n} positions, not a multiple of {t} time steps ({frames[1]}); {hint}")
    side = spatial_side(path, "pos_embed", n // t)
    return side * patch, "pos_embed size", num_frames, frames[1]


__all__ = ["convert_mae_st", "looks_like_mae_st"]
