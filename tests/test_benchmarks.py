"""Smoke tests of the benchmark scripts at their smallest settings: each runs and prints its figures and
its ratio line. No timing is asserted (these machines are shared and noisy)."""

import re

from conftest import run_script_captured

NUMBER = r"[0-9]+(\.[0-9]+)?"


def run(name, *argv) -> str:
    rc, out = run_script_captured(name, *argv)
    assert rc == 0, out[-3000:]
    return out


def test_benchmark_load_times_each_video_check_and_extrapolates_probing(tmp_path):
    out = run("benchmark_load", "--rows", 40, "--probe-rows", 10, "--clips", 2, "--clip-size", "64x64",
              "--repeats", 1, "--work", tmp_path)
    for label in ("files (default: stat + size)", "none ", "probe (measured on a subset)", "probe, EXTRAPOLATED x4.0"):
        assert label in out
    assert re.search(rf"ratio probe/files: {NUMBER}x on 40 rows \(probe extrapolated\), {NUMBER}x measured on 10 rows", out)
    assert "encode captions (batched spm + dict lookup)" in out and "VideoClipDataset.__init__" in out


def test_benchmark_collate_prints_before_after_per_clip(tmp_path):
    out = run("benchmark_collate", "--frames", 4, "--crop", 16, "--batch", 2, "--batches", 1, "--workers", 1,
              "--repeats", 1)
    for label in ("(a) collate, 1 thread", "(b) DataLoader, 1 worker(s)", "(c) frame bytes", "(d) FrameNormalizer"):
        assert re.search(re.escape(label) + r".*\d", out), label
    assert re.search(rf"\(c\) frame bytes \(MB\)\s+{NUMBER}\s+{NUMBER}\s+4\.00x", out)  # float32 vs uint8
    assert re.search(rf"per clip, loader-side collate: before {NUMBER} ms, after {NUMBER} ms, ratio before/after {NUMBER}x", out)


def test_benchmark_data_at_real_settings(tmp_path):
    out = run("benchmark_data", "--real", "--clips", 1, "--clip-size", "64x64", "--batch", 1, "--repeats", 1,
              "--work", tmp_path)
    assert "128 frames per window at rate 2, 25 fps, short side 256, crop 224" in out
    assert "2 encoder windows" in out  # the rendered clips are longer than one 10.24 s window
    for label in ("plain PyAV (to_ndarray)", "dataset __getitem__", "dataset + collater (batch 1)"):
        assert re.search(re.escape(label) + rf"\s+{NUMBER}\s+{NUMBER}", out), label
    assert re.search(rf"ratio dataset / plain PyAV: {NUMBER}x", out)


def test_benchmark_data_on_a_prepared_root(synthetic_root):
    out = run("benchmark_data", "--data", synthetic_root, "--clips", 2, "--batch", 2, "--repeats", 1)
    assert re.search(rf"ratio dataset / plain PyAV: {NUMBER}x", out)


def test_benchmark_train_reports_steps_videomae_ratio_and_memory_extrapolation():
    out = run("benchmark_train", "--preset", "tiny", "--frames", 2, "--crop", 16, "--batch-sizes", 1, 2, "--steps", 1,
              "--what", "train,videomae,memory", "--memory-presets", "tiny", "--memory-frames", 2, 4, "--threads", 1)
    assert "device: CPU" in out and "NOT GPU figures" in out
    assert re.search(rf"\[train\] mae_vit_slt preset tiny: {NUMBER}M parameters", out)
    assert len(re.findall(rf"False\s+[12]\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}", out)) == 2  # one row per batch size
    assert re.search(rf"ratio VideoMAE / ours: {NUMBER}x", out)
    assert out.count("EXTRAPOLATED bf16") == 2  # with and without activation checkpointing
