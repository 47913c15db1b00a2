"""MAE pretraining: masking, the mae_vit model, the mae_reconstruction criterion, the
unlabelled_video task, scripts/make_video_manifest.py and one tiny fairseq-hydra-train run."""

import math
import re
from pathlib import Path

import pytest
import torch
import yaml
from fairseq import metrics

from conftest import hydra_train, load_unlabelled_task, run_script_captured
from ssvp_plugin.criterions.mae_reconstruction import MaeReconstructionCriterion
from ssvp_slt.corpus.manifest import ManifestError, read_manifest, write_manifest
from ssvp_plugin.models.mae_vit import MaeVitConfig, MaeVitModel
from ssvp_plugin.models.masking import make_mask, normalise_patches, num_kept, patchify_pixels, unpatchify_pixels
from video_helpers import write_garbage, write_test_video

PATCH, TUBELET, RATIO = 16, 2, 0.75  # synthetic_root: 32 px crop -> 2x2 patches; 16 frames -> 8 tubelet steps


def reduce(logging_outputs):
    with metrics.aggregate() as agg:
        MaeReconstructionCriterion.reduce_metrics(logging_outputs)
    return agg.get_smoothed_values()


# ---------------------------------------------------------------------------------------------
# 1. masking


@pytest.mark.parametrize(
    "t, g, ratio, kept_per_step",
    [(8, 4, 0.75, 1), (8, 4, 0.9, 1), (4, 9, 0.75, 2), (2, 16, 0.5, 8), (3, 196, 0.9, 19), (2, 4, 0.0, 4)],
)
def test_tube_mask_hides_one_minus_kept_share(t, g, ratio, kept_per_step):
    b = 5
    keep, mask = make_mask(b, t, g, ratio, "tube", torch.Generator().manual_seed(0))
    k = t * kept_per_step
    assert keep.shape == (b, k) and mask.shape == (b, t * g) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [t * g - k] * b
    assert mask.float().mean().item() == pytest.approx(1 - k / (t * g))
    assert torch.all(keep[:, 1:] > keep[:, :-1])  # sorted, no repeats
    assert not mask.gather(1, keep).any()  # exactly the kept tokens are visible


def test_tube_mask_shows_the_same_positions_at_every_time_step_and_differs_between_clips():
    b, t, g = 16, 8, 196
    keep, mask = make_mask(b, t, g, 0.9, "tube", torch.Generator().manual_seed(1))
    grid = mask.view(b, t, g)
    assert torch.equal(grid, grid[:, :1].expand_as(grid))
    k = keep.view(b, t, -1)
    assert torch.equal(k - (torch.arange(t) * g).view(1, t, 1), k[:, :1].expand_as(k))  # t-major indices
    assert len({tuple(row.tolist()) for row in grid[:, 0]}) == b


def test_random_mask_spreads_over_space_and_time():
    b, t, g = 32, 8, 16
    keep, mask = make_mask(b, t, g, RATIO, "random", torch.Generator().manual_seed(2))
    assert keep.shape == (b, 32) and mask.sum(1).tolist() == [t * g - 32] * b
    grid = mask.view(b, t, g)
    # not a tube: within a clip the visible positions change from time step to time step
    assert all(not torch.equal(clip, clip[:1].expand_as(clip)) for clip in grid)
    # different time steps keep different numbers of tokens, and every step / position is visible somewhere
    per_step = (~grid).sum(2)
    assert (per_step != per_step[:, :1]).any()
    assert (~grid).any(0).any(1).all() and (~grid).any(0).any(0).all()


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5])
@pytest.mark.parametrize("mask_type", ["tube", "random"])
def test_invalid_mask_ratio_raises(ratio, mask_type):
    with pytest.raises(ValueError, match="mask ratio"):
        make_mask(2, 4, 4, ratio, mask_type)


def test_unknown_mask_type_raises():
    with pytest.raises(ValueError, match="mask type"):
        make_mask(2, 4, 4, 0.5, "block")


def test_mask_is_deterministic_for_a_generator_and_leaves_the_global_rng_alone():
    a = make_mask(4, 8, 16, 0.9, "tube", torch.Generator().manual_seed(7))
    b = make_mask(4, 8, 16, 0.9, "tube", torch.Generator().manual_seed(7))
    c = make_mask(4, 8, 16, 0.9, "tube", torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    make_mask(4, 8, 16, 0.9, "random", torch.Generator().manual_seed(7))
    assert torch.equal(torch.rand(3), expected)


def test_num_kept_is_exact_when_the_kept_share_is_a_whole_number_of_tokens():
    assert num_kept(100, 0.9) == 10  # a 160 px crop: 10x10 patches
    assert num_kept(10, 0.8) == 2


# ---------------------------------------------------------------------------------------------
# the tiny model on synthetic clips


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
    assert pad.any() and not pad.all(1).any()  # one clip is shorter than the window: padded
    return b


def build(task, **overrides):
    torch.manual_seed(0)
    cfg = MaeVitConfig(preset="tiny", mask_ratio=RATIO, encoder_drop_path=0.0, **overrides)
    return MaeVitModel.build_model(cfg, task).eval()


@pytest.fixture(scope="module")
def model(task):
    return build(task)


@pytest.fixture(scope="module")
def random_model(task):
    return build(task, mask_type="random")


def patch_view(clip):
    """(B, C, T, 32, 32) -> (B, C, T, gh, PATCH, gw, PATCH)."""
    b, c, t, h, w = clip.shape
    return clip.reshape(b, c, t, h // PATCH, PATCH, w // PATCH, PATCH)


def assert_constant_per_patch_and_tubelet(mask_clip):
    v = patch_view(mask_clip)
    assert torch.equal(v, v[:, :, :, :, :1, :, :1].expand_as(v))  # constant within each 16x16 patch
    assert torch.equal(mask_clip, mask_clip[:, :1].expand_as(mask_clip))  # the same for every channel
    t = mask_clip.shape[2]
    for start in range(0, t - 1, TUBELET):
        assert torch.equal(mask_clip[:, :, start], mask_clip[:, :, start + 1])  # both frames of a tubelet


def test_reconstruct_mask_is_a_tube_of_whole_patches(model, batch):
    frames, pad = batch["net_input"]["source"], batch["net_input"]["padding_mask"]
    out = model.reconstruct(frames, pad)
    source = model.frames(frames, pad)  # normalised (B, C, T, H, W), as the model reads the clips
    m = out["mask"]
    assert m.shape == source.shape and set(m.unique().tolist()) == {0.0, 1.0}
    assert_constant_per_patch_and_tubelet(m)
    assert torch.equal(m, m[:, :, :1].expand_as(m))  # tube: every frame of a clip hides the same patches
    per_frame = patch_view(m)[:, 0, 0, :, 0, :, 0]  # (B, gh, gw)
    assert per_frame.sum((1, 2)).tolist() == [3.0] * len(source)  # 3 of the 4 patches hidden
    assert len({tuple(f.flatten().tolist()) for f in per_frame}) > 1  # clips get different masks
    hidden = m.bool()
    assert torch.all(out["masked"][hidden] == 0) and torch.equal(out["masked"][~hidden], source[~hidden])
    assert torch.equal(out["reconstruction"][~hidden], source[~hidden])
    assert not torch.allclose(out["reconstruction"][hidden], source[hidden])


def test_reconstruct_handles_a_clip_length_that_is_not_a_multiple_of_the_tubelet(model, batch):
    frames = batch["net_input"]["source"][:2, :15]
    out = model.reconstruct(frames)
    shape = model.frames(frames).shape
    assert shape[2] == 15 and out["mask"].shape == shape and out["reconstruction"].shape == shape
    assert_constant_per_patch_and_tubelet(out["mask"])


def test_random_masking_is_per_tubelet_not_a_tube(random_model, batch):
    m = random_model.reconstruct(batch["net_input"]["source"])["mask"]
    assert_constant_per_patch_and_tubelet(m)
    assert not torch.equal(m, m[:, :, :1].expand_as(m))
    assert m.mean().item() == pytest.approx(RATIO)


# ---------------------------------------------------------------------------------------------
# 3. the encoder sees visible tokens only


@pytest.mark.parametrize("which", ["model", "random_model"])
def test_encoder_blocks_see_only_the_visible_tokens(which, request, batch):
    m = request.getfixturevalue(which)
    seen = []
    handle = m.encoder.blocks[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape))
    try:
        with torch.no_grad():
            out = m(**batch["net_input"])
    finally:
        handle.remove()
    b, t, g = len(batch["id"]), 8, 4
    assert out["t"] == t and tuple(out["grid"]) == (2, 2)
    assert seen == [(b, t * 1, 128)]  # K = 8 visible tokens of 32
    assert out["pred"].shape == out["target"].shape == (b, t * g, TUBELET * PATCH * PATCH * 3)


def latent_of(model, source, pad):
    """The encoder's output for normalised clips (B, C, T, H, W)."""
    captured = []
    handle = model.encoder.norm.register_forward_hook(lambda mod, args, output: captured.append(output))
    try:
        with torch.no_grad():
            out = model.forward_normalised(source, pad)
    finally:
        handle.remove()
    assert len(captured) == 1
    return captured[0], out


def test_hidden_pixels_do_not_reach_the_encoder(model, batch):
    frames, pad = batch["net_input"]["source"], batch["net_input"]["padding_mask"]
    source = model.frames(frames, pad)
    latent, out = latent_of(model, source, pad)
    hidden = model.reconstruct(frames, pad)["mask"].bool()
    noise = torch.randn(source.shape, generator=torch.Generator().manual_seed(0))

    latent_h, out_h = latent_of(model, torch.where(hidden, source + noise, source), pad)
    assert torch.equal(out_h["mask"], out["mask"])  # eval: the same masks every call
    assert torch.allclose(latent_h, latent, atol=1e-5)

    latent_v, out_v = latent_of(model, torch.where(hidden, source, source + noise), pad)
    assert torch.equal(out_v["mask"], out["mask"])
    assert (latent_v - latent).abs().max() > 1e-2


def test_eval_masks_are_fixed_training_masks_are_drawn_anew(task, batch):
    m = build(task)
    src = batch["net_input"]["source"][:4, :4]
    with torch.no_grad():
        a, b = m(src)["mask"], m(src)["mask"]
        assert torch.equal(a, b)
        m.train()
        torch.manual_seed(0)
        draws = [m(src)["mask"] for _ in range(4)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])


# ---------------------------------------------------------------------------------------------
# 4. pixel patches


def test_patchify_unpatchify_round_trip_with_a_partial_tubelet():
    x = torch.randn(2, 3, 7, 32, 48)
    patches = patchify_pixels(x, TUBELET, PATCH)
    assert patches.shape == (2, 4 * 2 * 3, TUBELET * PATCH * PATCH * 3)
    back = unpatchify_pixels(patches, 4, (2, 3), TUBELET, PATCH)
    assert back.shape == (2, 3, 8, 32, 48)
    assert torch.equal(back[:, :, :7], x) and torch.all(back[:, :, 7] == 0)
    # token n = time_step * g + row * gw + col holds that tubelet's pixels
    s, i, j = 2, 1, 2
    block = x[1, :, 2 * s : 2 * s + 2, 16 * i : 16 * i + 16, 16 * j : 16 * j + 16]
    assert torch.equal(patches[1, s * 6 + i * 3 + j], block.permute(1, 2, 3, 0).reshape(-1))


def test_patch_order_matches_the_encoder_tokens(model):
    """Target n is the pixels of encoder token n: the tubelet conv as a matrix product over patches."""
    x = torch.randn(1, 3, 6, 32, 32)
    conv = model.encoder.patch_embed
    with torch.no_grad():
        tokens = conv(x).flatten(3).permute(0, 2, 3, 1).reshape(1, -1, conv.out_channels)
        w = conv.weight.permute(0, 2, 3, 4, 1).reshape(conv.out_channels, -1)  # (C_out, u*p*p*C)
        by_patches = patchify_pixels(x, TUBELET, PATCH) @ w.T + conv.bias
    assert torch.allclose(tokens, by_patches, atol=1e-4)


def test_normalise_patches_gives_zero_mean_unit_variance_per_patch():
    patches = torch.randn(2, 5, 96, generator=torch.Generator().manual_seed(0)) * 3 + torch.arange(10.0).view(2, 5, 1)
    normed, mean, std = normalise_patches(patches)
    assert torch.allclose(normed.mean(-1), torch.zeros(2, 5), atol=1e-5)
    assert torch.allclose(normed.var(-1, unbiased=True), torch.ones(2, 5), atol=1e-4)
    assert torch.allclose(normed * std + mean, patches, atol=1e-5)
    flat, _, _ = normalise_patches(torch.full((1, 1, 8), 0.7))
    assert torch.isfinite(flat).all() and flat.abs().max() < 1e-3  # a constant patch: ~0, no NaN


# ---------------------------------------------------------------------------------------------
# 5. the loss


class StubModel(torch.nn.Module):
    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward(self, **kwargs):
        return self.out


def test_criterion_sums_per_patch_mse_over_hidden_non_padding_patches(task):
    crit = MaeReconstructionCriterion(task)
    # per-patch MSE of token (b, n) is c[b, n]**2: pred 0, target constant c over the patch
    c = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    out = {
        "pred": torch.zeros(2, 3, 4),
        "target": c.unsqueeze(-1).expand(2, 3, 4),
        "mask": torch.tensor([[True, False, True], [True, True, False]]),
        "loss_mask": torch.tensor([[True, False, True], [False, True, False]]),
        "token_padding": torch.tensor([[False, False, False], [True, False, False]]),  # (1, 0) is padding
    }
    sample = {"net_input": {}, "ntokens": 10, "nsentences": 2}
    loss, sample_size, log = crit(StubModel(out), sample)
    assert loss.item() == pytest.approx(1 + 9 + 25)
    assert sample_size == 3 and log["sample_size"] == 3 and log["n_hidden"] == 3
    assert log["n_tokens"] == 5  # padding is not a token of the clip
    second = {"loss": torch.tensor(4.0), "n_hidden": 1, "n_tokens": 6, "sample_size": 1}
    stats = reduce([log, second])
    assert stats["loss"] == pytest.approx((35 + 4) / 4, abs=1e-4)
    assert stats["hidden_share"] == pytest.approx(4 / 11, abs=1e-3)


def test_padding_tokens_are_left_out_of_the_loss(model, task, batch):
    source, pad = batch["net_input"]["source"], batch["net_input"]["padding_mask"]
    with torch.no_grad():
        out = model(source, pad)
    b, t, g = len(source), out["t"], 4
    valid_frames = (~pad).sum(1)
    padded_steps = torch.arange(t).view(1, t) * TUBELET >= valid_frames.view(b, 1)  # (B, t): whole tubelets of padding
    assert padded_steps.any()
    token_padding = padded_steps.unsqueeze(2).expand(b, t, g).reshape(b, t * g)
    assert out["mask"][token_padding].any()  # padding tokens are hidden too...
    assert torch.equal(out["token_padding"], token_padding)
    assert torch.equal(out["loss_mask"], out["mask"] & ~token_padding)  # ...but never counted
    # pixels of whole padded tubelets do not change the loss
    crit = MaeReconstructionCriterion(task)
    with torch.no_grad():
        loss, n, _ = crit(model, batch)
    changed = source.clone()
    i = int(padded_steps.any(1).nonzero()[0])
    first = int(padded_steps[i].nonzero()[0]) * TUBELET
    changed[i, first:] = torch.randint_like(changed[i, first:], 0, 256)
    with torch.no_grad():
        loss2, n2, _ = crit(model, {**batch, "net_input": {"source": changed, "padding_mask": pad}})
    assert n2 == n and loss2.item() == pytest.approx(loss.item(), rel=1e-5)


def test_hidden_share_is_the_share_of_real_tokens_hidden(model, task, batch):
    with torch.no_grad():
        _, _, log = MaeReconstructionCriterion(task)(model, batch)
    # tube masking hides exactly 3 of the 4 patches of every real time step; the batch has padding
    assert log["n_tokens"] < batch["net_input"]["source"].shape[0] * 8 * 4
    assert reduce([log])["hidden_share"] == pytest.approx(RATIO, abs=1e-3)


# ---------------------------------------------------------------------------------------------
# 6. the unlabelled_video task


def strip_to_unlabelled(src_root: Path, dst: Path, keep=None):
    """A data root with manifests without tgt_text (absolute video paths) and config.yaml only."""
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "config.yaml").write_text((src_root / "config.yaml").read_text())
    for split, n in (keep or {"train": None, "val": None}).items():
        rows = read_manifest(src_root / f"{split}.tsv").rows[:n]
        write_manifest(
            dst / f"{split}.tsv",
            [{"id": r.id, "video": str((src_root / r.video).resolve()), "n_frames": r.n_frames, "fps": r.fps} for r in rows],
            columns=("id", "video", "n_frames", "fps"),
        )
    return dst


def test_unlabelled_task_needs_no_captions_and_no_vocabulary(synthetic_root, tmp_path):
    root = strip_to_unlabelled(synthetic_root, tmp_path / "unlabelled")
    assert "tgt_text" not in (root / "val.tsv").read_text()
    assert "sentencepiece_model" in (root / "config.yaml").read_text() and not (root / "spm.model").exists()
    task = load_unlabelled_task(root)
    assert task.source_dictionary is None and task.target_dictionary is None
    task.load_dataset("val")
    ds = task.datasets["val"]
    assert len(ds) == 6
    itr = task.get_batch_iterator(ds, max_tokens=64, max_sentences=4).next_epoch_itr(shuffle=False)
    ids = []
    for b in itr:
        assert "target" not in b and set(b["net_input"]) == {"source", "padding_mask", "window_starts"}
        src, pad = b["net_input"]["source"], b["net_input"]["padding_mask"]
        assert src.shape[:2] == (b["nsentences"], pad.shape[1]) and src.shape[2:] == (32, 32, 3)
        assert b["net_input"]["window_starts"].shape == (b["nsentences"], 1)  # an MAE sample is one window
        assert b["ntokens"] == int((~pad).sum()) <= 64
        ids += b["id"].tolist()
    assert sorted(ids) == list(range(6))


def test_unlabelled_task_ignores_captions_when_present(synthetic_root):
    task = load_unlabelled_task(synthetic_root)
    task.load_dataset("val")
    ds = task.datasets["val"]
    assert ds.targets is None and "target" not in ds.collater([ds[0], ds[1]])


def test_unlabelled_task_bad_row_names_file_and_line(synthetic_root, tmp_path):
    root = strip_to_unlabelled(synthetic_root, tmp_path / "unlabelled", keep={"val": 3})
    manifest = root / "val.tsv"
    lines = manifest.read_text().split("\n")
    f = lines[2].split("\t")
    f[2] = "many"  # n_frames of the second row, line 3
    lines[2] = "\t".join(f)
    manifest.write_text("\n".join(lines))
    task = load_unlabelled_task(root)
    with pytest.raises(ManifestError) as e:
        task.load_dataset("val")
    assert f"{manifest}, line 3" in str(e.value) and "n_frames" in str(e.value)


# ---------------------------------------------------------------------------------------------
# 7. scripts/make_video_manifest.py


def test_make_video_manifest_skips_broken_videos_and_copies_frame_settings(synthetic_root, tmp_path):
    videos = tmp_path / "clips"
    for i, name in enumerate(["a.mp4", "b.mp4", "sub/c.mp4", "sub/d.mkv"]):
        write_test_video(videos / name, n_frames=12 + i, size=(40, 40), seed=i)
    write_garbage(videos / "x.mp4")
    (videos / "notes.txt").write_text("not a video")
    out = tmp_path / "unlabelled"
    rc, text = run_script_captured(
        "make_video_manifest", "--videos", videos, "--out", out, "--like", synthetic_root, "--val-clips", 1, "--workers", 2
    )
    assert rc == 0, text
    assert "x.mp4" in text and "1 unusable video(s) skipped" in text and "train 3, val 1" in text
    train, val = read_manifest(out / "train.tsv", need_text=False), read_manifest(out / "val.tsv", need_text=False)
    assert len(train) == 3 and len(val) == 1
    rows = {r.id: r for r in train.rows + val.rows}
    assert set(rows) == {"a", "b", "sub/c", "sub/d"}
    assert rows["sub/c"].n_frames == 14 and rows["a"].fps == 25 and Path(rows["a"].video).is_absolute()
    header = (out / "train.tsv").read_text().split("\n")[0].split("\t")
    assert header == ["id", "video", "n_frames", "fps", "width", "height", "file_size"]
    assert rows["a"].width == 40 and rows["a"].file_size == (videos / "a.mp4").stat().st_size
    cfg, like = yaml.safe_load((out / "config.yaml").read_text()), yaml.safe_load((synthetic_root / "config.yaml").read_text())
    for key in ("num_frames", "crop_size", "sampling_rate", "resize_short_side", "target_fps", "mean", "std"):
        assert cfg[key] == like[key], key
    # the result is a data root unlabelled_video reads (videos opened and checked)
    task = load_unlabelled_task(out)
    task.load_dataset("train")
    item = task.datasets["train"][0]
    assert tuple(item["source"].shape[1:3]) == (32, 32)


def test_make_video_manifest_flags_override_like(synthetic_root, tmp_path):
    videos = tmp_path / "clips"
    write_test_video(videos / "a.mp4", n_frames=6)
    rc, text = run_script_captured(
        "make_video_manifest", "--videos", videos, "--out", tmp_path / "out", "--like", synthetic_root, "--num-frames", 8
    )
    assert rc == 0, text
    cfg = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert cfg["num_frames"] == 8 and cfg["crop_size"] == 32
    assert not (tmp_path / "out" / "val.tsv").exists()


def test_make_video_manifest_empty_folder_fails_naming_it(tmp_path):
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    rc, text = run_script_captured("make_video_manifest", "--videos", empty, "--out", tmp_path / "out")
    assert rc == 1 and str(empty) in text and "no video files" in text
    assert not (tmp_path / "out").exists()


def test_make_video_manifest_only_broken_videos_fails(tmp_path):
    videos = tmp_path / "clips"
    write_garbage(videos / "x.mp4")
    rc, text = run_script_captured("make_video_manifest", "--videos", videos, "--out", tmp_path / "out")
    assert rc == 1 and "none of the 1 videos is usable" in text


# ---------------------------------------------------------------------------------------------
# 8. a tiny pretraining run through fairseq-hydra-train


@pytest.fixture(scope="module")
def pretrained(synthetic_root, tmp_path_factory):
    """4 updates on a subset of synthetic_root (8 train clips, batches of 4; all 6 val clips), with
    captions and vocabulary files left out of the data root."""
    work = tmp_path_factory.mktemp("mae_pretrain")
    data = strip_to_unlabelled(synthetic_root, work / "data", keep={"train": 8, "val": None})
    log = hydra_train(
        "pretrain_mae_tiny", data, work / "ckpt", work,
        "optimization.max_update=4", "lr_scheduler.warmup_updates=2", "dataset.validate_interval=1",
        "checkpoint.save_interval_updates=0", "dataset.batch_size=4",
        "dataset.train_subset=train", "dataset.valid_subset=val",
    )
    return work, data, log


def test_pretraining_runs_and_logs_reconstruction_loss_and_hidden_share(pretrained):
    work, _, log = pretrained
    assert "num_updates 4" in log or "num_updates=4" in log
    valid = [line for line in log.splitlines() if "valid on 'val' subset" in line]
    assert len(valid) == 2
    for line in valid:
        loss = float(re.search(r"\| loss ([\d.]+)", line).group(1))
        share = float(re.search(r"\| hidden_share ([\d.]+)", line).group(1))
        assert math.isfinite(loss) and 0.1 < loss < 10  # per-patch normalised pixels: ~1 for predicting the mean
        assert share == pytest.approx(RATIO, abs=1e-3)  # tube masking: exactly 3 of 4 patches per real step
    train_shares = [float(s) for s in re.findall(r"hidden_share=([\d.]+)", log)]
    assert train_shares == pytest.approx([RATIO] * 4, abs=1e-3)


def test_pretraining_checkpoint_loads_with_weights_only_and_holds_encoder_and_decoder(pretrained, synthetic_root):
    from ssvp_plugin.models.pretrained_encoder import load_pretrained_vit
    from ssvp_plugin.models.video_encoder_config import build_video_vit, resolve_preset
    from ssvp_plugin.models.mae_vit import MAE_PRESETS

    work, data, log = pretrained
    path = work / "ckpt" / "checkpoint_last.pt"
    state = torch.load(path)  # torch>=2.6 default: weights_only=True
    assert state["cfg"]["model"]["_name"] == "mae_vit" and state["cfg"]["model"]["mask_ratio"] == RATIO
    keys = list(state["model"])
    assert all(k.startswith(("encoder.", "decoder.")) for k in keys)
    assert any(k.startswith("encoder.blocks.") for k in keys) and any(k.startswith("decoder.blocks.") for k in keys)
    # the encoder half is the very VideoViT fine-tuning builds
    cfg = resolve_preset(MaeVitConfig(preset="tiny"), MaeVitConfig, MAE_PRESETS)
    vit = build_video_vit(cfg, 16, 32)
    report = load_pretrained_vit(vit, path)
    assert not report.missing and not report.unexpected and not report.interpolated
    assert torch.equal(vit.patch_embed.weight, state["model"]["encoder.patch_embed.weight"])
    assert all(k.startswith("decoder.") for k in report.ignored) and report.ignored
