"""Tests of the synthetic corpus in How2Sign's official layout: full videos + realigned CSVs."""

import csv
import importlib.util
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import av
import numpy as np
import pytest

from ssvp_slt.synthetic import full_videos as fv
from ssvp_slt.synthetic.corpus import CSV_COLUMNS, SPLITS, plan_sample
from ssvp_slt.synthetic.grammar import caption_text, normalise_caption, sample_splits
from ssvp_slt.synthetic.signer import GESTURES, PLACES, REST_PLACE, render_plan
from test_synthetic import classify_frame, hand_mask

REPO = Path(__file__).resolve().parents[1]
SIZES = dict(n_train=20, n_val=3, n_test=3)
SEED, FPS, SIZE = 4, 25, 64


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]], rows[1:]


def decode(path):
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert float(stream.average_rate) == FPS
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(stream)])


def frame_range(row, end=None):
    """The frames a row covers: round(START * fps) <= t < round(END * fps)."""
    end = float(row["END_REALIGNED"]) if end is None else end
    return int(round(float(row["START_REALIGNED"]) * FPS)), int(round(end * FPS))


@pytest.fixture(scope="module")
def full_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn_full")
    summary = fv.render_full_videos(out, seed=SEED, size=SIZE, fps=FPS, workers=2, **SIZES)
    raw = out / "raw"
    rows = {s: read_csv(raw / f"how2sign_realigned_{s}.csv")[1] for s in SPLITS}
    broken = json.loads((raw / "broken_rows.json").read_text())
    videos = {p.stem: decode(p) for p in sorted((raw / "videos").glob("*.mp4"))}
    return out, summary, rows, broken, videos


def broken_kinds(broken):
    return {(b["split"], b["SENTENCE_NAME"]): b["kind"] for b in broken}


def good_rows(split, rows, broken):
    """The split's good rows (end_past_video_end rows included), in CSV order."""
    kinds = broken_kinds(broken)
    return [r for r in rows[split] if kinds.get((split, r["SENTENCE_NAME"])) in (None, fv.END_PAST_VIDEO_END)]


def test_csv_header_names_and_captions(full_corpus):
    out, summary, rows, broken, _ = full_corpus
    captions = dict(zip(SPLITS, sample_splits(SIZES["n_train"], SIZES["n_val"], SIZES["n_test"], SEED)))
    names = set()
    video_ids = defaultdict(set)
    for split in SPLITS:
        header, _, raw_rows = read_csv(out / "raw" / f"how2sign_realigned_{split}.csv")
        assert tuple(header) == CSV_COLUMNS
        assert all(len(r) == len(CSV_COLUMNS) for r in raw_rows)
        for row in rows[split]:
            vid = row["VIDEO_ID"]
            assert re.fullmatch(r"synv\d{5}", vid)
            assert row["VIDEO_NAME"] == f"{vid}-rgb_front"
            assert re.fullmatch(rf"{vid}_\d+", row["SENTENCE_ID"])
            assert row["SENTENCE_NAME"] == f"{row['SENTENCE_ID']}-rgb_front"
            for col in ("START_REALIGNED", "END_REALIGNED"):
                assert re.fullmatch(r"\d+\.\d\d", row[col]), row[col]  # seconds, 2 decimals
            assert row["SENTENCE_NAME"] not in names
            names.add(row["SENTENCE_NAME"])
            video_ids[vid].add(split)
        # the good rows are the requested sentences, in order, written like How2Sign captions
        good = good_rows(split, rows, broken)
        assert [r["SENTENCE"] for r in good] == [caption_text(w) for w in captions[split]]
        assert [normalise_caption(r["SENTENCE"]) for r in good] == captions[split]
        n_broken_extra = sum(1 for b in broken if b["split"] == split and b["kind"] != fv.END_PAST_VIDEO_END)
        assert len(rows[split]) == len(captions[split]) + n_broken_extra == summary.rows[split]
    assert all(len(s) == 1 for s in video_ids.values()), "a video id is used by two splits"
    assert summary.good == {"train": 20, "val": 3, "test": 3}


def test_rows_inside_their_video_in_order(full_corpus):
    _, summary, rows, broken, videos = full_corpus
    kinds = broken_kinds(broken)
    assert sum(summary.videos.values()) == len(videos) == summary.rendered
    assert summary.total_frames == sum(len(v) for v in videos.values())
    for split in SPLITS:
        by_video = defaultdict(list)
        for r in rows[split]:
            by_video[r["VIDEO_NAME"]].append(r)
        assert len([v for v in by_video if v in videos]) == summary.videos[split]
        for name, vrows in by_video.items():
            if name not in videos:
                continue
            duration = len(videos[name]) / FPS
            spans = []
            for r in vrows:
                start, end = float(r["START_REALIGNED"]), float(r["END_REALIGNED"])
                # frame-aligned times
                assert abs(start * FPS - round(start * FPS)) < 1e-6
                if kinds.get((split, r["SENTENCE_NAME"])) == fv.END_PAST_VIDEO_END:
                    assert r is vrows[-1], "end_past_video_end is the last sentence of its video"
                    assert duration + 0.5 - 1e-6 <= end <= duration + 2.0 + 1e-6
                    end = next(b["true_end"] for b in broken if b["SENTENCE_NAME"] == r["SENTENCE_NAME"])
                assert abs(end * FPS - round(end * FPS)) < 1e-6
                assert 0 <= start < end <= duration
                spans.append((start, end))
            # in order, not overlapping, with a pause before the first and after the last sentence
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), (name, spans)
            assert spans[0][0] > 0 and spans[-1][1] < duration


def test_row_frames_are_the_clip_renderers_frames(full_corpus):
    """Cutting a video at a good row's timestamps gives the clip layout's frames of that sentence."""
    _, _, rows, broken, videos = full_corpus
    layout = fv.plan_full_corpus(seed=SEED, size=SIZE, fps=FPS, **SIZES)
    specs = {v.VIDEO_NAME: v for v in layout.videos}
    checked = 0
    for split in SPLITS:
        for i, row in enumerate(good_rows(split, rows, broken)):
            words = normalise_caption(row["SENTENCE"])
            end = None
            b = [b for b in broken if b["SENTENCE_NAME"] == row["SENTENCE_NAME"]]
            if b:
                end = b[0]["true_end"]
            t0, t1 = frame_range(row, end)
            decoded = videos[row["VIDEO_NAME"]][t0:t1]
            # the clip layout's plan of sentence i of the split, in the video's signer colours
            clip = plan_sample(words, SEED, split, i, SIZE)
            assert t1 - t0 == clip.n_frames
            full = specs[row["VIDEO_NAME"]].plan
            clip.background, clip.skin, clip.shirt = full.background, full.skin, full.shirt
            expected = render_plan(clip)
            rendered = render_plan(full)[t0:t1]
            assert np.array_equal(rendered, expected), "the full video's frames differ before encoding"
            err = np.abs(decoded.astype(np.int16) - expected).mean()
            assert err < 6.0, err
            for w, s, e in clip.spans:
                # every word is readable from the decoded video: the hand sits at the word's place
                ys, xs = np.nonzero(hand_mask(decoded[(s + e) // 2]))
                px, py = PLACES[GESTURES[w][1]]
                assert abs(xs.mean() - px) < 7 and abs(ys.mean() - py) < 7, (row["SENTENCE_NAME"], w)
                # and the video's frame (before lossy encoding) identifies exactly the word
                shape, place, iou = classify_frame(rendered[(s + e) // 2], SIZE)
                assert iou > 0.99 and (shape, place) == GESTURES[w][:2], (row["SENTENCE_NAME"], w, shape, place)
            checked += 1
    assert checked == sum(SIZES.values())


def test_pauses_show_the_rest_pose(full_corpus):
    _, _, rows, _, videos = full_corpus
    for split in SPLITS:
        covered = defaultdict(set)
        for r in rows[split]:
            t0, t1 = frame_range(r)
            covered[r["VIDEO_NAME"]].update(range(t0, t1))
        for name, ts in covered.items():
            if name not in videos:
                continue
            pauses = [t for t in range(len(videos[name])) if t not in ts]
            assert pauses
            for t in pauses:
                ys, xs = np.nonzero(hand_mask(videos[name][t]))
                assert abs(xs.mean() - REST_PLACE[0]) < 4 and abs(ys.mean() - REST_PLACE[1]) < 4, (name, t)


def test_broken_rows_are_exactly_the_recorded_ones(full_corpus):
    out, summary, rows, broken, videos = full_corpus
    recorded = broken_kinds(broken)
    assert len(recorded) == len(broken)
    found = {}
    for split in SPLITS:
        for r in rows[split]:
            key = (split, r["SENTENCE_NAME"])
            problems = []
            if not (out / "raw" / "videos" / f"{r['VIDEO_NAME']}.mp4").exists():
                problems.append(fv.MISSING_VIDEO)
                assert r["VIDEO_NAME"] not in videos
            elif float(r["END_REALIGNED"]) > len(videos[r["VIDEO_NAME"]]) / FPS:
                problems.append(fv.END_PAST_VIDEO_END)
            if not r["SENTENCE"].strip():
                problems.append(fv.EMPTY_CAPTION)
            assert len(problems) <= 1, (key, problems)  # one defect per row
            if problems:
                found[key] = problems[0]
    assert found == recorded
    counts = Counter((b["split"], b["kind"]) for b in broken)
    for split in SPLITS:
        for kind in fv.BROKEN_KINDS:
            assert counts[(split, kind)] == fv.BROKEN_PER_SPLIT[split], (split, kind)
        assert summary.broken[split] == {k: fv.BROKEN_PER_SPLIT[split] for k in fv.BROKEN_KINDS}
    for b in broken:
        if b["kind"] == fv.END_PAST_VIDEO_END:
            # recoverable: the sentence's real frames all lie in the video
            duration = len(videos[b["VIDEO_NAME"]]) / FPS
            assert b["true_end"] <= duration < b["END_REALIGNED"]
        if b["kind"] == fv.EMPTY_CAPTION:
            assert b["VIDEO_NAME"] in videos  # a real signed span, just without a caption


def test_val_and_test_captions_never_in_train(full_corpus):
    _, _, rows, _, _ = full_corpus
    captions = {s: {r["SENTENCE"] for r in rows[s] if r["SENTENCE"].strip()} for s in SPLITS}
    assert not captions["train"] & captions["val"]
    assert not captions["train"] & captions["test"]
    assert not captions["val"] & captions["test"]


def test_deterministic_independent_of_workers_and_skips_existing(full_corpus, tmp_path):
    out, _, _, _, videos = full_corpus
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "raw" / "videos").iterdir()}
    again = fv.render_full_videos(out, seed=SEED, size=SIZE, fps=FPS, workers=2, **SIZES)
    assert again.rendered == 0 and again.skipped == len(videos)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "raw" / "videos").iterdir()} == mtimes  # no temp files left
    single = fv.render_full_videos(tmp_path, seed=SEED, size=SIZE, fps=FPS, workers=1, **SIZES)
    for name in [f"how2sign_realigned_{s}.csv" for s in SPLITS] + ["broken_rows.json"]:
        assert (tmp_path / "raw" / name).read_bytes() == (out / "raw" / name).read_bytes(), name
    assert single.total_frames == again.total_frames
    assert sorted(p.stem for p in (tmp_path / "raw" / "videos").iterdir()) == sorted(videos)
    for name, frames in videos.items():
        assert np.array_equal(decode(tmp_path / "raw" / "videos" / f"{name}.mp4"), frames), name


def test_cli_full_layout_without_broken_rows(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("render_cli_full", REPO / "scripts" / "render_synthetic_corpus.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    argv = ["--out", str(tmp_path), "--layout", "full", "--train", "7", "--val", "1", "--test", "1", "--size", "32"]
    summary = cli.main(argv + ["--no-broken-rows", "--sentences-per-video", "2", "3", "--workers", "1"])
    assert summary.rows == summary.good == {"train": 7, "val": 1, "test": 1}
    assert "full-video corpus" in capsys.readouterr().out
    assert json.loads((tmp_path / "raw" / "broken_rows.json").read_text()) == []
    _, rows, _ = read_csv(tmp_path / "raw" / "how2sign_realigned_train.csv")
    per_video = Counter(r["VIDEO_NAME"] for r in rows)
    assert all(2 <= n <= 3 for n in per_video.values()) and sum(per_video.values()) == 7
    assert all((tmp_path / "raw" / "videos" / f"{v}.mp4").is_file() for v in per_video)
    assert not (tmp_path / "raw" / "clips").exists()
    with av.open(str(tmp_path / "raw" / "videos" / f"{rows[0]['VIDEO_NAME']}.mp4")) as c:
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == (32, 32)
    # the broken-row flags belong to the full layout only
    with pytest.raises(SystemExit):
        cli.main(["--out", str(tmp_path / "clips"), "--no-broken-rows"])


def test_same_good_sentences_with_and_without_broken_rows():
    a = fv.plan_full_corpus(seed=SEED, **SIZES)
    b = fv.plan_full_corpus(seed=SEED, broken_rows=False, **SIZES)
    assert a.captions == b.captions
    assert b.broken == []

    def good(layout):
        segments = [s for v in layout.videos for s in v.segments if s.index is not None]
        return [(s.split, s.index, s.end_frame - s.start_frame) for s in segments]

    assert good(a) == good(b)
