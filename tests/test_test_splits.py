"""Derived test splits for measurements: the swapped-input control and degraded videos, with the
feature store of another modality following each row."""

import numpy as np

from conftest import run_script_captured
from ssvp_slt.corpus.data_config import VideoDataConfig
from ssvp_slt.corpus.manifest import read_manifest
from ssvp_slt.corpus.video_io import decode_frames
from ssvp_slt.features.store import FeatureStore, SplitWriter, StoreInfo, open_store_for_writing


def write_store(root, ids, dim=5):
    """A feature store whose clip i holds the constant i (its source is recognisable after copying)."""
    info = open_store_for_writing(root, StoreInfo(dim=dim, dtype="float32", feature_rate=25.0, source={"kind": "test"}))
    with SplitWriter(root, "test", info, "p0", 100) as w:
        for i, clip_id in enumerate(ids):
            w.add(clip_id, np.full((3 + i, dim), float(i), dtype=np.float32))
    return {clip_id: float(i) for i, clip_id in enumerate(ids)}


def test_control_split_moves_each_rows_features_with_its_video(data_root, tmp_path):
    rows = read_manifest(data_root / "test.tsv").rows
    value_of = write_store(tmp_path / "store", [r.id for r in rows])
    rc, out = run_script_captured("make_control_split", "--data", data_root, "--split", "test", "--out-split", "test_swapped",
                                  "--features", tmp_path / "store", "--seed", 1)
    assert rc == 0, out
    control = read_manifest(data_root / "test_swapped.tsv").rows
    feats = FeatureStore(tmp_path / "store").split("test_swapped")
    for row in control:
        got = feats.read(feats.index_of(row.id))
        assert got[0, 0] != value_of[row.id]  # never its own features
        video_donor = next(r for r in rows if r.video == row.video)
        assert got[0, 0] == value_of[video_donor.id]  # the features of the clip whose video it now has


def test_degraded_split_blurs_or_drops_frames_and_keeps_the_other_modality(data_root, tmp_path):
    cfg = VideoDataConfig.load(data_root)
    rows = read_manifest(data_root / "test.tsv").rows
    write_store(tmp_path / "store", [r.id for r in rows])

    rc, out = run_script_captured("make_degraded_split", "--data", data_root, "--split", "test", "--out-split", "test_blurred",
                                  "--blur", 3.0, "--features", tmp_path / "store")
    assert rc == 0, out
    blurred = read_manifest(data_root / "test_blurred.tsv").rows
    assert [r.id for r in blurred] == [r.id for r in rows] and [r.tgt_text for r in blurred] == [r.tgt_text for r in rows]
    for a, b in zip(rows, blurred):
        assert b.n_frames == a.n_frames and b.video != a.video
        x, _ = decode_frames(cfg.resolve(a.video), range(a.n_frames))
        y, _ = decode_frames(cfg.resolve(b.video), range(b.n_frames))
        # blurring removes fine detail: far less energy in the frame-to-neighbour-pixel differences
        detail = lambda v: np.abs(np.diff(v.astype(np.float32), axis=2)).mean()  # noqa: E731
        assert detail(y) < 0.8 * detail(x)
    a, b = FeatureStore(tmp_path / "store").split("test"), FeatureStore(tmp_path / "store").split("test_blurred")
    for r in rows:
        np.testing.assert_array_equal(a.read(a.index_of(r.id)), b.read(b.index_of(r.id)))

    rc, out = run_script_captured("make_degraded_split", "--data", data_root, "--split", "test", "--out-split", "test_dropped",
                                  "--drop", 0.5, "--seed", 2)
    assert rc == 0, out
    dropped = read_manifest(data_root / "test_dropped.tsv").rows
    repeats = total = 0
    for a, b in zip(rows, dropped):
        assert b.n_frames == a.n_frames
        y, _ = decode_frames(cfg.resolve(b.video), range(b.n_frames))
        same = [np.abs(y[i].astype(int) - y[i - 1].astype(int)).mean() < 0.5 for i in range(1, len(y))]
        repeats, total = repeats + sum(same), total + len(same)
    assert 0.3 < repeats / total < 0.7  # about half the frames are the previous one again


def test_degraded_split_needs_a_degradation(data_root, capsys):
    rc, _ = run_script_captured("make_degraded_split", "--data", data_root, "--out-split", "test_x")
    assert rc == 2 and "give --blur SIGMA > 0 and/or --drop P" in capsys.readouterr().err
