#!/usr/bin/env python
"""How well long videos are cut into sentences: measured on synthetic full videos, whose sentence
boundaries are known.

    # video only (motion + rest pose), on a rendered full-video corpus (render_synthetic_corpus.py --layout full)
    python scripts/evaluate_segmentation.py --raw CORPUS/raw [--split test] [--limit 40] [--json out.json]
    # ... and translation of the whole videos, cut three ways (true boundaries, pauses, fixed windows)
    python scripts/evaluate_segmentation.py --raw CORPUS/raw --checkpoint ckpt.pt
    # keypoints (hands at rest), on a synthetic layout planned in-process, exact and with detector noise
    python scripts/evaluate_segmentation.py --synthetic-keypoints how2sign --videos 40

Truth: each row's START_REALIGNED..END_REALIGNED (END clamped to the video's end, as preparation
does), rows with an empty caption included (they are signed sentences too), rows without a
video left out. A sentence counts as recovered when a segment overlaps it with IoU >= 0.5
(one-to-one); boundary errors are |start - START| and |end - END| of recovered pairs, in seconds
(ssvp_slt/inference/segment_eval.py). Translation: per video, the segments' texts joined,
scored against the video's captions joined (sacreBLEU, lower-cased; WER with jiwer).
"""

import argparse
import collections
import csv
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ssvp_slt.inference.segment_eval import SegmentationScore  # noqa: E402
from ssvp_slt.inference.segmentation import SegmentationSettings, pause_segmentation, segment, motion_frames  # noqa: E402
from ssvp_slt.inference.sources import FileSource  # noqa: E402


def read_truth(raw: Path, split: str, limit=None):
    """VIDEO_NAME -> [(start, end, caption)] in time order, for videos that exist."""
    by = collections.OrderedDict()
    with open(raw / f"how2sign_realigned_{split}.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if (raw / "videos" / f"{row['VIDEO_NAME']}.mp4").is_file():
                by.setdefault(row["VIDEO_NAME"], []).append(
                    (float(row["START_REALIGNED"]), float(row["END_REALIGNED"]), row["SENTENCE"].strip())
                )
    items = list(by.items())
    return items[:limit] if limit else items


def evaluate_videos(args) -> dict:
    raw = Path(args.raw)
    videos = read_truth(raw, args.split, args.limit)
    sentence = args.sentence_seconds or max(b - a for _, rows in videos for a, b, _ in rows)
    out = {"corpus": str(raw), "split": args.split, "videos": len(videos), "sentence_seconds": sentence}
    methods = {"pause": SegmentationSettings(method="pause"), "fixed": SegmentationSettings(method="fixed")}
    spans = {m: {} for m in methods}
    t0 = time.perf_counter()
    seconds = 0.0
    for m, s in methods.items():
        s = s.resolve(sentence, args.reach_seconds or 3 * sentence)
        score = SegmentationScore()
        t = time.perf_counter()
        for name, rows in videos:
            src = FileSource(raw / "videos" / f"{name}.mp4")
            duration = src.n_frames / src.fps
            truth = [(a, min(b, duration)) for a, b, _ in rows]
            seg = segment(src.n_frames, src.fps, s, grey_reader=lambda: motion_frames(src))
            pred = [(sp.start / src.fps, sp.end / src.fps) for sp in seg.spans]
            spans[m][name] = pred
            score.add(truth, pred)
            if m == "pause":
                seconds += duration
        out[m] = {**score.summary(), "settings": s.describe(m), "seconds": round(time.perf_counter() - t, 2)}
    out["video_seconds"] = round(seconds, 1)
    if args.checkpoint:
        out["translation"] = translate_videos(args, raw, videos, spans)
    out["elapsed_seconds"] = round(time.perf_counter() - t0, 1)
    return out


def translate_videos(args, raw, videos, spans) -> dict:
    import jiwer
    import sacrebleu

    from ssvp_slt.translate import SignTranslator

    translator = SignTranslator.from_checkpoint(args.checkpoint, args.data)
    paths = [str(raw / "videos" / f"{name}.mp4") for name, _ in videos]
    refs = [" ".join(c for _, _, c in rows if c).lower() for _, rows in videos]
    cuts = {
        "true boundaries": [[(a, b) for a, b, _ in rows] for _, rows in videos],
        "pauses (video)": [spans["pause"][name] for name, _ in videos],
        "fixed windows": [spans["fixed"][name] for name, _ in videos],
        "whole video, one segment": [[(0.0, 1e9)] for _ in videos],
    }
    durations = [FileSource(p).n_frames / FileSource(p).fps for p in paths]
    out = {}
    for label, given in cuts.items():
        if label == "fixed windows":  # as the CLI does it (the translator's window; overlap de-duplication)
            results = translator.translate(paths, 32, segmentation="fixed", workers=2)
        else:
            given = [[(a, min(b, d)) for a, b in g] for g, d in zip(given, durations)]
            results = translator.translate(paths, 32, spans=given, workers=2)
        hyps = [r.text.lower() for r in results]
        out[label] = {
            "bleu4": round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2),
            "wer": round(100 * jiwer.wer(refs, hyps), 2),
            "segments": sum(len(r.segments) for r in results),
        }
    return out


def evaluate_keypoints(args) -> dict:
    import numpy as np

    from ssvp_slt.synthetic import full_videos as fv
    from ssvp_slt.synthetic.keypoint_noise import REALISTIC, apply

    kw = {"frame_size": (640, 360)} if args.synthetic_keypoints == "how2sign" else {}
    layout = fv.plan_full_corpus(n_train=12, n_val=2, n_test=args.videos, seed=args.seed, style=args.synthetic_keypoints,
                                 broken_rows=False, **kw)
    videos = [v for v in layout.videos if v.split == "test" and v.plan is not None]
    fps = float(layout.fps)
    sentence = max((g.end_frame - g.start_frame) / fps for v in videos for g in v.segments)
    s = SegmentationSettings(method="pause").resolve(sentence, 3 * sentence)
    out = {"style": args.synthetic_keypoints, "videos": len(videos), "sentence_seconds": sentence,
           "settings": s.describe("pause")}
    for label, noise in (("exact keypoints", None), ("detector noise (keypoint_noise.REALISTIC)", REALISTIC)):
        score, rng = SegmentationScore(), np.random.default_rng(args.seed)
        for v in videos:
            kp = layout.style.keypoints(v.plan)
            if noise is not None:
                kp, person = apply(noise, kp, rng, v.plan.width, v.plan.height)
                kp[~person] = 0
            seg = pause_segmentation(v.n_frames, fps, s, keypoints=kp, keypoint_fps=fps)
            score.add([(g.start_frame / fps, g.end_frame / fps) for g in v.segments], [(p.start / fps, p.end / fps) for p in seg.spans])
        out[label] = score.summary()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--raw", help="a rendered full-video corpus's raw/ folder (videos/ and the realigned CSVs)")
    src.add_argument("--synthetic-keypoints", choices=("simple", "how2sign"), help="plan a synthetic layout and segment its keypoints")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, help="first N videos only")
    p.add_argument("--videos", type=int, default=40, help="--synthetic-keypoints: test sentences to plan")
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--sentence-seconds", type=float, help="the model's sentence length (default: the longest true sentence)")
    p.add_argument("--reach-seconds", type=float, help="the model's reach (default: 3 x the sentence length)")
    p.add_argument("--checkpoint", help="also translate the whole videos, cut three ways")
    p.add_argument("--data", help="the checkpoint's data root (default: recorded in it)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    out = evaluate_videos(args) if args.raw else evaluate_keypoints(args)
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
