"""MAE pretraining of SignHiera (model ``mae_hiera``): geometry checks, padding-aware masks, the
loss against the hiera-transformer package's own, reconstructions, one tiny fairseq-hydra-train
run and the reconstruction picture on its checkpoint."""

import math
import re
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from conftest import REPO, hydra_train, load_unlabelled_task, run_tool
from ssvp_plugin.criterions.mae_reconstruction import MaeReconstructionCriterion
from ssvp_plugin.models.hiera_package import MaskedAutoencoderHiera
from ssvp_plugin.models.hiera_presets import HIERA_PRESETS
from ssvp_plugin.models.mae_hiera import (
    MaeHieraConfig,
    MaeHieraModel,
    build_mae_hiera,
    draw_visible_units,
    hiera_geometry,
)
from ssvp_slt.viz.mae_reconstructions import MASK_GREY, GridLayout

# synthetic_root (tests/conftest.py): 16 frames, 32 px crop -> signhiera_tiny: 8 time units of 2 frames,
# 2x2 mask units of 16x16 px per time unit (= the predicted patches), 32 units per clip
FRAMES, CROP, UNIT_PX, RATIO = 16, 32, 16, 0.75
TINY = dict(preset="signhiera_tiny", mask_ratio=RATIO, decoder_embed_dim=64, decoder_depth=1, decoder_num_heads=4, drop_path=0.0)


def build(task, **overrides):
    torch.manual_seed(0)
    return MaeHieraModel.build_model(MaeHieraConfig(**{**TINY, **overrides}), task).eval()


def fake_task(num_frames=FRAMES, crop=CROP, path="/data/config.yaml"):
    data_cfg = SimpleNamespace(num_frames=num_frames, crop_size=crop, mean=[0.45] * 3, std=[0.25] * 3, path=path)
    return SimpleNamespace(data_cfg=data_cfg)


@pytest.fixture(scope="module")
def task(synthetic_root):
    t = load_unlabelled_task(synthetic_root)
    t.load_dataset("val")
    return t


@pytest.fixture(scope="module")
def batch(task):
    ds = task.datasets["val"]
    b = ds.collater([ds[i] for i in range(len(ds))])
    pad = b["net_input"]["padding_mask"]
    assert pad.any() and not pad.all(1).any()  # some clips are shorter than the window
    return b


@pytest.fixture(scope="module")
def model(task):
    return build(task)


# ---------------------------------------------------------------------------------------------
# geometry


@pytest.mark.parametrize(
    "preset, frames, crop, units, px",
    [
        ("signhiera_base_128x224", 128, 224, (64, 7, 7), 32),  # SSVP-SLT's SignHiera: 64 x 7 x 7 mask units of 32 px
        ("signhiera_tiny", 16, 32, (8, 2, 2), 16),
        ("signhiera_tiny", 16, 48, (8, 3, 3), 16),
        ("signhiera_tiny", 8, 64, (4, 4, 4), 16),
    ],
)
def test_geometry_of_the_presets(preset, frames, crop, units, px):
    g = hiera_geometry(preset, frames, crop)
    assert g.mask_units == units and g.pred_tokens == units and g.pred_stride == px and g.time_unit == 2
    mae = build_mae_hiera(MaeHieraConfig(preset=preset, decoder_depth=1), frames, crop)
    assert list(mae.mask_spatial_shape) == list(units) and mae.pred_stride == px


@pytest.mark.parametrize(
    "preset, frames, crop, needs",
    [
        ("signhiera_base_128x224", 128, 200, "crop_size a multiple of 32 px"),
        ("signhiera_base_128x224", 127, 224, "num_frames a multiple of 2"),
        ("signhiera_tiny", 16, 40, "crop_size a multiple of 16 px"),
    ],
)
def test_clips_that_do_not_fit_the_unrolling_fail_naming_the_data_config(preset, frames, crop, needs):
    with pytest.raises(ValueError, match=re.escape(needs)) as e:
        MaeHieraModel.build_model(MaeHieraConfig(preset=preset), fake_task(frames, crop, "/root/config.yaml"))
    assert str(e.value).startswith("/root/config.yaml: ") and f"crop_size={crop}" in str(e.value)


def test_checkpoint_keys_are_mae_plus_the_package_names():
    model = MaeHieraModel.build_model(MaeHieraConfig(**TINY), fake_task())
    reference = MaskedAutoencoderHiera(
        input_size=(FRAMES, CROP, CROP), decoder_embed_dim=64, decoder_depth=1, decoder_num_heads=4,
        **HIERA_PRESETS["signhiera_tiny"],
    )
    keys = set(model.state_dict())
    assert keys == {"mae." + k for k in reference.state_dict()}
    for k in ("mae.patch_embed.proj.weight", "mae.blocks.0.attn.qkv.weight", "mae.pos_embed_spatial",
              "mae.pos_embed_temporal", "mae.decoder_pred.weight", "mae.mask_token", "mae.encoder_norm.weight",
              "mae.multi_scale_fusion_heads.0.weight"):
        assert k in keys
    # and the package loads them back under its own names
    reference.load_state_dict({k[len("mae."):]: v for k, v in model.state_dict().items()})


def test_drop_path_reaches_the_encoder_blocks_only():
    model = MaeHieraModel.build_model(MaeHieraConfig(**{**TINY, "drop_path": 0.2}), fake_task())
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for b in model.mae.blocks]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2) and rates == sorted(rates)
    assert all(not hasattr(b.drop_path, "drop_prob") for b in model.mae.decoder_blocks)


# ---------------------------------------------------------------------------------------------
# masks


def test_masks_hide_the_ratio_of_real_units_and_show_the_same_number_in_every_clip():
    u = 64
    pad = torch.zeros(5, u, dtype=torch.bool)
    pad[1, 32:] = True  # half padding
    pad[2, 8:] = True  # mostly padding
    pad[3, 60:] = True
    visible = draw_visible_units(pad, RATIO, torch.Generator().manual_seed(0))
    assert visible.sum(1).tolist() == [16] * 5  # int(64 * 0.25): the package needs one count for the batch
    real_visible = (visible & ~pad).sum(1).tolist()
    assert real_visible == [16, 8, 2, 15, 16]  # int(n_real * 0.25) of each clip's real units
    # padded units only fill the budget: the real units are masked at the configured ratio
    assert (visible & pad).sum(1).tolist() == [0, 8, 14, 1, 0]
    ratio = 0.9  # SSVP-SLT's ratio on SignHiera-Base's 64 x 7 x 7 units
    visible = draw_visible_units(torch.zeros(2, 3136, dtype=torch.bool), ratio)
    assert visible.sum(1).tolist() == [313, 313]  # as the package: int(3136 * 0.1)


def test_masks_are_random_per_clip_and_reproducible_for_a_generator():
    pad = torch.zeros(8, 32, dtype=torch.bool)
    a = draw_visible_units(pad, RATIO, torch.Generator().manual_seed(1))
    b = draw_visible_units(pad, RATIO, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and len({tuple(r.tolist()) for r in a}) == 8
    with pytest.raises(ValueError, match="mask ratio"):
        draw_visible_units(pad, 1.0)


def test_model_hides_three_quarters_of_each_clips_real_units(model, batch):
    source, pad = batch["net_input"]["source"], batch["net_input"]["padding_mask"]
    with torch.no_grad():
        out = model(source, pad)
    b, n = out["mask"].shape
    assert n == 32 and out["pred"].shape == out["target"].shape == (b, n, UNIT_PX * UNIT_PX * 3)
    assert out["visible"].sum(1).tolist() == [8] * b
    # a time unit (2 frames) is padding when its first frame is
    lengths = (~pad).sum(1)
    unit_padding = (torch.arange(8).view(1, 8) * 2 >= lengths.view(b, 1)).repeat_interleave(4, dim=1)
    assert unit_padding.any() and torch.equal(out["token_padding"], unit_padding)
    real = ~unit_padding
    hidden_real = (out["mask"] & real).sum(1).float() / real.sum(1)
    assert hidden_real.tolist() == pytest.approx([RATIO] * b)
    assert torch.equal(out["loss_mask"], out["mask"] & real)


def test_eval_masks_are_fixed_training_masks_are_drawn_anew(task, batch):
    model = build(task)
    source, pad = batch["net_input"]["source"], batch["net_input"]["padding_mask"]
    with torch.no_grad():
        a, b = model(source, pad)["visible"], model(source, pad)["visible"]
        assert torch.equal(a, b)
        model.train()
        c, d = model(source, pad)["visible"], model(source, pad)["visible"]
        assert not torch.equal(c, d)
        model.use_mask_seed(5)
        assert torch.equal(model(source, pad)["visible"], model(source, pad)["visible"])


# ---------------------------------------------------------------------------------------------
# loss


def test_criterion_loss_is_the_packages_own_loss_for_unpadded_clips(model, task, batch):
    source = batch["net_input"]["source"]
    full = ~batch["net_input"]["padding_mask"].any(1)
    assert full.sum() >= 2
    sample = {"net_input": {"source": source[full], "padding_mask": None}, "ntokens": 1, "nsentences": int(full.sum())}
    crit = MaeReconstructionCriterion(task)
    with torch.no_grad():
        loss, n_hidden, log = crit(model, sample)
        out = model(source[full])
        x = model.frames(source[full])
        torch.manual_seed(0)  # the package's forward: the same mask, its label code and its mean
        package_loss, _, _, _ = model.mae(x, RATIO, mask=out["visible"])
    assert n_hidden == 24 * int(full.sum())
    assert (loss / n_hidden).item() == pytest.approx(package_loss.item(), rel=1e-5)


def test_padded_frames_do_not_count(model, task, batch):
    source, pad = batch["net_input"]["source"], batch["net_input"]["padding_mask"]
    crit = MaeReconstructionCriterion(task)
    with torch.no_grad():
        loss, n, _ = crit(model, batch)
        # garbage in the padded frames changes nothing (they are the mean colour to the model)
        garbage = source.clone()
        garbage[pad] = torch.randint_like(garbage[pad], 0, 256)
        loss2, n2, _ = crit(model, {**batch, "net_input": {"source": garbage, "padding_mask": pad}})
        assert n2 == n and loss2.item() == pytest.approx(loss.item(), rel=1e-6)
        # nor does padding a batch further (the model pads every batch up to the window anyway)
        short = int((~pad).sum(1).max())
        if short < FRAMES:
            loss3, n3, _ = crit(model, {**batch, "net_input": {"source": source[:, :short], "padding_mask": pad[:, :short]}})
            assert n3 == n and loss3.item() == pytest.approx(loss.item(), rel=1e-6)
        # and whatever is predicted for padded units is not scored
        out = model(source, pad)
        wild = dict(out, pred=torch.where(out["token_padding"].unsqueeze(-1), out["pred"] + 1e3, out["pred"]))
        loss4, n4, log = crit(lambda **_: wild, batch)
    assert n4 == n and loss4.item() == pytest.approx(loss.item(), rel=1e-6)
    assert log["n_tokens"] == int((~out["token_padding"]).sum()) and log["n_hidden"] == n


def test_loss_is_finite_and_decreases_on_a_tiny_batch(task, batch):
    model = build(task).train()
    model.use_mask_seed(0)  # the same masks every step: a fixed task to fit
    crit = MaeReconstructionCriterion(task)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(25):
        loss, n, _ = crit(model, batch)
        opt.zero_grad()
        (loss / n).backward()
        opt.step()
        losses.append(loss.item() / n)
    assert all(math.isfinite(v) for v in losses)
    assert 0.3 < losses[0] < 3.0  # per-patch normalised targets: ~1 for predicting the mean
    assert min(losses[-5:]) < 0.8 * losses[0], losses


# ---------------------------------------------------------------------------------------------
# reconstructions


def test_reconstruct_shows_the_predicted_frames_and_is_the_patch_mean_for_zero_predictions(task, batch):
    model = build(task)
    source, pad = batch["net_input"]["source"], batch["net_input"]["padding_mask"]
    rec = model.reconstruct(source, pad)
    b = len(source)
    x = model.frames(source, pad)
    torch.testing.assert_close(rec["input"], x[:, :, ::2])  # the first frame of every 2-frame time unit
    assert torch.equal(rec["padding_mask"], pad[:, ::2])
    mask = rec["mask"]
    assert mask.shape == (b, 3, FRAMES // 2, CROP, CROP)
    # whole 16x16 px units, the same for every channel, hidden anywhere in space-time (the package's
    # random unit masking, not tubes): 3 of 4 of each clip's real units
    v = mask.reshape(b, 3, 8, 2, UNIT_PX, 2, UNIT_PX)
    assert torch.equal(v, v[:, :1, :, :, :1, :, :1].expand_as(v))
    real = ~rec["padding_mask"]
    hidden_units = mask[:, 0, :, ::UNIT_PX, ::UNIT_PX].sum((2, 3))  # (B, t) of 0..4
    assert torch.equal(hidden_units[real].sum(), real.sum() * 3)
    for i in range(b):
        assert hidden_units[i][real[i]].sum() == 3 * real[i].sum()
    assert len(set(hidden_units[real].tolist())) > 1  # not the same count in every time unit
    seen = mask == 0
    assert torch.equal(rec["reconstruction"][seen], rec["input"][seen])
    assert torch.equal(rec["masked"][seen], rec["input"][seen]) and (rec["masked"][~seen] == 0).all()
    with torch.no_grad():
        model.mae.decoder_pred.weight.zero_()
        model.mae.decoder_pred.bias.zero_()
    nothing = model.reconstruct(source, pad)
    torch.testing.assert_close(nothing["reconstruction"], rec["patch_mean"], atol=1e-5, rtol=1e-5)
    # patch_mean: hidden patches flat at their own mean
    flat = rec["patch_mean"].reshape(b, 3, 8, 2, UNIT_PX, 2, UNIT_PX).permute(0, 2, 3, 5, 1, 4, 6).reshape(b, 8, 2, 2, -1)
    hidden_units = mask[:, 0, :, ::UNIT_PX, ::UNIT_PX].bool()
    assert torch.allclose(flat[hidden_units], flat[hidden_units].mean(-1, keepdim=True).expand_as(flat[hidden_units]), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# fairseq-hydra-train and the picture tool


@pytest.fixture(scope="module")
def pretrained(synthetic_root, tmp_path_factory):
    """4 updates of configs/pretrain_mae_hiera_tiny.yaml, batches of 4, validating after each epoch."""
    work = tmp_path_factory.mktemp("mae_hiera")
    log = hydra_train(
        "pretrain_mae_hiera_tiny", synthetic_root, work / "ckpt", work,
        "optimization.max_update=4", "lr_scheduler.warmup_updates=2", "dataset.validate_interval=1",
        "checkpoint.save_interval_updates=0", "dataset.batch_size=4",
    )
    return work, log


def test_pretraining_runs_logs_the_loss_and_saves_mae_keys(pretrained):
    work, log = pretrained
    assert "num_updates 4" in log or "num_updates=4" in log
    train_losses = [float(v) for v in re.findall(r"\bloss=([\d.]+)", log)]
    assert len(train_losses) == 4 and all(math.isfinite(v) and 0.1 < v < 10 for v in train_losses)
    assert [float(s) for s in re.findall(r"hidden_share=([\d.]+)", log)] == pytest.approx([RATIO] * 4, abs=1e-3)
    valid = [line for line in log.splitlines() if "valid on 'val' subset" in line]
    assert valid
    for line in valid:
        assert math.isfinite(float(re.search(r"\| loss ([\d.]+)", line).group(1)))
        assert float(re.search(r"\| hidden_share ([\d.]+)", line).group(1)) == pytest.approx(RATIO, abs=1e-3)
    state = torch.load(work / "ckpt" / "checkpoint_last.pt")  # weights_only=True (torch >= 2.6 default)
    assert state["cfg"]["model"]["_name"] == "mae_hiera" and state["cfg"]["model"]["preset"] == "signhiera_tiny"
    keys = list(state["model"])
    assert keys and all(k.startswith("mae.") for k in keys)
    assert {"mae.patch_embed.proj.weight", "mae.pos_embed_spatial", "mae.mask_token", "mae.decoder_pred.weight"} <= set(keys)


def test_reconstruction_picture_of_a_mae_hiera_checkpoint(pretrained, synthetic_root, tmp_path):
    work, _ = pretrained
    out = tmp_path / "recon.png"
    n_clips, n_frames, scale = 2, 4, 2
    # as a user runs it: a fresh interpreter, so the tool itself must load the plugin
    log = run_tool(
        [sys.executable, REPO / "scripts" / "render_mae_reconstructions.py", "--checkpoint", work / "ckpt" / "checkpoint_last.pt",
         "--data", synthetic_root, "--clips", n_clips, "--frames", n_frames, "--scale", scale, "--out", out],
        tmp_path,
    )
    image = cv2.cvtColor(cv2.imread(str(out), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    layout = GridLayout(n_clips, n_frames, CROP, CROP, scale)
    assert image.shape == (layout.height, layout.width, 3)
    errors = re.findall(r"clip \S+: reconstruction ([\d.]+)\s+frame-mean baseline ([\d.]+)\s+patch-mean baseline ([\d.]+)", log)
    assert len(errors) == n_clips and all(float(v) > 0 for e in errors for v in e)
    assert "75% of pixels hidden" in log
    # rebuilt here: the val clips as evaluation decodes them, the checkpoint's validation masks
    from fairseq import checkpoint_utils

    task = load_unlabelled_task(synthetic_root)
    task.load_dataset("val")
    ds = task.dataset("val")
    items = [ds[i] for i in range(n_clips)]
    b = ds.collater(items)
    models, _, _ = checkpoint_utils.load_model_ensemble_and_task(
        [str(work / "ckpt" / "checkpoint_last.pt")], arg_overrides={"data": str(synthetic_root)}
    )
    hidden = models[0].eval().reconstruct(b["net_input"]["source"], b["net_input"]["padding_mask"])["mask"][:, 0].bool()
    assert hidden.any()
    for c, item in enumerate(items):
        frames = item["source"].numpy()[::2]  # (t, H, W, C) uint8: the first frame of each time unit
        cols = [int(round(v)) for v in np.linspace(0, len(frames) - 1, n_frames)]
        for col, f in enumerate(cols):
            cell = [image[y : y + CROP * scale, x : x + CROP * scale] for y, x in (layout.cell(c, r, col) for r in range(3))]
            inp, masked, rec = cell
            np.testing.assert_array_equal(inp, np.repeat(np.repeat(frames[f], scale, 0), scale, 1))
            big_hidden = np.repeat(np.repeat(hidden[c, f].numpy(), scale, 0), scale, 1)
            assert (masked[big_hidden] == MASK_GREY).all()
            np.testing.assert_array_equal(masked[~big_hidden], inp[~big_hidden])
            np.testing.assert_array_equal(rec[~big_hidden], inp[~big_hidden])
