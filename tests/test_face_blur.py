"""Face blurring (ssvp_slt.prep.face_blur) on a real face: scikit-image's astronaut photo,
animated into a short clip by sliding a 256x256 window over it (1 px down, 2 px left per frame)."""

import os
import socket

import cv2
import numpy as np
import pytest
import skimage.data as skdata

from ssvp_slt.prep import face_blur
from ssvp_slt.prep.face_blur import FaceBlurrer, blur_faces

N_FRAMES = 20
SIZE = 256


def offset(i):
    return i, 2 * i  # (dy, dx) of frame i's window in the source image


@pytest.fixture(scope="module")
def source():
    img = cv2.resize(skdata.astronaut(), (300, 300), interpolation=cv2.INTER_AREA)
    # the astronaut's face, found once with the plain frontal cascade (known to be there)
    clf = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    faces = clf.detectMultiScale(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), 1.1, 8, minSize=(40, 40))
    assert len(faces) == 1, faces
    x, y, w, h = (int(v) for v in faces[0])
    assert 90 < x < 120 and 30 < y < 50 and 50 < w < 70, faces  # where the face is in this image
    return img, (x, y, x + w, y + h)


@pytest.fixture(scope="module")
def clip(source):
    img, _ = source
    return [np.ascontiguousarray(img[dy : dy + SIZE, dx : dx + SIZE]) for dy, dx in map(offset, range(N_FRAMES))]


def face_box(source, i, shrink=0.15):
    """The face's box (x0, y0, x1, y1) in frame i, shrunk to its inside."""
    _, (x0, y0, x1, y1) = source
    dy, dx = offset(i)
    s = int(shrink * (x1 - x0))
    return x0 - dx + s, y0 - dy + s, x1 - dx - s, y1 - dy - s


def detail(frame, box):
    """Variance of the Laplacian of the grey crop: high for a sharp face, ~0 once blurred."""
    x0, y0, x1, y1 = box
    gray = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def is_blurred(src, out, box, factor=20.0):
    return detail(out, box) * factor < detail(src, box)


def region_mask(shape, regions):
    mask = np.zeros(shape[:2], dtype=bool)
    for x0, y0, x1, y1 in regions:
        mask[y0:y1, x0:x1] = True
    return mask


def run(blurrer, frames):
    outs, regions = [], []
    for f in frames:
        outs.append(blurrer(f))
        regions.append(list(blurrer.last_regions))
    return outs, regions


@pytest.fixture(scope="module")
def blurred(clip):
    blurrer = FaceBlurrer()
    outs, regions = run(blurrer, clip)
    return outs, regions, blurrer.stats


def test_cascades_ship_inside_cv2_and_nothing_is_downloaded(source, clip, monkeypatch):
    assert int(cv2.__version__.split(".")[0]) == 4  # 5.x wheels ship no cascades
    cv2_dir = os.path.dirname(os.path.realpath(cv2.__file__))
    for name in (face_blur.FRONTAL_CASCADE, face_blur.PROFILE_CASCADE):
        path = os.path.realpath(face_blur.cascade_path(name))
        assert path.startswith(cv2_dir + os.sep) and os.path.isfile(path)

    def no_network(*args, **kwargs):
        raise AssertionError("the face blurrer tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    blurrer = FaceBlurrer()
    out = blurrer(clip[0])
    assert blurrer.stats["frames_with_detection"] == 1 and is_blurred(clip[0], out, face_box(source, 0))


def test_face_is_blurred_in_every_frame(source, clip, blurred):
    outs, _, stats = blurred
    for i, (src, out) in enumerate(zip(clip, outs)):
        assert out.shape == src.shape and out.dtype == np.uint8
        box = face_box(source, i)
        assert is_blurred(src, out, box), (i, detail(src, box), detail(out, box))
    assert stats == {"frames": N_FRAMES, "frames_with_detection": N_FRAMES, "frames_blurred": N_FRAMES}
    share = stats["frames_with_detection"] / stats["frames"]
    print(f"share of frames with a detected face on the astronaut clip: {share:.2f}")


def test_pixels_outside_blurred_regions_are_bit_identical(source, clip, blurred):
    outs, regions, _ = blurred
    for i, (src, out, regs) in enumerate(zip(clip, outs, regions)):
        mask = region_mask(src.shape, regs)
        np.testing.assert_array_equal(out[~mask], src[~mask], err_msg=f"frame {i}")
        # the face's region is there, enlarged by the margin, and no larger than 2x the face
        fx0, fy0, fx1, fy1 = face_box(source, i, shrink=0.0)
        fw = fx1 - fx0
        assert any(
            x0 <= fx0 - 0.2 * fw and y0 <= fy0 - 0.2 * fw and x1 >= fx1 + 0.2 * fw and y1 >= fy1 + 0.2 * fw
            and x0 >= fx0 - fw and x1 <= fx1 + fw
            for x0, y0, x1, y1 in regs
        ), (i, regs, (fx0, fy0, fx1, fy1))
        # far from the face (the flag, lower left) nothing moved
        np.testing.assert_array_equal(out[150:, :60], src[150:, :60])


def missing_on(blurrer, frames_missed):
    """Make the detector return nothing on the given frame indices; count its calls."""
    real = blurrer._detect
    calls = []

    def detect(frame):
        calls.append(len(calls))
        return [] if blurrer._index in frames_missed else real(frame)

    blurrer._detect = detect
    return calls


@pytest.mark.parametrize("hold_frames", [12, 0])
def test_hold_keeps_face_blurred_when_the_detector_misses(source, clip, hold_frames):
    blurrer = FaceBlurrer(hold_frames=hold_frames)
    missing_on(blurrer, {5, 6, 7})
    outs, _ = run(blurrer, clip[:10])
    for i in range(10):
        held = i in (5, 6, 7)
        if hold_frames or not held:
            assert is_blurred(clip[i], outs[i], face_box(source, i)), i
        else:  # the control: without the hold the face is exposed on the missed frames
            x0, y0, x1, y1 = face_box(source, i)
            np.testing.assert_array_equal(outs[i][y0:y1, x0:x1], clip[i][y0:y1, x0:x1])
    assert blurrer.stats == {"frames": 10, "frames_with_detection": 7, "frames_blurred": 10 if hold_frames else 7}


def test_hold_covers_a_frame_with_the_face_blanked_out(source, clip):
    frames = [f.copy() for f in clip[:6]]
    x0, y0, x1, y1 = face_box(source, 3, shrink=-0.1)
    frames[3][y0:y1, x0:x1] = frames[3][y0:y1, x0:x1].mean(axis=(0, 1)).astype(np.uint8)
    blurrer = FaceBlurrer()
    assert not any(face_blur._iou(d, (x0, y0, x1, y1)) > 0 for d in blurrer._detect(frames[3]))  # really missed
    blurrer.reset()
    outs, regions = run(blurrer, frames)
    assert any(r[0] <= x0 and r[1] <= y0 and r[2] >= x1 and r[3] >= y1 for r in regions[3]), regions[3]
    for i in (2, 4):
        assert is_blurred(frames[i], outs[i], face_box(source, i))
    assert blurrer.stats["frames_blurred"] == 6


def test_hold_expires_and_faceless_frames_are_untouched(clip):
    coffee = skdata.coffee()
    blurrer = FaceBlurrer(hold_frames=2)
    outs, regions = run(blurrer, clip[:3] + [coffee] * 5)
    assert [bool(r) for r in regions] == [True] * 3 + [True, True, False, False, False]
    for out in outs[5:]:
        np.testing.assert_array_equal(out, coffee)
    assert blurrer.stats == {"frames": 8, "frames_with_detection": 3, "frames_blurred": 5}


@pytest.mark.parametrize("kind", ["coffee", "flat"])
def test_frame_without_a_face_is_returned_unchanged(kind):
    frame = skdata.coffee() if kind == "coffee" else np.full((120, 160, 3), 128, np.uint8)
    out, stats = blur_faces([frame, frame])
    for o in out:
        assert o.shape == frame.shape and o.dtype == np.uint8
        np.testing.assert_array_equal(o, frame)
    assert stats == {"frames": 2, "frames_with_detection": 0, "frames_blurred": 0}


def test_detect_every_runs_the_detector_every_nth_frame_and_holds_between(source, clip):
    blurrer = FaceBlurrer(detect_every=4)
    calls = missing_on(blurrer, set())
    outs, _ = run(blurrer, clip[:9])
    assert len(calls) == 3  # frames 0, 4, 8
    for i in range(9):
        assert is_blurred(clip[i], outs[i], face_box(source, i)), i
    assert blurrer.stats == {"frames": 9, "frames_with_detection": 3, "frames_blurred": 9}


def scripted(blurrer, boxes_per_frame):
    """Replace the detector by a script: frame i 'detects' boxes_per_frame[i]."""
    blurrer._detect = lambda frame: list(boxes_per_frame[blurrer._index])


def expand(box, margin=0.25):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return x0 - margin * w, y0 - margin * h, x1 + margin * w, y1 + margin * h


def test_smoothing_steadies_a_jittering_box():
    frame = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    raw = [(100 + j, 60 + j, 160 + j, 120 + j) for j in ([4, -4] * 10)]
    spread = {}
    for smoothing in (0.0, 0.6):
        blurrer = FaceBlurrer(smoothing=smoothing)
        scripted(blurrer, [[b] for b in raw])
        _, regions = run(blurrer, [frame] * len(raw))
        assert all(len(r) == 1 for r in regions)
        x0s = np.array([r[0][0] for r in regions[5:]])
        spread[smoothing] = x0s.max() - x0s.min()
        if smoothing == 0.0:  # no smoothing: the region is exactly the enlarged detection
            assert regions[3][0] == tuple(int(v) for v in expand(raw[3]))
    assert spread[0.0] == 8 and spread[0.6] <= spread[0.0] / 3, spread  # raw jitter is +-4 px


def test_region_keeps_up_with_a_moving_face_and_switches_to_a_new_place():
    frame = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    moving = [(40 + 15 * i, 40, 90 + 15 * i, 90) for i in range(6)]  # 15 px/frame, heavily smoothed
    far = (230, 150, 290, 210)
    boxes = [[b] for b in moving] + [[far]] * 3 + [[]] * 4
    blurrer = FaceBlurrer(smoothing=0.9, hold_frames=3)
    scripted(blurrer, boxes)
    _, regions = run(blurrer, [frame] * len(boxes))
    for i, b in enumerate(moving):  # the smoothed box lags, yet the region always covers the face
        assert any(r[0] <= b[0] and r[1] <= b[1] and r[2] >= b[2] and r[3] >= b[3] for r in regions[i]), (i, regions[i])
    # frame 6: the face re-appears far away -> blurred there at once (no smoothing from the old place),
    # the old place is held for hold_frames frames, then dropped
    assert tuple(int(v) for v in expand(far)) in [tuple(r) for r in regions[6]]
    assert [len(r) for r in regions[6:]] == [2, 2, 2, 1, 1, 1, 0]
    assert blurrer.stats == {"frames": 13, "frames_with_detection": 9, "frames_blurred": 12}


def test_two_faces_are_both_blurred(source, clip):
    pair = np.ascontiguousarray(np.concatenate([clip[0], clip[10]], axis=1))
    blurrer = FaceBlurrer()
    out = blurrer(pair)
    assert is_blurred(pair, out, face_box(source, 0))
    x0, y0, x1, y1 = face_box(source, 10)
    assert is_blurred(pair, out, (x0 + SIZE, y0, x1 + SIZE, y1))
    mask = region_mask(pair.shape, blurrer.last_regions)
    np.testing.assert_array_equal(out[~mask], pair[~mask])


def test_reset_starts_a_new_clip(clip):
    blurrer = FaceBlurrer()
    blurrer(clip[0])
    assert blurrer.stats["frames_blurred"] == 1
    blurrer.reset()
    assert blurrer.stats == {"frames": 0, "frames_with_detection": 0, "frames_blurred": 0}
    flat = np.full_like(clip[0], 90)
    np.testing.assert_array_equal(blurrer(flat), flat)  # no held box from the previous clip
    assert blurrer.last_regions == []


def test_input_is_not_modified_and_bad_input_is_rejected(clip):
    src = clip[0].copy()
    out = FaceBlurrer()(src)
    np.testing.assert_array_equal(src, clip[0])
    assert out is not src
    blurrer = FaceBlurrer()
    for bad in (np.zeros((32, 32), np.uint8), np.zeros((32, 32, 4), np.uint8), np.zeros((32, 32, 3), np.float32)):
        with pytest.raises(ValueError):
            blurrer(bad)
    for kwargs in ({"margin": -1}, {"hold_frames": -1}, {"smoothing": 1.0}, {"detect_every": 0}, {"min_face_fraction": 0}, {"blur_strength": 0}):
        with pytest.raises(ValueError):
            FaceBlurrer(**kwargs)


class ScriptedCascade:
    """Stands in for a cascade: records calls, returns the next scripted list of (x, y, w, h)."""

    def __init__(self, script=None):
        self.script = list(script or [])
        self.calls = 0

    def detectMultiScale(self, *args, **kwargs):
        self.calls += 1
        return self.script.pop(0) if self.script else ()


def test_profile_cascades_run_only_when_needed():
    frame = np.full((224, 224, 3), 100, np.uint8)
    face, elsewhere = [(80, 40, 60, 60)], [(10, 150, 40, 40)]
    blurrer = FaceBlurrer()
    blurrer.detector.frontal = ScriptedCascade([face] * 6 + [elsewhere] + [()] * 2)
    blurrer.detector.profile = ScriptedCascade()
    calls = []
    for i in range(9):
        before = blurrer.detector.profile.calls
        blurrer(frame)
        calls.append((blurrer.detector.profile.calls - before) // 2)  # frame + mirrored frame
    # frames 0-5: the frontal cascade keeps finding the tracked face -> profile on runs 0 and 4 only;
    # frame 6: it finds a face elsewhere but lost the tracked one; frames 7-8: it finds nothing
    assert calls == [1, 0, 0, 0, 1, 0, 1, 1, 1]
    assert blurrer.stats == {"frames": 9, "frames_with_detection": 7, "frames_blurred": 9}
