#!/usr/bin/env python
"""Render a picture of the How2Sign-like synthetic style (for the README).

    python scripts/render_synthetic_examples.py [--out docs/synthetic_how2sign_frames.png] \
        [--seed 1] [--frame-size 640x360] [--tile-width 256] [--signers 6] [--keypoints]

The grid shows, in its upper rows, one frame in the middle of a sign for
several signers (each tile labelled with the word being signed), and in its
last row a few frames of one sentence over time (labelled with the time), so
the motion of the hands between signs can be seen. Frames are exactly what
``render_synthetic_corpus.py --style how2sign`` encodes (before H.264).

--keypoints draws the OpenPose keypoints that ``render_synthetic_corpus.py
--keypoints`` writes for the same frames over them (the person's right side
and right hand in orange, the left in blue, the face in white; hollow circles:
points marked as covered, with a low confidence), e.g.
``--out docs/synthetic_keypoints.png --keypoints``.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402

from ssvp_slt.synthetic import openpose as op  # noqa: E402
from ssvp_slt.synthetic.grammar import caption_text  # noqa: E402
from ssvp_slt.synthetic.how2sign_keypoints import CONFIDENCE, plan_keypoints  # noqa: E402
from ssvp_slt.synthetic.how2sign_style import iter_frames, plan_sentence  # noqa: E402
from ssvp_slt.synthetic.styles import parse_frame_size  # noqa: E402

# words whose signs differ in location, movement and hands (one per tile of the signer rows)
SHOWCASE = ("man", "big", "sees", "dog", "happy", "tall", "cat", "she", "car", "yes", "red", "runs")
SENTENCE = ("the", "man", "sees", "a", "big", "dog")


# upper-body limbs of BODY_25 (the rest is below the frame), as (from, to, side): side "R" / "L" / ""
LIMBS = [
    ("Neck", "Nose", ""), ("Nose", "REye", "R"), ("REye", "REar", "R"), ("Nose", "LEye", "L"), ("LEye", "LEar", "L"),
    ("Neck", "RShoulder", "R"), ("RShoulder", "RElbow", "R"), ("RElbow", "RWrist", "R"),
    ("Neck", "LShoulder", "L"), ("LShoulder", "LElbow", "L"), ("LElbow", "LWrist", "L"),
]  # fmt: skip
COLOURS = {"R": (255, 140, 0), "L": (40, 120, 255), "": (255, 255, 255)}


def _draw_keypoints(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A frame with its (137, 3) keypoints drawn over it: limbs, hand bones, face points."""
    frame = frame.copy()
    r = max(1, int(round(frame.shape[0] / 240)))
    hidden = CONFIDENCE["hidden"] + 1e-6

    def pt(p):
        return int(round(p[0])), int(round(p[1]))

    def dot(p, colour, size):
        if p[2] > 0:
            cv2.circle(frame, pt(p), size, colour, -1 if p[2] > hidden else 1, cv2.LINE_AA)

    body = points[op.POSE]
    for a, b, side in LIMBS:
        pa, pb = body[op.BODY[a]], body[op.BODY[b]]
        if pa[2] > 0 and pb[2] > 0:
            cv2.line(frame, pt(pa), pt(pb), COLOURS[side], r, cv2.LINE_AA)
    for p in points[op.FACE]:
        dot(p, COLOURS[""], max(1, r - 1))
    for part, side in ((op.HAND_RIGHT, "R"), (op.HAND_LEFT, "L")):
        hand = points[part]
        for digit in op.HAND_FINGERS:
            chain = [0] + [op.hand_point(digit, j) for j in range(4)]
            for a, b in zip(chain, chain[1:]):
                if hand[a, 2] > 0 and hand[b, 2] > 0:
                    cv2.line(frame, pt(hand[a]), pt(hand[b]), COLOURS[side], max(1, r - 1), cv2.LINE_AA)
        for p in hand:
            dot(p, COLOURS[side], r)
    return frame


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    tile = tile.copy()
    h = tile.shape[0]
    scale = max(0.35, h / 360.0)
    thick = max(1, int(round(scale * 1.5)))
    org = (int(6 * scale), int(h - 8 * scale))
    cv2.putText(tile, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(tile, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return tile


def _frames_at(plan, wanted):
    """The frames of a plan at the sorted indices ``wanted`` (rendering streams, so stop early)."""
    out, want = {}, set(wanted)
    for t, frame in enumerate(iter_frames(plan)):
        if t in want:
            out[t] = frame
            if len(out) == len(want):
                break
    return [out[t] for t in wanted]


def render_examples(
    seed: int = 1, frame_size=(640, 360), tile_width: int = 256, signers: int = 6, columns: int = 4, keypoints: bool = False
):
    """The grid as an (H, W, 3) uint8 RGB array (``keypoints``: with the keypoints drawn over it)."""
    width, height = frame_size
    tile_h = int(round(tile_width * height / width))

    def frames_at(plan, wanted):
        frames = _frames_at(plan, wanted)
        if keypoints:
            points = plan_keypoints(plan)
            frames = [_draw_keypoints(f, points[t]) for f, t in zip(frames, wanted)]
        return frames

    def tile(frame):
        return cv2.resize(frame, (tile_width, tile_h), interpolation=cv2.INTER_AREA)

    rows = []
    k = 0
    for r in range((signers + 1) // 2):
        row = []
        for c in range(columns):
            # two signers per row, each signing two showcase words
            signer = 2 * r + c // 2
            word = SHOWCASE[k % len(SHOWCASE)]
            k += 1
            plan = plan_sentence([word], np.random.default_rng([seed, signer, 17]), width, height)
            _, s, e = plan.spans[0]
            row.append(_label(tile(frames_at(plan, [s + (e - s) // 2])[0]), word))
        rows.append(np.concatenate(row, 1))
    # one sentence over time
    plan = plan_sentence(list(SENTENCE), np.random.default_rng([seed, 99, 17]), width, height)
    times = np.linspace(0, plan.n_frames - 1, columns + 2).round().astype(int)[1:-1]
    strip = [_label(tile(f), f"t={t / 25.0:.2f}s") for t, f in zip(times, frames_at(plan, list(times)))]
    rows.append(np.concatenate(strip, 1))
    grid = np.concatenate(rows, 0)
    return grid, caption_text(SENTENCE), plan.n_frames


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="docs/synthetic_how2sign_frames.png")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--frame-size", default="640x360", metavar="WxH")
    p.add_argument("--tile-width", type=int, default=256, help="width of one frame in the grid")
    p.add_argument("--signers", type=int, default=6, help="signers in the upper rows (two per row)")
    p.add_argument("--keypoints", action="store_true", help="draw the OpenPose keypoints over the frames")
    args = p.parse_args(argv)
    grid, sentence, n = render_examples(
        args.seed, parse_frame_size(args.frame_size), args.tile_width, args.signers, keypoints=args.keypoints
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise SystemExit(f"could not write {out}")
    print(f"wrote {out} ({grid.shape[1]}x{grid.shape[0]}); last row: {sentence!r} ({n} frames)")
    return out


if __name__ == "__main__":
    main()
