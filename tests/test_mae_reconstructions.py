"""scripts/render_mae_reconstructions.py and ssvp_slt/viz/mae_reconstructions.py: MAE reconstructions as a PNG."""

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import hydra_train, load_unlabelled_task, run_script_captured
from ssvp_slt.viz.mae_reconstructions import (
    BACKGROUND,
    CLIP_GAP,
    LABEL_WIDTH,
    MASK_GREY,
    SEP,
    GridLayout,
    clip_views,
    evenly_spaced,
    flat_patch_reconstruction,
    hidden_mse,
    mean_colour_baseline,
    render_grid,
    write_png,
)

MEAN, STD = [0.45, 0.40, 0.35], [0.225, 0.25, 0.2]


def expected_size(n_clips, n_frames, frame_h, frame_w, scale):
    """(height, width) written out independently of GridLayout."""
    height = SEP + n_clips * 3 * (frame_h * scale + SEP) + (n_clips - 1) * CLIP_GAP
    width = LABEL_WIDTH + SEP + n_frames * (frame_w * scale + SEP)
    return height, width


def cell(image, clip, row, col, frame_h, frame_w, scale):
    y, x = GridLayout(1, 1, frame_h, frame_w, scale).cell(clip, row, col)
    return image[y : y + frame_h * scale, x : x + frame_w * scale]


def upscale(frame, scale):
    return np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)


# --- library, on synthetic tensors ---------------------------------------------------------------


def synthetic_batch(seed=0):
    """Two RGB clips of 5 frames, 8x12 px in 4x4 patches; the second has 3 valid frames. The
    'reconstruction' is the input plus noise at hidden patches, which differ per frame."""
    g = torch.Generator().manual_seed(seed)
    b, t, h, w, p = 2, 5, 8, 12, 4
    frames = torch.randint(0, 256, (b, t, h, w, 3), generator=g, dtype=torch.uint8)
    source = (frames.permute(0, 4, 1, 2, 3).float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1, 1)
    padding = torch.zeros(b, t, dtype=torch.bool)
    padding[1, 3:] = True
    source[1, :, 3:] = 0.0
    patch_hidden = torch.rand(b, t, h // p, w // p, generator=g) < 0.6
    patch_hidden[0, 1] = True  # a frame with nothing visible: the baseline falls back to the clip mean
    hidden = patch_hidden.repeat_interleave(p, 2).repeat_interleave(p, 3)  # (B, T, H, W)
    mask = hidden.unsqueeze(1).expand(b, 3, t, h, w).float()
    noise = torch.randn(source.shape, generator=g)
    recon = {
        "masked": source.masked_fill(mask.bool(), 0.0),
        "reconstruction": torch.where(mask.bool(), source + 4 * noise, source),
        "mask": mask,
    }
    return frames, source, padding, hidden, recon


def test_clip_views_unnormalise_grey_the_hidden_pixels_and_measure_errors():
    frames, source, padding, hidden, recon = synthetic_batch()
    views = clip_views(recon, source, padding, MEAN, STD, ids=[7, 9])
    assert [v.id for v in views] == [7, 9]
    for i, v in enumerate(views):
        np.testing.assert_array_equal(v.input[v.valid], frames[i].numpy()[v.valid])  # exact round trip
        np.testing.assert_array_equal(v.hidden, hidden[i].numpy())
        assert (v.masked[v.hidden] == MASK_GREY).all()
        np.testing.assert_array_equal(v.masked[~v.hidden], v.input[~v.hidden])
        np.testing.assert_array_equal(v.reconstruction[~v.hidden], v.input[~v.hidden])
        assert (v.reconstruction[v.hidden & v.valid[:, None, None]] != v.input[v.hidden & v.valid[:, None, None]]).any()
    assert views[1].valid.tolist() == [True, True, True, False, False]

    # the model's error, by hand: clamped reconstruction vs input, hidden pixels of valid frames, [0, 1] units
    i = 1
    inp = frames[i].float() / 255
    rec = (recon["reconstruction"][i] * torch.tensor(STD).view(3, 1, 1, 1) + torch.tensor(MEAN).view(3, 1, 1, 1))
    rec = rec.clamp(0, 1).permute(1, 2, 3, 0)
    sel = hidden[i].clone()
    sel[3:] = False
    assert views[i].mse == pytest.approx(float(((rec - inp) ** 2)[sel].mean()), rel=1e-5)

    # the baseline: each frame's mean visible colour; a frame showing nothing gets the clip's visible mean
    inp0 = frames[0].float() / 255
    guess = mean_colour_baseline(inp0, hidden[0], torch.ones(5, dtype=torch.bool))
    visible = ~hidden[0]
    for f in range(5):
        expect = inp0[f][visible[f]].mean(0) if visible[f].any() else inp0[visible].mean(0)
        torch.testing.assert_close(guess[f][hidden[0][f]], expect.expand(int(hidden[0][f].sum()), 3))
    assert views[0].baseline_mse == pytest.approx(hidden_mse(guess, inp0, hidden[0], torch.ones(5, dtype=torch.bool)))
    assert 0 < views[0].baseline_mse < views[0].mse  # loud noise is worse than the mean colour
    assert np.isnan(hidden_mse(inp0, inp0, torch.zeros_like(hidden[0]), torch.ones(5, dtype=torch.bool)))


def test_flat_patch_reconstruction_fills_hidden_tubelets_with_their_mean():
    _, source, _, hidden, recon = synthetic_batch()
    flat = flat_patch_reconstruction(source, recon["mask"], tubelet=1, patch=4)
    assert flat.shape == source.shape
    m = recon["mask"].bool()
    torch.testing.assert_close(flat[~m], source[~m])
    # one hidden patch: flat at the mean of its pixels over all channels
    b, f = 0, 1  # frame 1 of clip 0 is all hidden
    patch = source[b, :, f, 4:8, 8:12]
    torch.testing.assert_close(flat[b, :, f, 4:8, 8:12], patch.mean().expand(3, 4, 4))
    # tubelets of 2 frames (5 frames: the last tubelet is zero-padded, as the model pads it)
    two = flat_patch_reconstruction(source, torch.ones_like(source), tubelet=2, patch=4)
    torch.testing.assert_close(two[0, :, 4, :4, :4], (source[0, :, 4, :4, :4].sum() / 96).expand(3, 4, 4))


def test_evenly_spaced_frames():
    assert evenly_spaced(16, 6) == [0, 3, 6, 9, 12, 15]
    assert evenly_spaced(11, 6) == [0, 2, 4, 6, 8, 10]
    assert evenly_spaced(3, 6) == [0, 1, 2]  # never a frame twice
    assert evenly_spaced(9, 1) == [4]
    assert evenly_spaced(0, 4) == []


def test_render_grid_lays_out_rows_frames_and_labels(tmp_path):
    frames, source, padding, hidden, recon = synthetic_batch()
    views = clip_views(recon, source, padding, MEAN, STD)
    scale, n_frames, fh, fw = 3, 4, 8, 12
    image = render_grid(views, n_frames, scale)
    assert image.shape == expected_size(2, n_frames, fh, fw, scale) + (3,) and image.dtype == np.uint8

    cols = {0: [0, 1, 3, 4], 1: [0, 1, 2]}  # evenly spaced over 5 valid frames, over 3 (padded ones skipped)
    for c, v in enumerate(views):
        for row, rgb in enumerate((v.input, v.masked, v.reconstruction)):
            for col, f in enumerate(cols[c]):
                np.testing.assert_array_equal(cell(image, c, row, col, fh, fw, scale), upscale(rgb[f], scale))
            for col in range(len(cols[c]), n_frames):  # not enough valid frames: empty cells
                assert (cell(image, c, row, col, fh, fw, scale) == BACKGROUND).all()
            # a label in the margin beside every row
            y, _ = GridLayout(2, n_frames, fh, fw, scale).cell(c, row, 0)
            assert (image[y : y + fh * scale, :LABEL_WIDTH] != BACKGROUND).any()
    # separators between cells are background
    y, x = GridLayout(2, n_frames, fh, fw, scale).cell(0, 0, 1)
    assert (image[:, x - SEP : x] == BACKGROUND).all()

    # written as BGR, read back as the same RGB
    out = write_png(tmp_path / "grid.png", image)
    back = cv2.imread(str(out), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(cv2.cvtColor(back, cv2.COLOR_BGR2RGB), image)


# --- the script, on a real (3-update) mae_vit checkpoint -----------------------------------------


@pytest.fixture(scope="module")
def mae_checkpoint(synthetic_root, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("mae_recon")
    hydra_train(
        "pretrain_mae_tiny", synthetic_root, work / "ckpt", work,
        "optimization.max_update=3", "lr_scheduler.warmup_updates=1", "dataset.validate_interval=1",
        "checkpoint.save_interval_updates=0",
    )
    ckpt = work / "ckpt" / "checkpoint_last.pt"
    assert ckpt.is_file()
    return ckpt


def test_script_renders_input_masked_and_reconstruction_rows(mae_checkpoint, synthetic_root, tmp_path):
    from fairseq import checkpoint_utils

    out = tmp_path / "recon.png"
    n_clips, n_frames, scale = 3, 5, 2
    rc, log = run_script_captured(
        "render_mae_reconstructions", "--checkpoint", mae_checkpoint, "--data", synthetic_root,
        "--clips", n_clips, "--frames", n_frames, "--scale", scale, "--out", out,
    )
    assert rc == 0, log
    assert str(out) in log
    image = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert image is not None
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    crop = 32  # tests/conftest.py's data settings
    assert image.shape == expected_size(n_clips, n_frames, crop, crop, scale) + (3,)
    assert image.shape == (2 + 3 * 3 * 66 + 2 * 6, 112 + 2 + 5 * 66, 3)  # 608 x 444

    # what the script saw, rebuilt here: val clips as evaluation decodes them, the model's own masks
    task = load_unlabelled_task(synthetic_root)
    task.load_dataset("val")
    ds = task.dataset("val")
    items = [ds[i] for i in range(n_clips)]
    batch = ds.collater(items)
    models, _, _ = checkpoint_utils.load_model_ensemble_and_task([str(mae_checkpoint)], arg_overrides={"data": str(synthetic_root)})
    model = models[0].eval()
    recon = model.reconstruct(batch["net_input"]["source"], batch["net_input"]["padding_mask"])
    mask = recon["mask"][:, 0].bool().numpy()  # (B, T, H, W)

    pattern = r"clip \S+: reconstruction ([\d.]+)\s+frame-mean baseline ([\d.]+)\s+patch-mean baseline ([\d.]+)"
    errors = [tuple(map(float, m)) for m in re.findall(pattern, log)]
    assert len(errors) == n_clips, log
    for c, item in enumerate(items):
        frames = item["source"].numpy()  # (T, H, W, C) uint8 RGB
        t = len(frames)
        hidden = mask[c, :t]
        # tube masking, 16 px patches on a 32 px crop, ratio 0.75: one visible patch, the same in every frame
        assert (hidden == hidden[:1]).all() and hidden[0].mean() == 0.75
        assert (hidden[0].reshape(2, 16, 2, 16) == hidden[0, ::16, ::16][:, None, :, None]).all()
        cols = [int(round(v)) for v in np.linspace(0, t - 1, n_frames)]
        for col, f in enumerate(cols):
            inp = cell(image, c, 0, col, crop, crop, scale)
            masked = cell(image, c, 1, col, crop, crop, scale)
            rec = cell(image, c, 2, col, crop, crop, scale)
            np.testing.assert_array_equal(inp, upscale(frames[f], scale))
            big_hidden = upscale(hidden[f], scale)
            assert (masked[big_hidden] == MASK_GREY).all()
            np.testing.assert_array_equal(masked[~big_hidden], inp[~big_hidden])
            np.testing.assert_array_equal(rec[~big_hidden], inp[~big_hidden])
        # the printed error, recomputed from the model's output
        rec01 = recon["reconstruction"][c, :, :t] * torch.tensor(ds.cfg.std).view(3, 1, 1, 1) + torch.tensor(ds.cfg.mean).view(3, 1, 1, 1)
        rec01 = rec01.clamp(0, 1).permute(1, 2, 3, 0).numpy()
        mse = float(((rec01 - frames / 255.0) ** 2)[hidden].mean())
        assert errors[c][0] == pytest.approx(mse, abs=1e-5)
        assert errors[c][1] > 0 and errors[c][2] > 0
    assert re.search(r"mean: reconstruction [\d.]+ .*\(reconstruction / patch-mean baseline: [\d.]+\)", log), log

    # the patch-mean baseline is what reconstruct() shows for a model predicting nothing (norm_pix_loss)
    assert model.cfg.norm_pix_loss
    with torch.no_grad():
        model.decoder.pred.weight.zero_()
        model.decoder.pred.bias.zero_()
    nothing = model.reconstruct(batch["net_input"]["source"], batch["net_input"]["padding_mask"])
    normalised = model.frames(batch["net_input"]["source"], batch["net_input"]["padding_mask"])
    flat = flat_patch_reconstruction(normalised, recon["mask"], model.cfg.tubelet_size, model.cfg.patch_size)
    torch.testing.assert_close(nothing["reconstruction"], flat, atol=1e-5, rtol=1e-5)

    # --seed 0 gave the validation masks (checked above); another seed gives other masks
    from ssvp_slt.viz.mae_reconstructions import use_mask_seed

    use_mask_seed(model, 1)
    other = model.reconstruct(batch["net_input"]["source"], batch["net_input"]["padding_mask"])["mask"]
    assert not torch.equal(other, recon["mask"]) and other.mean() == recon["mask"].mean()


def test_script_refuses_missing_files_and_other_checkpoints(mae_checkpoint, synthetic_root, tmp_path, capsys):
    def render(ckpt, data=synthetic_root):
        capsys.readouterr()
        rc, log = run_script_captured("render_mae_reconstructions", "--checkpoint", ckpt, "--data", data, "--out", tmp_path / "x.png")
        err = capsys.readouterr().err
        assert rc == 1 and "Traceback" not in err + log, err + log
        assert len(err.strip().splitlines()) == 1, err
        return err

    missing = tmp_path / "nope" / "checkpoint_last.pt"
    assert f"checkpoint not found: {missing}" in render(missing)
    assert f"data root not found: {tmp_path / 'no_data'}" in render(mae_checkpoint, tmp_path / "no_data")

    state = torch.load(mae_checkpoint, weights_only=False)
    state["cfg"]["model"]["_name"] = "mae_vit_slt"
    other = tmp_path / "slt.pt"
    torch.save(state, other)
    err = render(other)
    assert str(other) in err and "'mae_vit_slt' checkpoint" in err and "mae_vit" in err

    unrelated = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, unrelated)
    assert f"{unrelated}: not a fairseq checkpoint" in render(unrelated)

    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    assert f"{text}: not a fairseq checkpoint" in render(text)

    assert not (tmp_path / "x.png").exists()

    for out, message in ((tmp_path / "no_dir" / "x.png", "output folder not found"), (tmp_path / "x.txt", "not an image file name")):
        capsys.readouterr()
        rc, _ = run_script_captured("render_mae_reconstructions", "--checkpoint", mae_checkpoint, "--data", synthetic_root, "--out", out)
        assert rc == 1 and message in capsys.readouterr().err
