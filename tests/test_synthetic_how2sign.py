"""Tests of the How2Sign-like synthetic style (``--style how2sign``): grammar, signs, signers,
rendering, both corpus layouts and the CLI. Corpora are tiny and frames small where the check
allows it; face detection runs on the default 640x360 frames."""

import csv
import importlib.util
import json
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from ssvp_slt.synthetic import full_videos as fv
from ssvp_slt.synthetic import how2sign_style as h2s
from ssvp_slt.synthetic.corpus import CSV_COLUMNS, SPLITS, plan_sample, render_corpus, write_mp4
from ssvp_slt.synthetic.grammar import (
    CLAUSE_FORMS,
    CONJUNCTIONS,
    DISCOURSE_VOCAB,
    INTERJECTIONS,
    WORDS_PER_SENTENCE,
    DiscourseGrammar,
    caption_text,
    normalise_caption,
    sample_splits,
)
from ssvp_slt.synthetic.person import face_box
from ssvp_slt.synthetic.styles import make_style

REPO = Path(__file__).resolve().parents[1]
FPS = 25
SEED = 4
SMALL = (128, 72)  # 16:9, small enough to render and decode fast
WORDS = (3, 8)
SIZES = dict(n_train=8, n_val=2, n_test=2)
WINDOW_SECONDS = 128 * 2 / 25.0  # one encoder window at the project's defaults (10.24 s)


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


def decode(path):
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert float(stream.average_rate) == FPS
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(stream)])


def style(frame_size=SMALL, words=WORDS):
    return make_style("how2sign", frame_size=frame_size, words_per_sentence=words)


@pytest.fixture(scope="module")
def clip_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("h2s_clips")
    summary = render_corpus(
        out, seed=SEED, fps=FPS, workers=2, style="how2sign", frame_size=SMALL, words_per_sentence=WORDS, **SIZES
    )
    clips = {p.stem: decode(p) for p in sorted((out / "raw" / "clips").glob("*.mp4"))}
    return out, summary, clips


# --------------------------------------------------------------------------- grammar


def _parses(sentence):
    """Whether a word sequence is INTERJ | [INTERJ] CLAUSE (CONJ CLAUSE)* of the discourse grammar."""
    from ssvp_slt.synthetic.grammar import _DISCOURSE_CATEGORIES as cats

    def clause_ok(words):
        forms = CLAUSE_FORMS.get(len(words), ())
        return any(all(w in cats[c] for w, c in zip(words, f)) for f in forms)

    words = list(sentence)
    if len(words) == 1:
        return words[0] in INTERJECTIONS
    if words and words[0] in INTERJECTIONS:
        words = words[1:]
    clauses, cur = [], []
    for w in words:
        if w in CONJUNCTIONS:
            clauses.append(cur)
            cur = []
        else:
            cur.append(w)
    clauses.append(cur)
    return all(clause_ok(c) for c in clauses)


def test_discourse_grammar_sentences_lengths_and_counts():
    g = DiscourseGrammar()  # the default: 1 to 30 words
    rng = np.random.default_rng(0)
    sentences = [g.sample(rng) for _ in range(2000)]
    assert all(_parses(s) for s in sentences)
    lengths = np.array([len(s) for s in sentences])
    assert lengths.min() == 1 and lengths.max() >= 22
    assert 4 <= np.median(lengths) <= 9  # most sentences are short
    assert {w for s in sentences for w in s} == set(DISCOURSE_VOCAB)
    assert 20 <= len(DISCOURSE_VOCAB) <= 40
    # exact lengths are honoured, and the counting agrees with what sampling finds
    for n in (1, 2, 3, 5, 17):
        assert all(len(g.sample_of_length(n, rng)) == n for _ in range(50))
    for n in (1, 2, 3):
        seen = {g.sample_of_length(n, rng) for _ in range(3000)}
        assert len(seen) == DiscourseGrammar.count_of_length(n)
    narrow = DiscourseGrammar((2, 4))
    assert {len(narrow.sample(rng)) for _ in range(300)} == {2, 3, 4}
    with pytest.raises(ValueError):
        DiscourseGrammar((0, 3))


@pytest.mark.parametrize("words", [(1, 30), (3, 8)])
def test_discourse_splits_disjoint_and_cover_vocab(words):
    g = DiscourseGrammar(words)
    train, val, test = sample_splits(40, 10, 10, seed=2, grammar=g)
    train_set = {tuple(s) for s in train}
    held = [tuple(s) for s in val + test]
    assert not train_set & set(held) and len(set(held)) == len(held)
    assert {w for s in train for w in s} == set(DISCOURSE_VOCAB)
    assert all(words[0] <= len(s) <= words[1] for s in train + val + test)
    assert sample_splits(40, 10, 10, seed=2, grammar=g) == (train, val, test)
    with pytest.raises(ValueError):  # sentences of <= 3 words cannot hold every word
        sample_splits(40, 2, 2, seed=2, grammar=DiscourseGrammar((1, 3)))


# --------------------------------------------------------------------------- signs


def test_sign_inventory_separates_words_by_coarse_cues():
    assert set(h2s.SIGNS) == set(DISCOURSE_VOCAB)
    coarse = [(s.location, s.movement, s.hands) for s in h2s.SIGNS.values()]
    assert len(set(coarse)) == len(coarse)
    # cues of every kind are used, and places are more than a quarter of a head apart
    assert len({s.hands for s in h2s.SIGNS.values()}) == len(h2s.HANDS)
    assert len({s.movement for s in h2s.SIGNS.values()}) >= 6
    assert len({s.shape for s in h2s.SIGNS.values()}) >= 8
    pts = np.array([v[:2] for v in h2s.LOCATIONS.values()])
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    assert d[~np.eye(len(pts), dtype=bool)].min() > 0.25


def _trajectory(word, seed, with_fingers):
    """A word's sign as features: both hands' positions at 10 moments (+ fingers, facing, angle)."""
    dom, nd, spans = h2s.plan_motion([word], np.random.default_rng([seed, 11]))
    _, s, e = spans[0]
    idx = np.linspace(s, e - 1, 10).round().astype(int)
    parts = [dom[idx, :2].ravel(), nd[idx, :2].ravel()]
    if with_fingers:
        parts += [dom[idx][:, h2s.FINGERS].ravel(), dom[idx, h2s.FACING], np.cos(np.deg2rad(dom[idx, h2s.ANGLE]))]
    return np.concatenate(parts)


@pytest.mark.parametrize("with_fingers", [True, False])
def test_different_words_produce_different_hand_configurations(with_fingers):
    """Each word's hands (positions over time, and finger configuration) are nearer to another
    instance of the same word (other speed, place and amplitude jitter) than to any other word;
    positions alone already tell the words apart (fingers are not the only cue)."""
    words = list(DISCOURSE_VOCAB)
    a = np.stack([_trajectory(w, 1, with_fingers) for w in words])
    b = np.stack([_trajectory(w, 2, with_fingers) for w in words])
    d = ((b[:, None] - a[None]) ** 2).sum(-1)
    assert [words[j] for j in d.argmin(1)] == words
    if with_fingers:
        shapes = {w: tuple(h2s.HANDSHAPES[h2s.SIGNS[w].shape]) for w in words}
        assert len(set(shapes.values())) >= 8
        dom, _, spans = h2s.plan_motion(["the", "big"], np.random.default_rng(0))
        (_, s0, e0), (_, s1, e1) = spans
        assert not np.allclose(dom[(s0 + e0) // 2, h2s.FINGERS], dom[(s1 + e1) // 2, h2s.FINGERS])


def _signer_crop_frames(word, seed, look, size=32, frame=(256, 144)):
    """8 frames spread over a word's sign, cropped square around the signer and downscaled."""
    import cv2

    dom, nd, spans = h2s.plan_motion([word], np.random.default_rng([seed, 3]))
    plan = h2s.SignPlan([word], frame[0], frame[1], look, dom, nd, spans)
    _, s, e = spans[0]
    want = set(np.linspace(s, e - 1, 8).round().astype(int).tolist())
    sg = look.signer(*frame)
    side = 3.6 * sg.scale
    k = size / side
    m = np.array([[k, 0, -(sg.cx - side / 2) * k], [0, k, -(sg.cy + 1.3 * sg.scale - side / 2) * k]])
    out = [cv2.warpAffine(f, m, (size, size), flags=cv2.INTER_AREA) for t, f in enumerate(h2s.iter_frames(plan)) if t in want]
    return np.stack(out).astype(np.float32).ravel()


def test_words_recognisable_from_small_signer_crops():
    """Learnability at low resolution: from 32x32 crops of the signer, the nearest neighbour of each
    word (another instance, another signer; per-video mean image removed) is mostly the same word."""
    words = list(DISCOURSE_VOCAB)
    look_a = h2s.sample_look(np.random.default_rng(1))
    look_b = h2s.sample_look(np.random.default_rng([1, 7]))
    a = np.stack([_signer_crop_frames(w, 1, look_a) for w in words])
    b = np.stack([_signer_crop_frames(w, 2, look_b) for w in words])
    a, b = a - a.mean(0), b - b.mean(0)
    d = ((b[:, None] - a[None]) ** 2).sum(-1)
    accuracy = float((d.argmin(1) == np.arange(len(words))).mean())
    assert accuracy >= 0.85, accuracy


def test_both_hands_take_part_and_rest_before_and_after():
    dom, nd, spans = h2s.plan_motion(["big", "tall", "car", "the"], np.random.default_rng(5))
    # rest pose at both ends, signs in between
    for hand in (dom, nd):
        assert np.allclose(hand[0], h2s.REST) and np.allclose(hand[-1], h2s.REST)
    by_word = {w: (s, e) for w, s, e in spans}
    s, e = by_word["big"]  # symmetric: the other hand mirrors the dominant one
    assert np.allclose(nd[s:e], dom[s:e]) and np.ptp(dom[s:e, 0]) > 0.3
    s, e = by_word["tall"]  # base: the other hand holds still while the dominant one moves
    assert np.allclose(nd[s:e], h2s.BASE) and np.ptp(dom[s:e, 1]) > 0.3
    s, e = by_word["car"]  # alternating: both move, not in step
    assert np.ptp(nd[s:e, 1]) > 0.2 and not np.allclose(nd[s:e, :2], dom[s:e, :2])
    s, e = by_word["the"]  # one-handed: the other hand rests
    assert np.allclose(nd[s:e], h2s.REST)
    # transitions interpolate: no jump between consecutive frames is larger than a sign's own steps
    steps = np.hypot(*np.diff(dom[:, :2], axis=0).T)
    assert steps.max() < 0.25


# --------------------------------------------------------------------------- durations


def test_sentence_durations_span_the_configured_range():
    rng = np.random.default_rng(3)

    def durations(words_per_sentence, n):
        g = DiscourseGrammar(words_per_sentence)
        out = []
        for _ in range(n):
            words = g.sample(rng)
            assert words_per_sentence[0] <= len(words) <= words_per_sentence[1]
            out.append(len(h2s.plan_motion(words, rng)[0]) / FPS)
        return np.array(out)

    default = durations(WORDS_PER_SENTENCE, 600)
    assert default.min() <= 1.5  # about a second
    assert default.max() > 2 * WINDOW_SECONDS  # longer than two encoder windows
    assert 3.0 <= np.median(default) <= 8.0  # most a few seconds (How2Sign: ~6 s mean)
    assert 4.0 <= default.mean() <= 9.0
    short = durations((1, 3), 100)
    assert short.max() < 5.0 and short.min() <= 1.5
    long = durations((26, 30), 20)
    assert long.min() > 2 * WINDOW_SECONDS * 0.9


# --------------------------------------------------------------------------- signers and frames


def test_signer_off_centre_so_a_centred_crop_can_cut_a_hand():
    looks = [h2s.sample_look(np.random.default_rng([s, 1])) for s in range(200)]
    cx = np.array([lk.centre_x for lk in looks])
    assert cx.min() < 0.33 and cx.max() > 0.67 and cx.std() > 0.08
    assert 0 < sum(lk.mirror == 1 for lk in looks) < 60  # a few left-handed signers
    assert len({lk.skin for lk in looks}) > 150 and len({lk.shirt for lk in looks}) > 150
    assert len({lk.scene.background for lk in looks}) >= 5
    # whole sentences: in some videos a hand leaves the centred square of the short side, not in all
    w, h = 640, 360
    lo, hi = (w - h) / 2, (w + h) / 2
    g = DiscourseGrammar()
    cut, palm_out = 0, (0.0, None, None)
    for s in range(60):
        rng = np.random.default_rng([s, 2])
        plan = h2s.plan_sentence(g.sample(rng), rng, w, h)
        dom, nd = h2s.hand_positions(plan)
        reach = 0.35 * plan.look.head * h  # palm centre to fingertips
        xs = np.concatenate([dom[:, 0], nd[:, 0]])
        cut += bool(((xs - reach < lo) | (xs + reach > hi)).any())
        beyond = np.maximum(lo - dom[:, 0], dom[:, 0] - hi)  # how far the dominant palm is outside
        if beyond.max() > palm_out[0]:
            palm_out = (beyond.max(), plan, int(np.argmax(beyond)))
    assert 3 <= cut <= 45, cut  # ~17% of videos at the defaults
    # ... and there really is a hand (skin) in the frame outside that square
    _, plan, t = palm_out
    x, y = h2s.hand_positions(plan)[0][t]
    frame = h2s.render_plan(replace(plan, dom=plan.dom[t : t + 1], nd=plan.nd[t : t + 1]))[0].astype(float)
    skin = np.asarray(plan.look.skin) * np.asarray(h2s.Lighting(plan.look.scene, h, w).at(x, y))
    near = np.abs(frame - skin).max(-1) < 30
    near[:, int(lo) : int(np.ceil(hi))] = False
    assert near.sum() > 50, near.sum()


def test_hand_pixels_are_skin_toned_not_a_bright_shape():
    tones = h2s.SKIN_TONES
    means = []
    for k, tone in enumerate((tones[0], tones[3], tones[-1])):
        rng = np.random.default_rng([k, 8])
        plan = h2s.plan_sentence(["happy", "sees", "ball"], rng, 320, 180)
        plan = replace(plan, look=replace(plan.look, skin=tuple(int(v) for v in tone)))
        frames = h2s.render_plan(plan).astype(np.float64)
        lighting = h2s.Lighting(plan.look.scene, 180, 320)
        dom, nd = h2s.hand_positions(plan)
        errors, patches = [], []
        for t in range(plan.n_frames):
            for x, y in (dom[t], nd[t]):
                xi, yi = int(x), int(y)
                if not (2 <= xi < 318 and 2 <= yi < 178):
                    continue
                patch = frames[t, yi - 1 : yi + 2, xi - 1 : xi + 2].reshape(-1, 3).mean(0)
                expected = np.asarray(tone) * np.asarray(lighting.at(x, y))
                errors.append(np.abs(patch - expected).max())
                patches.append(patch)
        patches = np.array(patches)
        # the palm centres show the signer's skin (lit as the scene is), in the large majority of frames
        assert np.median(errors) < 30 and np.mean(np.array(errors) < 50) > 0.8, (k, np.median(errors))
        # skin, not the simple style's saturated yellow hand
        yellow = np.array([250, 222, 40])
        assert np.abs(patches - yellow).max(1).min() > 60
        sat = (patches.max(1) - patches.min(1)) / np.maximum(patches.max(1), 1)
        assert np.median(sat) < 0.6
        means.append(patches.mean())
    assert means[0] - means[-1] > 80  # light and dark skin tones


def _detector():
    from ssvp_slt.prep import face_blur

    if hasattr(face_blur, "FaceDetector"):  # what preparation's signer crop uses
        det = face_blur.FaceDetector(0.08)
        return det.detect
    return face_blur.FaceBlurrer()._detect  # older face_blur.py: the blurrer's detector


def test_haar_face_detector_finds_the_face_in_most_frames():
    """OpenCV's frontal Haar cascade (prep/face_blur.py) finds the drawn face, on the face, in most
    frames of every signer, for light to dark skin, while the signer signs at the face too."""
    detect = _detector()
    w, h = 640, 360
    tones = h2s.SKIN_TONES
    for k, tone in enumerate((tones[0], tones[2], tones[4], tones[6])):
        rng = np.random.default_rng([k, 21])
        plan = h2s.plan_sentence(["the", "man", "sees", "a", "cat"], rng, w, h)
        plan = replace(plan, look=replace(plan.look, skin=tuple(int(v) for v in tone)))
        x0, y0, x1, y1 = face_box(plan.look.signer(w, h))
        hits = []
        for t, frame in enumerate(h2s.iter_frames(plan)):
            if t % 3:
                continue
            boxes = detect(frame)
            hits.append(any(x0 <= (b[0] + b[2]) / 2 <= x1 and y0 <= (b[1] + b[3]) / 2 <= y1 for b in boxes))
        assert np.mean(hits) >= 0.8, (k, tone, np.mean(hits))


def test_frames_deterministic_and_varied():
    s = style()
    a = s.plan(["the", "dog", "runs"], np.random.default_rng(9))
    b = s.plan(["the", "dog", "runs"], np.random.default_rng(9))
    fa, fb = s.render(a), s.render(b)
    assert fa.shape == (a.n_frames, SMALL[1], SMALL[0], 3) and fa.dtype == np.uint8
    assert np.array_equal(fa, fb)
    assert np.array_equal(np.stack(list(s.frames(a))), fa)  # streaming == all at once
    c = s.plan(["the", "dog", "runs"], np.random.default_rng(10))
    assert c.look != a.look
    # camera noise: consecutive rest frames (the hands do not move) still differ a little
    d = np.abs(fa[1].astype(int) - fa[0].astype(int))
    assert 0 < d.mean() < 6


# --------------------------------------------------------------------------- corpora


def test_clip_corpus_mp4s_16x9_h264_25fps(clip_corpus):
    out, summary, clips = clip_corpus
    assert summary.clips == {"train": 8, "val": 2, "test": 2} and summary.rendered == 12
    assert "how2sign style" in str(summary)
    for split in SPLITS:
        header, rows = read_csv(out / "raw" / f"how2sign_{split}.csv")
        assert tuple(header) == CSV_COLUMNS
        for i, row in enumerate(rows):
            frames = clips[row["SENTENCE_NAME"]]
            assert frames.shape[1:] == (SMALL[1], SMALL[0], 3)
            assert abs(frames.shape[2] / frames.shape[1] - 16 / 9) < 0.01
            assert float(row["END_REALIGNED"]) == pytest.approx(len(frames) / FPS, abs=0.006)
            words = normalise_caption(row["SENTENCE"])
            assert WORDS[0] <= len(words) <= WORDS[1] and _parses(words)
            plan = plan_sample(words, SEED, split, i, style=style())
            assert plan.n_frames == len(frames)
    with av.open(str(next((out / "raw" / "clips").glob("*.mp4")))) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.width, ctx.height) == SMALL and ctx.pix_fmt == "yuv420p"


def test_clip_corpus_deterministic_independent_of_workers(clip_corpus, tmp_path):
    out, summary, clips = clip_corpus
    single = render_corpus(
        tmp_path, seed=SEED, fps=FPS, workers=1, style="how2sign", frame_size=SMALL, words_per_sentence=WORDS, **SIZES
    )
    assert single.total_frames == summary.total_frames
    for split in SPLITS:
        name = f"how2sign_{split}.csv"
        assert (tmp_path / "raw" / name).read_bytes() == (out / "raw" / name).read_bytes()
    for name, frames in clips.items():
        assert np.array_equal(decode(tmp_path / "raw" / "clips" / f"{name}.mp4"), frames), name
    # the decoded video is the rendered one, up to lossy encoding
    header, rows = read_csv(out / "raw" / "how2sign_val.csv")
    plan = plan_sample(normalise_caption(rows[0]["SENTENCE"]), SEED, "val", 0, style=style())
    err = np.abs(clips[rows[0]["SENTENCE_NAME"]].astype(int) - style().render(plan)).mean()
    assert err < 6, err


def test_write_mp4_streams_frames_and_checks_them(tmp_path):
    frames = (np.random.default_rng(0).integers(0, 255, size=(6, 36, 64, 3))).astype(np.uint8)
    write_mp4(tmp_path / "a.mp4", (f for f in frames), preset="veryfast")
    assert decode(tmp_path / "a.mp4").shape == frames.shape
    bad = [frames[0], frames[1, :, :32]]
    with pytest.raises(ValueError):
        write_mp4(tmp_path / "b.mp4", iter(bad))
    with pytest.raises(ValueError):
        write_mp4(tmp_path / "c.mp4", iter([]))
    assert not (tmp_path / "b.mp4").exists() and not list(tmp_path.glob(".*tmp*"))


FULL = dict(n_train=8, n_val=1, n_test=1, sentences_per_video=(2, 3))


@pytest.fixture(scope="module")
def full_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("h2s_full")
    kw = dict(seed=SEED, fps=FPS, style="how2sign", frame_size=SMALL, words_per_sentence=WORDS, **FULL)
    summary = fv.render_full_videos(out, workers=2, **kw)
    layout = fv.plan_full_corpus(**kw)
    raw = out / "raw"
    rows = {s: read_csv(raw / f"how2sign_realigned_{s}.csv")[1] for s in SPLITS}
    broken = json.loads((raw / "broken_rows.json").read_text())
    videos = {p.stem: decode(p) for p in sorted((raw / "videos").glob("*.mp4"))}
    return out, summary, layout, rows, broken, videos


def test_full_layout_rows_broken_rows_and_splits(full_corpus):
    out, summary, layout, rows, broken, videos = full_corpus
    assert "how2sign style" in str(summary)
    recorded = {(b["split"], b["SENTENCE_NAME"]): b["kind"] for b in broken}
    found = {}
    for split in SPLITS:
        header, _ = read_csv(out / "raw" / f"how2sign_realigned_{split}.csv")
        assert tuple(header) == CSV_COLUMNS
        by_video = defaultdict(list)
        for r in rows[split]:
            by_video[r["VIDEO_NAME"]].append(r)
            key = (split, r["SENTENCE_NAME"])
            if r["VIDEO_NAME"] not in videos:
                found[key] = fv.MISSING_VIDEO
            elif float(r["END_REALIGNED"]) > len(videos[r["VIDEO_NAME"]]) / FPS:
                found[key] = fv.END_PAST_VIDEO_END
            elif not r["SENTENCE"].strip():
                found[key] = fv.EMPTY_CAPTION
        for name, vrows in by_video.items():
            if name not in videos:
                continue
            assert videos[name].shape[1:] == (SMALL[1], SMALL[0], 3)
            spans = [(float(r["START_REALIGNED"]), float(r["END_REALIGNED"])) for r in vrows]
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])) and spans[0][0] > 0
    assert found == recorded
    counts = Counter((b["split"], b["kind"]) for b in broken)
    for split in SPLITS:
        for kind in fv.BROKEN_KINDS:
            assert counts[(split, kind)] == fv.BROKEN_PER_SPLIT[split]
    captions = {s: {r["SENTENCE"] for r in rows[s] if r["SENTENCE"].strip()} for s in SPLITS}
    assert not captions["train"] & (captions["val"] | captions["test"])
    good = {s: [c for c in layout.captions[s]] for s in SPLITS}
    assert {s: len(good[s]) for s in SPLITS} == {"train": 8, "val": 1, "test": 1}


def test_full_layout_sentences_are_the_clip_layouts_signs_by_the_video_signer(full_corpus):
    out, summary, layout, rows, broken, videos = full_corpus
    s = style()
    assert summary.total_frames == sum(len(v) for v in videos.values())
    checked = 0
    for spec in layout.videos:
        if spec.plan is None:
            continue
        full = spec.plan
        decoded = videos[spec.VIDEO_NAME]
        assert len(decoded) == full.n_frames
        rendered = s.render(full)
        assert np.abs(decoded.astype(int) - rendered).mean() < 6
        covered = np.zeros(full.n_frames, bool)
        for seg in spec.segments:
            covered[seg.start_frame : seg.end_frame] = True
            if seg.index is None:
                continue
            clip = plan_sample(seg.words, SEED, seg.split, seg.index, style=s)
            # same motion (the clip layout's plan of this sentence), one signer for the whole video
            assert np.array_equal(full.dom[seg.start_frame : seg.end_frame], clip.dom)
            assert np.array_equal(full.nd[seg.start_frame : seg.end_frame], clip.nd)
            assert clip.look != full.look
            checked += 1
        # the pauses between sentences show the rest pose
        assert np.allclose(full.dom[~covered], h2s.REST) and np.allclose(full.nd[~covered], h2s.REST)
    assert checked == sum(FULL[k] for k in ("n_train", "n_val", "n_test"))


# --------------------------------------------------------------------------- CLI


def test_cli_how2sign_style(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("render_cli_h2s", REPO / "scripts" / "render_synthetic_corpus.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    argv = ["--out", str(tmp_path), "--style", "how2sign", "--frame-size", "96x54", "--words-per-sentence", "3", "6"]
    summary = cli.main(argv + ["--train", "10", "--val", "1", "--test", "1", "--workers", "1"])
    assert summary.clips == {"train": 10, "val": 1, "test": 1} and summary.style == "how2sign"
    assert "how2sign style" in capsys.readouterr().out
    _, rows = read_csv(tmp_path / "raw" / "how2sign_train.csv")
    assert all(3 <= len(normalise_caption(r["SENTENCE"])) <= 6 for r in rows)
    with av.open(str(tmp_path / "raw" / "clips" / f"{rows[0]['SENTENCE_NAME']}.mp4")) as c:
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == (96, 54)
    # options of the other style are refused, and so are bad sizes
    for bad in (
        ["--style", "how2sign", "--size", "64"],
        ["--frame-size", "96x54"],
        ["--words-per-sentence", "2", "5"],
        ["--style", "how2sign", "--frame-size", "95x54"],
        ["--style", "how2sign", "--frame-size", "wide"],
    ):
        with pytest.raises(SystemExit):
            cli.main(["--out", str(tmp_path / "bad")] + bad)
    assert make_style("how2sign").width == 640 and make_style("how2sign").height == 360
    assert caption_text(["okay"]) == "Okay."
