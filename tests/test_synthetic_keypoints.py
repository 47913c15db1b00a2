"""OpenPose keypoints of the synthetic signers (``render_synthetic_corpus.py --keypoints`` /
``--keypoints-only``): How2Sign's layout and JSON, original-timestamp spans, keypoints that lie on
what the video shows, handshapes, the person's-left/right convention, detector noise."""

import csv
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import load_script
from ssvp_slt.synthetic import full_videos as fv
from ssvp_slt.synthetic import how2sign_keypoints as hk
from ssvp_slt.synthetic import how2sign_style as h2s
from ssvp_slt.synthetic import openpose as op
from ssvp_slt.synthetic import original_timestamps as ot
from ssvp_slt.synthetic import signer, simple_keypoints
from ssvp_slt.synthetic.corpus import SPLITS, render_corpus
from ssvp_slt.synthetic.keypoint_corpus import KeypointCorpusError, keypoints_only
from ssvp_slt.synthetic.keypoint_noise import OFF, REALISTIC, DetectorNoise, apply, noise_rng
from ssvp_slt.synthetic.person import face_box
from ssvp_slt.synthetic.styles import make_style

FPS = 25
SEED = 5
SIMPLE_SIZES = dict(n_train=7, n_val=1, n_test=1)
LEGS = [op.BODY[n] for n in op.BODY_25 if n.endswith(("Hip", "Knee", "Ankle", "Toe", "Heel"))]


def render_cli(*argv):
    """scripts/render_synthetic_corpus.py in-process: its exit status (0 when it returns)."""
    try:
        load_script("render_synthetic_corpus").main([str(a) for a in argv])
    except SystemExit as e:
        return e.code
    return 0


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


def read_clip(folder: Path):
    """(T, 137, 3) keypoints and (T,) person flags of one sentence folder, in frame order."""
    files = sorted(folder.iterdir())
    frames = [op.read_frame(f) for f in files]
    person = np.array([f is not None for f in frames])
    return np.stack([np.zeros((op.N_POINTS, 3)) if f is None else f for f in frames]), person


def decode(path):
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def on_mask(mask, points, tolerance=0):
    """Per point (x, y): whether its pixel (or one within ``tolerance`` pixels) is set in ``mask``."""
    h, w = mask.shape
    out = []
    for x, y in points:
        cx, cy = int(round(x)), int(round(y))
        win = mask[max(0, cy - tolerance) : cy + tolerance + 1, max(0, cx - tolerance) : cx + tolerance + 1]
        out.append(bool(win.any()))
    return np.array(out)


@pytest.fixture(scope="module")
def simple_full(tmp_path_factory):
    """A tiny full-video corpus of the simple style, written with keypoints, and its plan."""
    out = tmp_path_factory.mktemp("kp_simple_full")
    summary = fv.render_full_videos(out, seed=SEED, size=64, fps=FPS, workers=1, keypoints=True, **SIMPLE_SIZES)
    layout = fv.plan_full_corpus(seed=SEED, size=64, fps=FPS, **SIMPLE_SIZES)
    return out, summary, layout


# --------------------------------------------------------------------------- layout and format


def test_layout_names_and_json_structure(simple_full):
    out, summary, _ = simple_full
    broken = json.loads((out / "raw" / fv.BROKEN_JSON).read_text())
    missing = {b["SENTENCE_NAME"] for b in broken if b["kind"] == fv.MISSING_VIDEO}
    assert missing  # the corpus has missing-video rows: they get no keypoints
    for split in SPLITS:
        _, rows = read_csv(out / "raw" / fv.CSV_TEMPLATE.format(split=split))
        expected = {r["SENTENCE_NAME"] for r in rows} - missing
        folders = {p.name for p in (out / "keypoints" / split / "json").iterdir()}
        assert folders == expected
        assert summary.keypoints.clips[split] == len(expected)
        for name in sorted(folders)[:2]:
            files = sorted(p.name for p in (out / "keypoints" / split / "json" / name).iterdir())
            assert files == [f"{name}_{k:012d}_keypoints.json" for k in range(len(files))]
            assert all(re.fullmatch(r".+-rgb_front_\d{12}_keypoints\.json", f) for f in files)
    name = sorted(expected)[0]
    doc = json.loads(next((out / "keypoints" / "test" / "json" / name).iterdir()).read_text())
    assert doc["version"] == 1.3 and len(doc["people"]) == 1
    person = doc["people"][0]
    assert person["person_id"] == [-1]
    sizes = {k: len(v) for k, v in person.items() if k.endswith("_2d")}
    assert sizes == dict(pose_keypoints_2d=75, face_keypoints_2d=210, hand_left_keypoints_2d=63, hand_right_keypoints_2d=63)
    assert all(person[k.replace("_2d", "_3d")] == [] for k in sizes)
    kp = op.read_frame(next((out / "keypoints" / "test" / "json" / name).iterdir()))
    detected = kp[:, 2] > 0
    assert (kp[detected, 2] <= 1).all() and (kp[~detected] == 0).all()
    assert not detected[LEGS].any()  # below the frame: OpenPose's 0, 0, 0
    # the simple signer draws one hand, on the image's right: the person's LEFT hand
    assert not detected[op.HAND_RIGHT].any() and detected[op.HAND_LEFT].all()
    assert not detected[[op.BODY["RElbow"], op.BODY["RWrist"], op.BODY["LElbow"]]].any()


def test_frames_follow_the_original_timestamps(simple_full):
    out, _, layout = simple_full
    videos = {v.VIDEO_NAME: v for v in layout.videos}
    checked = 0
    for split in SPLITS:
        header, original = read_csv(out / "raw" / ot.ORIGINAL_CSV_TEMPLATE.format(split=split))
        assert header == list(ot.ORIGINAL_COLUMNS)
        _, realigned = read_csv(out / "raw" / fv.CSV_TEMPLATE.format(split=split))
        names = [(r["SENTENCE_NAME"], r["SENTENCE"]) for r in original]
        assert names == [(r["SENTENCE_NAME"], r["SENTENCE"]) for r in realigned]
        for row in original:
            folder = out / "keypoints" / split / "json" / row["SENTENCE_NAME"]
            video = videos[row["VIDEO_NAME"]]
            if video.plan is None:
                assert not folder.exists()
                continue
            f0, f1 = round(float(row["START"]) * FPS), round(float(row["END"]) * FPS)
            seg = video.segments[int(row["SENTENCE_ID"].rsplit("_", 1)[1])]
            # the original span is the true one moved within the documented bounds, inside the video
            assert ot.SHIFT_START[0] * FPS - 0.5 <= f0 - seg.start_frame <= ot.SHIFT_START[1] * FPS + 0.5 or f0 == 0
            assert ot.SHIFT_END[0] * FPS - 0.5 <= f1 - seg.end_frame <= ot.SHIFT_END[1] * FPS + 0.5 or f1 == video.n_frames
            points, person = read_clip(folder)
            assert len(points) == f1 - f0 and person.all()
            # frame k of the clip is frame f0 + k of the full video
            expected = layout.style.keypoints(video.plan)[f0:f1]
            np.testing.assert_allclose(points, np.where(expected[..., 2:] > 0, expected, 0), atol=6e-4)
            checked += 1
    assert checked >= sum(SIMPLE_SIZES.values())


# --------------------------------------------------------------------------- keypoints follow the video


def test_simple_hand_keypoints_lie_on_the_hand_in_the_full_video(simple_full):
    out, _, layout = simple_full
    video = next(v for v in layout.videos if v.plan is not None and v.split == "train")
    frames = decode(out / "raw" / "videos" / f"{video.VIDEO_NAME}.mp4")
    # H.264 (4:2:0 chroma) blurs colours at edges; skin is 190+ away from the hand colour, the background more
    yellow = np.abs(frames.astype(int) - np.array(signer.HAND_COLOUR)).sum(-1) < 130
    s = frames.shape[1] / 64.0
    head = np.array([frames.shape[2] / 2.0 - 0.5, signer.HEAD_CENTRE_Y * s - 0.5])
    hits = total = 0
    for k, seg in enumerate(video.segments):
        name = fv.sentence_names(video.VIDEO_ID, k)["SENTENCE_NAME"]
        points, _ = read_clip(out / "keypoints" / "train" / "json" / name)
        for t, kp in enumerate(points):
            hand = kp[op.HAND_LEFT]
            ok = on_mask(yellow[seg.original_start_frame + t], hand[:, :2])
            assert ok[0]  # the wrist, always
            hits += ok.sum()
            total += len(ok)
            # the face sits inside the drawn head
            assert (np.hypot(*(kp[op.FACE, :2] - head).T) < signer.HEAD_RADIUS * s).all()
    assert hits / total > 0.99, hits / total


def test_simple_hand_templates_lie_inside_their_shapes():
    for size in (16, 32, 64, 96, 224):
        r, fills, _ = signer._sprites(size / 64.0)
        for k, shape in enumerate(simple_keypoints.SPRITE_SHAPES):
            px = np.round(simple_keypoints.HAND_TEMPLATES[shape] * size / 64.0).astype(int)
            assert fills[k][px[:, 1] + r, px[:, 0] + r].all(), (size, shape)


def _marked(plan):
    """The plan with magenta skin, a green shirt, a grey background and no camera noise: the
    hands (and face) are the only magenta pixels of its frames."""
    look = plan.look
    scene = replace(look.scene, noise_sigma=0.0, colour_a=(128, 128, 128), colour_b=(96, 96, 96))
    return replace(plan, look=replace(look, skin=(255, 0, 255), shirt=(0, 110, 0), scene=scene))


def _how2sign_plans(style, n=3):
    plans = []
    for i in range(n):
        rng = np.random.default_rng(100 + i)
        words = ["he", "man", "ball", "car", "then", "yes"][i:] + ["okay"]
        plan = style.plan(words, rng)
        if i == 1:  # also a left-handed signer
            plan = replace(plan, look=replace(plan.look, mirror=1))
        plans.append(plan)
    return plans


def test_how2sign_hand_keypoints_lie_on_the_drawn_hands():
    style = make_style("how2sign", frame_size=(320, 180))
    exact = within = total = 0
    for plan in _how2sign_plans(style):
        kp = style.keypoints(plan)
        frames = np.stack(list(h2s.iter_frames(_marked(plan)))).astype(int)
        magenta = (frames[..., 0] - frames[..., 1] > 25) & (frames[..., 2] - frames[..., 1] > 25)
        for t in range(plan.n_frames):
            for part in (op.HAND_LEFT, op.HAND_RIGHT):
                hand = kp[t, part]
                seen = hand[:, 2] > hk.CONFIDENCE["hidden"]  # not marked as covered
                if not seen.any():
                    continue
                exact += on_mask(magenta[t], hand[seen, :2]).sum()
                within += on_mask(magenta[t], hand[seen, :2], tolerance=1).sum()
                total += seen.sum()
                if hand[0, 2] > 0.5:  # a visible wrist is on the hand or the arm's skin
                    assert on_mask(magenta[t], hand[:1, :2], tolerance=1)[0]
    assert within == total  # every visible hand keypoint is on (or next to) a drawn hand pixel
    assert exact / total > 0.995, exact / total


def test_how2sign_face_and_body_follow_the_signer():
    style = make_style("how2sign", frame_size=(320, 180))
    for plan in _how2sign_plans(style, 2):
        sg = plan.look.signer(plan.width, plan.height)
        kp = style.keypoints(plan)
        x0, y0, x1, y1 = face_box(sg)
        face = kp[0, op.FACE]
        assert ((face[:, 0] >= x0) & (face[:, 0] <= x1) & (face[:, 1] >= y0 - 1) & (face[:, 1] <= y1 + 1)).all()
        # OpenPose's sides are the person's: right shoulder, eye, ear and hand on the image's left
        B = op.BODY
        for r, l in (("RShoulder", "LShoulder"), ("REye", "LEye"), ("REar", "LEar"), ("RWrist", "LWrist")):
            assert kp[0, B[r], 0] < kp[0, B[l], 0]
        assert kp[0, op.HAND_RIGHT][0, 0] < kp[0, op.HAND_LEFT][0, 0]  # at rest, frame 0
        np.testing.assert_allclose(kp[:, B["RWrist"], :2], kp[:, op.HAND_RIGHT][:, 0, :2])
        # a one-handed sign moves the dominant hand: the right one of a right-handed signer
        word, s0, s1 = next(sp for sp in plan.spans if h2s.SIGNS[sp[0]].hands == "one")
        moved = {
            part: np.abs(kp[(s0 + s1) // 2, getattr(op, part)][0, :2] - kp[0, getattr(op, part)][0, :2]).max()
            for part in ("HAND_RIGHT", "HAND_LEFT")
        }
        dominant = "HAND_RIGHT" if plan.look.mirror == -1 else "HAND_LEFT"
        other = "HAND_LEFT" if dominant == "HAND_RIGHT" else "HAND_RIGHT"
        assert moved[dominant] > 5 and moved[other] < 1, (word, moved)


def _shape_features(hand):
    """Pairwise distances of a hand's 21 points over its palm length: the same for a handshape
    wherever the hand is, however it is turned or mirrored, whoever signs."""
    xy = hand[:, :2]
    d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
    return d / d[0, op.hand_point("middle", 0)]


def test_finger_configuration_is_the_signs_handshape():
    style = make_style("how2sign", frame_size=(320, 180))
    look = style.plan(["the"], np.random.default_rng(7)).look
    right_handed = look.mirror == -1
    features = {}
    words = sorted(h2s.SIGNS)
    sentence = words + [words[0]]  # the first word again at the end: the same sign twice
    plan = replace(style.plan(sentence, np.random.default_rng(8)), look=look)
    kp = style.keypoints(plan)
    for k, (word, s0, s1) in enumerate(plan.spans):
        hand = kp[(s0 + s1) // 2, op.HAND_RIGHT if right_handed else op.HAND_LEFT]
        features.setdefault(word, []).append(_shape_features(hand))
    np.testing.assert_allclose(features[words[0]][0], features[words[0]][1], atol=1e-6)  # same sign, same fingers
    for a in words:
        for b in words:
            same = h2s.SIGNS[a].shape == h2s.SIGNS[b].shape
            diff = np.abs(features[a][0] - features[b][0]).max()
            assert (diff < 1e-6) if same else (diff > 0.05), (a, b, diff)
    # the simple style: the hand template follows the drawn shape
    simple = make_style("simple")
    words = sorted(signer.GESTURES)
    plan = simple.plan(words + [words[0]], np.random.default_rng(9))
    kp = simple.keypoints(plan)
    by_word = {}
    for word, s0, s1 in plan.spans:
        by_word.setdefault(word, []).append(kp[(s0 + s1) // 2, op.HAND_LEFT, :2] - kp[(s0 + s1) // 2, op.HAND_LEFT][0, :2])
    np.testing.assert_allclose(by_word[words[0]][0], by_word[words[0]][1])
    for a in words:
        for b in words:
            if signer.GESTURES[a][0] != signer.GESTURES[b][0]:
                assert np.abs(by_word[a][0] - by_word[b][0]).max() > 1.0, (a, b)


# --------------------------------------------------------------------------- keypoints only, noise, settings


def test_keypoints_only_equals_keypoints_written_with_the_videos(tmp_path, capsys):
    args = ["--layout", "full", "--style", "how2sign", "--frame-size", "128x72", "--words-per-sentence", "2", "5"]
    args += ["--train", "12", "--val", "1", "--test", "1", "--seed", "2", "--workers", "1", "--no-broken-rows"]
    a, b = tmp_path / "a", tmp_path / "b"
    rc = render_cli("--out", a, *args, "--keypoints")
    assert rc == 0
    (b / "raw").mkdir(parents=True)
    for csv_file in (a / "raw").glob("how2sign_realigned_*.csv"):
        shutil.copy(csv_file, b / "raw")
    rc = render_cli("--out", b, *args, "--keypoints-only")
    assert rc == 0
    assert not (b / "raw" / "videos").exists()  # nothing rendered
    files_a = sorted(p.relative_to(a) for p in (a / "keypoints").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in (b / "keypoints").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 100
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)
    for split in SPLITS:
        name = ot.ORIGINAL_CSV_TEMPLATE.format(split=split)
        assert (a / "raw" / name).read_bytes() == (b / "raw" / name).read_bytes()
    # other arguments than the corpus was rendered with, or no corpus at all: refused
    wrong = [x if x != "2" or i != args.index("--seed") + 1 else "3" for i, x in enumerate(args)]
    capsys.readouterr()
    rc = render_cli("--out", b, *wrong, "--keypoints-only")
    assert rc != 0 and "differs from the corpus" in capsys.readouterr().err
    rc = render_cli("--out", tmp_path / "none", *args, "--keypoints-only")
    assert rc != 0 and "not found" in capsys.readouterr().err


def test_keypoints_only_clip_layout_and_settings(tmp_path):
    sizes = dict(n_train=7, n_val=1, n_test=1, seed=SEED, size=32, workers=1)
    summary = render_corpus(tmp_path / "a", keypoints=True, **sizes)
    assert summary.keypoints.written == 9
    (tmp_path / "b" / "raw").mkdir(parents=True)
    for split in SPLITS:
        shutil.copy(tmp_path / "a" / "raw" / f"how2sign_{split}.csv", tmp_path / "b" / "raw")
    again = keypoints_only(tmp_path / "b", layout="clips", **sizes)
    assert again.written == 9 and again.frames == summary.total_frames  # one folder per clip, all its frames
    for p in (tmp_path / "a" / "keypoints").rglob("*.json"):
        assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes()
    # re-running keeps the folders; other settings in the same folder are refused, not mixed
    assert keypoints_only(tmp_path / "b", layout="clips", **sizes).kept == 9
    with pytest.raises(KeypointCorpusError, match="other settings"):
        keypoints_only(tmp_path / "b", layout="clips", noise=REALISTIC, **sizes)


def test_detector_noise_is_off_by_default_and_seeded():
    style = make_style("how2sign", frame_size=(320, 180))
    plan = _how2sign_plans(style, 1)[0]
    exact = style.keypoints(plan)
    np.testing.assert_array_equal(exact, style.keypoints(plan))  # deterministic
    points, person = apply(OFF, exact, noise_rng(1, "train", "x"), plan.width, plan.height)
    np.testing.assert_array_equal(points, exact)
    assert person.all()
    a = apply(REALISTIC, exact, noise_rng(1, "train", "x"), plan.width, plan.height)
    b = apply(REALISTIC, exact, noise_rng(1, "train", "x"), plan.width, plan.height)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    shake = np.abs(a[0][..., :2] - exact[..., :2])[(a[0][..., 2] > 0) & (exact[..., 2] > 0)]
    assert 0 < np.median(shake) < 2.0  # pixels: small jitter
    c = apply(REALISTIC, exact, noise_rng(1, "train", "y"), plan.width, plan.height)[0]
    assert not np.array_equal(a[0], c)  # another clip, other noise
    loud = DetectorNoise(missed_hand=0.5, no_person=0.3)
    points, person = apply(loud, exact, noise_rng(2, "val", "x"), plan.width, plan.height)
    assert 0 < (~person).sum() < len(person)
    missed = (points[:, op.HAND_LEFT, 2] == 0).all(1)
    assert 0 < missed.sum() < len(points)
    assert (points[missed, op.BODY["LWrist"], 2] > 0).any()  # the body's wrist stays found
    # written as OpenPose writes a frame without anyone
    assert op.frame_document(None) == {"version": 1.3, "people": []}


def test_example_picture_draws_the_keypoints_over_the_frames():
    examples = load_script("render_synthetic_examples")
    plain, _, _ = examples.render_examples(frame_size=(160, 90), tile_width=80, signers=2)
    drawn, _, _ = examples.render_examples(frame_size=(160, 90), tile_width=80, signers=2, keypoints=True)
    assert plain.shape == drawn.shape
    changed = np.abs(drawn.astype(int) - plain.astype(int)).sum(-1) > 60
    assert 0.005 < changed.mean() < 0.3  # skeletons drawn over the signers, not over everything
