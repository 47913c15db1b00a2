"""VideoMAE weights -> VideoViT encoder file, with an explicit key map.

Two namings of the same network are accepted:

* Hugging Face ``transformers`` (VideoMAEModel / VideoMAEForPreTraining /
  VideoMAEForVideoClassification; ``videomae.`` prefix optional):
  ``embeddings.patch_embeddings.projection``, ``encoder.layer.N.{layernorm_before,
  attention.attention.{query,key,value}, attention.output.dense, layernorm_after,
  intermediate.dense, output.dense}``, ``layernorm``. The q / v biases are
  ``query.bias`` / ``value.bias`` in memory but ``q_bias`` / ``v_bias`` in files
  that ``save_pretrained`` writes (and on the Hub); both are read.
* the authors' MCG-NJU/VideoMAE code: pretraining checkpoints
  (``encoder.patch_embed.proj``, ``encoder.blocks.N.{norm1, attn.qkv, attn.q_bias,
  attn.v_bias, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``encoder.norm``, decoder)
  and fine-tuned ones (same without ``encoder.``; ``norm`` absent and ``fc_norm``
  present with mean pooling; classification ``head``).

VideoMAE has one fused qkv projection with q and v biases but no k bias (the
k bias is filled with zeros here), and a fixed sinusoidal position table over
all t*gh*gw space-time positions that checkpoints do not store: it is
generated for the pretraining geometry and written as ``pos_embed_joint``.
"""

import re
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from ssvp_plugin.models.video_vit import sinusoid_table
from .common import (
    TARGET_LAYER_NORM_EPS,
    Conversion,
    ConversionError,
    GeometryOverrides,
    KeyTaker,
    SourceWeights,
    count_blocks,
    heads_for,
    mlp_ratio_of,
    patch_geometry,
    pick,
    read_json_config,
    temporal_steps,
)

HF_LAYER = re.compile(r"^(videomae\.)?encoder\.layer\.\d+\.attention\.attention\.(query|key|value)\.weight$")
ORIGINAL_QKV = re.compile(r"^(encoder\.)?blocks\.\d+\.attn\.qkv\.weight$")

DEFAULT_NUM_FRAMES = 16
DEFAULT_IMG_SIZE = 224
HF_DEFAULT_LAYER_NORM_EPS = 1e-12  # VideoMAEConfig's default; the original code uses 1e-6
# VideoMAE normalises its inputs with ImageNet's statistics (its data pipeline and the HF image processor)
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

# non-encoder tensors, by naming: (key prefix, group shown in the report)
HF_IGNORED = (
    ("decoder.", "decoder"),
    ("encoder_to_decoder.", "encoder_to_decoder"),
    ("mask_token", "mask_token"),
    ("classifier.", "classifier head"),
    ("fc_norm.", "fc_norm"),
)
ORIGINAL_IGNORED = (
    ("decoder.", "decoder"),
    ("encoder_to_decoder.", "encoder_to_decoder"),
    ("mask_token", "mask_token"),
    ("encoder.head.", "encoder head"),
    ("head.", "classification head"),
    ("fc_norm.", "fc_norm"),
)


def detect_naming(state) -> Optional[Tuple[str, str]]:
    """('hf', prefix) or ('original', prefix) when ``state`` looks like VideoMAE weights, else None."""
    for key in state:
        m = HF_LAYER.match(key)
        if m:
            return "hf", m.group(1) or ""
    for key in state:
        m = ORIGINAL_QKV.match(key)
        if m:
            return "original", m.group(1) or ""
    return None


def looks_like_videomae(state) -> bool:
    return detect_naming(state) is not None


def _group_by_prefix(table):
    def group(key: str) -> Optional[str]:
        for prefix, name in table:
            if key == prefix or key.startswith(prefix):
                return name
        return None

    return group


def _square(path: Path, name: str, value) -> int:
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise ConversionError(f"{path}: {name}={value}: only square frames and patches are supported")
        value = value[0]
    return int(value)


def _hf_config(path: Path, source: SourceWeights, config_path: Optional[Path]) -> Tuple[Dict[str, object], Optional[Path]]:
    """The HF config.json: the one given, else the one beside the weights, else none."""
    if config_path is None:
        beside = source.path.parent / "config.json"
        if not beside.is_file():
            return {}, None
        config_path = beside
    config = read_json_config(config_path)
    model_type = config.get("model_type")
    if model_type not in (None, "videomae"):
        raise ConversionError(f"{config_path}: a config of model_type {model_type!r}, not 'videomae'")
    return config, config_path


def _normalisation(source: SourceWeights) -> Dict[str, object]:
    """mean/std from a Hugging Face preprocessor_config.json beside the weights, else VideoMAE's ImageNet values."""
    processor = source.path.parent / "preprocessor_config.json"
    if processor.is_file():
        cfg = read_json_config(processor)
        if "image_mean" in cfg and "image_std" in cfg:
            return {"mean": [float(v) for v in cfg["image_mean"]], "std": [float(v) for v in cfg["image_std"]],
                    "origin": str(processor)}
    return {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "origin": "VideoMAE's ImageNet mean/std"}


def convert_videomae(source: SourceWeights, overrides: GeometryOverrides, config_path: Optional[Path] = None) -> Conversion:
    path = source.path
    naming = detect_naming(source.state)
    if naming is None:
        raise ConversionError(
            f"{path}: no VideoMAE blocks found (expected Hugging Face 'encoder.layer.N.attention.attention.query.weight' "
            f"or original 'blocks.N.attn.qkv.weight' keys)"
        )
    kind, prefix = naming
    config, config_path = _hf_config(path, source, Path(config_path) if config_path else None)
    cfg_name = config_path.name if config_path else "config.json"
    keys = KeyTaker(source)
    notes, steps = [], []

    # --- patch embedding: width, tubelet, patch size
    if kind == "hf":
        patch_w_key, patch_b_key = f"{prefix}embeddings.patch_embeddings.projection.weight", f"{prefix}embeddings.patch_embeddings.projection.bias"
        depth = count_blocks(path, source.state, rf"^{re.escape(prefix)}encoder\.layer\.(\d+)\.")
    else:
        patch_w_key, patch_b_key = f"{prefix}patch_embed.proj.weight", f"{prefix}patch_embed.proj.bias"
        depth = count_blocks(path, source.state, rf"^{re.escape(prefix)}blocks\.(\d+)\.")
    patch_w = keys.take(patch_w_key, "patch embedding")
    dim, tubelet, patch = patch_geometry(path, patch_w_key, patch_w, overrides)
    state: Dict[str, torch.Tensor] = {"patch_embed.weight": patch_w, "patch_embed.bias": keys.take(patch_b_key, "patch embedding")}

    # --- geometry the weights cannot tell
    args = source.args
    heads, heads_origin = heads_for(path, dim, [
        (overrides.num_heads, "--num-heads"),
        (config.get("num_attention_heads"), cfg_name),
    ])
    num_frames, frames_origin = pick(
        "num_frames", (overrides.num_frames, "--num-frames"), (config.get("num_frames"), cfg_name),
        (args.get("num_frames"), "checkpoint args"), (DEFAULT_NUM_FRAMES, "VideoMAE default"),
    )
    img_size, img_origin = pick(
        "img_size", (overrides.img_size, "--img-size"), (config.get("image_size"), cfg_name),
        (args.get("input_size"), "checkpoint args"), (DEFAULT_IMG_SIZE, "VideoMAE default"),
    )
    num_frames, img_size = int(num_frames), _square(path, "image_size", img_size)
    _check_config(path, config, config_path, dim=dim, depth=depth, tubelet=tubelet, patch=patch)
    if img_size % patch:
        raise ConversionError(f"{path}: crop size {img_size} ({img_origin}) is not a multiple of the patch size {patch}")
    t = temporal_steps(path, num_frames, tubelet)
    grid = img_size // patch

    # --- blocks
    qkv_bias_present = None
    mlp_ratio = None
    for i in range(depth):
        if kind == "hf":
            block, has_bias = _hf_block(keys, prefix, i)
        else:
            block, has_bias = _original_block(keys, prefix, i)
        if qkv_bias_present is not None and has_bias != qkv_bias_present:
            raise ConversionError(f"{path}: block {i} {'has' if has_bias else 'lacks'} q/v biases unlike block 0")
        qkv_bias_present = has_bias
        ratio = mlp_ratio_of(path, block[f"blocks.{i}.mlp.fc1.weight"], dim)
        if mlp_ratio is not None and ratio != mlp_ratio:
            raise ConversionError(f"{path}: block {i} has MLP ratio {ratio:g}, block 0 {mlp_ratio:g}")
        mlp_ratio = ratio
        state.update(block)
    if depth == 0:
        raise ConversionError(f"{path}: no transformer blocks found")
    if kind == "hf":
        steps.append(f"qkv: fused separate query/key/value projections into one qkv projection in each of {depth} blocks; "
                     f"k bias filled with zeros (VideoMAE has none)")
    else:
        steps.append(f"qkv: concatenated q_bias, zeros (VideoMAE has no k bias) and v_bias into the qkv bias of {depth} blocks")
    if not qkv_bias_present:
        steps.append("qkv: the source has no q/v biases (qkv_bias off): all qkv biases are zeros")
    cfg_bias = config.get("qkv_bias", config.get("qv_bias"))
    if cfg_bias is not None and bool(cfg_bias) != qkv_bias_present:
        raise ConversionError(f"{config_path}: qkv_bias={cfg_bias} but the weights {'have' if qkv_bias_present else 'lack'} q/v biases")

    # --- final norm
    norm_w_key = f"{prefix}layernorm.weight" if kind == "hf" else f"{prefix}norm.weight"
    norm_b_key = norm_w_key[: -len("weight")] + "bias"
    norm_absent = not keys.has(norm_w_key) and not keys.has(norm_b_key)
    if kind == "hf" and "use_mean_pooling" in config:
        if bool(config["use_mean_pooling"]) != norm_absent:
            what = "has no" if norm_absent else "has a"
            raise ConversionError(
                f"{path}: {config_path} says use_mean_pooling={str(config['use_mean_pooling']).lower()} but the weights "
                f"{what} final layernorm ({norm_w_key})"
            )
    elif kind == "original" and norm_absent and not keys.has("fc_norm.weight"):
        # a mean-pooling fine-tuned model replaces the final norm by fc_norm; without either the norm was lost
        keys.take(norm_w_key, "final LayerNorm; the file has no fc_norm either, so it is not a mean-pooling model")
    if norm_absent:
        state["norm.weight"] = torch.ones(dim, dtype=patch_w.dtype)
        state["norm.bias"] = torch.zeros(dim, dtype=patch_w.dtype)
    else:
        state["norm.weight"] = keys.take(norm_w_key, "final LayerNorm")
        state["norm.bias"] = keys.take(norm_b_key, "final LayerNorm")

    # --- position table: fixed sinusoid (generated), or a learnt one if the model was trained with one
    n_positions = t * grid * grid
    pos_key = f"{prefix}pos_embed"
    if kind == "original" and keys.has(pos_key):
        pos = keys.take(pos_key)
        if tuple(pos.shape) != (1, n_positions, dim):
            raise ConversionError(
                f"{path}: {pos_key} has shape {tuple(pos.shape)}, but {num_frames} frames ({frames_origin}) at "
                f"{img_size} px ({img_origin}) make (1, {n_positions}, {dim}); pass --num-frames / --img-size"
            )
        state["pos_embed_joint"] = pos
        steps.append(f"position: learnt table {pos_key} -> pos_embed_joint")
    else:
        state["pos_embed_joint"] = sinusoid_table(n_positions, dim)
        steps.append(
            f"position: generated VideoMAE's fixed sinusoidal table over {t} x {grid}x{grid} = {n_positions} "
            f"space-time positions (not stored in checkpoints) -> pos_embed_joint"
        )

    # --- the rest must be known non-encoder tensors
    if kind == "hf":
        keys.ignore(_group_by_prefix(HF_IGNORED))
    else:
        keys.ignore(_group_by_prefix(ORIGINAL_IGNORED))
    keys.finish()

    eps = config.get("layer_norm_eps", HF_DEFAULT_LAYER_NORM_EPS) if kind == "hf" else TARGET_LAYER_NORM_EPS
    if float(eps) != TARGET_LAYER_NORM_EPS:
        notes.append(
            f"the source's LayerNorm eps is {eps:g} ({cfg_name}); this encoder uses {TARGET_LAYER_NORM_EPS:g} "
            f"(the original VideoMAE value; the difference is negligible)"
        )
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise ConversionError(f"{config_path}: hidden_act={act!r}; the encoder uses exact GELU ('gelu') only")
    if {"classifier head", "classification head"} & set(keys.ignored.values()):
        notes.append("a fine-tuned video classifier: its encoder is converted, the classification head dropped")

    geometry = dict(
        embed_dim=dim, depth=depth, num_heads=heads, mlp_ratio=mlp_ratio, patch_size=patch, tubelet_size=tubelet,
        img_size=img_size, num_frames=num_frames, pos_embed_type="joint", cls_token=False,
    )
    origin = dict(num_heads=heads_origin, num_frames=frames_origin, img_size=img_origin)
    what = "Hugging Face transformers naming" if kind == "hf" else (
        "original MCG-NJU pretraining naming" if prefix else "original MCG-NJU fine-tuned naming"
    )
    source_kind = f"VideoMAE, {what}, {source.container}" + (f", config {config_path}" if config_path else "")
    return Conversion(
        source=path, source_kind=source_kind, state=state, geometry=geometry, geometry_origin=origin,
        n_source_mapped=len(keys.used), ignored=keys.ignored_counts(), steps=steps, notes=notes, norm_absent=norm_absent,
        normalisation=_normalisation(source),
    )


def _check_config(path, config, config_path, **weights):
    """config.json values must agree with what the weights say."""
    if not config:
        return
    pairs = {
        "hidden_size": weights["dim"], "num_hidden_layers": weights["depth"],
        "tubelet_size": weights["tubelet"], "patch_size": weights["patch"],
    }
    for name, actual in pairs.items():
        if name in config:
            value = _square(config_path, name, config[name]) if name == "patch_size" else int(config[name])
            if value != actual:
                raise ConversionError(f"{config_path}: {name}={config[name]} but the weights ({path}) say {actual}")
    if int(config.get("num_channels", 3)) != 3:
        raise ConversionError(f"{config_path}: num_channels={config['num_channels']}; only RGB (3) encoders are supported")


def _zeros_like_rows(weight: torch.Tensor) -> torch.Tensor:
    return torch.zeros(weight.shape[0], dtype=weight.dtype)


def _hf_block(keys: KeyTaker, prefix: str, i: int):
    b = f"{prefix}encoder.layer.{i}."
    a = f"{b}attention.attention."
    q_w, k_w, v_w = keys.take(a + "query.weight"), keys.take(a + "key.weight"), keys.take(a + "value.weight")
    # in memory: query.bias / value.bias; in save_pretrained files and on the Hub: q_bias / v_bias
    q_b = keys.take_optional(a + "query.bias")
    q_b = keys.take_optional(a + "q_bias") if q_b is None else q_b
    v_b = keys.take_optional(a + "value.bias")
    v_b = keys.take_optional(a + "v_bias") if v_b is None else v_b
    if (q_b is None) != (v_b is None):
        raise ConversionError(f"{keys.path}: block {i} has only one of the q / v biases")
    has_bias = q_b is not None
    if not has_bias:
        q_b, v_b = _zeros_like_rows(q_w), _zeros_like_rows(v_w)
    dim = q_w.shape[1]
    if not (q_w.shape == k_w.shape == v_w.shape == (dim, dim)):
        raise ConversionError(f"{keys.path}: block {i} attention projections are not {dim}x{dim} (attn_head_dim is not supported)")
    o = f"blocks.{i}."
    block = {
        o + "norm1.weight": keys.take(b + "layernorm_before.weight"),
        o + "norm1.bias": keys.take(b + "layernorm_before.bias"),
        o + "attn.qkv.weight": torch.cat([q_w, k_w, v_w], 0),
        o + "attn.qkv.bias": torch.cat([q_b, _zeros_like_rows(k_w), v_b], 0),
        o + "attn.proj.weight": keys.take(b + "attention.output.dense.weight"),
        o + "attn.proj.bias": keys.take(b + "attention.output.dense.bias"),
        o + "norm2.weight": keys.take(b + "layernorm_after.weight"),
        o + "norm2.bias": keys.take(b + "layernorm_after.bias"),
        o + "mlp.fc1.weight": keys.take(b + "intermediate.dense.weight"),
        o + "mlp.fc1.bias": keys.take(b + "intermediate.dense.bias"),
        o + "mlp.fc2.weight": keys.take(b + "output.dense.weight"),
        o + "mlp.fc2.bias": keys.take(b + "output.dense.bias"),
    }
    return block, has_bias


def _original_block(keys: KeyTaker, prefix: str, i: int):
    b = f"{prefix}blocks.{i}."
    for gamma in ("gamma_1", "gamma_2"):
        if keys.has(b + gamma):
            raise ConversionError(f"{keys.path}: {b + gamma}: layer scale (init_values > 0) is not supported by the encoder")
    qkv = keys.take(b + "attn.qkv.weight")
    dim = qkv.shape[1]
    if tuple(qkv.shape) != (3 * dim, dim):
        raise ConversionError(f"{keys.path}: {b}attn.qkv.weight has shape {tuple(qkv.shape)}, not (3*{dim}, {dim}) "
                              f"(attn_head_dim is not supported)")
    q_b, v_b = keys.take_optional(b + "attn.q_bias"), keys.take_optional(b + "attn.v_bias")
    if (q_b is None) != (v_b is None):
        raise ConversionError(f"{keys.path}: block {i} has only one of attn.q_bias / attn.v_bias")
    has_bias = q_b is not None
    zeros = torch.zeros(dim, dtype=qkv.dtype)
    if not has_bias:
        q_b, v_b = zeros, zeros
    o = f"blocks.{i}."
    block = {
        o + "norm1.weight": keys.take(b + "norm1.weight"),
        o + "norm1.bias": keys.take(b + "norm1.bias"),
        o + "attn.qkv.weight": qkv,
        o + "attn.qkv.bias": torch.cat([q_b, zeros, v_b], 0),
        o + "attn.proj.weight": keys.take(b + "attn.proj.weight"),
        o + "attn.proj.bias": keys.take(b + "attn.proj.bias"),
        o + "norm2.weight": keys.take(b + "norm2.weight"),
        o + "norm2.bias": keys.take(b + "norm2.bias"),
        o + "mlp.fc1.weight": keys.take(b + "mlp.fc1.weight"),
        o + "mlp.fc1.bias": keys.take(b + "mlp.fc1.bias"),
        o + "mlp.fc2.weight": keys.take(b + "mlp.fc2.weight"),
        o + "mlp.fc2.bias": keys.take(b + "mlp.fc2.bias"),
    }
    return block, has_bias


__all__ = ["convert_videomae", "detect_naming", "looks_like_videomae"]
