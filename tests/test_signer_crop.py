"""Signer crop (ssvp_slt.prep.signer_crop, prepare_how2sign.py --signer-crop), the video facts in
prepared manifests (width, height, file_size) and the long-clip statistics of the report.

The signer is a real face (scikit-image's astronaut photo, head and shoulders) pasted off-centre
into 16:9 frames, with a pure red square as the "hand", beside the chest two face widths right
of the face centre: inside the signer box, outside the centred square of the short side.
"""

import json
import math
import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import skimage.data as skdata
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_slt.corpus.data_config import VideoDataConfig  # noqa: E402
from ssvp_slt.corpus.frame_sampling import WindowSettings  # noqa: E402
from ssvp_slt.corpus.manifest import PREPARED_COLUMNS, read_manifest  # noqa: E402
from ssvp_slt.corpus.video_io import probe_video  # noqa: E402
from ssvp_slt.prep import signer_crop as sc  # noqa: E402
from ssvp_slt.prep.face_blur import FaceDetector  # noqa: E402
from ssvp_slt.prep.report import SplitReport  # noqa: E402
from conftest import run_script_captured  # noqa: E402

FPS = 25
HEADER = "VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\tEND_REALIGNED\tSENTENCE"
RED = (255, 0, 0)


# ----------------------------------------------------------------------------- the scene
@pytest.fixture(scope="module")
def astronaut():
    return skdata.astronaut()  # 512x512; the face is ~96 px wide around (224, 113)


def scene(astronaut, width=640, height=360, face=None, fx=None, fy=None, sway=0, hand=True):
    """(frame, face box, hand box): a gradient background (a flat one works too, see the detector's
    CLAHE), the astronaut's head and shoulders with the face centre at (fx, fy), face ``face`` px
    wide, and a red "hand" of half a face beside the chest, 2 face widths right of the face centre."""
    face = face or round(height * 0.1333)
    fx = round(width * 0.656) if fx is None else fx
    fy = round(height * 0.25) if fy is None else fy
    fx += sway
    yy, xx = np.mgrid[0:height, 0:width]
    frame = np.stack([40 + 150 * xx / width, 60 + 120 * yy / height, 200 - 120 * xx / width], -1).astype(np.uint8)
    k = face / 96
    src = cv2.resize(astronaut, (round(512 * k), round(512 * k)), interpolation=cv2.INTER_AREA)
    cx, cy = 224 * k, 113 * k  # the face centre in the resized photo
    x0, y0 = round(cx - face), round(cy - face)  # one face above and to each side, 2 below
    patch = src[max(0, y0) : round(cy + 2 * face), max(0, x0) : round(cx + face)]
    px, py = fx - round(cx) + max(0, x0), fy - round(cy) + max(0, y0)
    # paste, clipped to the frame
    fx0, fy0 = max(0, px), max(0, py)
    fx1, fy1 = min(width, px + patch.shape[1]), min(height, py + patch.shape[0])
    frame[fy0:fy1, fx0:fx1] = patch[fy0 - py : fy1 - py, fx0 - px : fx1 - px]
    face_box = (fx - face / 2, fy - face / 2, fx + face / 2, fy + face / 2)
    hs = face // 4
    hx, hy = fx + 2 * face, fy + round(1.5 * face)
    hand_box = (hx - hs, hy - hs, hx + hs, hy + hs)
    if hand:
        frame[hy - hs : hy + hs, hx - hs : hx + hs] = RED
    return np.ascontiguousarray(frame), face_box, hand_box


def clip_frames(astronaut, n=40, **kwargs):
    return [scene(astronaut, sway=int(round(2 * math.sin(i / 4))), **kwargs)[0] for i in range(n)]


def red_pixels(frame):
    f = frame.astype(int)
    return int(((f[..., 0] > 220) & (f[..., 1] < 50) & (f[..., 2] < 50)).sum())


def centred_square_box(width, height):
    return sc.centre_square(width, height)


# ----------------------------------------------------------------------------- the box
def test_signer_box_holds_face_and_hand_where_a_centre_crop_does_not(astronaut):
    frames = clip_frames(astronaut)
    _, face, hand = scene(astronaut)
    box = sc.signer_crop_box(frames)
    assert not box.fallback and box.detections == box.detector_runs == 3  # frames 0, 16, 32
    assert box.contains(face) and box.contains(hand), box
    assert not box.padded and box.side < 360
    centre = centred_square_box(640, 360)
    assert centre.contains(face) and not centre.contains(hand)  # what the signer crop is for
    # the cropped pictures show the hand; the centre crop's do not
    assert red_pixels(sc.crop_and_resize(frames[0], box, 224)) > 100
    assert red_pixels(sc.crop_and_resize(frames[0], centre, 224)) == 0
    # the same box from a frame converted at another scale (what the cutter does to save work)
    small = cv2.resize(frames[0], (320, 180), interpolation=cv2.INTER_AREA)
    a, b = sc.crop_and_resize(frames[0], box, 128), sc.crop_and_resize(small, box, 128)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 6


def test_box_expansion_factors():
    s = sc.SignerCropSettings()
    assert (s.detect_every, s.up, s.down, s.side) == (16, 1.0, 3.0, 1.5)
    # face 40 wide, 50 high: 1.5 widths to each side -> 160 wide; 1 height up, 3 down -> 250 high
    cx, cy, side = sc.expand_face((100, 100, 140, 150), s)
    assert (cx, cy, side) == (120, (50 + 300) / 2, 250)
    # wider than high: the square takes the width, centred on the expanded box
    cx, cy, side = sc.expand_face((100, 100, 140, 150), sc.SignerCropSettings(up=0.5, down=1.0, side=3.0))
    assert (cx, cy, side) == (120, (75 + 200) / 2, 280)
    with pytest.raises(ValueError):
        sc.SignerCropSettings(detect_every=0)
    with pytest.raises(ValueError):
        sc.SignerCropSettings(down=-1)


class ScriptedDetector:
    """FaceDetector's API: returns the next scripted list of boxes (in the given frame's pixels)."""

    min_face_fraction = 0.08

    def __init__(self, script):
        self.script = list(script)
        self.calls = 0

    def detection_scale(self, width, height):
        return 1.0

    def detect(self, frame, profile=None):
        self.calls += 1
        return self.script.pop(0) if self.script else []


def test_detector_runs_every_nth_frame_and_the_median_ignores_an_outlier():
    face = (300.0, 60.0, 340.0, 100.0)
    outlier = (20.0, 300.0, 30.0, 310.0)  # a false positive far away, tiny
    det = ScriptedDetector([[face], [face, outlier], [outlier], [(302.0, 62.0, 342.0, 102.0)], []])
    finder = sc.SignerBoxFinder(sc.SignerCropSettings(detect_every=5), detector=det)
    frames = [np.zeros((360, 640, 3), np.uint8)] * 23
    box = sc.signer_crop_box(frames, finder=finder)
    assert det.calls == 5  # frames 0, 5, 10, 15, 20
    assert (box.detector_runs, box.detections) == (5, 4)
    # detections: face, face (largest of two), outlier, face+2: the median is the face's square
    cx, cy, side = sc.expand_face((301.0, 61.0, 341.0, 101.0), finder.settings)
    assert box.side == round(side) and abs(box.x0 + box.side / 2 - cx) <= 1 and abs(box.y0 + box.side / 2 - cy) <= 1
    # a detection on a frame downscaled by `scale` is mapped back to source pixels
    finder = sc.SignerBoxFinder(detector=ScriptedDetector([[(150.0, 30.0, 170.0, 50.0)]]))
    assert finder.add(np.zeros((180, 320), np.uint8), scale=0.5) == (300.0, 60.0, 340.0, 100.0)


def test_no_face_falls_back_to_the_centred_square_and_says_so(astronaut):
    frames = [np.full((360, 640, 3), 120, np.uint8)] * 20  # flat grey, no face
    box = sc.signer_crop_box(frames)
    assert box.fallback and box.detections == 0 and box.detector_runs == 2
    assert (box.x0, box.y0, box.side) == (140, 0, 360)
    assert box.to_dict()["fallback"] is True
    # too few detections fall back as well: fewer than min_detections, or than min_detection_share of the runs
    face = [(300.0, 60.0, 340.0, 100.0)]
    finder = sc.SignerBoxFinder(sc.SignerCropSettings(min_detections=2), detector=ScriptedDetector([face]))
    assert sc.signer_crop_box(frames, finder=finder).fallback
    frames = frames * 4  # 80 frames: 5 runs
    assert sc.SignerCropSettings().min_detection_share == 0.25
    one_in_five = sc.SignerBoxFinder(detector=ScriptedDetector([[], [], face, [], []]))
    box = sc.signer_crop_box(frames, finder=one_in_five)
    assert box.fallback and (box.detections, box.detector_runs) == (1, 5)
    two_in_five = sc.SignerBoxFinder(detector=ScriptedDetector([[], face, [], face, []]))
    assert not sc.signer_crop_box(frames, finder=two_in_five).fallback


def test_box_partly_outside_the_frame_is_shifted_inside_or_padded(astronaut):
    # shifted: a square that fits is moved inside, whole, as little as needed
    b = sc.place_box(620, 40, 200, 640, 360)
    assert (b.x0, b.y0, b.side, b.padded) == (440, 0, 200, False)
    b = sc.place_box(-30, 400, 100, 640, 360)
    assert (b.x0, b.y0, b.padded) == (0, 260, False)
    # padded: a square larger than the frame's height covers all of it and sticks out
    b = sc.place_box(500, 200, 500, 640, 360)  # x shifted left (fits), y kept where it was (cannot fit)
    assert (b.x0, b.y0, b.side, b.padded) == (140, -50, 500, True)
    assert b.y0 <= 0 and b.y1 >= 360 and 0 <= b.x0 and b.x1 <= 640
    # ... but moved as little as needed to cover the whole height
    assert (sc.place_box(500, 50, 500, 640, 360).y0, sc.place_box(500, 300, 500, 640, 360).y0) == (-140, 0)
    frame = np.full((360, 640, 3), 200, np.uint8)
    out = sc.crop_and_resize(frame, b, 100)
    assert out.shape == (100, 100, 3)
    # black bands: 50 px above, 90 below (of 500 -> 10 and 18 rows of 100)
    assert out[:9].max() == 0 and out[-17:].max() == 0 and out[12:80].min() == 200
    # a real face near the top right corner: box shifted down and left, face and hand still in it
    frames = clip_frames(astronaut, n=17, fx=560, fy=30)
    _, face, hand = scene(astronaut, fx=560, fy=30)
    box = sc.signer_crop_box(frames)
    assert not box.fallback and not box.padded and box.contains(face)
    assert box.x1 == 640 and box.y0 == 0
    # a close-up (face a third of the height): the box is taller than the frame and padded
    frames = clip_frames(astronaut, n=17, face=120, fx=320, fy=110, hand=False)
    box = sc.signer_crop_box(frames)
    assert not box.fallback and box.padded and box.side > 360 and box.y0 < 0 < 360 < box.y1


# ----------------------------------------------------------------------------- prepare_how2sign.py
def write_video(path, frames, fps=FPS):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(fps))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": "20", "preset": "ultrafast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def read_frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


def clip_record(path):
    with av.open(str(path)) as c:
        return json.loads(c.metadata["comment"])


def row(video, name, start, end, caption):
    return "\t".join([video, video, name.rsplit("_", 1)[-1], name, str(start), str(end), caption])


def write_csv(path, lines):
    path.write_text("\n".join([HEADER] + list(lines)) + "\n", encoding="utf-8")
    return path


def report(out, split="train"):
    return json.loads((out / f"prepare_report_{split}.json").read_text())


def prepare(*argv):
    return run_script_captured("prepare_how2sign", *argv)


W, H = 480, 270  # 16:9, small enough for a quick test


@pytest.fixture(scope="module")
def videos(tmp_path_factory, astronaut):
    d = tmp_path_factory.mktemp("signer_videos")
    write_video(d / "signer.mp4", clip_frames(astronaut, n=75, width=W, height=H))  # 3 s
    yy, xx = np.mgrid[0:H, 0:W]
    empty = np.stack([40 + 150 * xx / W, 60 + 120 * yy / H, 200 - 120 * xx / W], -1).astype(np.uint8)
    write_video(d / "empty.mp4", [empty] * 25)  # 1 s, no face
    return d


ROWS = [
    row("signer", "signer_0", 0.0, 1.2, "First sentence."),
    row("signer", "signer_1", 1.3, 2.9, "Second sentence."),
    row("empty", "empty_0", 0.0, 0.8, "Nobody there."),
]


def assert_manifest_matches_files(out, rows):
    """Manifests carry the facts of the files they point to (what loading trusts)."""
    header = (out / "train.tsv").read_text().split("\n")[0].split("\t")
    assert tuple(header) == PREPARED_COLUMNS
    for r in rows:
        path = out / r.video
        info = probe_video(path)
        assert (r.width, r.height) == (info.width, info.height)
        assert (r.n_frames, r.fps) == (info.n_frames, info.fps)
        assert r.file_size == os.path.getsize(path) > 0


def test_signer_crop_end_to_end(videos, tmp_path, astronaut):
    csv_path = write_csv(tmp_path / "train.csv", ROWS)
    out = tmp_path / "data"
    args = ["--csv", csv_path, "--videos", videos, "--out", out, "--workers", 1, "--signer-crop", "--short-side", 128]
    rc, text = prepare(*args)
    assert rc == 0, text
    rows = read_manifest(out / "train.tsv").rows
    assert [r.id for r in rows] == ["signer_0", "signer_1", "empty_0"]
    for r in rows:
        with av.open(str(out / r.video)) as c:
            s = c.streams.video[0]
            assert (s.codec_context.width, s.codec_context.height) == (128, 128)
    assert [r.n_frames for r in rows] == [30, 40, 20]
    assert_manifest_matches_files(out, rows)

    rep = report(out)
    assert rep["clips"] == {"re-encoded": 3}  # never stream-copied
    crop = rep["signer_crop"]
    assert (crop["clips"], crop["fallback"]) == (3, 1)
    assert crop["detector_runs"] == 2 + 3 + 2  # ceil(30/16), ceil(40/16), ceil(20/16)
    boxes = crop["boxes"]
    _, face, hand = scene(astronaut, width=W, height=H)
    for name in ("signer_0", "signer_1"):
        b = sc.CropBox.from_dict(boxes[name])
        assert not b.fallback and b.detections == b.detector_runs and b.contains(face) and b.contains(hand)
        assert boxes[name] == clip_record(out / rows[[r.id for r in rows].index(name)].video)["crop"]
    assert boxes["empty_0"]["fallback"] and boxes["empty_0"]["box"] == [105, 0, 375, 270]
    (problem,) = [p for p in rep["problems"] if p["sentence"] == "empty_0"]
    assert problem["action"] == "centre crop" and "no face found" in problem["message"]
    assert "signer crop: 3 clips cropped, 1 fell back to the centred square" in text
    # the hand is in the signer-cropped pictures
    assert all(red_pixels(f) > 30 for f in read_frames(out / rows[0].video))

    # a re-run skips the finished clips ...
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "clips").rglob("*.mp4")}
    rc, text = prepare(*args)
    assert rc == 0 and report(out)["clips"] == {"already done": 3}
    assert {p: p.stat().st_mtime_ns for p in (out / "clips").rglob("*.mp4")} == mtimes
    assert report(out)["signer_crop"] == crop  # the boxes come back from the clips' records
    # ... and changing a crop setting redoes them
    rc, text = prepare(*args, "--signer-crop-expand", 1.0, 3.0, 2.0)
    assert rc == 0 and report(out)["clips"] == {"re-encoded": 3}
    rc, text = prepare(*args, "--signer-crop-every", 8)
    assert rc == 0 and report(out)["clips"] == {"re-encoded": 3}
    assert report(out)["signer_crop"]["detector_runs"] == 4 + 5 + 3
    # ... as does turning it off (the plain cut keeps the frame's shape)
    rc, text = prepare("--csv", csv_path, "--videos", videos, "--out", out, "--workers", 1)
    assert rc == 0 and report(out)["signer_crop"] is None
    assert (read_manifest(out / "train.tsv").rows[0].width, read_manifest(out / "train.tsv").rows[0].height) == (W, H)


def laplacian_detail(frame, box):
    x0, y0, x1, y1 = (int(v) for v in box)
    gray = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def test_signer_crop_with_blurred_faces_and_fps(videos, tmp_path, astronaut):
    csv_path = write_csv(tmp_path / "train.csv", ROWS[:1])
    sharp, blurred = tmp_path / "sharp", tmp_path / "blurred"
    # 192 px: the face is ~38 px in the frames the blurrer sees (Haar misses many ~25 px faces)
    common = ["--csv", csv_path, "--videos", videos, "--workers", 1, "--signer-crop", "--short-side", 192, "--fps", 10]
    assert prepare(*common, "--out", sharp)[0] == 0
    rc, text = prepare(*common, "--out", blurred, "--blur-faces")
    assert rc == 0, text
    (r,) = read_manifest(blurred / "train.tsv").rows
    assert r.fps == 10 and r.n_frames == 12 and (r.width, r.height) == (192, 192)
    rep = report(blurred)
    # the box was found on the unblurred frames (after blurring there is no face left to find) ...
    box = sc.CropBox.from_dict(rep["signer_crop"]["boxes"]["signer_0"])
    assert not box.fallback and box == sc.CropBox.from_dict(report(sharp)["signer_crop"]["boxes"]["signer_0"])
    assert rep["faces"]["frames"] == 12 and rep["faces"]["frames_with_detection"] > 0
    # ... and the face is blurred in the cropped clip
    _, face, _ = scene(astronaut, width=W, height=H)
    scale = 192 / box.side
    inner = [(face[0] - box.x0) * scale + 4, (face[1] - box.y0) * scale + 4, (face[2] - box.x0) * scale - 4, (face[3] - box.y0) * scale - 4]
    for k, (a, b) in enumerate(zip(read_frames(sharp / r.video), read_frames(blurred / r.video))):
        assert laplacian_detail(b, inner) * 5 < laplacian_detail(a, inner), k


def test_signer_crop_of_precut_clips(videos, tmp_path, astronaut):
    clips = tmp_path / "precut"
    write_video(clips / "signer_a.mp4", clip_frames(astronaut, n=30, width=W, height=H))
    write_video(clips / "signer_b.mp4", clip_frames(astronaut, n=20, width=W, height=H))
    csv_path = write_csv(tmp_path / "train.csv", [row("signer", "signer_a", 1, 2, "One."), row("signer", "signer_b", 3, 4, "Two.")])
    sources = {p: p.read_bytes() for p in clips.iterdir()}
    out = tmp_path / "data"
    args = ["--csv", csv_path, "--clips", clips, "--out", out, "--workers", 1, "--signer-crop", "--short-side", 96]
    rc, text = prepare(*args)
    assert rc == 0, text
    rows = read_manifest(out / "train.tsv").rows
    assert [r.video.split("/")[0] for r in rows] == ["clips", "clips"]  # the re-encoded clips in the data root
    assert all((out / r.video).parent.parent == out / "clips" for r in rows)
    assert [(r.n_frames, r.width, r.height) for r in rows] == [(30, 96, 96), (20, 96, 96)]
    assert_manifest_matches_files(out, rows)
    assert {p: p.read_bytes() for p in clips.iterdir()} == sources  # the sources are untouched
    rep = report(out)
    assert rep["clips"] == {"re-encoded": 2} and rep["signer_crop"]["fallback"] == 0
    rc, text = prepare(*args)
    assert rc == 0 and report(out)["clips"] == {"already done": 2}
    # without --signer-crop the cutting options are still refused for pre-cut clips
    rc, _ = prepare("--csv", csv_path, "--clips", clips, "--out", out, "--short-side", 96)
    assert rc == 2
    rc, _ = prepare("--csv", csv_path, "--clips", clips, "--out", out, "--signer-crop-every", 4)
    assert rc == 2


def test_manifests_carry_width_height_and_file_size(videos, tmp_path):
    # the cut path, stream copy and re-encoding both
    csv_path = write_csv(tmp_path / "train.csv", [row("signer", "signer_0", 0.0, 1.0, "Copied."), row("signer", "signer_1", 1.3, 2.0, "Encoded.")])
    out = tmp_path / "cut"
    assert prepare("--csv", csv_path, "--videos", videos, "--out", out, "--workers", 1)[0] == 0
    rows = read_manifest(out / "train.tsv").rows
    assert report(out)["clips"] == {"copied": 1, "re-encoded": 1}
    assert [(r.width, r.height) for r in rows] == [(W, H), (W, H)]
    assert_manifest_matches_files(out, rows)
    # re-run (clips already done): the same facts
    before = (out / "train.tsv").read_text()
    assert prepare("--csv", csv_path, "--videos", videos, "--out", out, "--workers", 1)[0] == 0
    assert (out / "train.tsv").read_text() == before
    # the pre-cut path: the facts of the clips the manifest points to
    clips = tmp_path / "precut"
    write_video(clips / "a_0.mp4", [np.full((36, 64, 3), 90, np.uint8)] * 7)
    csv_path = write_csv(tmp_path / "pre.csv", [row("a", "a_0", 0, 1, "Pre-cut.")])
    out = tmp_path / "pre"
    assert prepare("--csv", csv_path, "--clips", clips, "--out", out, "--split", "train")[0] == 0
    (r,) = read_manifest(out / "train.tsv").rows
    assert (r.width, r.height, r.n_frames) == (64, 36, 7)
    assert_manifest_matches_files(out, [r])


# ----------------------------------------------------------------------------- long clips in the report
def test_long_clip_statistics_follow_the_data_config(tmp_path):
    # clips of 1, 2, 3, 5 s at 25 fps; windows of 8 frames, every 2nd grid frame = 0.64 s, stride 4
    clips = tmp_path / "precut"
    for name, seconds in (("c_1", 1), ("c_2", 2), ("c_3", 3), ("c_5", 5)):
        write_video(clips / f"{name}.mp4", [np.full((16, 16, 3), 90, np.uint8)] * (seconds * FPS))
    csv_path = write_csv(tmp_path / "train.csv", [row("c", n, 0, 1, f"Clip {n}.") for n in ("c_1", "c_2", "c_3", "c_5")])
    out = tmp_path / "data"
    # no config.yaml yet: the defaults (10.24 s windows) are used and the report says so
    rc, text = prepare("--csv", csv_path, "--clips", clips, "--out", out, "--split", "train")
    assert rc == 0, text
    w = report(out)["windows"]
    assert "defaults" in w["settings_from"] and w["window_seconds"] == 10.24
    assert (w["clips"], w["longer_than_one_window"], w["over_max_windows"]) == (4, 0, 0)
    assert "windows of 10.24 s (data config defaults" in text

    cfg = VideoDataConfig(num_frames=8, sampling_rate=2, window_stride=4, max_windows=3, long_clips="stretch")
    cfg.save(out)
    rc, text = prepare("--csv", csv_path, "--clips", clips, "--out", out, "--split", "train")
    assert rc == 0, text
    w = report(out)["windows"]
    assert w["settings_from"] == str(out / "config.yaml") and w["window_seconds"] == 0.64
    # sampled frames: 13, 25, 38, 63 -> windows 1 + ceil((n - 8) / 4): 3, 6, 9, 15
    assert w["windows_needed"] == {"1": 0, "2": 0, "3": 1, ">3": 3}
    assert (w["longer_than_one_window"], w["share_longer_than_one_window"], w["over_max_windows"]) == (4, 1.0, 3)
    assert w["long_clips"] == "stretch" and w["affected_by_long_clips"] == 3 and "stretched" in w["long_clips_effect"]
    assert "4 of 4 clips (100.0%) longer than one" in text and "3 clips need more than max_windows=3" in text

    cfg.max_windows, cfg.num_frames, cfg.window_stride = 4, 16, 8
    cfg.long_clips = "truncate"
    cfg.save(out)
    assert prepare("--csv", csv_path, "--clips", clips, "--out", out, "--split", "train")[0] == 0
    w = report(out)["windows"]
    # 13 sampled frames fit one window of 16; 25, 38, 63 -> 3, 4, 7 windows
    assert w["windows_needed"] == {"1": 1, "2": 0, "3": 1, "4": 1, ">4": 1}
    # truncate cuts every clip longer than one window, not only those over max_windows
    assert w["over_max_windows"] == 1 and w["affected_by_long_clips"] == 3 and "never seen" in w["long_clips_effect"]
    assert yaml.safe_load((out / "config.yaml").read_text())["long_clips"] == "truncate"  # kept as it was


def test_long_clip_policies_in_the_report():
    s = WindowSettings(target_fps=25, num_frames=8, sampling_rate=2, window_stride=4, max_windows=2, long_clips="drop")
    rep = SplitReport("train", "full videos", ["x.csv"], windows=s, windows_from="test")
    for windows in (1, 1, 2, 3, 7):
        rep.keep(1.0, "a caption", "re-encoded", windows=windows)
    w = rep.windows_summary()
    assert w["windows_needed"] == {"1": 2, "2": 1, ">2": 2}
    assert (w["longer_than_one_window"], w["share_longer_than_one_window"], w["over_max_windows"]) == (3, 0.6, 2)
    assert w["affected_by_long_clips"] == 2 and "left out" in w["long_clips_effect"]
    assert "windows of 0.64 s (test): 3 of 5 clips (60.0%) longer than one" in rep.summary()


def test_the_blurrer_and_the_signer_crop_share_one_detector():
    from ssvp_slt.prep.face_blur import FaceBlurrer

    assert isinstance(FaceBlurrer().detector, FaceDetector)
    assert isinstance(sc.SignerBoxFinder().detector, FaceDetector)
    source = (REPO_ROOT / "ssvp_slt" / "prep" / "signer_crop.py").read_text()
    assert "CascadeClassifier" not in source and "detectMultiScale" not in source
