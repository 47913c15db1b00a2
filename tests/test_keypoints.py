"""Keypoints (OpenPose's 137-point layout) as sign_features input: reading OpenPose JSON folders and .pose files,
normalisation, masking, augmentation, and the preparation report. Fast: no fairseq process is started here
(the end-to-end run is tests/test_keypoints_end_to_end.py)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_script_captured
from ssvp_slt.corpus.manifest import read_manifest
from ssvp_slt.features.store import FeatureStore
from ssvp_slt.keypoints import (
    AugmentConfig,
    KeypointConfig,
    KeypointError,
    KeypointTransform,
    load_keypoints,
    read_openpose_folder,
    read_pose_file,
    write_pose_file,
)
from ssvp_slt.keypoints.layout import COMPONENTS

BODY, FACE, LEFT, RIGHT = (name for name, _ in COMPONENTS)
SIZES = dict(COMPONENTS)
R_SHOULDER, L_SHOULDER, NECK, NOSE = 2, 5, 1, 0
RIGHT_HAND_BASE = 25 + 70 + 21  # first right-hand point in the 137-point layout


# -- writing OpenPose output as OpenPose writes it --


def person(rng=None, **parts):
    """One OpenPose person entry: every component a flat [x, y, c, ...] list; random plausible points unless given
    (as an (n, 3) array, or None for an absent component)."""
    rng = rng or np.random.default_rng(0)
    out = {}
    for name, n in COMPONENTS:
        if name in parts:
            if parts[name] is not None:
                out[name] = np.asarray(parts[name], dtype=float).ravel().tolist()
            continue
        pts = np.c_[rng.uniform(400, 880, n), rng.uniform(150, 650, n), rng.uniform(0.3, 0.95, n)]
        if name == BODY:  # shoulders that make a sensible anchor
            pts[R_SHOULDER] = [rng.uniform(560, 580), rng.uniform(300, 310), 0.9]
            pts[L_SHOULDER] = [rng.uniform(700, 720), rng.uniform(300, 310), 0.9]
        out[name] = pts.ravel().tolist()
    return out


def write_frame(folder: Path, frame: int, people, text=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{folder.name}_{frame:012d}_keypoints.json"
    path.write_text(text if text is not None else json.dumps({"version": 1.3, "people": people}))  # NaN as JSON NaN
    return path


def write_clip(folder: Path, n_frames: int, seed=0, skip=(), no_person=()) -> Path:
    rng = np.random.default_rng(seed)
    for t in range(n_frames):
        if t in skip:
            continue
        write_frame(folder, t, [] if t in no_person else [person(rng)])
    return folder


def body_with(**points):
    """A BODY_25 array, all undetected (0, 0, 0) but the given {index: (x, y, c)}."""
    body = np.zeros((25, 3))
    for k, v in points.items():
        body[int(k.lstrip("p"))] = v
    return body


def zeros(name):
    return np.zeros((SIZES[name], 3))


# -- reading --


def test_reads_all_four_parts_of_real_layout_openpose_json(tmp_path):
    folder = tmp_path / "json" / "-fZc293MpJk_0-1-rgb_front"
    rng = np.random.default_rng(1)
    parts = [{name: np.c_[rng.uniform(0, 1280, n), rng.uniform(0, 720, n), rng.uniform(0.1, 1, n)] for name, n in COMPONENTS}
             for _ in range(3)]
    for t, p in enumerate(parts):
        write_frame(folder, t, [person(**p)])
    (folder / "notes.txt").write_text("not a frame")
    clip = read_openpose_folder(folder)
    assert clip.keypoints.shape == (3, 137, 3) and clip.keypoints.dtype == np.float32
    for t, p in enumerate(parts):
        np.testing.assert_allclose(clip.keypoints[t, 0:25], p[BODY], rtol=1e-6)
        np.testing.assert_allclose(clip.keypoints[t, 25:95], p[FACE], rtol=1e-6)
        np.testing.assert_allclose(clip.keypoints[t, 95:116], p[LEFT], rtol=1e-6)
        np.testing.assert_allclose(clip.keypoints[t, 116:137], p[RIGHT], rtol=1e-6)
    assert clip.issues.ignored_files == ["notes.txt"] and clip.issues.frame_files == 3
    assert clip.fps is None and clip.frame_size is None  # OpenPose's JSON holds neither


def test_missing_people_gaps_and_garbage_are_masked_and_counted_per_file(tmp_path):
    folder = tmp_path / "clip"
    rng = np.random.default_rng(2)
    good = [person(rng) for _ in range(9)]
    write_frame(folder, 0, [good[0]])
    write_frame(folder, 1, [])  # nobody detected
    # frames 2 and 3: gap in the numbering
    nan_body = np.asarray(good[4][BODY]).reshape(25, 3)
    nan_body[7, 0] = float("nan")
    write_frame(folder, 4, [{**good[4], BODY: nan_body.ravel().tolist()}])
    write_frame(folder, 5, [{**good[5], LEFT: good[5][LEFT][:-3]}])  # a hand of 20 points: garbage
    write_frame(folder, 6, None, text="{broken json")
    write_frame(folder, 7, [good[7], good[8]])  # two people: people[0]
    far = np.asarray(good[8][RIGHT]).reshape(21, 3)
    far[3, :2] = 1e9
    far[4, 2] = -0.5
    write_frame(folder, 8, [{**good[8], RIGHT: far.ravel().tolist(), FACE: []}])
    clip = read_openpose_folder(folder)
    kp, issues = clip.keypoints, clip.issues
    assert kp.shape == (9, 137, 3)
    assert issues.no_person == [1] and issues.missing_frames == [2, 3] and issues.multiple_people == [7]
    assert [f for f, _ in issues.unreadable] == ["clip_000000000006_keypoints.json"]
    assert issues.bad_points == {"NaN or inf": 1, "wrong length": 21, "far outside the frame": 1, "negative confidence": 1}
    assert issues.bad_point_frames == [4, 5, 8]
    assert issues.absent_components == {FACE: 1}
    assert any("clip_000000000004_keypoints.json" in e and "NaN" in e for e in issues.bad_examples)
    for t in (1, 2, 3, 6):
        assert not kp[t].any()  # all masked: (0, 0, 0)
    assert not kp[4, 7].any() and kp[4, 6].any()  # the NaN point alone
    np.testing.assert_allclose(kp[4, :7], nan_body[:7], rtol=1e-6)
    assert not kp[5, 95:116].any() and kp[5, 116:].any()  # the short hand alone
    np.testing.assert_allclose(kp[7, :25], np.asarray(good[7][BODY]).reshape(25, 3), rtol=1e-6)  # people[0]
    assert not kp[8, 116 + 3].any() and not kp[8, 116 + 4].any() and kp[8, 116 + 5].any()
    assert not kp[8, 25:95].any()  # absent face: masked


def test_unusable_folders_are_errors_naming_them(tmp_path):
    with pytest.raises(KeypointError, match=r"nowhere: keypoint folder not found"):
        read_openpose_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(KeypointError, match=r"empty: no OpenPose frame files .*readme.md"):
        read_openpose_folder(tmp_path / "empty")
    write_frame(tmp_path / "broken", 0, [person()])
    write_frame(tmp_path / "broken", 10**9, [person()])
    with pytest.raises(KeypointError, match=r"broken: frame numbers up to 1000000000 for only 2 files"):
        read_openpose_folder(tmp_path / "broken")


# -- normalisation (expected values computed by hand from the definition) --


def two_frame_clip(tmp_path, left_hand_conf=0.0):
    """Frame 0: shoulders (600, 300) and (700, 300), nose (650, 200). Frame 1: shoulders (610, 310) and (730, 310),
    right-hand base (770, 415). Everything else undetected (0, 0, 0); frame 1's left hand at (5, 5) with confidence
    ``left_hand_conf``."""
    folder = tmp_path / "known"
    f0 = person(**{BODY: body_with(p2=(600, 300, 0.9), p5=(700, 300, 0.8), p0=(650, 200, 0.7)), FACE: zeros(FACE),
                   LEFT: zeros(LEFT), RIGHT: zeros(RIGHT)})
    right = zeros(RIGHT)
    right[0] = (770, 415, 0.6)
    left = zeros(LEFT)
    left[:] = (5, 5, left_hand_conf)
    f1 = person(**{BODY: body_with(p2=(610, 310, 0.9), p5=(730, 310, 0.9)), FACE: zeros(FACE), LEFT: left, RIGHT: right})
    write_frame(folder, 0, [f0])
    write_frame(folder, 1, [f1])
    return read_openpose_folder(folder).keypoints.reshape(2, 411)


def point(x, p, t):
    return x[t, 3 * p: 3 * p + 3]


def test_normalisation_centres_on_the_shoulders_and_scales_by_their_width(tmp_path):
    raw = two_frame_clip(tmp_path)
    x = KeypointTransform(KeypointConfig())(raw)  # anchor: clip
    assert x.shape == (2, 411) and x.dtype == np.float32
    # clip anchor: mean shoulder midpoint ((650, 300) and (670, 310)) = (660, 305); mean width (100, 120) = 110
    np.testing.assert_allclose(point(x, NOSE, 0), [(650 - 660) / 110, (200 - 305) / 110, 1], atol=1e-6)
    np.testing.assert_allclose(point(x, RIGHT_HAND_BASE, 1), [1.0, 1.0, 1], atol=1e-6)
    np.testing.assert_allclose(point(x, R_SHOULDER, 0), [-60 / 110, -5 / 110, 1], atol=1e-6)
    # frame anchor: frame 1's own midpoint (670, 310), the clip's scale 110
    y = KeypointTransform(KeypointConfig(anchor="frame"))(raw)
    np.testing.assert_allclose(point(y, RIGHT_HAND_BASE, 1), [100 / 110, 105 / 110, 1], atol=1e-6)
    np.testing.assert_allclose(point(y, NOSE, 0), [0.0, -100 / 110, 1], atol=1e-6)
    # confidence as the third channel instead of the visibility flag
    z = KeypointTransform(KeypointConfig(channels="xyc"))(raw)
    np.testing.assert_allclose(point(z, RIGHT_HAND_BASE, 1), [1.0, 1.0, 0.6], atol=1e-6)


def test_zero_confidence_points_are_masked_not_read_as_the_frame_corner(tmp_path):
    raw = two_frame_clip(tmp_path, left_hand_conf=0.0)
    x = KeypointTransform(KeypointConfig())(raw)
    # undetected (0, 0, 0) points, and the left hand at (5, 5) with confidence 0: 0, 0 and visibility 0, not the
    # corner's normalised position (-660/110, -305/110)
    for p in [NECK, 25, 95, 100, 136]:
        np.testing.assert_array_equal(point(x, p, 1), [0, 0, 0])
    # a threshold masks low confidences too
    raw2 = two_frame_clip(tmp_path / "b", left_hand_conf=0.2)
    assert point(KeypointTransform(KeypointConfig())(raw2), 95, 1)[2] == 1
    np.testing.assert_array_equal(point(KeypointTransform(KeypointConfig(min_confidence=0.3))(raw2), 95, 1), [0, 0, 0])


def test_fallback_anchor_without_shoulders_and_dropping_face_and_legs(tmp_path):
    folder = tmp_path / "noshoulders"
    body = body_with(p1=(640, 360, 0.9), p4=(928, 360, 0.8), p10=(600, 700, 0.5))
    write_frame(folder, 0, [person(**{BODY: body, FACE: zeros(FACE), LEFT: zeros(LEFT), RIGHT: zeros(RIGHT)})])
    raw = read_openpose_folder(folder).keypoints.reshape(1, 411)
    x = KeypointTransform(KeypointConfig())(raw)
    # centred on the neck, scale fallback_scale (0.4) x frame height 720 = 288
    np.testing.assert_allclose(point(x, 4, 0), [288 / 288, 0, 1], atol=1e-6)
    no_face = KeypointTransform(KeypointConfig(drop_face=True))
    no_legs = KeypointTransform(KeypointConfig(drop_legs=True))
    both = KeypointTransform(KeypointConfig(drop_face=True, drop_legs=True))
    assert (no_face.output_dim, no_legs.output_dim, both.output_dim) == (67 * 3, 127 * 3, 57 * 3)
    full = KeypointTransform(KeypointConfig())(raw)
    # right-hand points follow the body directly without the face: 116 - 70 = 46; the knee (10) is gone without legs
    np.testing.assert_array_equal(no_face(raw)[:, 3 * 46:], full[:, 3 * RIGHT_HAND_BASE:])
    np.testing.assert_array_equal(no_legs(raw)[:, :30], full[:, :30])
    np.testing.assert_array_equal(no_legs(raw)[:, 30:33], full[:, 36:39])  # after RHip (9): LHip (12); knee and ankle gone


def test_clip_anchor_equals_pose_formats_normalize(tmp_path):
    from pose_format.utils.openpose import load_openpose_directory

    folder = write_clip(tmp_path / "clip", 6, seed=4)
    ours = KeypointTransform(KeypointConfig(channels="xyv"))(read_openpose_folder(folder).keypoints.reshape(6, 411))
    pose = load_openpose_directory(str(folder), fps=24, width=1280, height=720).normalize()
    theirs = np.asarray(pose.body.data.data[:, 0])  # (T, 137, 2)
    visible = pose.body.confidence[:, 0] > 0
    ours = ours.reshape(6, 137, 3)
    np.testing.assert_array_equal(ours[..., 2] == 1, visible)
    np.testing.assert_allclose(ours[..., :2][visible], theirs[visible], atol=1e-4)


# -- augmentation --


def test_augmentation_is_training_only_deterministic_and_keeps_masks(tmp_path):
    folder = write_clip(tmp_path / "clip", 20, seed=5, no_person=(3,))
    raw = read_openpose_folder(folder).keypoints.reshape(20, 411)
    t = KeypointTransform(KeypointConfig())  # default augmentation
    plain = t(raw)
    np.testing.assert_array_equal(plain, t(raw))  # evaluation: no randomness
    a = t(raw, rng=np.random.default_rng([1, 1, 7]))
    np.testing.assert_array_equal(a, t(raw, rng=np.random.default_rng([1, 1, 7])))  # same (seed, epoch, index)
    b = t(raw, rng=np.random.default_rng([1, 2, 7]))
    assert a.shape[1] == b.shape[1] == 411 and not (a.shape == b.shape and np.allclose(a, b))
    for out in (a, b):
        assert 1 <= len(out) <= t.output_length(20, train=True) == 24  # time stretch up to 1.2 x 20
        xyv = out.reshape(len(out), 137, 3)
        assert set(np.unique(xyv[..., 2])) <= {0.0, 1.0}
        assert not xyv[xyv[..., 2] == 0].any()  # masked points stay (0, 0, 0)
    assert t.output_length(20, train=False) == 20
    # rotation alone: distances from the anchor kept, angles turned by the same amount for every point
    rot = KeypointTransform(KeypointConfig(augment=AugmentConfig(rotate_deg=30, scale=0, shift=0, time_stretch=0, drop_frames=0)))
    r = rot(raw, rng=np.random.default_rng(3)).reshape(20, 137, 3)
    p = plain.reshape(20, 137, 3)
    vis = p[..., 2] == 1
    np.testing.assert_allclose(np.linalg.norm(r[..., :2], axis=-1)[vis], np.linalg.norm(p[..., :2], axis=-1)[vis], rtol=1e-4, atol=1e-5)
    turn = np.arctan2(r[..., 1], r[..., 0])[vis] - np.arctan2(p[..., 1], p[..., 0])[vis]
    turn = (turn + math.pi) % (2 * math.pi) - math.pi
    assert np.ptp(turn) < 1e-3 and 0 < abs(turn[0]) <= math.radians(30)
    none = KeypointTransform(KeypointConfig(augment=AugmentConfig(0, 0, 0, 0, 0)))
    np.testing.assert_array_equal(none(raw, rng=np.random.default_rng(3)), plain)


# -- .pose files (pose-format) --


def test_pose_file_round_trip_and_pose_formats_own_openpose_files(tmp_path):
    from pose_format.utils.openpose import load_openpose_directory

    folder = write_clip(tmp_path / "clip", 7, seed=6, skip=(2,), no_person=(4,))
    clip = read_openpose_folder(folder)
    back = read_pose_file(write_pose_file(tmp_path / "clip.pose", clip.keypoints, fps=24, frame_size=(1280, 720)))
    np.testing.assert_array_equal(back.keypoints, clip.keypoints)
    assert back.fps == 24 and back.frame_size == (1280, 720) and back.issues.no_person == [2, 4]
    # a .pose file written by pose-format itself from the same folder reads the same
    pose = load_openpose_directory(str(folder), fps=24, width=1280, height=720)
    with open(tmp_path / "theirs.pose", "wb") as f:
        pose.write(f)
    np.testing.assert_allclose(read_pose_file(tmp_path / "theirs.pose").keypoints, clip.keypoints, rtol=1e-6)
    # and inference reads both inputs to the same sequence
    cfg = KeypointConfig()
    np.testing.assert_array_equal(load_keypoints(folder, cfg), load_keypoints(tmp_path / "clip.pose", cfg))


def test_pose_files_of_other_layouts_or_broken_are_refused(tmp_path):
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    comp = PoseHeaderComponent("POSE_LANDMARKS", [f"p{i}" for i in range(33)], [], [(0, 0, 0)], "XYC")
    header = PoseHeader(0.2, PoseHeaderDimensions(1280, 720), [comp])
    body = NumPyPoseBody(24, np.zeros((2, 1, 33, 2), np.float32), np.ones((2, 1, 33), np.float32))
    with open(tmp_path / "holistic.pose", "wb") as f:
        Pose(header, body).write(f)
    with pytest.raises(KeypointError, match=r"holistic.pose: components \{'POSE_LANDMARKS': 33\} are not OpenPose's"):
        read_pose_file(tmp_path / "holistic.pose")
    (tmp_path / "bad.pose").write_bytes(b"\x01\x02garbage")
    with pytest.raises(KeypointError, match=r"bad.pose: not a readable .pose file"):
        read_pose_file(tmp_path / "bad.pose")


def test_inference_resamples_to_the_training_frame_rate(tmp_path):
    folder = write_clip(tmp_path / "clip", 30, seed=7)
    cfg = KeypointConfig(fps=24.0)
    at_30 = load_keypoints(folder, cfg, fps=30.0)  # 30 frames at 30 fps: one second, 24 frames at 24 fps
    nearest = np.floor(np.arange(24) * 30 / 24 + 0.5).astype(int)  # 0, 1, 3, 4, 5, 6, 8, ...
    raw = read_openpose_folder(folder).keypoints.reshape(30, 411)[nearest].astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(at_30, KeypointTransform(cfg)(raw))
    with pytest.raises(KeypointError, match=r"nothing: not found"):
        load_keypoints(tmp_path / "nothing", cfg)


def test_the_keypoint_package_imports_neither_torch_nor_fairseq():
    code = "import sys, ssvp_slt.keypoints, ssvp_slt.keypoints.prepare; print(','.join(m for m in ('torch', 'fairseq') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "", res.stderr


# -- preparation: the report --

CSV_HEADER = "VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\tEND_REALIGNED\tSENTENCE\n"


def write_csv(path: Path, rows) -> Path:
    lines = [CSV_HEADER] + [f"v{i}\tv{i}-rgb_front\ts{i}\t{name}\t0.0\t1.0\t{caption}\n" for i, (name, caption) in enumerate(rows)]
    path.write_text("".join(lines))
    return path


@pytest.fixture
def prepared(tmp_path):
    """How2Sign's tar layout (KP/train/openpose_output/json/<NAME>/...) with one clip of each kind of problem."""
    json_dir = tmp_path / "kp" / "train" / "openpose_output" / "json"
    write_clip(json_dir / "good_a", 12, seed=1)
    write_clip(json_dir / "good_b", 9, seed=2)
    write_clip(json_dir / "gaps", 10, seed=3, skip=(4, 5, 6))
    write_clip(json_dir / "nobody_some", 8, seed=4, no_person=(0, 1))
    write_clip(json_dir / "nobody_all", 5, seed=5, no_person=range(5))
    write_clip(json_dir / "mostly_missing", 10, seed=6, skip=range(1, 9))
    nan = write_clip(json_dir / "nan", 6, seed=7)
    bad = json.loads((nan / "nan_000000000002_keypoints.json").read_text())
    bad["people"][0][BODY][3 * 4] = float("nan")
    (nan / "nan_000000000002_keypoints.json").write_text(json.dumps(bad))
    write_pose_file(json_dir / "as_pose.pose", read_openpose_folder(write_clip(tmp_path / "src" / "x", 7, seed=8)).keypoints,
                    fps=24, frame_size=(1280, 720))
    rows = [("good_a", "the cat sat"), ("good_b", "a dog ran home"), ("gaps", "the dog sat"), ("nobody_some", "a cat ran"),
            ("nobody_all", "the end"), ("mostly_missing", "a cat sat home"), ("nan", "the cat ran home"),
            ("as_pose", "a dog sat"), ("no_folder", "the dog ran"), ("empty_caption", " ")]
    csv = write_csv(tmp_path / "how2sign_realigned_train.csv", rows)
    out = tmp_path / "data"
    rc, log = run_script_captured("prepare_keypoints", "--keypoints", tmp_path / "kp", "--csv", csv, "--out", out,
                                  "--vocab-size", 30, "--lowercase")
    return tmp_path, out, rc, log, csv


def test_prepare_reports_every_problem_with_its_file_and_count(prepared):
    tmp_path, out, rc, log, csv = prepared
    assert rc == 0, log
    report = json.loads((out / "prepare_report_train.json").read_text())
    assert report["rows_read"] == 10 and report["kept"] == 6 and report["dropped"] == 4
    assert report["dropped_by_reason"] == {"empty caption": 1, "no keypoints": 1, "no person in any frame": 1, "too many missing frames": 1}
    totals = report["problem_totals"]
    assert totals["missing_frames"] == {"count": 3, "clips": 1, "what": totals["missing_frames"]["what"]}
    assert (totals["frames_no_person"]["count"], totals["frames_no_person"]["clips"]) == (2, 1)
    assert (totals["bad_points_masked"]["count"], totals["bad_points_masked"]["clips"]) == (1, 1)
    assert "frame_count_mismatch" not in totals  # no video to compare with in this run
    by_sentence = {(p["sentence"], p["reason"]): p for p in report["problems"]}
    gaps = by_sentence[("gaps", "missing_frames")]
    assert gaps["file"].endswith("openpose_output/json/gaps") and "4-6" in gaps["message"] and gaps["action"] == "kept"
    nan = by_sentence[("nan", "bad_points_masked")]
    assert nan["examples"][0].startswith("nan_000000000002_keypoints.json: pose_keypoints_2d point(s) [4]: NaN")
    missing = by_sentence[("no_folder", "no keypoints")]
    assert missing["file"] == str(csv) and missing["line"] == 10 and missing["action"] == "dropped"
    nobody = by_sentence[("nobody_all", "no person in any frame")]
    assert (nobody["file"], nobody["line"]) == (str(csv), 6) and "json/nobody_all: no person" in nobody["message"]
    assert "8 of 10 frames missing" in by_sentence[("mostly_missing", "too many missing frames")]["message"]
    assert report["frames"] == 12 + 9 + 10 + 8 + 6 + 7
    # the printed summary says the same
    assert "train: read 10 rows, kept 6, dropped 4" in log
    assert "missing frames (gaps in the frame numbering; all points masked): 3 in 1 clip(s)" in log
    # manifest: ids are SENTENCE_NAMEs, frames and captions as read; the store holds the raw pixels
    rows = {r.id: r for r in read_manifest(out / "train.tsv").rows}
    assert sorted(rows) == ["as_pose", "gaps", "good_a", "good_b", "nan", "nobody_some"]
    assert rows["gaps"].n_frames == 10 and rows["gaps"].fps == 24 and rows["good_b"].tgt_text == "a dog ran home"
    assert rows["as_pose"].video.endswith("as_pose.pose") and (rows["good_a"].width, rows["good_a"].height) == (1280, 720)
    store = FeatureStore(out / "features")
    assert store.dim == 411 and store.info.feature_rate == 24.0 and store.info.dtype == "float16"
    assert store.info.source["frame_size"] == [1280, 720] and store.info.source["layout"] == "openpose_137"
    assert store.info.transform["name"] == "keypoints" and store.info.transform["augment"]["time_stretch"] == 0.2
    split = store.split("train")
    raw = read_openpose_folder(tmp_path / "kp" / "train" / "openpose_output" / "json" / "good_a").keypoints.reshape(12, 411)
    np.testing.assert_array_equal(split.read(split.index_of("good_a")), raw.astype(np.float16))
    assert not split.read(split.index_of("gaps"))[4:7].any()
    assert (out / "spm.model").is_file() and (out / "dict.txt").is_file()


def test_prepare_from_a_data_roots_manifests_with_its_vocabulary_and_frame_checks(prepared, tmp_path):
    base, video_root, rc, _, _ = prepared
    assert rc == 0
    # the "video" data root: its manifests give ids and captions, n_frames/fps the video's length
    manifest = (video_root / "train.tsv").read_text().splitlines()
    header = manifest[0].split("\t")
    fixed = [manifest[0]]
    for line in manifest[1:]:
        f = line.split("\t")
        if f[0] == "good_b":  # a video of 5 s at 25 fps: 120 keypoint frames expected at 24 fps, 9 found
            f[header.index("n_frames")], f[header.index("fps")] = "125", "25"
        fixed.append("\t".join(f))
    (video_root / "train.tsv").write_text("\n".join(fixed) + "\n")
    out = tmp_path / "data2"
    rc, log = run_script_captured("prepare_keypoints", "--keypoints", base / "kp", "--manifests", video_root, "--splits", "train",
                                  "--out", out, "--vocab-from", video_root, "--drop-face", "--no-augment")
    assert rc == 0, log
    report = json.loads((out / "prepare_report_train.json").read_text())
    assert report["kept"] == 6 and report["dropped"] == 0
    mismatch = [p for p in report["problems"] if p["reason"] == "frame_count_mismatch"]
    assert [p["sentence"] for p in mismatch] == ["good_b"]
    assert "9 keypoint frames, 120 expected" in mismatch[0]["message"]
    # the same vocabulary and caption settings as the data root it came from
    assert (out / "spm.model").read_bytes() == (video_root / "spm.model").read_bytes()
    assert (out / "dict.txt").read_bytes() == (video_root / "dict.txt").read_bytes()
    from ssvp_slt.corpus.data_config import VideoDataConfig

    assert VideoDataConfig.load(out).lowercase is True
    store = FeatureStore(out / "features")
    assert store.info.transform["drop_face"] is True and store.info.transform["augment"]["rotate_deg"] == 0
    assert KeypointTransform.from_store_info(store.info).output_dim == 67 * 3
    # a second run into the same store must not change how its features are read, nor silently replace a split
    rc, log = run_script_captured("prepare_keypoints", "--keypoints", base / "kp", "--manifests", video_root, "--splits", "train",
                                  "--out", out, "--vocab-from", video_root, "--no-augment")
    assert rc == 1 and "transform.drop_face: store has True, this run False" in log
    rc, log = run_script_captured("prepare_keypoints", "--keypoints", base / "kp", "--manifests", video_root, "--splits", "train",
                                  "--out", out, "--vocab-from", video_root, "--drop-face", "--no-augment")
    assert rc == 1 and "holds split 'train' already; pass --overwrite" in log


def test_prepare_compares_frame_counts_with_the_precut_videos(prepared, tmp_path):
    from video_helpers import write_test_video

    base, _, _, _, csv = prepared
    clips = tmp_path / "clips"
    clips.mkdir()
    write_test_video(clips / "good_a.mp4", n_frames=12, fps=24)  # matches its 12 keypoint frames
    write_test_video(clips / "good_b.mp4", n_frames=20, fps=24)  # 9 keypoint frames: mismatch
    write_test_video(clips / "gaps.mp4", n_frames=10, fps=25)  # 10 frames both, but not at --fps
    rc, log = run_script_captured("prepare_keypoints", "--keypoints", base / "kp", "--csv", csv, "--out", tmp_path / "d3",
                                  "--clips", clips, "--vocab-size", 30, "--workers", 2)  # reading and probing in 2 processes
    assert rc == 0, log
    totals = json.loads((tmp_path / "d3" / "prepare_report_train.json").read_text())["problem_totals"]
    assert totals["frame_count_mismatch"]["clips"] == 1
    assert totals["video_fps_differs"]["clips"] == 1
    assert totals["no_video_to_compare"]["clips"] == 3  # nobody_some, nan, as_pose
