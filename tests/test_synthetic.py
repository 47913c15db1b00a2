"""Tests of the synthetic sign-language corpus: grammar, gestures, rendering and mp4 output."""

import csv
import importlib.util
from pathlib import Path

import av
import numpy as np
import pytest

from ssvp_slt.synthetic import corpus, grammar, signer
from ssvp_slt.synthetic.corpus import CSV_COLUMNS, SPLITS, clip_names, plan_sample, render_corpus
from ssvp_slt.synthetic.grammar import VOCAB, all_sentences, count_sentences, sample_splits
from ssvp_slt.synthetic.signer import GESTURES, HANDSHAPES, PLACES, plan_sentence, render_plan, render_sentence

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- grammar


def test_grammar_size_and_shape():
    assert 20 <= len(VOCAB) <= 24
    sentences = all_sentences()
    assert len(set(sentences)) == len(sentences) == count_sentences()
    assert count_sentences() >= 300
    assert all(3 <= len(s) <= 6 for s in sentences)
    assert {w for s in sentences for w in s} == set(VOCAB)
    assert all(w.isalpha() and w.islower() for w in VOCAB)
    # sampled sentences come from the grammar
    rng = np.random.default_rng(0)
    space = set(sentences)
    for _ in range(500):
        assert grammar.sample_sentence(rng) in space


@pytest.mark.parametrize("sizes", [(6, 2, 2), (1500, 100, 200)])
def test_splits_disjoint_and_cover_vocab(sizes):
    train, val, test = sample_splits(*sizes, seed=3)
    assert (len(train), len(val), len(test)) == sizes
    train_set = {tuple(s) for s in train}
    val_set, test_set = {tuple(s) for s in val}, {tuple(s) for s in test}
    assert not train_set & val_set
    assert not train_set & test_set
    assert not val_set & test_set
    assert len(val_set) == len(val) and len(test_set) == len(test)
    assert {w for s in train for w in s} == set(VOCAB)
    if sizes[0] >= 1000:
        assert len(train_set) > 500  # train is varied, not a few repeated sentences


def test_splits_deterministic():
    a = sample_splits(50, 10, 10, seed=5)
    assert a == sample_splits(50, 10, 10, seed=5)
    assert a != sample_splits(50, 10, 10, seed=6)


def test_splits_reject_impossible_sizes():
    with pytest.raises(ValueError):
        sample_splits(2, 2, 2, seed=1)  # too few train sentences to use every word
    with pytest.raises(ValueError):
        sample_splits(10, count_sentences(), 0, seed=1)


def test_caption_text_round_trip():
    words = ["the", "big", "dog", "sees", "a", "ball"]
    assert grammar.caption_text(words) == "The big dog sees a ball."
    assert grammar.normalise_caption(grammar.caption_text(words)) == words


# --------------------------------------------------------------------------- gestures


def test_gesture_table():
    assert set(GESTURES) == set(VOCAB)
    pairs = [(h, p) for h, p, _ in GESTURES.values()]
    assert len(set(pairs)) == len(pairs), "two words share (handshape, place)"
    assert len({h for h, _, _ in GESTURES.values()}) >= 4
    assert len({p for _, p, _ in GESTURES.values()}) >= 5
    assert len({m for _, _, m in GESTURES.values()}) >= 3
    # places are clearly separated (more than a hand's width apart)
    pts = np.array(list(PLACES.values()))
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    assert d[~np.eye(len(pts), dtype=bool)].min() >= 14


@pytest.mark.parametrize("size", [64, 128])
def test_handshapes_distinct_and_hand_sized(size):
    s = size / 64.0
    _, fills, outlines = signer._sprites(s)
    fills = fills[: len(HANDSHAPES)]
    for m in fills:
        ys, xs = np.nonzero(m)
        assert 10 * s <= max(np.ptp(ys), np.ptp(xs)) + 1 <= 14 * s
    # best overlap of two different shapes over all relative shifts stays well below a match
    k = int(round(3 * s))
    for i in range(len(fills)):
        for j in range(i + 1, len(fills)):
            best = 0.0
            for dy in range(-k, k + 1):
                for dx in range(-k, k + 1):
                    b = np.roll(np.roll(fills[j], dy, axis=0), dx, axis=1)
                    best = max(best, (fills[i] & b).sum() / (fills[i] | b).sum())
            assert best < 0.8, (HANDSHAPES[i], HANDSHAPES[j], best)


def hand_mask(frame):
    """Pixels of the yellow hand (skin, shirt, background and outline are all far from it)."""
    f = frame.astype(np.int16)
    return (f[..., 0] > 200) & (f[..., 1] > 190) & (f[..., 2] < 100)


def classify_frame(frame, size):
    """(handshape, place) read from one frame: exact sprite match, then nearest place."""
    mask = hand_mask(frame)
    ys, xs = np.nonzero(mask)
    assert len(ys), "no hand visible"
    s = size / 64.0
    r, fills, _ = signer._sprites(s)
    best = None
    for k, shape in enumerate(HANDSHAPES):
        ty, tx = np.nonzero(fills[k])
        # align the template's bounding box with the mask's
        cy, cx = ys.min() - ty.min() + r, xs.min() - tx.min() + r
        py, px = ty + cy - r, tx + cx - r
        inside = (py >= 0) & (py < mask.shape[0]) & (px >= 0) & (px < mask.shape[1])
        placed = np.zeros_like(mask)
        placed[py[inside], px[inside]] = True
        iou = (placed & mask).sum() / (placed | mask).sum()
        if best is None or iou > best[0]:
            best = (iou, shape, cx + 0.5, cy + 0.5)
    iou, shape, cx, cy = best
    x64, y64 = (cx - size / 2.0) / s + 32.0, cy / s
    place = min(PLACES, key=lambda p: (PLACES[p][0] - x64) ** 2 + (PLACES[p][1] - y64) ** 2)
    return shape, place, iou


@pytest.mark.parametrize("size", [64, 96])
def test_every_gesture_frame_identifies_its_word(size):
    """Each frame of a word's gesture shows exactly its handshape, nearest to its place."""
    lookup = {(h, p): w for w, (h, p, _) in GESTURES.items()}
    for seed in range(3):
        for w in VOCAB:
            frames, plan = render_sentence([w], np.random.default_rng([seed, VOCAB.index(w)]), size, size)
            (_, start, end), = plan.spans
            assert 9 <= end - start <= 13
            for t in range(start, end):
                shape, place, iou = classify_frame(frames[t], size)
                assert iou > 0.99, (w, t, shape, iou)
                assert lookup[(shape, place)] == w, (w, t, shape, place)


def test_clip_timing():
    words = ["the", "small", "cat", "likes", "a", "car"]
    plan = plan_sentence(words, np.random.default_rng(0))
    assert [w for w, _, _ in plan.spans] == words
    starts = [s for _, s, _ in plan.spans]
    ends = [e for _, _, e in plan.spans]
    # rest (3-5) + transition (2-3) before the first word, the same after the last
    assert 5 <= starts[0] <= 8
    assert 5 <= plan.n_frames - ends[-1] <= 8
    gaps = np.array(starts[1:]) - np.array(ends[:-1])
    assert np.all((gaps >= 2) & (gaps <= 3))
    durations = np.array(ends) - np.array(starts)
    assert np.all((durations >= 9) & (durations <= 13))
    # the rest pose is low at the side, away from every place
    rest = plan.xy[0]
    assert rest[1] > max(y for _, y in PLACES.values())


def test_render_deterministic_and_jittered():
    words = ["a", "red", "bird", "runs"]
    f1, p1 = render_sentence(words, np.random.default_rng(11))
    f2, p2 = render_sentence(words, np.random.default_rng(11))
    assert f1.dtype == np.uint8 and f1.shape[1:] == (64, 64, 3)
    assert np.array_equal(f1, f2)
    f3, p3 = render_sentence(words, np.random.default_rng(12))
    assert p3.spans != p1.spans or not np.array_equal(p3.xy, p1.xy)


def _gesture_frames(word, seed, n=9):
    """n frames evenly spread over the word's gesture, on a fixed background."""
    plan = plan_sentence([word], np.random.default_rng(seed))
    plan.background, plan.skin, plan.shirt = (100, 108, 116), (205, 158, 128), (40, 58, 125)
    frames = render_plan(plan)
    (_, start, end), = plan.spans
    return frames[np.linspace(start, end - 1, n).round().astype(int)].astype(np.float64)


def test_different_words_differ_more_than_jittered_same_word():
    # words at the same place (chin) differ only in handshape and path
    chin_words = [w for w, (_, p, _) in GESTURES.items() if p == "chin"]
    assert len(chin_words) >= 2
    for w in chin_words:
        for v in chin_words:
            if v == w:
                continue
            diff = np.abs(_gesture_frames(w, 1) - _gesture_frames(v, 1)).mean()
            assert diff > 2.0, (w, v, diff)
    # words at different places differ clearly
    a, b = _gesture_frames("the", 0), _gesture_frames("dog", 0)
    assert np.abs(a - b).mean() > 5.0
    # a gesture frame differs clearly from the rest pose
    plan = plan_sentence(["ball"], np.random.default_rng(0))
    frames = render_plan(plan).astype(np.float64)
    (_, start, end), = plan.spans
    assert np.abs(frames[(start + end) // 2] - frames[0]).mean() > 3.0


def test_same_word_closer_than_other_word_at_same_place():
    """Shift-tolerant hand-mask distance: jitter of one word < change of word at one place."""

    def masks(word, seed):
        return np.stack([hand_mask(f) for f in _gesture_frames(word, seed).astype(np.uint8)])

    def shape_distance(a, b):
        # 1 - IoU after aligning the two masks' bounding boxes, averaged over frames
        out = []
        for ma, mb in zip(a, b):
            ya, xa = np.nonzero(ma)
            yb, xb = np.nonzero(mb)
            shifted = np.zeros_like(ma)
            yy, xx = yb - yb.min() + ya.min(), xb - xb.min() + xa.min()
            ok = (yy < ma.shape[0]) & (xx < ma.shape[1])
            shifted[yy[ok], xx[ok]] = True
            out.append(1 - (shifted & ma).sum() / (shifted | ma).sum())
        return float(np.mean(out))

    for place in PLACES:
        words = [w for w, (_, p, _) in GESTURES.items() if p == place]
        for w in words:
            same = shape_distance(masks(w, 1), masks(w, 2))
            for v in words:
                if v != w:
                    assert same < shape_distance(masks(w, 1), masks(v, 1)) - 0.1, (w, v)


def test_render_speed():
    import time

    words = ["the", "big", "dog", "sees", "a", "ball"]
    rng = np.random.default_rng(0)
    render_sentence(words, rng)  # warm the sprite cache
    t0 = time.perf_counter()
    n = 0
    for _ in range(20):
        frames, _ = render_sentence(words, rng)
        n += len(frames)
    per_frame = (time.perf_counter() - t0) / n
    assert per_frame < 1e-3, f"{per_frame * 1e3:.2f} ms per frame"


# --------------------------------------------------------------------------- corpus


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn")
    summary = render_corpus(out, n_train=6, n_val=2, n_test=2, seed=4, size=64, fps=25, workers=2)
    return out, summary


def test_corpus_layout_and_csvs(small_corpus):
    out, summary = small_corpus
    assert summary.clips == {"train": 6, "val": 2, "test": 2}
    assert summary.rendered == 10 and summary.skipped == 0
    train, val, test = sample_splits(6, 2, 2, seed=4)
    captions = {"train": train, "val": val, "test": test}
    names = set()
    total_frames = 0
    for split in SPLITS:
        header, rows = read_csv(out / "raw" / f"how2sign_{split}.csv")
        assert tuple(header) == CSV_COLUMNS
        assert len(rows) == len(captions[split])
        for i, (row, words) in enumerate(zip(rows, captions[split])):
            assert all(row[c] for c in CSV_COLUMNS)
            assert row["SENTENCE"] == grammar.caption_text(words)
            assert row["SENTENCE"][0].isupper() and row["SENTENCE"].endswith(".")
            assert grammar.normalise_caption(row["SENTENCE"]) == words
            assert float(row["START_REALIGNED"]) == 0.0
            n = plan_sample(words, 4, split, i, 64).n_frames
            assert float(row["END_REALIGNED"]) == pytest.approx(n / 25, abs=0.006)
            total_frames += n
            assert row["SENTENCE_NAME"] not in names
            names.add(row["SENTENCE_NAME"])
            assert (out / "raw" / "clips" / f"{row['SENTENCE_NAME']}.mp4").is_file()
    assert total_frames == summary.total_frames
    # nothing but the finished clips in the clip folder (no temp files)
    assert sorted(p.name for p in (out / "raw" / "clips").iterdir()) == sorted(f"{n}.mp4" for n in names)
    # ids are unique across splits
    ids = [clip_names(s, i)["VIDEO_ID"] for s in SPLITS for i in range(3)]
    assert len(set(ids)) == len(ids)


def test_mp4s_are_h264_with_expected_frames(small_corpus):
    out, _ = small_corpus
    _, rows = read_csv(out / "raw" / "how2sign_val.csv")
    val = sample_splits(6, 2, 2, seed=4)[1]
    for i, row in enumerate(rows):
        path = out / "raw" / "clips" / f"{row['SENTENCE_NAME']}.mp4"
        plan = plan_sample(val[i], 4, "val", i, 64)
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert float(stream.average_rate) == 25.0
            decoded = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(stream)])
            assert stream.codec_context.pix_fmt == "yuv420p"
        assert decoded.shape == (plan.n_frames, 64, 64, 3)
        # the encoding is faithful to the rendered frames (crf 20)
        err = np.abs(decoded.astype(np.int16) - render_plan(plan)).mean()
        assert err < 6.0, err
        # the word is still readable from decoded frames: the hand sits at the word's place
        for w, start, end in plan.spans:
            ys, xs = np.nonzero(hand_mask(decoded[(start + end) // 2]))
            px, py = PLACES[GESTURES[w][1]]
            assert abs(xs.mean() - px) < 7 and abs(ys.mean() - py) < 7, w


def test_rerun_skips_existing_and_matches_single_worker(small_corpus, tmp_path):
    out, _ = small_corpus
    clips = sorted((out / "raw" / "clips").glob("*.mp4"))
    mtimes = [p.stat().st_mtime_ns for p in clips]
    again = render_corpus(out, n_train=6, n_val=2, n_test=2, seed=4, workers=2)
    assert again.rendered == 0 and again.skipped == 10
    assert [p.stat().st_mtime_ns for p in clips] == mtimes
    # one worker gives the same corpus as two
    single = render_corpus(tmp_path, n_train=6, n_val=2, n_test=2, seed=4, workers=1)
    assert single.total_frames == again.total_frames
    for split in SPLITS:
        name = f"how2sign_{split}.csv"
        assert (tmp_path / "raw" / name).read_bytes() == (out / "raw" / name).read_bytes()
    for p in clips:
        with av.open(str(p)) as a, av.open(str(tmp_path / "raw" / "clips" / p.name)) as b:
            fa = [f.to_ndarray(format="rgb24") for f in a.decode(video=0)]
            fb = [f.to_ndarray(format="rgb24") for f in b.decode(video=0)]
        assert len(fa) == len(fb) and all(np.array_equal(x, y) for x, y in zip(fa, fb))


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    frames = np.zeros((5, 64, 64, 3), dtype=np.uint8)
    target = tmp_path / "clip.mp4"

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", boom)
    with pytest.raises(RuntimeError):
        corpus.write_mp4(target, frames)
    assert list(tmp_path.iterdir()) == []


def test_cli(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("render_cli", REPO / "scripts" / "render_synthetic_corpus.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    summary = cli.main(["--out", str(tmp_path), "--train", "7", "--val", "1", "--test", "1", "--size", "32", "--fps", "20"])
    assert summary.clips == {"train": 7, "val": 1, "test": 1}
    assert "train=7" in capsys.readouterr().out
    clip = next((tmp_path / "raw" / "clips").glob("*.mp4"))
    with av.open(str(clip)) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (32, 32)
        assert float(stream.average_rate) == 20.0
