"""Feature extraction (frozen encoder -> feature store) and the store's format: features equal a direct
forward, resume, shards, failures counted and skipped, and every bad store file named in its error."""

import re
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, run_script_captured
from ssvp_slt.corpus.data_config import VideoDataConfig
from ssvp_slt.corpus.manifest import read_manifest
from ssvp_slt.features.extract import in_shard, parse_shard
from ssvp_slt.features.store import (
    FeatureStore, FeatureStoreError, SplitWriter, StoreInfo, open_store_for_writing, read_store_info,
)

VIT = dict(encoder_embed_dim=32, encoder_layers=2, encoder_attention_heads=2, patch_size=16, tubelet_size=2)


def vit_settings():
    return Namespace(
        preset=None, encoder_mlp_ratio=4.0, encoder_dropout=0.0, encoder_drop_path=0.0, encoder_pos_embed="separable",
        encoder_cls_token=False, encoder_activation_checkpointing=False, **VIT,
    )


def make_vit(data_cfg, seed=0):
    from ssvp_plugin.models.video_encoder_config import build_video_vit

    torch.manual_seed(seed)
    return build_video_vit(vit_settings(), data_cfg.num_frames, data_cfg.crop_size).eval()


def write_encoder_file(path: Path, vit, data_cfg) -> Path:
    """A converted-encoder file (scripts/convert_video_mae_checkpoint.py's format) of a random tiny ViT."""
    from ssvp_plugin.models.pretrained_encoder import save_encoder_file

    geometry = dict(embed_dim=VIT["encoder_embed_dim"], depth=VIT["encoder_layers"], num_heads=VIT["encoder_attention_heads"],
                    mlp_ratio=4.0, patch_size=16, tubelet_size=2, img_size=data_cfg.crop_size,
                    num_frames=data_cfg.num_frames, pos_embed_type="separable", cls_token=False)
    return save_encoder_file(path, vit.state_dict(), geometry, source="test: random tiny ViT")


def write_fairseq_checkpoint(path: Path, vit, model_name: str) -> Path:
    """What fairseq saves for a mae_vit_slt / mae_vit model: the state under the model's prefix, cfg as plain dicts."""
    prefix = {"mae_vit_slt": "encoder.vit.", "mae_vit": "encoder."}[model_name]
    state = {prefix + k: v for k, v in vit.state_dict().items()}
    state["decoder.embed_tokens.weight"] = torch.zeros(3, 4)  # not encoder weights: ignored
    cfg = {"model": {"_name": model_name, "preset": "tiny", "encoder_mlp_ratio": 4.0, "encoder_pos_embed": "separable",
                     "encoder_cls_token": False, "encoder_drop_path": 0.1, **VIT}}
    torch.save({"model": state, "cfg": cfg}, path)
    return path


def extract(data, encoder, out, *extra):
    rc, log = run_script_captured(
        "extract_features", "--data", data, "--encoder", encoder, "--out", out, "--workers", 0, "--device", "cpu",
        "--no-progress", *extra,
    )
    return rc, log


def direct_features(vit, data_cfg, data_root, split):
    """Reference: each clip's windows (as evaluation plans them) through the ViT one by one, normalised by hand,
    spatially averaged, concatenated in time."""
    from ssvp_plugin.data.video_clip_dataset import VideoClipDataset

    rows = read_manifest(data_root / f"{split}.tsv").rows
    paths = [data_cfg.resolve(r.video) for r in rows]
    ds = VideoClipDataset(split, rows, paths, data_cfg, None, 1, 2, train=False, shuffle=False)
    mean = torch.tensor(data_cfg.mean).view(3, 1, 1, 1)
    std = torch.tensor(data_cfg.std).view(3, 1, 1, 1)
    out = {}
    with torch.no_grad():
        for i, row in enumerate(rows):
            item = ds[i]
            parts = []
            for s in item["starts"].tolist():
                window = item["source"][s : s + data_cfg.num_frames]  # (T, H, W, C) uint8
                x = (window.permute(3, 0, 1, 2).float() / 255 - mean) / std
                feats, _ = vit(x.unsqueeze(0))
                parts.append(feats[0].mean(1))
            out[row.id] = (torch.cat(parts).numpy(), len(item["starts"]))
    return out


@pytest.fixture(scope="module")
def encoder_setup(synthetic_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("extract")
    data_cfg = VideoDataConfig.load(synthetic_root)
    vit = make_vit(data_cfg)
    return work, data_cfg, vit, write_encoder_file(work / "encoder.pt", vit, data_cfg)


@pytest.fixture(scope="module")
def fp32_store(synthetic_root, encoder_setup):
    """Every split of the synthetic root, extracted in fp32 into a float32 store (3 clips per forward)."""
    work, _, _, encoder = encoder_setup
    rc, log = extract(synthetic_root, encoder, work / "store32", "--store-dtype", "float32", "--batch-size", 3)
    assert rc == 0, log
    return work / "store32", log


def test_features_equal_a_direct_forward_of_the_frozen_encoder(fp32_store, encoder_setup, synthetic_root):
    store_dir, log = fp32_store
    _, data_cfg, vit, encoder = encoder_setup
    store = FeatureStore(store_dir)
    assert store.splits() == ["test", "train", "val"]
    windows_seen = set()
    for split in ("val", "test", "train"):
        feats = store.split(split)
        reference = direct_features(vit, data_cfg, synthetic_root, split)
        assert sorted(feats.ids) == sorted(reference)
        for clip_id, (expected, n_windows) in reference.items():
            got = feats.read(feats.index_of(clip_id))
            windows_seen.add(n_windows)
            # one vector per tubelet step of every window (16 frames / tubelet 2 = 8 per full window)
            assert got.shape == expected.shape and got.shape[1] == 32
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert {1, 2, 3} <= windows_seen  # short clips (one window, padded in the batch) and clips of 2 and 3 windows
    assert "clips/s" in log and "0 failed" in log


def test_store_config_records_dim_rate_encoder_and_frame_settings(fp32_store, encoder_setup, synthetic_root):
    store_dir, _ = fp32_store
    _, data_cfg, _, encoder = encoder_setup
    info = read_store_info(store_dir)
    assert info.dim == 32 and info.dtype == "float32"
    assert info.feature_rate == pytest.approx(25 / (4 * 2))  # 25 fps, every 4th frame, 2 frames per tubelet
    enc = info.source["encoder"]
    assert enc["size"] == encoder.stat().st_size and len(enc["sha256"]) == 64 and enc["arch"] == "vit"
    assert info.source["provenance"]["encoder_path"] == str(encoder.resolve())
    facts = info.source["data_config"]
    assert facts["num_frames"] == 16 and facts["sampling_rate"] == 4 and facts["crop_size"] == 32
    assert facts["window_stride"] == 8 and facts["mean"] == data_cfg.mean and facts["std"] == data_cfg.std
    assert info.source["extraction"]["autocast"] == "fp32"


@pytest.mark.parametrize("model_name", ["mae_vit_slt", "mae_vit"])
def test_fairseq_checkpoints_give_the_same_features_as_the_encoder_file(model_name, fp32_store, encoder_setup, synthetic_root, tmp_path):
    store_dir, _ = fp32_store
    _, _, vit, _ = encoder_setup
    ckpt = write_fairseq_checkpoint(tmp_path / "ckpt.pt", vit, model_name)
    rc, log = extract(synthetic_root, ckpt, tmp_path / "store", "--store-dtype", "float32", "--splits", "val")
    assert rc == 0, log
    a, b = FeatureStore(store_dir).split("val"), FeatureStore(tmp_path / "store").split("val")
    assert sorted(a.ids) == sorted(b.ids)
    for clip_id in a.ids:
        np.testing.assert_array_equal(a.read(a.index_of(clip_id)), b.read(b.index_of(clip_id)))
    assert f"fairseq {model_name} checkpoint" in read_store_info(tmp_path / "store").source["encoder"]["kind"]


def test_float16_store_and_batch_size_do_not_change_the_features_beyond_fp16_rounding(fp32_store, encoder_setup, synthetic_root, tmp_path):
    store_dir, _ = fp32_store
    _, _, _, encoder = encoder_setup
    # one clip per forward, a DataLoader worker process decoding, chunks of ~1 kB
    rc, log = extract(synthetic_root, encoder, tmp_path / "store16", "--splits", "test", "--batch-size", 1, "--chunk-mb", 0.001,
                      "--workers", 1)
    assert rc == 0, log
    a, b = FeatureStore(store_dir).split("test"), FeatureStore(tmp_path / "store16").split("test")
    assert len(b.chunk_paths) > 1  # tiny chunks: the clips span several chunk files
    for clip_id in a.ids:
        x16 = b.read(b.index_of(clip_id))
        assert x16.dtype == np.float16
        np.testing.assert_allclose(x16.astype(np.float32), a.read(a.index_of(clip_id)), rtol=2e-3, atol=2e-3)


def test_bf16_autocast_stays_close_to_fp32(fp32_store, encoder_setup, synthetic_root, tmp_path):
    """The --dtype path (autocast; on CPU here, bf16 being what CPU autocast supports well)."""
    store_dir, _ = fp32_store
    _, _, _, encoder = encoder_setup
    rc, log = extract(synthetic_root, encoder, tmp_path / "bf16", "--splits", "val", "--dtype", "bf16")
    assert rc == 0, log
    assert read_store_info(tmp_path / "bf16").source["extraction"]["autocast"] == "bf16"
    a, b = FeatureStore(store_dir).split("val"), FeatureStore(tmp_path / "bf16").split("val")
    for clip_id in a.ids:
        x32, x16 = a.read(a.index_of(clip_id)), b.read(b.index_of(clip_id)).astype(np.float32)
        assert x16.shape == x32.shape
        assert np.abs(x16 - x32).max() < 0.1 * np.abs(x32).max()  # bf16 keeps ~3 significant digits per op


def test_resume_skips_the_clips_already_in_the_store(encoder_setup, synthetic_root, tmp_path):
    _, _, _, encoder = encoder_setup
    out = tmp_path / "store"
    ids = [r.id for r in read_manifest(synthetic_root / "train.tsv").rows]
    first = [i for i in ids if in_shard(i, (0, 2))]
    rc, log = extract(synthetic_root, encoder, out, "--splits", "train", "--shard", "0/2")  # an interrupted run, say
    assert rc == 0 and f"train: {len(first)} clip(s) extracted" in log
    rc, log = extract(synthetic_root, encoder, out, "--splits", "train")
    assert rc == 0 and f"train: {len(ids) - len(first)} clip(s) extracted" in log
    assert f"{len(first)} already in the store" in log
    rc, log = extract(synthetic_root, encoder, out, "--splits", "train")
    assert rc == 0 and "train: 0 clip(s) extracted" in log and f"{len(ids)} already in the store" in log
    feats = FeatureStore(out).split("train")
    assert sorted(feats.ids) == sorted(ids) and feats.duplicates == 0
    assert len(feats.index_files) == 2  # one part per run that wrote something


def test_shards_partition_every_split_into_disjoint_parts(encoder_setup, synthetic_root, tmp_path):
    _, _, _, encoder = encoder_setup
    out = tmp_path / "store"
    for k in range(3):
        rc, log = extract(synthetic_root, encoder, out, "--splits", "train", "val", "--shard", f"{k}/3")
        assert rc == 0, log
    store = FeatureStore(out)
    for split in ("train", "val"):
        feats = store.split(split)
        assert sorted(feats.ids) == sorted(r.id for r in read_manifest(synthetic_root / f"{split}.tsv").rows)
        assert feats.duplicates == 0
        per_part = [set(p.read_text().split("\n")[1:]) - {""} for p in feats.index_files]
        assert sum(len(p) for p in per_part) == len(feats)  # each clip in exactly one part
    # the partition itself: every id in exactly one of N shards, for any N
    ids = [f"clip{i}" for i in range(500)]
    for n in (1, 2, 7):
        counts = [sum(in_shard(i, (k, n)) for k in range(n)) for i in ids]
        assert counts == [1] * len(ids)
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "-1/2", "1", "a/b"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def _set_manifest_fields(tsv: Path, changes):
    """changes: {row number (0-based): {column: value}}."""
    lines = tsv.read_text().split("\n")
    header = lines[0].split("\t")
    for i, fields in changes.items():
        values = lines[1 + i].split("\t")
        for column, value in fields.items():
            values[header.index(column)] = str(value)
        lines[1 + i] = "\t".join(values)
    tsv.write_text("\n".join(lines))


def test_unusable_clips_are_counted_logged_and_skipped_never_a_crash(encoder_setup, data_root, tmp_path):
    _, _, _, encoder = encoder_setup
    rows = read_manifest(data_root / "val.tsv").rows
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    _set_manifest_fields(data_root / "val.tsv", {
        0: {"video": garbage, "file_size": garbage.stat().st_size},  # fails to decode
        1: {"video": tmp_path / "missing.mp4"},  # missing file
        2: {"n_frames": rows[2].n_frames * 3},  # the video ends long before its planned frames
    })
    out = tmp_path / "store"
    rc, log = extract(data_root, encoder, out, "--splits", "val")
    assert rc == 0, log
    assert "val: 3 clip(s) extracted" in log and "3 failed" in log
    assert str(garbage) in log and "missing.mp4" in log and "ended before its planned frames" in log
    feats = FeatureStore(out).split("val")
    assert sorted(feats.ids) == sorted(r.id for r in rows[3:])
    (failures,) = (out / "val").glob("failures-*.tsv")
    listed = [line.split("\t")[0] for line in failures.read_text().splitlines()[1:]]
    assert sorted(listed) == sorted(r.id for r in rows[:3])
    # a re-run retries the failed clips (still failing: counted again), --strict turns failures into exit status 1
    rc, log = extract(data_root, encoder, out, "--splits", "val", "--strict")
    assert rc == 1 and "3 already in the store" in log and "3 failed" in log
    # --keep-short extracts the short clip as training reads it (last frame repeated)
    rc, log = extract(data_root, encoder, out, "--splits", "val", "--keep-short")
    assert rc == 0 and "val: 1 clip(s) extracted" in log and "2 failed" in log


def test_a_store_made_otherwise_is_not_added_to(encoder_setup, synthetic_root, tmp_path, fp32_store):
    work, data_cfg, _, encoder = encoder_setup
    other = write_encoder_file(tmp_path / "other.pt", make_vit(data_cfg, seed=1), data_cfg)
    store_dir, _ = fp32_store
    copy = tmp_path / "store"
    shutil.copytree(store_dir, copy)
    rc, log = extract(synthetic_root, other, copy, "--store-dtype", "float32", "--splits", "val")
    assert rc == 2 and re.search(r"config.yaml: this store was made otherwise .*sha256: store has '[0-9a-f]+', this run", log)
    rc, log = extract(synthetic_root, encoder, copy, "--splits", "val")
    assert rc == 2 and "dtype: store has 'float32', this run 'float16'" in log
    # the same encoder copied elsewhere (another path and mtime, as on another node) is the same encoder
    moved = tmp_path / "moved.pt"
    moved.write_bytes(encoder.read_bytes())
    rc, log = extract(synthetic_root, moved, copy, "--store-dtype", "float32", "--splits", "val")
    assert rc == 0 and "6 already in the store" in log


def test_unreadable_encoder_files_are_named(synthetic_root, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    rc, log = extract(synthetic_root, bad, tmp_path / "store")
    assert rc == 2 and f"{bad}: not a readable PyTorch checkpoint" in log
    torch.save({"model": {"blocks.0.attn.qkv.weight": torch.zeros(1), "patch_embed.proj.weight": torch.zeros(1)}}, bad)
    rc, log = extract(synthetic_root, bad, tmp_path / "store")
    assert rc == 2 and re.search(r"bad.pt: .*no preset has these sizes", log), log
    assert not (tmp_path / "store").exists()  # nothing written before the encoder loaded


def test_signhiera_file_features_equal_the_packages_hiera(synthetic_root, tmp_path):
    """A SignHiera file in SSVP-SLT's layout (tiny preset): the stored sequence of each clip is, window by
    window, FAIR's Hiera's last stage averaged over space (a short window: the package's Hiera built for its
    real length, SignHiera's padding semantics; see tests/test_hiera_encoder.py)."""
    from test_hiera_encoder import reference_features, reference_hiera, save_ssvp_slt, short_reference

    from ssvp_plugin.data.video_clip_dataset import VideoClipDataset

    data_cfg = VideoDataConfig.load(synthetic_root)
    frames, crop = data_cfg.num_frames, data_cfg.crop_size
    ref = reference_hiera("signhiera_tiny", frames, crop)
    signhiera = save_ssvp_slt(tmp_path / "signhiera.pth", ref)
    rc, log = extract(synthetic_root, signhiera, tmp_path / "store", "--store-dtype", "float32", "--splits", "val", "test")
    assert rc == 0 and "0 failed" in log, log
    store = FeatureStore(tmp_path / "store")
    assert read_store_info(tmp_path / "store").source["encoder"]["arch"] == "hiera"
    mean = torch.tensor(data_cfg.mean).view(3, 1, 1, 1)
    std = torch.tensor(data_cfg.std).view(3, 1, 1, 1)
    compared = 0
    for split in ("val", "test"):
        rows = read_manifest(synthetic_root / f"{split}.tsv").rows
        ds = VideoClipDataset(split, rows, [data_cfg.resolve(r.video) for r in rows], data_cfg, None, 1, 2, train=False, shuffle=False)
        feats = store.split(split)
        for i, row in enumerate(rows):
            item = ds[i]
            parts, odd = [], False
            for start in item["starts"].tolist():
                window = item["source"][start : start + frames]
                x = ((window.permute(3, 0, 1, 2).float() / 255 - mean) / std).unsqueeze(0)
                odd |= window.shape[0] % 2 == 1  # a half-padded last unit: padded with the mean colour here, not
                n = window.shape[0] - window.shape[0] % 2  # SSVP-SLT's repeated frame (docs/signhiera.md): not compared
                model = ref if n == frames else short_reference(ref, "signhiera_tiny", n, crop)
                parts.append(reference_features(model, x[:, :, :n])[0])
            expected = torch.cat(parts).numpy()
            got = feats.read(feats.index_of(row.id))
            if not odd:
                assert got.shape == expected.shape and got.shape[1] == ref.blocks[-1].dim_out
                np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
                compared += 1
    assert compared >= 6


# -- the store format on its own --


def write_store(root: Path, split: str, clips, dim=4, chunk_rows=5, dtype="float16", part="p0") -> StoreInfo:
    info = open_store_for_writing(root, StoreInfo(dim=dim, dtype=dtype, feature_rate=24.0, source={"kind": "test"}))
    with SplitWriter(root, split, info, part, chunk_rows) as w:
        for clip_id, x in clips.items():
            w.add(clip_id, x)
    return info


@pytest.fixture
def small_store(tmp_path):
    rng = np.random.default_rng(0)
    clips = {f"c{i}": rng.normal(size=(n, 4)).astype(np.float32) for i, n in enumerate([3, 7, 2, 6, 1])}
    write_store(tmp_path / "s", "train", clips)
    return tmp_path / "s", clips


def test_store_round_trip_across_chunks(small_store):
    root, clips = small_store
    feats = FeatureStore(root).split("train")
    assert feats.ids == list(clips) and feats.lengths.tolist() == [3, 7, 2, 6, 1]
    assert len(feats.chunk_paths) == 3  # chunks of >= 5 rows: [3+7], [2+6], [1]
    for i, x in enumerate(clips.values()):
        np.testing.assert_array_equal(feats.read(i), x.astype(np.float16))
    import pickle

    clone = pickle.loads(pickle.dumps(feats))  # what a DataLoader worker gets: the index, not open maps
    np.testing.assert_array_equal(clone.read(1), feats.read(1))


def _index(root) -> Path:
    (path,) = (Path(root) / "train").glob("index-*.tsv")
    return path


def test_missing_chunk_names_the_file_and_the_index_row(small_store):
    root, _ = small_store
    chunk = sorted((root / "train").glob("*.npy"))[1]
    chunk.unlink()
    with pytest.raises(FeatureStoreError, match=rf"{chunk.name}: chunk file not found, named by .*index-p0.tsv, line 4"):
        FeatureStore(root).split("train")


def test_truncated_chunk_names_the_file(small_store):
    root, _ = small_store
    chunk = sorted((root / "train").glob("*.npy"))[0]
    chunk.write_bytes(chunk.read_bytes()[:-10])
    with pytest.raises(FeatureStoreError, match=rf"{chunk.name}: truncated"):
        FeatureStore(root).split("train")


def test_index_row_outside_its_chunk_names_the_index_file_and_line(small_store):
    root, _ = small_store
    index = _index(root)
    lines = index.read_text().split("\n")
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\t8"  # c1: 7 rows at offset 3 of a 10-row chunk -> 8 rows
    index.write_text("\n".join(lines))
    with pytest.raises(FeatureStoreError, match=r"index-p0.tsv, line 3: rows 3..10 are outside .*-00000.npy \(10 rows\)"):
        FeatureStore(root).split("train")
    lines[2] = "c1\tonly three fields\t0"
    index.write_text("\n".join(lines))
    with pytest.raises(FeatureStoreError, match=r"index-p0.tsv, line 3: expected 4 tab-separated fields"):
        FeatureStore(root).split("train")


def test_an_index_line_being_appended_is_ignored(small_store):
    """Another shard appending to its index while this run reads the store: its unfinished last line is not a clip yet."""
    root, clips = small_store
    index = _index(root)
    with open(index, "a") as f:
        f.write("c9\ts0-00000.np")
    feats = FeatureStore(root).split("train")
    assert feats.ids == list(clips)


def test_chunk_of_another_dimension_or_dtype_is_refused(small_store):
    root, _ = small_store
    chunk = sorted((root / "train").glob("*.npy"))[2]
    np.save(chunk, np.zeros((1, 5), dtype=np.float16))
    with pytest.raises(FeatureStoreError, match=rf"{chunk.name}: array of shape \(1, 5\); the store .* holds \(rows, 4\)"):
        FeatureStore(root).split("train")
    np.save(chunk, np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(FeatureStoreError, match=rf"{chunk.name}: float32 data; the store .* holds float16"):
        FeatureStore(root).split("train")


def test_writer_refuses_what_the_store_cannot_hold(tmp_path):
    info = open_store_for_writing(tmp_path, StoreInfo(dim=4, dtype="float16", source={"kind": "test"}))
    with SplitWriter(tmp_path, "train", info, "p", 100) as w:
        with pytest.raises(FeatureStoreError, match="overflow it; extract with --store-dtype float32"):
            w.add("big", np.full((2, 4), 1e6))
        with pytest.raises(FeatureStoreError, match=r"shape \(2, 3\)"):
            w.add("narrow", np.zeros((2, 3)))
        with pytest.raises(FeatureStoreError, match="no time steps"):
            w.add("empty", np.zeros((0, 4)))
        w.add("ok", np.ones((2, 4)))
    assert FeatureStore(tmp_path).split("train").ids == ["ok"]
    with pytest.raises(FeatureStoreError, match=r"dim: store has 4, this run 8"):
        open_store_for_writing(tmp_path, StoreInfo(dim=8, dtype="float16", source={"kind": "test"}))


def test_duplicate_ids_keep_the_first_row_and_are_counted(tmp_path):
    write_store(tmp_path, "train", {"a": np.zeros((2, 4)), "b": np.ones((3, 4))}, part="p0")
    write_store(tmp_path, "train", {"b": np.full((5, 4), 2.0)}, part="p1")
    feats = FeatureStore(tmp_path).split("train")
    assert feats.ids == ["a", "b"] and feats.duplicates == 1 and feats.lengths.tolist() == [2, 3]


def test_missing_split_or_config_is_named(small_store, tmp_path):
    root, _ = small_store
    with pytest.raises(FeatureStoreError, match="no split 'val'.*splits: \\['train'\\]"):
        FeatureStore(root).split("val")
    with pytest.raises(FeatureStoreError, match="feature store config not found"):
        FeatureStore(tmp_path / "nowhere")


def test_the_store_module_imports_neither_torch_nor_fairseq():
    code = "import sys, ssvp_slt.features.store; print(sorted(m for m in ('torch', 'fairseq') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_benchmark_script_builds_and_loads_a_store(tmp_path):
    rc, out = run_script_captured("benchmark_feature_store", "--clips", 300, "--dim", 8, "--work", tmp_path, "--repeats", 1)
    assert rc == 0, out
    assert "300 clips" in out and "load (index + chunk headers)" in out
