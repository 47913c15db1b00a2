"""Inference without a model: cutting synthetic full videos (known sentence boundaries) into
segments, fixed windows and their overlap, inputs on the command line, subtitle files read back
by subtitle parsers."""

import html
import io
from pathlib import Path

import numpy as np
import pytest

from ssvp_slt.inference.formats import Writer, render
from ssvp_slt.inference.inputs import expand_inputs
from ssvp_slt.inference.overlap import deduplicate, repeated_words
from ssvp_slt.inference.results import Segment, Translation
from ssvp_slt.inference.segment_eval import SegmentationScore, match
from ssvp_slt.inference.segmentation import (
    SegmentationSettings, fixed_spans, motion_frames, pause_segmentation, segment,
)
from ssvp_slt.inference.sources import ArraySource, FileSource
from ssvp_slt.synthetic import full_videos as fv
from ssvp_slt.synthetic.corpus import write_mp4

FPS = 25


def _layout(style, n_test, seed, **kw):
    return fv.plan_full_corpus(n_train=6, n_val=1, n_test=n_test, seed=seed, style=style, broken_rows=False, **kw)


@pytest.fixture(scope="module")
def simple_videos(tmp_path_factory):
    """Synthetic full videos (simple style) written as mp4, with their true sentence spans in seconds."""
    out = tmp_path_factory.mktemp("full_simple")
    layout = _layout("simple", 12, seed=7)
    videos = []
    for v in layout.videos:
        if v.split == "test":
            path = write_mp4(out / f"{v.VIDEO_NAME}.mp4", np.stack(list(layout.style.frames(v.plan))), fps=FPS)
            videos.append((path, [(g.start_frame / FPS, g.end_frame / FPS) for g in v.segments], v, layout.style))
    assert sum(len(t) for _, t, _, _ in videos) == 12
    return videos


def _resolved(method="pause", **kw):
    # the synthetic sentences last 2-5 s; segments may be up to 1.5 x the longest training clip
    return SegmentationSettings(method=method, **kw).resolve(5.0, 15.0)


def test_pause_segmentation_recovers_the_sentences_of_full_videos(simple_videos):
    score = SegmentationScore()
    for path, truth, _, _ in simple_videos:
        src = FileSource(path)
        seg = segment(src.n_frames, src.fps, _resolved(), grey_reader=lambda: motion_frames(src))
        assert seg.method == "pause" and seg.cue == "video" and seg.settings["min_pause"] == 0.2
        score.add(truth, [(s.start / FPS, s.end / FPS) for s in seg.spans])
    summary = score.summary()
    assert summary["recovered_share"] >= 0.9, summary
    assert summary["boundary_error_median_s"] <= 0.12 and summary["boundary_error_mean_s"] <= 0.25, summary


def test_pause_segmentation_from_keypoints_of_hands_at_rest(simple_videos):
    score = SegmentationScore()
    for path, truth, video, style in simple_videos:
        keypoints = style.keypoints(video.plan)
        seg = pause_segmentation(video.n_frames, FPS, _resolved(), keypoints=keypoints, keypoint_fps=FPS)
        assert seg.cue == "keypoints"
        score.add(truth, [(s.start / FPS, s.end / FPS) for s in seg.spans])
    assert score.summary()["recovered_share"] >= 0.9, score.summary()


def test_how2sign_style_video_is_cut_at_its_pauses(tmp_path):
    layout = _layout("how2sign", 4, seed=5, frame_size=(320, 180), sentences_per_video=(4, 4))
    v = next(v for v in layout.videos if v.split == "test")
    src = ArraySource(np.stack(list(layout.style.frames(v.plan))), FPS, "how2sign-like")
    truth = [(g.start_frame / FPS, g.end_frame / FPS) for g in v.segments]
    seg = segment(src.n_frames, FPS, _resolved(max_segment=30.0), grey_reader=lambda: motion_frames(src))
    pairs = match(truth, [(s.start / FPS, s.end / FPS) for s in seg.spans])
    assert len(pairs) == len(truth) == 4


def test_a_held_sign_is_not_a_pause():
    """Motion stops while a sign is held as long as a pause lasts; only the rest pose makes a pause."""
    rest, hold = np.zeros((32, 32), np.uint8), np.zeros((32, 32), np.uint8)
    rest[26:30, 4:8] = 255  # the hand low at the side
    hold[6:10, 14:18] = 255  # the hand held up
    moving = [np.roll(rest, k, axis=0) for k in range(-12, 0)]
    frames = np.stack([rest] * 10 + moving + [hold] * 12 + moving[::-1] + [rest] * 12 + moving + moving[::-1] + [rest] * 10)
    seg = pause_segmentation(len(frames), FPS, _resolved(min_segment=0.2), grey=frames)
    assert len(seg.spans) == 2  # one cut: at the rest between the two "sentences", not at the hold
    cut = seg.spans[0].end
    assert 10 + 12 + 12 + 12 <= cut <= 10 + 12 + 12 + 12 + 12


def test_auto_reads_short_inputs_whole_and_cuts_long_ones():
    s = _resolved("auto")
    assert s.auto_max == 7.5 and s.max_segment == 7.5
    short = segment(100, FPS, s, grey_reader=lambda: pytest.fail("a short input needs no motion"))
    assert short.method == "none" and len(short.spans) == 1 and "auto: 4.00 s <= auto_max 7.50 s" in short.settings["chosen"]
    still = np.zeros((500, 8, 8), np.uint8)
    long = segment(500, FPS, s, grey_reader=lambda: still)
    assert long.method == "pause" and long.spans[0].start == 0 and long.spans[-1].end == 500
    assert all(sp.n_frames <= 7.5 * FPS for sp in long.spans)  # split to max_segment even without pauses


def test_fixed_windows_cover_the_input_and_show_each_moment_once():
    spans = fixed_spans(n_frames=1000, fps=FPS, window=8.0, overlap=2.0)
    assert spans[0].start == 0 and spans[-1].end == 1000
    assert all(s.n_frames == 200 for s in spans)
    assert all(b.start - a.start == 150 for a, b in zip(spans[:-2], spans[1:-1]))
    shown = [s.shown for s in spans]
    assert shown[0][0] == 0 and shown[-1][1] == 1000 and all(a[1] == b[0] for a, b in zip(shown, shown[1:]))
    assert all(s.start <= lo and hi <= s.end for s, (lo, hi) in zip(spans, shown))
    assert fixed_spans(100, FPS, 8.0, 2.0)[0].n_frames == 100  # shorter than a window: one span


def test_overlapping_windows_do_not_repeat_words():
    assert repeated_words("a man takes a bird.", "Bird. the dog wants a bird.") == 1
    assert deduplicate(["a man takes a bird.", "takes a bird. the dog", "the dog wants it"]) == [
        "a man takes a bird.", "the dog", "wants it",
    ]
    assert deduplicate(["the cat", "a dog"]) == ["the cat", "a dog"]
    assert repeated_words("one two three four five six seven eight nine", "two three four five six seven eight nine", 8) == 8


def test_segmentation_settings_are_checked():
    with pytest.raises(ValueError, match="method must be one of"):
        SegmentationSettings(method="scenes")
    with pytest.raises(ValueError, match="overlap must be >= 0 and shorter than the window"):
        SegmentationSettings(method="fixed", window=4.0, overlap=4.0)
    with pytest.raises(ValueError, match="min_pause must be a number >= 0"):
        SegmentationSettings(min_pause=-1)


def _translation():
    segs = [
        Segment(0.12, 3.56, "a man takes a bird.", -0.1, 0.12, 3.56),
        Segment(3.6, 6.96, "", -2.0, 3.6, 6.96),  # nothing said: no cue
        Segment(3725.5, 3727.25, "the dog, wants \"it\" --> now", -0.2, 3725.5, 3727.25),
    ]
    return Translation(input="videos/talk one.mp4", text="a man takes a bird. the dog", score=-0.1, end=3728.0, segments=segs)


def test_srt_is_read_back_by_a_subtitle_parser_with_the_right_times():
    srt = pytest.importorskip("srt")
    subs = list(srt.parse(render(_translation(), "srt")))
    assert [s.content for s in subs] == ["a man takes a bird.", "the dog, wants \"it\" --> now"]
    assert [(s.start.total_seconds(), s.end.total_seconds()) for s in subs] == [(0.12, 3.56), (3725.5, 3727.25)]
    assert [s.index for s in subs] == [1, 2]


def test_webvtt_is_read_back_by_a_subtitle_parser_with_the_right_times(tmp_path):
    webvtt = pytest.importorskip("webvtt")
    path = tmp_path / "talk.vtt"
    path.write_text(render(_translation(), "vtt"), encoding="utf-8")
    captions = webvtt.read(str(path)).captions
    # cue text is markup: "-->" is written escaped (WebVTT forbids it in cue text)
    assert [html.unescape(c.text) for c in captions] == ["a man takes a bird.", "the dog, wants \"it\" --> now"]
    assert [(c.start, c.end) for c in captions] == [("00:00:00.120", "00:00:03.560"), ("01:02:05.500", "01:02:07.250")]
    assert captions[1].start_in_seconds == 3725


def test_writers_one_line_per_input_and_one_file_per_input(tmp_path):
    ok, bad = _translation(), Translation(input="missing.mp4", error="missing.mp4: video file not found")
    out = io.StringIO()
    w = Writer("txt", None, 2, stdout=out)
    for t in (ok, bad):
        w.write(t)
    w.close()
    assert out.getvalue() == "a man takes a bird. the dog\n\n"
    with pytest.raises(ValueError, match="--format srt describes one video: with 2 inputs give --output a folder"):
        Writer("srt", None, 2)
    w = Writer("srt", str(tmp_path / "subs") + "/", 2)
    for t in (ok, bad):
        w.write(t)
    w.close()
    assert [p.name for p in w.written] == ["talk_one.srt"]  # a failed input gets no empty subtitle file
    w = Writer("json", str(tmp_path / "all.json"), 2, header={"model": {"x": 1}})
    for t in (ok, bad):
        w.write(t)
    w.close()
    import json

    doc = json.loads((tmp_path / "all.json").read_text())
    assert doc["model"] == {"x": 1} and [r["error"] for r in doc["results"]] == [None, "missing.mp4: video file not found"]
    assert doc["results"][0]["segments"][0] == {
        "start": 0.12, "end": 3.56, "text": "a man takes a bird.", "score": -0.1, "read_start": 0.12, "read_end": 3.56,
        "tokens": 0, "timings": {},
    }


def test_inputs_folders_patterns_and_stdin(tmp_path):
    for rel in ("a/one.mp4", "a/b/two.MOV", "a/notes.txt", "c/three.webm"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    def names(specs):
        def rel(name):
            return Path(name).relative_to(tmp_path).as_posix() if name.startswith(str(tmp_path)) else name
        return [(rel(s.name), s.error is not None) for s in specs]

    assert names(expand_inputs([str(tmp_path / "a")])) == [("a/b/two.MOV", False), ("a/one.mp4", False)]
    assert names(expand_inputs([str(tmp_path / "**" / "*.webm")])) == [("c/three.webm", False)]
    stdin = io.StringIO(f"# a list\n{tmp_path / 'a' / 'one.mp4'}\n\n{tmp_path / 'empty'}\nrtsp://camera/stream\n")
    specs = expand_inputs(["-", str(tmp_path / "nothing*.mp4"), str(tmp_path / "missing.mp4")], stdin=stdin)
    assert names(specs) == [
        ("a/one.mp4", False), ("empty", True), ("rtsp://camera/stream", False), ("nothing*.mp4", True),
        ("missing.mp4", False),  # reported when opened: "video file not found"
    ]
    assert "no video files" in specs[1].error and "no file matches this pattern" in specs[3].error


def test_segment_scoring_matches_one_to_one():
    truth = [(0.0, 3.0), (3.2, 6.0), (6.5, 9.0)]
    pred = [(0.1, 3.1), (3.1, 9.0)]  # the last two sentences merged: neither overlaps it by IoU >= 0.5
    score = SegmentationScore()
    assert score.add(truth, pred) == [(0, 0)]
    summary = score.summary()
    assert (summary["recovered"], summary["sentences"], summary["segments"]) == (1, 3, 2)
    assert summary["boundary_error_mean_s"] == 0.1
    assert match(truth, [(0.0, 9.0)]) == []  # one segment for three sentences recovers none
