"""scripts/prepare_how2sign.py --videos: cutting How2Sign's full videos at the realigned timestamps.

The test videos are tiny (64x48, 25 fps) and every frame shows its own index
as 8 black/white blocks (bits), so a clip's frames can be traced back to the
source frames they came from.
"""

import json
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_slt.corpus.manifest import read_manifest  # noqa: E402
from ssvp_slt.corpus.text import normalize_caption  # noqa: E402
from ssvp_slt.prep import cutting  # noqa: E402
from ssvp_slt.prep.pipeline import clip_path  # noqa: E402
from conftest import run_script_captured  # noqa: E402
from video_helpers import write_audio_only, write_garbage, write_truncated_video  # noqa: E402

SCRIPT = REPO_ROOT / "scripts" / "prepare_how2sign.py"
FPS = 25
HEADER = "VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\tEND_REALIGNED\tSENTENCE"


# ----------------------------------------------------------------------------- helpers
def write_indexed_video(path, n_frames, size=(64, 48), gop=25, bframes=True, fps=FPS, faststart=False):
    """An H.264 mp4 whose frame i shows i in binary (8 blocks across the top third); keyframes every ``gop``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as c:
        s = c.add_stream("libx264", rate=Fraction(fps))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.gop_size = gop
        s.options = {"x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0" + ("" if bframes else ":bframes=0")}
        for i in range(n_frames):
            img = np.full((h, w, 3), 128, np.uint8)
            for b in range(8):
                img[: h // 3, b * w // 8 : (b + 1) * w // 8] = 255 if (i >> b) & 1 else 0
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def frame_indices(path):
    """The source frame index shown by each frame of a clip."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(c.streams.video[0]):
            a = f.to_ndarray(format="rgb24")
            h, w = a.shape[:2]
            bits = [a[h // 6, int((b + 0.5) * w / 8)].mean() > 128 for b in range(8)]
            out.append(sum(1 << b for b, on in enumerate(bits) if on))
    return out


def clip_record(path):
    with av.open(str(path)) as c:
        return json.loads(c.metadata["comment"])


def row(video, name, start, end, caption):
    return "\t".join([video.split("-")[0], video, name.rsplit("_", 1)[-1], name, str(start), str(end), caption])


def write_csv(path, lines, encoding="utf-8"):
    text = "\n".join([HEADER] + list(lines)) + "\n"
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def run_prepare(*argv, script="prepare_how2sign"):
    return run_script_captured(script, *argv)


def report(out, split="train"):
    return json.loads((out / f"prepare_report_{split}.json").read_text())


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    write_indexed_video(d / "vidA.mp4", 125)  # 5 s, B-frames, keyframes at 0, 1, 2, ... s
    write_indexed_video(d / "vidB.mp4", 150, bframes=False)  # 6 s, no B-frames
    write_garbage(d / "vidGarbage.mp4")
    write_truncated_video(d / "vidTrunc.mp4", keep_bytes=300)
    write_audio_only(d / "vidAudio.mp4")
    # index first (faststart), then cut short: the file opens and claims 5 s but holds fewer frames
    data = write_indexed_video(d / "vidShort.mp4", 125, faststart=True).read_bytes()
    (d / "vidShort.mp4").write_bytes(data[: int(len(data) * 0.7)])
    return d


GOOD_ROWS = [
    row("vidA", "vidA_0", 0.0, 1.5, "Hello there."),  # starts on a keyframe
    row("vidA", "vidA_1", 1.52, 3.3, "Second one!"),  # mid-GOP start: re-encoded
    row("vidA", "vidA_2", 2.0, 3.0, "Keyframe to keyframe."),
    row("vidB", "vidB_0", 1.0, 2.0, "No B-frames here."),
    row("vidB", "vidB_1", 2.5, 4.0, "Half-frame start."),
    row("vidB", "vidB_2", 3.13, 5.87, "Odd times."),
]


# ----------------------------------------------------------------------------- cutting
def test_cut_boundaries_copy_and_reencode(videos, tmp_path):
    csv_path = write_csv(tmp_path / "how2sign_realigned_train.csv", GOOD_ROWS)
    out = tmp_path / "data"
    rc, text = run_prepare("--csv", csv_path, "--videos", videos, "--out", out, "--workers", 2)
    assert rc == 0, text
    assert "train: read 6 rows, kept 6, dropped 0" in text

    manifest = read_manifest(out / "train.tsv")
    assert [r.id for r in manifest.rows] == [line.split("\t")[3] for line in GOOD_ROWS]  # CSV order
    for r, line in zip(manifest.rows, GOOD_ROWS):
        fields = line.split("\t")
        start, end = float(fields[4]), float(fields[5])
        path = out / r.video
        assert path == clip_path(out, fields[1], r.id)
        assert r.video.startswith("clips/") and len(Path(r.video).parent.name) == 2  # nested by a short hash
        idx = frame_indices(path)
        assert idx == list(range(idx[0], idx[0] + len(idx))), f"{r.id}: frames not contiguous: {idx}"
        assert abs(idx[0] - start * FPS) <= 1, (r.id, idx[0], start)  # first frame within one frame of START
        assert abs(idx[-1] + 1 - end * FPS) <= 1, (r.id, idx[-1], end)  # last frame shown until ~END
        assert r.n_frames == len(idx) and r.fps == FPS
        assert r.tgt_text == fields[6]

    methods = {r.id: clip_record(out / r.video)["method"] for r in manifest.rows}
    # keyframe starts with nothing to change are stream-copied (B-frames too, when the end is exact)
    assert methods == {"vidA_0": "copy", "vidA_1": "encode", "vidA_2": "copy", "vidB_0": "copy", "vidB_1": "encode", "vidB_2": "encode"}
    rep = report(out)
    assert rep["clips"] == {"copied": 3, "re-encoded": 3}
    assert "copied: 3, re-encoded: 3" in text
    assert rep["rows_read"] == 6 and rep["kept"] == 6 and rep["dropped"] == 0
    assert rep["caption_words"] == {"min": 2, "mean": 2.33, "median": 2, "max": 3}
    assert sum(b["count"] for b in rep["duration_histogram"]) == 6
    assert rep["hours"] == pytest.approx(sum(r.n_frames for r in manifest.rows) / FPS / 3600, abs=1e-4)


def test_no_copy_gives_the_same_frames(videos, tmp_path):
    csv_path = write_csv(tmp_path / "train.csv", GOOD_ROWS[:3])
    a, b = tmp_path / "copy", tmp_path / "encode"
    assert run_prepare("--csv", csv_path, "--videos", videos, "--out", a, "--workers", 1)[0] == 0
    assert run_prepare("--csv", csv_path, "--videos", videos, "--out", b, "--workers", 1, "--no-copy")[0] == 0
    assert report(b)["clips"] == {"re-encoded": 3}
    # the same manifest but for file sizes (a copy and an encode are different files)
    ra, rb = read_manifest(a / "train.tsv").rows, read_manifest(b / "train.tsv").rows
    assert [(r.id, r.video, r.n_frames, r.fps, r.width, r.height, r.tgt_text) for r in ra] == [
        (r.id, r.video, r.n_frames, r.fps, r.width, r.height, r.tgt_text) for r in rb
    ]
    for r in read_manifest(a / "train.tsv").rows:
        assert frame_indices(a / r.video) == frame_indices(b / r.video)


def test_short_side_and_fps(videos, tmp_path):
    csv_path = write_csv(tmp_path / "train.csv", GOOD_ROWS[:1] + GOOD_ROWS[3:5])
    out = tmp_path / "data"
    rc, text = run_prepare("--csv", csv_path, "--videos", videos, "--out", out, "--short-side", 32, "--fps", 10)
    assert rc == 0, text
    assert report(out)["clips"] == {"re-encoded": 3}  # resizing/resampling rules out stream copy
    for r in read_manifest(out / "train.tsv").rows:
        with av.open(str(out / r.video)) as c:
            s = c.streams.video[0]
            assert (s.codec_context.width, s.codec_context.height) == (42, 32)  # 64x48 -> short side 32, even width
            assert s.average_rate == 10
        assert r.fps == 10
        start = float(next(line for line in GOOD_ROWS if f"\t{r.id}\t" in line).split("\t")[4])
        idx = frame_indices(out / r.video)
        # frame k shows the source frame nearest to START + k / 10 s
        assert all(abs(i - (start + k / 10) * FPS) <= 0.5 + 1e-6 for k, i in enumerate(idx)), idx


# ----------------------------------------------------------------------------- messy data
MESSY = [
    row("vidA", "vidA_0", 0.0, 1.5, "Hello there."),  # line 2
    row("vidA", "vidA_1", 2.0, 3.0, "Good two."),  # 3
    row("vidA", "vidA_end", 4.0, 5.7, "Runs past the end."),  # 4: clamped to 5.0, kept
    row("vidA", "vidA_short", 4.9, 6.0, "Too short once clamped."),  # 5
    row("vidA", "vidA_late", 5.5, 6.0, "Starts after the end."),  # 6
    row("vidA", "vidA_order", 3.0, 2.0, "Backwards."),  # 7
    row("vidA", "vidA_neg", -1.0, 1.0, "Negative."),  # 8
    row("vidA", "vidA_nan", "abc", 1.0, "Not a number."),  # 9
    row("vidMissing", "vidMissing_0", 0.0, 1.0, "No such video."),  # 10
    row("vidGarbage", "vidGarbage_0", 0.0, 1.0, "Random bytes."),  # 11
    row("vidTrunc", "vidTrunc_0", 0.0, 1.0, "Cut short."),  # 12
    row("vidAudio", "vidAudio_0", 0.0, 1.0, "Only sound."),  # 13
    row("vidA", "vidA_0", 1.0, 2.0, "Same name again."),  # 14
    row("vidA", "vidA_empty", 1.0, 2.0, ""),  # 15
    row("vidA", "vidA_space", 1.0, 2.0, "   "),  # 16
    row("vidB", "vidB_multi", 0.0, 1.0, '"First line\twith a tab'),  # 17: quoted, spans 2 lines
    'second line."',  # 18
    row("vidB", "vidB_tab", 1.0, 2.0, "Stray\ttab here."),  # 19
    "@NOT_UTF8@",  # 20
    row("vidB", "vidB_quote", 3.0, 4.0, '"Unclosed quote'),  # 21
    row("vidB", "vidB_2", 2.0, 3.0, "Right after the stray quote."),  # 22
    row("vidB", "vidB_broken", 4.0, 5.0, "Broken"),  # 23
    "caption over two lines.",  # 24
    "vidB\tvidB_fields\t0",  # 25
]
EXPECTED_DROPS = {  # line -> (reason, part of the message)
    5: ("too short", "after clamping END"),
    6: ("START past video end", "START 5.5 s is at or past the end of"),
    7: ("START not before END", "START_REALIGNED 3 is not before END_REALIGNED 2"),
    8: ("negative time", "START_REALIGNED is negative: '-1.0'"),
    9: ("bad time", "START_REALIGNED is not a number: 'abc'"),
    10: ("missing video", "video file not found"),
    11: ("unreadable video", "cannot open as a video"),
    12: ("unreadable video", "vidTrunc.mp4"),
    13: ("no video stream", "no video stream"),
    14: ("duplicate SENTENCE_NAME", "duplicate SENTENCE_NAME 'vidA_0' (first on line 2)"),
    15: ("empty caption", "empty caption for 'vidA_empty'"),
    16: ("empty caption", "empty caption for 'vidA_space'"),
    20: ("non-UTF-8 text", "SENTENCE holds bytes that are not UTF-8"),
    25: ("wrong number of fields", "expected 7 tab-separated fields, found 3"),
}
EXPECTED_KEPT = {
    "vidA_0": "Hello there.",
    "vidA_1": "Good two.",
    "vidA_end": "Runs past the end.",
    "vidB_multi": "First line with a tab second line.",
    "vidB_tab": "Stray tab here.",
    "vidB_quote": "Unclosed quote",
    "vidB_2": "Right after the stray quote.",
    "vidB_broken": "Broken caption over two lines.",
}


def write_messy_csv(path):
    text = "\n".join([HEADER] + MESSY) + "\n"
    bad_row = row("vidB", "vidB_latin1", 0.0, 1.0, "Caf\u00e9 au lait.").encode("latin-1")
    path.write_bytes(text.encode("utf-8").replace(b"@NOT_UTF8@", bad_row))
    return path


def test_messy_rows_are_reported_and_the_good_rows_written(videos, tmp_path):
    csv_path = write_messy_csv(tmp_path / "how2sign_realigned_train.csv")
    out = tmp_path / "data"
    rc, text = run_prepare("--csv", csv_path, "--videos", videos, "--out", out, "--workers", 2)
    assert rc == 0, text  # bad rows do not fail the run by default

    manifest = read_manifest(out / "train.tsv")
    assert {r.id: r.tgt_text for r in manifest.rows} == EXPECTED_KEPT
    rep = report(out)
    assert rep["rows_read"] == 22 and rep["kept"] == 8 and rep["dropped"] == 14
    expected_counts = {}
    for reason, _ in EXPECTED_DROPS.values():
        expected_counts[reason] = expected_counts.get(reason, 0) + 1
    assert rep["dropped_by_reason"] == expected_counts
    assert rep["clamped"] == 1
    assert rep["repaired_by_reason"] == {"caption across lines": 2, "tab in caption": 2, "unclosed quote": 1}

    dropped = {p["line"]: p for p in rep["problems"] if p["action"] == "dropped"}
    assert sorted(dropped) == sorted(EXPECTED_DROPS)
    for line, (reason, message) in EXPECTED_DROPS.items():
        assert dropped[line]["reason"] == reason
        assert message in dropped[line]["message"], (line, dropped[line]["message"])
        assert dropped[line]["file"] == str(csv_path)
        assert f"{csv_path}, line {line}: " in text  # printed with file and line
    assert "'Caf\\xe9 au lait.'" in dropped[20]["message"] or "Café" in dropped[20]["message"]

    # END past the end: clamped to the video's 5 s, counted, and the clip ends there
    clamp = next(p for p in rep["problems"] if p["action"] == "clamped")
    assert clamp["line"] == 4 and "END 5.7 s is past the end" in clamp["message"]
    end_clip = next(r for r in manifest.rows if r.id == "vidA_end")
    idx = frame_indices(out / end_clip.video)
    assert idx[0] == 100 and idx[-1] == 124 and end_clip.n_frames == 25
    assert "1 END clamped to the video's end" in text
    # the quoted caption ran over lines 17-18 and the unclosed quote did not swallow line 22
    repaired_lines = sorted(p["line"] for p in rep["problems"] if p["action"] == "repaired")
    assert repaired_lines == [17, 17, 19, 21, 23]


def test_printed_problems_are_capped_not_the_json(videos, tmp_path):
    csv_path = write_messy_csv(tmp_path / "train.csv")
    out = tmp_path / "data"
    rc, text = run_prepare("--csv", csv_path, "--videos", videos, "--out", out, "--max-print", 3)
    assert rc == 0
    n = len(report(out)["problems"])
    assert n == 20
    assert f"problems: {n}, showing 3" in text and f"... {n - 3} more" in text
    assert sum(f"{csv_path}, line " in line for line in text.splitlines()) == 3


def test_strict_fails_when_rows_are_dropped(videos, tmp_path):
    csv_path = write_messy_csv(tmp_path / "train.csv")
    rc, text = run_prepare("--csv", csv_path, "--videos", videos, "--out", tmp_path / "data", "--strict")
    assert rc == 1
    assert "--strict: 14 row(s) dropped" in text
    assert (tmp_path / "data" / "train.tsv").is_file()  # the report and manifest are still written
    rc, _ = run_prepare("--csv", write_csv(tmp_path / "good.csv", GOOD_ROWS[:2]), "--videos", videos, "--out", tmp_path / "d2", "--strict", "--split", "train")
    assert rc == 0


def test_missing_required_column_stops_at_once(videos, tmp_path):
    csv_path = tmp_path / "train.csv"
    csv_path.write_text(HEADER.replace("END_REALIGNED", "END") + "\n" + GOOD_ROWS[0] + "\n")
    out = tmp_path / "data"
    rc, text = run_prepare("--csv", csv_path, "--videos", videos, "--out", out)
    assert rc == 1
    assert f"{csv_path}: missing required column(s) END_REALIGNED;" in text
    assert not out.exists()  # nothing cut, nothing written


def test_comma_delimited_csv_is_detected(videos, tmp_path):
    import csv

    csv_path = tmp_path / "train.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)  # commas, captions with commas quoted
        w.writerow(HEADER.split("\t"))
        w.writerow(["vidA", "vidA", "0", "vidA_0", "0.0", "1.5", "Hi, I'm here."])
        w.writerow(["vidB", "vidB", "0", "vidB_0", "1.0", "2.0", 'She said "yes", then left.'])
    out = tmp_path / "data"
    rc, text = run_prepare("--csv", csv_path, "--videos", videos, "--out", out)
    assert rc == 0, text
    assert f"{csv_path}: the file is comma-separated (How2Sign's CSVs are tab-separated)" in text
    assert [r.tgt_text for r in read_manifest(out / "train.tsv").rows] == ["Hi, I'm here.", 'She said "yes", then left.']
    assert any("comma-separated" in n for n in report(out)["notes"])


def test_semicolon_csv_missing_column_names_the_delimiter(videos, tmp_path):
    csv_path = tmp_path / "train.csv"
    csv_path.write_text("VIDEO_NAME;SENTENCE_NAME;START_REALIGNED;END_REALIGNED;TEXT\nvidA;vidA_0;0,0;1,5;Hi\n")
    rc, text = run_prepare("--csv", csv_path, "--videos", videos, "--out", tmp_path / "data")
    assert rc == 1
    assert "missing required column(s) SENTENCE; the header row, read as semicolon-separated" in text


def test_video_shorter_than_its_header(videos, tmp_path):
    csv_path = write_csv(
        tmp_path / "train.csv",
        [row("vidShort", "vidShort_0", 0.0, 0.4, "Early enough."), row("vidShort", "vidShort_1", 3.5, 4.8, "Not there.")],
    )
    out = tmp_path / "data"
    rc, text = run_prepare("--csv", csv_path, "--videos", videos, "--out", out)
    assert rc == 0, text
    (kept,) = read_manifest(out / "train.tsv").rows
    assert kept.id == "vidShort_0" and frame_indices(out / kept.video) == list(range(10))
    (problem,) = report(out)["problems"]
    assert problem["line"] == 3 and problem["reason"] in ("truncated video", "unreadable video")
    assert "truncated" in problem["message"] and f"{csv_path}, line 3: " in text


# ----------------------------------------------------------------------------- re-runs and interruptions
def clip_mtimes(out):
    return {p: p.stat().st_mtime_ns for p in sorted((out / "clips").rglob("*.mp4"))}


def test_rerun_is_idempotent(videos, tmp_path):
    csv_path = write_csv(tmp_path / "train.csv", GOOD_ROWS)
    out = tmp_path / "data"
    assert run_prepare("--csv", csv_path, "--videos", videos, "--out", out)[0] == 0
    manifest, mtimes, first = (out / "train.tsv").read_text(), clip_mtimes(out), report(out)

    rc, text = run_prepare("--csv", csv_path, "--videos", videos, "--out", out, "--workers", 2)
    assert rc == 0
    assert clip_mtimes(out) == mtimes  # no clip rewritten (and none added)
    assert (out / "train.tsv").read_text() == manifest
    again = report(out)
    assert again["clips"] == {"already done": 6}
    for key in ("kept", "dropped", "hours", "duration_histogram", "caption_words", "problems"):
        assert again[key] == first[key]

    # a changed END redoes that clip only; other settings redo all
    changed = [GOOD_ROWS[0].replace("\t1.5\t", "\t1.2\t")] + GOOD_ROWS[1:]
    write_csv(csv_path, changed)
    assert run_prepare("--csv", csv_path, "--videos", videos, "--out", out)[0] == 0
    after = clip_mtimes(out)
    redone = [p.name for p in after if after[p] != mtimes[p]]
    assert redone == ["vidA_0.mp4"]
    assert report(out)["clips"]["already done"] == 5 and sum(report(out)["clips"].values()) == 6
    assert run_prepare("--csv", csv_path, "--videos", videos, "--out", out, "--short-side", 32)[0] == 0
    assert report(out)["clips"] == {"re-encoded": 6}


def assert_same_manifest(out: Path, ref: Path) -> None:
    """``out``'s train.tsv is ``ref``'s: every column equal, except that each file_size is that of the
    clip ``out`` holds. libx264 re-encoding the same clip in another process gives pixel-identical
    frames but not always the same bytes (seen here: 3,351 against 3,353 bytes), so sizes are checked
    against the files the manifest names, not against the other run's."""
    def rows(root):
        lines = (root / "train.tsv").read_text().splitlines()
        return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]

    header, got = rows(out)
    ref_header, want = rows(ref)
    assert header == ref_header and len(got) == len(want)
    size = header.index("file_size")
    video = header.index("video")
    for g, w in zip(got, want):
        assert g[:size] + g[size + 1 :] == w[:size] + w[size + 1 :]
        assert int(g[size]) == (out / g[video]).stat().st_size


def test_leftover_temp_files_and_broken_clips_are_redone(videos, tmp_path):
    csv_path = write_csv(tmp_path / "train.csv", GOOD_ROWS[:3])
    ref = tmp_path / "ref"
    assert run_prepare("--csv", csv_path, "--videos", videos, "--out", ref)[0] == 0

    out = tmp_path / "data"
    p0, p1, p2 = (clip_path(out, "vidA", f"vidA_{i}") for i in range(3))
    p0.parent.mkdir(parents=True)
    stale = Path(f"{p0}{cutting.TEMP_MARK}12345")
    stale.write_bytes(b"half a clip")  # from a killed run
    write_truncated_video(p1, keep_bytes=500)  # a broken clip under the final name (e.g. copied by hand)
    p2.write_bytes(b"")  # an empty one
    rc, text = run_prepare("--csv", csv_path, "--videos", videos, "--out", out)
    assert rc == 0, text
    assert not stale.exists()
    assert not list((out / "clips").rglob(f"*{cutting.TEMP_MARK}*"))
    assert report(out)["clips"] == {"copied": 2, "re-encoded": 1}  # all three redone
    assert_same_manifest(out, ref)


KILLER = """
import os, runpy, signal, sys
sys.path.insert(0, {repo!r})
from ssvp_slt.prep import cutting
published = []
real_publish = cutting._publish
def publish(tmp, final):
    if len(published) == 2:  # third clip: its temporary file is complete, the rename never happens
        os.kill(os.getpid(), signal.SIGKILL)
    real_publish(tmp, final)
    published.append(final)
cutting._publish = publish
sys.argv = [{script!r}] + sys.argv[1:]
runpy.run_path({script!r}, run_name="__main__")
"""


def test_killed_run_resumes_to_the_same_manifest(videos, tmp_path):
    csv_path = write_csv(tmp_path / "train.csv", GOOD_ROWS)
    ref = tmp_path / "ref"
    assert run_prepare("--csv", csv_path, "--videos", videos, "--out", ref, "--workers", 1)[0] == 0

    out = tmp_path / "data"
    killer = tmp_path / "killer.py"
    killer.write_text(KILLER.format(repo=str(REPO_ROOT), script=str(SCRIPT)))
    args = ["--csv", csv_path, "--videos", videos, "--out", out, "--workers", 1]
    res = subprocess.run([sys.executable, str(killer), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert res.returncode == -signal.SIGKILL, res.stderr
    finished = sorted(p.name for p in (out / "clips").rglob("*.mp4"))
    temps = list((out / "clips").rglob(f"*{cutting.TEMP_MARK}*"))
    assert len(finished) == 2 and len(temps) == 1  # a partial clip never has the final name
    assert not (out / "train.tsv").exists()
    mtimes = clip_mtimes(out)

    rc, text = run_prepare(*args)
    assert rc == 0, text
    assert not list((out / "clips").rglob(f"*{cutting.TEMP_MARK}*"))
    assert_same_manifest(out, ref)
    assert report(out)["clips"]["already done"] == 2
    assert all(clip_mtimes(out)[p] == t for p, t in mtimes.items())  # finished clips kept


def test_a_failing_clip_is_reported_and_redone_next_time(videos, tmp_path, monkeypatch):
    csv_path = write_csv(tmp_path / "train.csv", GOOD_ROWS)
    ref = tmp_path / "ref"
    assert run_prepare("--csv", csv_path, "--videos", videos, "--out", ref, "--workers", 1)[0] == 0

    real_encode = cutting._encode

    def flaky_encode(out, container, stream, timing, start, *args):
        if abs(start - 2.5) < 1e-9:  # vidB_1
            raise RuntimeError("simulated crash")
        return real_encode(out, container, stream, timing, start, *args)

    monkeypatch.setattr(cutting, "_encode", flaky_encode)
    out = tmp_path / "data"
    rc, text = run_prepare("--csv", csv_path, "--videos", videos, "--out", out, "--workers", 1)
    assert rc == 0
    assert "cut failed: 1" in text and "simulated crash" in text and f"{csv_path}, line 6: " in text
    assert len(read_manifest(out / "train.tsv").rows) == 5
    assert not list((out / "clips").rglob(f"*{cutting.TEMP_MARK}*"))

    monkeypatch.setattr(cutting, "_encode", real_encode)
    assert run_prepare("--csv", csv_path, "--videos", videos, "--out", out, "--workers", 2)[0] == 0
    assert_same_manifest(out, ref)
    assert report(out)["clips"] == {"already done": 5, "re-encoded": 1}


# ----------------------------------------------------------------------------- face blurring
class StubBlurrer:
    """FaceBlurrer's API; 'detects' a face on every other frame and blacks out the top-left corner."""

    instances = 0

    def __init__(self):
        type(self).instances += 1
        self.reset()

    def reset(self):
        self.n = 0

    def __call__(self, frame):
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
        self.n += 1
        out = frame.copy()
        out[-8:, :8] = 0
        return out

    @property
    def stats(self):
        return {"frames": self.n, "frames_with_detection": self.n // 2, "frames_blurred": self.n}


def test_blur_faces_reencodes_every_clip_through_the_blurrer(videos, tmp_path):
    from ssvp_slt.prep.cutting import CutSettings
    from ssvp_slt.prep.pipeline import SplitSource, prepare_full_videos

    csv_path = write_csv(tmp_path / "train.csv", GOOD_ROWS[:4])
    out = tmp_path / "data"
    settings = CutSettings(blur_faces=True, blur_factory=StubBlurrer)
    (rep,) = prepare_full_videos([SplitSource("train", csv_path)], videos, out, settings, workers=1, progress=False)
    rows = read_manifest(out / "train.tsv").rows
    n_frames = sum(r.n_frames for r in rows)
    assert rep.clips == {"re-encoded": 4}  # never stream-copied: every frame must pass the blurrer
    assert dict(rep.faces) == {"frames": n_frames, "frames_with_detection": sum(r.n_frames // 2 for r in rows), "frames_blurred": n_frames}
    saved = report(out)
    assert saved["faces"]["share_with_detection"] == pytest.approx(sum(r.n_frames // 2 for r in rows) / n_frames, abs=1e-4)
    assert "faces: detected on" in rep.summary()
    for r in rows:  # the blurrer's output is what was encoded
        with av.open(str(out / r.video)) as c:
            frame = next(c.decode(c.streams.video[0])).to_ndarray(format="rgb24")
        assert frame[-6:, :6].mean() < 20 and frame[-6:, -6:].mean() > 100

    # a re-run keeps the clips and still reports the face counts recorded with them
    (again,) = prepare_full_videos([SplitSource("train", csv_path)], videos, out, settings, workers=1, progress=False)
    assert again.clips == {"already done": 4} and dict(again.faces) == dict(rep.faces)


def test_blur_faces_with_the_real_blurrer(videos, tmp_path):
    csv_path = write_csv(tmp_path / "train.csv", GOOD_ROWS[:1])
    out = tmp_path / "data"
    rc, text = run_prepare("--csv", csv_path, "--videos", videos, "--out", out, "--blur-faces")
    assert rc == 0, text
    faces = report(out)["faces"]
    assert faces["frames"] == read_manifest(out / "train.tsv").rows[0].n_frames
    assert 0 <= faces["share_with_detection"] <= 1


# ----------------------------------------------------------------------------- splits and text settings
def test_csv_dir_prepares_all_splits(videos, tmp_path):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    write_csv(csv_dir / "how2sign_realigned_train.csv", GOOD_ROWS[:3])
    write_csv(csv_dir / "how2sign_realigned_val.csv", GOOD_ROWS[3:5])
    write_csv(csv_dir / "how2sign_realigned_test.csv", GOOD_ROWS[5:] + [GOOD_ROWS[0]])  # vidA_0 is in train already
    out = tmp_path / "data"
    rc, text = run_prepare("--csv-dir", csv_dir, "--videos", videos, "--out", out)
    assert rc == 0, text
    assert [len(read_manifest(out / f"{s}.tsv").rows) for s in ("train", "val", "test")] == [3, 2, 1]
    dup = report(out, "test")["problems"][0]
    assert dup["reason"] == "duplicate SENTENCE_NAME" and str(csv_dir / "how2sign_realigned_train.csv") in dup["message"]


def test_text_normalisation_lands_in_the_config(videos, tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "config.yaml").write_text("num_frames: 64\nlowercase: false\n")  # an existing setting is kept
    csv_path = write_csv(tmp_path / "train.csv", GOOD_ROWS[:2])
    rc, text = run_prepare("--csv", csv_path, "--videos", videos, "--out", out, "--lowercase", "--punctuation", "strip")
    assert rc == 0, text
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["num_frames"] == 64 and cfg["lowercase"] is True and cfg["punctuation"] == "strip"
    # the manifest keeps the caption as written: normalisation happens from the config
    assert [r.tgt_text for r in read_manifest(out / "train.tsv").rows] == ["Hello there.", "Second one!"]
    # a later run without the flags keeps them
    assert run_prepare("--csv", csv_path, "--videos", videos, "--out", out)[0] == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["punctuation"] == "strip"


def test_build_vocab_reads_punctuation_from_the_config(tmp_path):
    import sentencepiece as spm

    from ssvp_slt.corpus.data_config import VideoDataConfig
    from ssvp_slt.corpus.manifest import write_manifest

    captions = ["Hi, I'm here.", "Don't stop; go on!", "It costs $3.50, right?", "Well-known (really)."]
    write_manifest(tmp_path / "train.tsv", [{"id": f"s{i}", "video": "x.mp4", "n_frames": 5, "fps": 25.0, "tgt_text": c} for i, c in enumerate(captions)])
    (tmp_path / "config.yaml").write_text("punctuation: strip\nlowercase: true\n")
    rc, text = run_prepare("--data", tmp_path, "--vocab-size", 40, script="build_vocab")
    assert rc == 0, text
    cfg = VideoDataConfig.load(tmp_path)
    assert (cfg.punctuation, cfg.lowercase) == ("strip", True)
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "spm.model"))
    pieces = [sp.id_to_piece(i) for i in range(4, sp.get_piece_size())]
    assert not any(ch in p for p in pieces for ch in ",;!?()") and not any(p != p.lower() for p in pieces)
    assert run_prepare("--data", tmp_path, "--vocab-size", 40, "--punctuation", "keep", script="build_vocab")[0] == 0
    assert VideoDataConfig.load(tmp_path).punctuation == "keep"


def test_normalize_caption_punctuation():
    text = "  Hi, I'm   here!\t\"Well-known\" (really): $3.50, 10:30 - OK?  "
    assert normalize_caption(text, lowercase=False) == "Hi, I'm here! \"Well-known\" (really): $3.50, 10:30 - OK?"
    assert normalize_caption(text, lowercase=False, punctuation="keep") == normalize_caption(text, False)
    assert normalize_caption(text, lowercase=False, punctuation="strip") == "Hi I'm here Well-known really $3.50 10:30 OK"
    assert normalize_caption(text, lowercase=True, punctuation="strip") == "hi i'm here well-known really $3.50 10:30 ok"
    assert normalize_caption("Don\u2019t\u2026 stop.", lowercase=False, punctuation="strip") == "Don\u2019t stop"
    with pytest.raises(ValueError, match="punctuation must be one of keep, strip"):
        normalize_caption("x", lowercase=False, punctuation="drop")


def test_synthetic_full_corpus_drops_exactly_its_broken_rows(tmp_path):
    """The synthetic How2Sign layout records its deliberately broken rows: preparation must find exactly those."""
    from ssvp_slt.synthetic import full_videos as fv

    fv.render_full_videos(tmp_path / "corpus", n_train=8, n_val=2, n_test=2, seed=5, workers=1)
    raw = tmp_path / "corpus" / "raw"
    out = tmp_path / "data"
    rc, text = run_prepare("--csv-dir", raw, "--videos", raw / "videos", "--out", out, "--workers", 2)
    assert rc == 0, text
    broken = json.loads((raw / "broken_rows.json").read_text())
    expected = {fv.MISSING_VIDEO: "missing video", fv.EMPTY_CAPTION: "empty caption", fv.END_PAST_VIDEO_END: "END past video end"}
    for split in ("train", "val", "test"):
        rep = report(out, split)
        found = {p["sentence"]: p["reason"] for p in rep["problems"]}
        assert found == {b["SENTENCE_NAME"]: expected[b["kind"]] for b in broken if b["split"] == split}
        kept = {r.id for r in read_manifest(out / f"{split}.tsv").rows}
        assert rep["kept"] == len(kept) and rep["rows_read"] == rep["kept"] + rep["dropped"]
        for b in broken:
            if b["split"] == split and b["kind"] == fv.END_PAST_VIDEO_END:  # clamped to the video's end and kept
                assert b["SENTENCE_NAME"] in kept
                clamp = next(p for p in rep["problems"] if p["sentence"] == b["SENTENCE_NAME"])
                assert clamp["action"] == "clamped" and f"({b['video_duration']:.3f} s)" in clamp["message"]


def test_unquoted_commas_in_a_comma_separated_caption_are_kept(tmp_path):
    from ssvp_slt.prep.how2sign_csv import read_sentences

    csv_path = tmp_path / "train.csv"
    csv_path.write_text(HEADER.replace("\t", ",") + "\nv,vidA,0,vidA_0,0.0,1.5,Hi, I'm here, really.\n")
    contents = read_sentences(csv_path)
    assert [s.caption for s in contents.sentences] == ["Hi, I'm here, really."]
    assert [p.reason for p in contents.repairs] == ["unquoted delimiter in caption"] and "2 stray comma(s)" in contents.repairs[0].message
