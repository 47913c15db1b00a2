"""SignHiera (HieraEncoder) as mae_vit_slt's encoder, and loading SSVP-SLT's checkpoints into it.

The reference throughout is FAIR's ``hiera-transformer`` package itself (what SSVP-SLT's SignHiera
is a copy of), with every weight moved away from its initialisation, so that a tensor left
unloaded can never pass for a loaded one:

* full clips: the plugin's per-time-step features equal the package's last stage
  (``Hiera.forward(x, return_intermediates=True)``) averaged over space;
* padded clips: SignHiera marks the trailing time units of a short clip as padding, zeroes their
  frames before the patch embedding and hides them as keys in global attention. Mask-unit
  attention (one time unit per mask unit) and q-pooling (spatial only) never mix time units, and
  the patch embedding of time step t reads frames 2t-1..2t+1, never a later unit. So at the real
  time steps SignHiera computes exactly what the package's unmasked Hiera computes for a clip of
  the real length, with the first entries of the temporal position table: that is the reference.

Checkpoints are written in SSVP-SLT's layout (``{"model": state}`` with the MAE-only weights,
without head and final norm), in fairseq's (``mae_hiera``: ``mae.`` + the package's
MaskedAutoencoderHiera names; ``mae_vit_slt``: ``encoder.vit.*``) and broken in the ways a user
would break them. One short fairseq-hydra-train + fairseq-generate run closes the loop.
"""

import logging
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from omegaconf import OmegaConf

from conftest import BIN, REPO, hydra_train, load_task
from conftest import run_tool as run
from ssvp_plugin.models.hiera_encoder import HieraEncoder, build_hiera_encoder, check_hiera_input
from ssvp_plugin.models.hiera_package import Hiera, MaskedAutoencoderHiera
from ssvp_plugin.models.hiera_presets import HIERA_PRESETS
from ssvp_plugin.models.mae_vit_slt import (
    PRESETS,
    MaeVitSltConfig,
    MaeVitSltModel,
    encoder_layer_lr_scales,
    resolve_preset,
)
from ssvp_plugin.models.pretrained_encoder import PretrainedEncoderError
from ssvp_plugin.models.signhiera_checkpoint import hiera_preset_of, load_pretrained_hiera
from ssvp_plugin.models.video_encoder_config import build_video_encoder
from ssvp_plugin.models.video_vit import resize_spatial_pos_embed, resize_temporal_pos_embed
from ssvp_slt.scoring import parse_generate_output

TINY, BASE = "signhiera_tiny", "signhiera_base_128x224"
REPORT_LOGGER = "ssvp_plugin.models.signhiera_checkpoint"
MAE_ONLY = ("mask_token", "encoder_norm.weight", "encoder_norm.bias", "decoder_embed.weight",
            "decoder_blocks.0.attn.qkv.weight", "multi_scale_fusion_heads.0.weight")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small models on a small shared machine: one intra-op thread is faster (no spinning)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------------ helpers


def randomise_(module: nn.Module, seed: int, scale: float = 0.05) -> nn.Module:
    """Move every parameter off its initialisation (LayerNorms would otherwise start at exactly 1 / 0.02)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return module


def reference_hiera(preset: str, num_frames: int, crop: int, seed: int = 1) -> Hiera:
    torch.manual_seed(seed)
    return randomise_(Hiera(input_size=(num_frames, crop, crop), **HIERA_PRESETS[preset]), seed).eval()


def reference_features(ref: Hiera, x: torch.Tensor) -> torch.Tensor:
    """SSVP-SLT's feature: the last stage, spatial order, averaged over space (N, t, C)."""
    with torch.no_grad():
        return ref(x, return_intermediates=True)[1][-1].mean(dim=(2, 3))


def short_reference(ref: Hiera, preset: str, real_frames: int, crop: int) -> Hiera:
    """The package's Hiera for a clip of ``real_frames`` frames with ``ref``'s weights and the first
    entries of its temporal table: SignHiera's output at the real steps of a padded clip (module doc)."""
    short = Hiera(input_size=(real_frames, crop, crop), **HIERA_PRESETS[preset]).eval()
    state = ref.state_dict()
    state["pos_embed_temporal"] = state["pos_embed_temporal"][:, : real_frames // 2]
    short.load_state_dict(state)
    return short


def ssvp_slt_state(ref: Hiera) -> dict:
    """What SSVP-SLT's MAE pretraining saves of a SignHiera: no head and final norm, MAE-only weights."""
    state = {k: v.clone() for k, v in ref.state_dict().items() if not k.startswith(("head.", "norm."))}
    width = ref.blocks[-1].dim_out
    extra = {"mask_token": (1, 1, 16), "encoder_norm.weight": (width,), "encoder_norm.bias": (width,),
             "decoder_embed.weight": (16, width), "decoder_blocks.0.attn.qkv.weight": (48, 16),
             "multi_scale_fusion_heads.0.weight": (width, ref.blocks[0].dim_out, 1, 2, 2)}
    state.update({k: torch.randn(shape) for k, shape in extra.items()})
    return state


def save_ssvp_slt(path: Path, ref: Hiera, key: str = "model") -> Path:
    torch.save({key: ssvp_slt_state(ref), "epoch": 399}, path)
    return path


def save_fairseq(path: Path, module: nn.Module, name: str, preset: str = TINY) -> Path:
    """fairseq's checkpoint structure (as test_pretrained_encoder checks it against a real one)."""
    torch.save({"args": None, "cfg": {"model": {"_name": name, "preset": preset}}, "model": module.state_dict(),
                "optimizer_history": [], "extra_state": {}, "last_optimizer_state": None}, path)
    return path


def encoder_state(ref: Hiera) -> dict:
    return {k: v for k, v in ref.state_dict().items() if not k.startswith(("head.", "norm."))}


def assert_loaded(encoder: HieraEncoder, expected: dict):
    actual = encoder.state_dict()
    assert set(actual) == set(expected)
    for k, v in actual.items():
        assert torch.equal(v, expected[k]), k


def slt_cfg(**overrides):
    return MaeVitSltConfig(**{"_name": "mae_vit_slt", "preset": TINY, "max_target_positions": 128, **overrides})


def build_slt(task, **overrides) -> MaeVitSltModel:
    """mae_vit_slt through the task, as fairseq-hydra-train builds it (so model.pretrained_encoder is read)."""
    torch.manual_seed(0)
    return task.build_model(OmegaConf.structured(slt_cfg(**overrides)))


def stand_in_task(task, num_frames: int, crop: int, mean=(0.45,) * 3, std=(0.225,) * 3):
    """The test task with another clip geometry (the model reads only these from the data config)."""
    data_cfg = SimpleNamespace(num_frames=num_frames, crop_size=crop, mean=list(mean), std=list(std), path=None)
    return SimpleNamespace(data_cfg=data_cfg, target_dictionary=task.target_dictionary)


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def task(synthetic_root):
    """The test data config: 16 frames of 32 px per window (signhiera_tiny: 8 time steps of 2x2 tokens)."""
    t = load_task(synthetic_root)
    t.load_dataset("test")
    return t


@pytest.fixture(scope="module")
def tiny_ref():
    return reference_hiera(TINY, 16, 32)


@pytest.fixture(scope="module")
def tiny_file(tiny_ref, tmp_path_factory) -> Path:
    return save_ssvp_slt(tmp_path_factory.mktemp("signhiera") / "dm_tiny_signhiera.pth", tiny_ref)


# ------------------------------------------------------------------------------- 1. the backbone


def test_state_dict_names_are_the_packages_without_head_and_final_norm():
    encoder = build_hiera_encoder(TINY, 16, 32)
    package = Hiera(input_size=(16, 32, 32), **HIERA_PRESETS[TINY])
    assert set(package.state_dict()) - set(encoder.state_dict()) == {
        "head.projection.weight", "head.projection.bias", "norm.weight", "norm.bias"}
    assert set(encoder.state_dict()) <= set(package.state_dict())
    assert encoder.tubelet_size == 2 and encoder.embed_dim == 128 and len(encoder.blocks) == 4


def test_base_preset_has_signhieras_shapes():
    encoder = HieraEncoder(HIERA_PRESETS[BASE], 128, 224)  # (Hiera cannot be built on the meta device)
    state = encoder.state_dict()
    assert state["pos_embed_spatial"].shape == (1, 3136, 96) and state["pos_embed_temporal"].shape == (1, 64, 96)
    assert encoder.embed_dim == 768 and len(encoder.blocks) == 24 and encoder.tubelet_size == 2
    assert [b.attn.heads for b in encoder.blocks][::8] == [1, 4, 4] and encoder.blocks[-1].attn.heads == 8
    n = sum(p.numel() for p in encoder.parameters()) / 1e6
    assert 50 < n < 53, n  # Hiera-B: 51M


@pytest.mark.parametrize("preset,frames,crop,grid", [(TINY, 16, 32, 2), (TINY, 12, 48, 3), (BASE, 8, 64, 2)])
def test_features_equal_the_packages_spatially_averaged_last_stage_after_loading_an_ssvp_slt_file(
    task, tmp_path, preset, frames, crop, grid
):
    """Loaded through model.load_pretrained_encoder (what model.pretrained_encoder calls) into mae_vit_slt."""
    ref = reference_hiera(preset, frames, crop)
    path = save_ssvp_slt(tmp_path / "signhiera.pth", ref)
    torch.manual_seed(7)
    model = MaeVitSltModel.build_model(slt_cfg(preset=preset), stand_in_task(task, frames, crop)).eval()
    model.load_pretrained_encoder(path)
    frames_u8 = torch.randint(0, 256, (2, frames, crop, crop, 3), dtype=torch.uint8)
    x = model.encoder.frames(frames_u8)
    with torch.no_grad():
        feats, time_padding = model.encoder.vit(x)
    expected = reference_features(ref, x)
    assert feats.shape == (2, frames // 2, grid * grid, ref.blocks[-1].dim_out) and time_padding is None
    assert (feats.mean(2) - expected).abs().max() <= 1e-4
    assert expected.abs().max() > 1.0  # a real signal, not a tolerance-sized one


@pytest.mark.parametrize("preset,frames,crop,real", [(TINY, 16, 32, 10), (TINY, 16, 32, 2), (BASE, 8, 64, 6)])
def test_padded_clip_equals_the_package_on_the_real_frames(tmp_path, preset, frames, crop, real):
    """SignHiera's padding semantics (module doc), against the package's unmasked Hiera for the real length."""
    ref = reference_hiera(preset, frames, crop)
    encoder = build_hiera_encoder(preset, frames, crop).eval()
    load_pretrained_hiera(encoder, save_ssvp_slt(tmp_path / "signhiera.pth", ref))
    x = torch.randn(2, 3, frames, crop, crop)
    padding = torch.zeros(2, frames, dtype=torch.bool)
    padding[0, real:] = True
    with torch.no_grad():
        feats, time_padding = encoder(x, padding)
    steps = real // 2
    assert time_padding.tolist() == [[i >= steps for i in range(frames // 2)], [False] * (frames // 2)]
    expected = reference_features(short_reference(ref, preset, real, crop), x[:1, :, :real])
    assert (feats[0, :steps].mean(1) - expected[0]).abs().max() <= 1e-4
    # the unpadded clip in the same batch is untouched by its neighbour's padding
    assert (feats[1].mean(1) - reference_features(ref, x[1:])[0]).abs().max() <= 1e-4
    # and the mask matters: the package without it lets the padded frames in
    unmasked = reference_features(ref, x[:1])[0, :steps]
    assert (unmasked - expected[0]).abs().max() > 1e-2


def test_padded_frames_content_does_not_reach_real_steps():
    encoder = randomise_(build_hiera_encoder(TINY, 16, 32), 3).eval()
    x = torch.randn(1, 3, 16, 32, 32)
    padding = torch.zeros(1, 16, dtype=torch.bool)
    padding[0, 6:] = True
    noisy = x.clone()
    noisy[:, :, 6:] = 100 * torch.randn_like(noisy[:, :, 6:])
    with torch.no_grad():
        a, pad_a = encoder(x, padding)
        b, pad_b = encoder(noisy, padding)
    assert torch.equal(pad_a, pad_b) and pad_a[0].tolist() == [False] * 3 + [True] * 5
    assert torch.allclose(a[:, :3], b[:, :3], atol=1e-5)


def test_odd_real_length_keeps_the_half_padded_time_unit():
    """A time unit with one real frame is real (SignHiera: floor(padded frames / 2) units are padding); its
    padded frame holds whatever the caller put there (mae_vit_slt: 0, the mean colour)."""
    ref = reference_hiera(TINY, 16, 32)
    encoder = build_hiera_encoder(TINY, 16, 32).eval()
    encoder.load_state_dict(encoder_state(ref))
    x = torch.randn(1, 3, 16, 32, 32)
    x[:, :, 11:] = 0.0
    padding = torch.zeros(1, 16, dtype=torch.bool)
    padding[0, 11:] = True
    with torch.no_grad():
        feats, time_padding = encoder(x, padding)
    assert time_padding[0].tolist() == [False] * 6 + [True] * 2
    expected = reference_features(short_reference(ref, TINY, 12, 32), x[:, :, :12])
    assert (feats[0, :6].mean(1) - expected[0]).abs().max() <= 1e-4


def test_short_windows_are_padded_up_and_wrong_sizes_refused():
    encoder = build_hiera_encoder(TINY, 16, 32).eval()
    with torch.no_grad():
        feats, time_padding = encoder(torch.randn(2, 3, 6, 32, 32))  # a batch of short clips
    assert feats.shape == (2, 8, 4, 128) and time_padding.tolist() == [[False] * 3 + [True] * 5] * 2
    with pytest.raises(ValueError, match=r"at most 16 frames of 32x32 px.*got 18 frames of 32x32"):
        encoder(torch.randn(1, 3, 18, 32, 32))
    with pytest.raises(ValueError, match=r"got 16 frames of 48x48"):
        encoder(torch.randn(1, 3, 16, 48, 48))
    with pytest.raises(ValueError, match=r"config\.yaml: num_frames=16, crop_size=36 .*multiple of 16 px"):
        check_hiera_input(TINY, 16, 36, where="config.yaml")
    with pytest.raises(ValueError, match=r"multiple of 32 px"):
        build_hiera_encoder(BASE, 16, 48)


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = randomise_(build_hiera_encoder(TINY, 16, 32), 4)
    ckpt = build_hiera_encoder(TINY, 16, 32, activation_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 16, 32, 32)
    padding = torch.zeros(2, 16, dtype=torch.bool)
    padding[0, 8:] = True
    grads = []
    for model in (plain, ckpt):
        model.train()
        model(x, padding)[0].square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name, g in grads[0].items():
        assert torch.allclose(g, grads[1][name], atol=1e-6), name


# --------------------------------------------------------------------------- 2. mae_vit_slt with SignHiera


def test_presets_and_arch_selection():
    # SignHiera encoders with the ViT presets' decoders; no ViT sizes
    assert PRESETS[TINY] == {k: v for k, v in PRESETS["tiny"].items() if k.startswith("decoder_")}
    assert PRESETS[BASE] == {k: v for k, v in PRESETS["base"].items() if k.startswith("decoder_")}
    assert resolve_preset(slt_cfg()).encoder_arch == "hiera"
    assert resolve_preset(slt_cfg(encoder_arch="hiera")).encoder_arch == "hiera"
    assert resolve_preset(slt_cfg(preset="tiny")).encoder_arch == "vit"  # old configs: unset -> the preset's
    with pytest.raises(ValueError, match=r"encoder_arch=vit contradicts model\.preset=signhiera_tiny.*\['base', 'large'"):
        resolve_preset(slt_cfg(encoder_arch="vit"))
    with pytest.raises(ValueError, match=r"encoder_arch=hiera contradicts model\.preset=base.*signhiera_base_128x224"):
        resolve_preset(slt_cfg(preset="base", encoder_arch="hiera"))
    with pytest.raises(ValueError, match=r"model\.encoder_layers=2: ViT size settings.*signhiera_tiny"):
        resolve_preset(slt_cfg(encoder_layers=2))
    vit = build_video_encoder(resolve_preset(slt_cfg(preset="tiny")), 16, 32)
    assert type(vit).__name__ == "VideoViT"


def test_mae_vit_slt_windows_and_padding_match_the_vits(task):
    """Same batch, same windows: the Hiera model's encoder output has the ViT model's steps and padding."""
    ds = task.datasets["test"]
    batch = ds.collater([ds[i] for i in range(len(ds))])
    net = batch["net_input"]
    assert net["window_starts"].shape[1] > 1 and net["padding_mask"].any()  # several windows, padded clips
    hiera_model = build_slt(task, encoder_pooling="spatial").eval()
    vit_model = build_slt(task, preset="tiny", encoder_pooling="spatial").eval()
    with torch.no_grad():
        out = hiera_model.encoder(net["source"], net["padding_mask"], net["window_starts"])
        vit_out = vit_model.encoder(net["source"], net["padding_mask"], net["window_starts"])
    assert out["encoder_out"][0].shape == vit_out["encoder_out"][0].shape
    assert torch.equal(out["encoder_padding_mask"][0], vit_out["encoder_padding_mask"][0])
    assert torch.isfinite(out["encoder_out"][0]).all()
    # and the translation model runs on it
    logits, _ = hiera_model(net["source"], net["padding_mask"], net["prev_output_tokens"], net["window_starts"])
    assert logits.shape[:2] == net["prev_output_tokens"].shape and torch.isfinite(logits).all()


def test_layer_decay_and_no_decay_groups_cover_hiera(task):
    model = build_slt(task, encoder_layer_decay=0.5, selective_weight_decay=True)
    scales = encoder_layer_lr_scales(model.encoder.vit, 0.5)
    depth = len(model.encoder.vit.blocks)
    assert scales["patch_embed.proj.weight"] == 0.5 ** (depth + 1) and scales["pos_embed_temporal"] == 0.5 ** (depth + 1)
    assert scales[f"blocks.{depth - 1}.mlp.fc2.weight"] == 0.5
    vit = model.encoder.vit
    assert vit.pos_embed_spatial.param_group == "no_decay" and vit.blocks[0].norm1.weight.param_group == "no_decay"
    assert not hasattr(vit.blocks[0].attn.qkv.weight, "param_group")
    assert vit.blocks[0].attn.qkv.weight.optim_overrides["optimizer"]["lr_scale"] == 0.5 ** depth


# ------------------------------------------------------------------------------ 3. checkpoint loading


def test_ssvp_slt_file_through_model_pretrained_encoder_with_report(task, tiny_ref, tiny_file, caplog):
    caplog.set_level(logging.INFO, logger=REPORT_LOGGER)
    model = build_slt(task, pretrained_encoder=str(tiny_file))
    assert_loaded(model.encoder.vit, encoder_state(tiny_ref))
    log = caplog.text
    n = len(encoder_state(tiny_ref))
    assert f"pretrained encoder from {tiny_file} (SignHiera/Hiera checkpoint, weights under 'model'):" in log
    assert f"loaded {n} tensors" in log and "missing (left as initialised): none" in log
    assert (f"ignored {len(MAE_ONLY)} non-encoder tensors "
            "(decoder_blocks, decoder_embed, encoder_norm, mask_token, multi_scale_fusion_heads)") in log
    assert "mean [0.45, 0.45, 0.45] / std [0.225, 0.225, 0.225] (SSVP-SLT's SignHiera" in log


def test_model_state_key_and_a_classifier_file_load(tmp_path):
    """Older SSVP-SLT files and FAIR's Hiera files keep the weights under model_state; a classifier's
    head and final norm are not translation-encoder weights."""
    ref = reference_hiera(TINY, 16, 32, seed=2)
    path = tmp_path / "hiera_k400.pth"
    torch.save({"model_state": ref.state_dict()}, path)
    encoder = build_hiera_encoder(TINY, 16, 32)
    report = load_pretrained_hiera(encoder, path)
    assert_loaded(encoder, encoder_state(ref))
    assert sorted(report.ignored) == ["head.projection.bias", "head.projection.weight", "norm.bias", "norm.weight"]


def test_fairseq_mae_hiera_checkpoint_loads_the_encoder(tmp_path):
    torch.manual_seed(0)
    mae = randomise_(MaskedAutoencoderHiera(input_size=(16, 32, 32), decoder_embed_dim=32, decoder_depth=1,
                                            decoder_num_heads=1, **HIERA_PRESETS[TINY]), 5)
    holder = nn.Module()
    holder.mae = mae  # mae_hiera's checkpoint keys: "mae." + the package's names
    path = save_fairseq(tmp_path / "checkpoint_last.pt", holder, "mae_hiera")
    encoder = build_hiera_encoder(TINY, 16, 32)
    report = load_pretrained_hiera(encoder, path)
    expected = {k: v for k, v in mae.state_dict().items() if k in encoder.state_dict()}
    assert_loaded(encoder, expected)
    assert report.ignored and all(k.startswith(("decoder", "mask_token", "encoder_norm", "multi_scale")) for k in report.ignored)


def test_mae_vit_slt_hiera_checkpoint_loads_the_encoder(task, tmp_path):
    donor = randomise_(build_slt(task), 6)
    path = save_fairseq(tmp_path / "slt.pt", donor, "mae_vit_slt")
    model = build_slt(task)
    report = model.load_pretrained_encoder(path)
    assert_loaded(model.encoder.vit, donor.encoder.vit.state_dict())
    assert set(report.ignored) == {k for k in donor.state_dict() if not k.startswith("encoder.vit.")}


def test_position_tables_of_another_geometry_are_interpolated(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=REPORT_LOGGER)
    ref = reference_hiera(TINY, 32, 48)  # 16 time steps, 12x12 tokens
    encoder = build_hiera_encoder(TINY, 16, 32)  # 8 time steps, 8x8 tokens
    report = load_pretrained_hiera(encoder, save_ssvp_slt(tmp_path / "f.pth", ref))
    assert report.interpolated == [("pos_embed_spatial", (1, 144, 32), (1, 64, 32)),
                                   ("pos_embed_temporal", (1, 16, 32), (1, 8, 32))]
    with torch.no_grad():
        assert torch.equal(encoder.pos_embed_spatial, resize_spatial_pos_embed(ref.pos_embed_spatial, (12, 12), (8, 8)))
        assert torch.equal(encoder.pos_embed_temporal, resize_temporal_pos_embed(ref.pos_embed_temporal, 8))
    assert "interpolated pos_embed_temporal: (1, 16, 32) -> (1, 8, 32)" in caplog.text


def test_normalisation_other_than_signhieras_is_warned_about(task, tiny_file, caplog):
    caplog.set_level(logging.WARNING, logger=REPORT_LOGGER)
    torch.manual_seed(0)
    model = MaeVitSltModel.build_model(slt_cfg(), stand_in_task(task, 16, 32, mean=(0.5,) * 3, std=(0.5,) * 3))
    model.load_pretrained_encoder(tiny_file)
    assert re.search(rf"{re.escape(str(tiny_file))}: .*mean \[0\.45, 0\.45, 0\.45\] / std \[0\.225, 0\.225, 0\.225\] "
                     r"\(SSVP-SLT's SignHiera.*data config uses mean \[0\.5", caplog.text)


def _drop_key(key):
    def write(tmp_path, ref, task):
        state = ssvp_slt_state(ref)
        del state[key]
        torch.save({"model": state}, tmp_path / "f.pth")
        return tmp_path / "f.pth"
    return write


def _add_key(tmp_path, ref, task):
    state = ssvp_slt_state(ref)
    state["blocks.99.attn.qkv.weight"] = torch.zeros(3, 3)
    torch.save({"model": state}, tmp_path / "f.pth")
    return tmp_path / "f.pth"


def _base_file(tmp_path, ref, task):
    state = encoder_state(Hiera(input_size=(16, 32, 32), **HIERA_PRESETS[BASE]))
    torch.save({"model": state}, tmp_path / "f.pth")
    return tmp_path / "f.pth"


def _vit_slt_checkpoint(tmp_path, ref, task):
    vit_model = MaeVitSltModel.build_model(slt_cfg(preset="tiny"), task)
    return save_fairseq(tmp_path / "vit.pt", vit_model, "mae_vit_slt", preset="tiny")


def _raw(payload):
    def write(tmp_path, ref, task):
        torch.save(payload, tmp_path / "f.pth")
        return tmp_path / "f.pth"
    return write


# id -> (writes the file, patterns the message must contain)
ERROR_CASES = {
    "missing tensor": (_drop_key("blocks.1.attn.qkv.weight"), [r"lacks", r"blocks\.1\.attn\.qkv\.weight"]),
    "left-over tensor": (_add_key, [r"no place for", r"blocks\.99\.attn\.qkv\.weight"]),
    "SignHiera-Base file into the tiny preset": (
        _base_file, [r"shape mismatches", r"stages \(2, 3, 16, 3\)", r"Set model\.preset=signhiera_base_128x224"]),
    "ViT mae_vit_slt checkpoint": (_vit_slt_checkpoint, [r"holds a ViT encoder", r"model\.preset=tiny/base/large"]),
    "ViT mae_vit checkpoint": (
        _raw({"cfg": {"model": {"_name": "mae_vit"}}, "model": {"encoder.patch_embed.weight": torch.zeros(1)}}),
        [r"mae_vit pretraining checkpoint holds a ViT encoder"]),
    "ViT encoder file": (_raw({"format": "ssvp_slt.video_vit.v1", "encoder": {}}), [r"encoder file .* holds a ViT"]),
    "unrelated dict": (_raw({"weights": torch.zeros(3)}), [r"neither a SignHiera/Hiera checkpoint", r"'weights'"]),
    "dict of other weights": (_raw({"model": {"fc.weight": torch.zeros(2, 2)}}), [r"without Hiera encoder weights"]),
    "other fairseq model": (
        _raw({"cfg": {"model": {"_name": "transformer"}}, "model": {}}), [r"model 'transformer'", r"mae_hiera"]),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_bad_file_is_refused_naming_the_file(task, tiny_ref, tmp_path, case):
    write, patterns = ERROR_CASES[case]
    path = write(tmp_path, tiny_ref, task)
    model = build_slt(task)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(PretrainedEncoderError) as info:
        model.load_pretrained_encoder(path)
    message = str(info.value)
    assert str(path) in message
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())  # nothing half-loaded


def test_the_preset_is_read_off_a_files_weights(task, tiny_file, tiny_ref, tmp_path):
    """What a tool that builds the encoder from a file alone (feature extraction) needs."""
    assert hiera_preset_of(tiny_file) == TINY
    assert hiera_preset_of(_base_file(tmp_path, tiny_ref, task)) == BASE
    state = ssvp_slt_state(tiny_ref)
    state = {k: v for k, v in state.items() if not k.startswith("blocks.3.")}  # 3 blocks: no preset
    torch.save({"model": state}, tmp_path / "odd.pth")
    with pytest.raises(PretrainedEncoderError, match=r"odd\.pth: a Hiera of width 32 -> 64, stages \(1, 2\): no preset"):
        hiera_preset_of(tmp_path / "odd.pth")


def test_signhiera_file_into_a_vit_model_names_the_preset(task, tiny_file, tiny_ref, tmp_path):
    vit_model = build_slt(task, preset="tiny")
    with pytest.raises(PretrainedEncoderError, match=r"Hiera \(SignHiera\) encoder.*model\.preset=signhiera_base_128x224"):
        vit_model.load_pretrained_encoder(tiny_file)
    hiera_slt = save_fairseq(tmp_path / "slt.pt", build_slt(task), "mae_vit_slt")
    with pytest.raises(PretrainedEncoderError, match=rf"{re.escape(str(hiera_slt))}.*model\.preset=signhiera_"):
        vit_model.load_pretrained_encoder(hiera_slt)


# ------------------------------------------------------------------------------ 4. the command line


@pytest.fixture(scope="module")
def small_root(synthetic_root, tmp_path_factory) -> Path:
    """The test data root cut to 4 train / 2 val / 2 test clips: the run only needs to start and decode."""
    root = tmp_path_factory.mktemp("small") / "data"
    root.mkdir()
    for name in ("config.yaml", "dict.txt", "spm.model"):
        shutil.copy(synthetic_root / name, root / name)
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        lines = (synthetic_root / f"{split}.tsv").read_text().splitlines()
        col = lines[0].split("\t").index("video")
        out = [lines[0]]
        for line in lines[1 : n + 1]:
            f = line.split("\t")
            f[col] = str((synthetic_root / f[col]).resolve())
            out.append("\t".join(f))
        (root / f"{split}.tsv").write_text("\n".join(out) + "\n")
    return root


def test_fairseq_hydra_train_and_generate_with_signhiera(small_root, tiny_ref, tmp_path):
    pretrained = save_ssvp_slt(tmp_path / "dm_tiny_signhiera.pth", tiny_ref)
    log = hydra_train(
        "quick_synthetic", small_root, tmp_path / "ckpt", tmp_path, "++model.encoder_arch=hiera",  # ++: not in the yaml
        "model.preset=signhiera_tiny", f"++model.pretrained_encoder={pretrained}", "optimization.max_update=2",
        "optimizer.groups.default.lr_scheduler.warmup_updates=1", "dataset.disable_validation=true",
    )
    assert f"pretrained encoder from {pretrained} (SignHiera/Hiera checkpoint" in log
    assert "missing (left as initialised): none" in log and "num_updates 2" in log
    ckpt = tmp_path / "ckpt" / "checkpoint_last.pt"
    saved = torch.load(ckpt, weights_only=True)
    assert saved["cfg"]["model"]["preset"] == TINY
    assert "encoder.vit.patch_embed.proj.weight" in saved["model"] and "encoder.vit.norm.weight" not in saved["model"]
    pretrained.unlink()  # the fine-tuned checkpoint holds the encoder
    run([BIN / "fairseq-generate", small_root, "--user-dir", REPO / "ssvp_plugin", "--task", "how2sign_video",
         "--path", ckpt, "--gen-subset", "test", "--beam", "2", "--max-len-b", "10", "--results-path", tmp_path / "gen"],
        tmp_path)
    assert len(parse_generate_output(tmp_path / "gen" / "generate-test.txt")) == 2
