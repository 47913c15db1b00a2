"""scripts/prepare_how2sign.py --clips: manifests from pre-cut per-sentence clips.

Bad rows are reported (CSV file and line) and dropped; the run fails only with
--strict, or when a split has no usable row or a required column is missing.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_slt.corpus.manifest import read_manifest  # noqa: E402
from conftest import run_script_captured  # noqa: E402
from video_helpers import write_audio_only, write_garbage, write_test_video, write_truncated_video  # noqa: E402

SCRIPT = REPO_ROOT / "scripts" / "prepare_how2sign.py"
HEADER = ["VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED", "END_REALIGNED", "SENTENCE"]


def row(name, sentence, video_id="vid1"):
    return [video_id, f"{video_id}-rgb_front", name.rsplit("_", 1)[-1], name, "1.5", "4.25", sentence]


def write_csv(path, rows, header=HEADER, sep="\t"):
    lines = [sep.join(header)] + [r if isinstance(r, str) else sep.join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_cli(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60)


def run(*args):
    return run_script_captured("prepare_how2sign", *args)


@pytest.fixture
def corpus(tmp_path):
    """Data root with clips inside it: three good clips (10, 12, 10 frames) and a CSV naming them."""
    root = tmp_path / "data"
    clips = root / "clips"
    write_test_video(clips / "vid1_0-1-rgb_front.mp4", n_frames=10)
    write_test_video(clips / "vid1_1-1-rgb_front.mp4", n_frames=12)
    write_test_video(clips / "vid2_0-1-rgb_front.mp4", n_frames=10, size=(48, 32))
    rows = [
        row("vid1_0-1-rgb_front", "Hi, I'm  going to show you\u00a0how to tie a knot."),
        row("vid1_1-1-rgb_front", "First, take the rope."),
        row("vid2_0-1-rgb_front", "And that's it!", video_id="vid2"),
    ]
    return root, clips, rows


def test_happy_path(corpus, tmp_path):
    root, clips, rows = corpus
    csv_path = write_csv(tmp_path / "how2sign_realigned_train.csv", rows)
    res = run_cli("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train", "--workers", 2)
    assert res.returncode == 0, res.stderr
    assert "misaligned" in res.stderr  # the pre-cut clips warning
    assert "train: read 3 rows, kept 3, dropped 0" in res.stdout
    assert json.loads((root / "prepare_report_train.json").read_text())["clips"] == {"pre-cut": 3}

    manifest = read_manifest(root / "train.tsv")
    assert [r.id for r in manifest.rows] == [r[3] for r in rows]
    assert [r.video for r in manifest.rows] == [f"clips/{r[3]}.mp4" for r in rows]  # relative to the data root
    assert [r.n_frames for r in manifest.rows] == [10, 12, 10]
    assert all(r.fps == 25 for r in manifest.rows)
    assert [r.tgt_text for r in manifest.rows] == [
        "Hi, I'm going to show you how to tie a knot.",
        "First, take the rope.",
        "And that's it!",
    ]


def test_clips_outside_data_root_are_relative(corpus, tmp_path):
    root, clips, rows = corpus
    csv_path = write_csv(tmp_path / "train.csv", rows)
    out = tmp_path / "elsewhere" / "root"
    rc, text = run("--csv", csv_path, "--clips", clips, "--out", out, "--split", "val")
    assert rc == 0, text
    manifest = read_manifest(out / "val.tsv")
    for r in manifest.rows:
        assert not Path(r.video).is_absolute()
        assert r.video.startswith("../")
        assert (out / r.video).resolve() == (clips / f"{r.id}.mp4").resolve()


def _bad_missing_clip(clips):
    return row("vid9_0-1-rgb_front", "This clip does not exist.", "vid9"), "clip not found", "missing clip"


def _bad_garbage(clips):
    write_garbage(clips / "vid9_0-1-rgb_front.mp4")
    return row("vid9_0-1-rgb_front", "Random bytes.", "vid9"), "cannot open as a video", "unreadable clip"


def _bad_truncated(clips):
    write_truncated_video(clips / "vid9_0-1-rgb_front.mp4", keep_bytes=300)
    return row("vid9_0-1-rgb_front", "Cut short.", "vid9"), "vid9_0-1-rgb_front.mp4", "unreadable clip"


def _bad_audio_only(clips):
    write_audio_only(clips / "vid9_0-1-rgb_front.mp4")
    return row("vid9_0-1-rgb_front", "Only sound.", "vid9"), "no video stream", "no video stream"


def _bad_empty_caption(clips):
    write_test_video(clips / "vid9_0-1-rgb_front.mp4")
    return row("vid9_0-1-rgb_front", "   ", "vid9"), "empty caption", "empty caption"


def _bad_duplicate(clips):
    return row("vid1_1-1-rgb_front", "Same name again."), "duplicate SENTENCE_NAME 'vid1_1-1-rgb_front' (first on line 3)", "duplicate SENTENCE_NAME"


BAD_CASES = {
    "missing_clip": _bad_missing_clip,
    "garbage": _bad_garbage,
    "truncated": _bad_truncated,
    "audio_only": _bad_audio_only,
    "empty_caption": _bad_empty_caption,
    "duplicate": _bad_duplicate,
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_row(case, corpus, tmp_path):
    root, clips, rows = corpus
    bad, message, reason = BAD_CASES[case](clips)
    rows = rows[:2] + [bad] + rows[2:]  # header is line 1, so the bad row is line 4
    csv_path = write_csv(tmp_path / "train.csv", rows)

    rc, text = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train")
    assert rc == 0, text  # reported and dropped, not fatal
    assert f"{csv_path}, line 4: " in text and message in text
    assert f"read 4 rows, kept 3, dropped 1 ({reason}: 1)" in text
    manifest = read_manifest(root / "train.tsv")
    assert [r.id for r in manifest.rows] == [r[3] for r in corpus[2]]
    (problem,) = json.loads((root / "prepare_report_train.json").read_text())["problems"]
    assert (problem["line"], problem["reason"], problem["action"]) == (4, reason, "dropped")

    # --strict: the same report and manifest, but a failing exit status
    rc, text = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train", "--strict")
    assert rc == 1 and "--strict: 1 row(s) dropped" in text
    # --skip-invalid is accepted and changes nothing (skipping is the default)
    rc, text = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train", "--skip-invalid")
    assert rc == 0 and f"read 4 rows, kept 3, dropped 1 ({reason}: 1)" in text


def test_tab_inside_caption_is_repaired(corpus, tmp_path):
    root, clips, rows = corpus
    write_test_video(clips / "vid9_0-1-rgb_front.mp4")
    fields = row("vid9_0-1-rgb_front", "A caption", "vid9")
    rows = rows + ["\t".join(fields[:-1] + ["A caption", "with a tab"])]
    csv_path = write_csv(tmp_path / "train.csv", rows)
    rc, text = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train")
    assert rc == 0, text
    assert f"{csv_path}, line 5: 1 stray tab(s) inside the caption; joined [repaired]" in text
    assert read_manifest(root / "train.tsv").rows[-1].tgt_text == "A caption with a tab"


def test_all_problems_reported_at_once(corpus, tmp_path):
    root, clips, rows = corpus
    write_garbage(clips / "garbage.mp4")
    write_audio_only(clips / "audio.mp4")
    write_test_video(clips / "emptycap.mp4")
    csv_rows = [
        rows[0],  # line 2
        row("missing", "No clip."),  # line 3
        row("garbage", "Garbage."),  # line 4
        row("audio", "Audio only."),  # line 5
        row(rows[0][3], "Duplicate."),  # line 6
        row("emptycap", ""),  # line 7
        row("nothing", "   "),  # line 8: no caption (and no clip: not looked for, the row is dropped already)
        rows[1],  # line 9
        rows[2],  # line 10
    ]
    csv_path = write_csv(tmp_path / "train.csv", csv_rows)
    rc, text = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train")
    assert rc == 0, text
    for line in (3, 4, 5, 6, 7, 8):
        assert f"{csv_path}, line {line}: " in text
    for line in (2, 9, 10):
        assert f"{csv_path}, line {line}: " not in text
    assert f"{csv_path}, line 6: duplicate SENTENCE_NAME '{rows[0][3]}' (first on line 2)" in text
    assert f"{csv_path}, line 8: empty caption" in text
    assert "read 9 rows, kept 3, dropped 6" in text
    for reason in ("missing clip: 1", "unreadable clip: 1", "no video stream: 1", "duplicate SENTENCE_NAME: 1", "empty caption: 2"):
        assert reason in text
    manifest = read_manifest(root / "train.tsv")
    assert [r.id for r in manifest.rows] == [rows[0][3], rows[1][3], rows[2][3]]
    assert manifest.rows[0].tgt_text.startswith("Hi, I'm")


def test_missing_column(corpus, tmp_path):
    root, clips, rows = corpus
    header = HEADER[:-1] + ["CAPTION"]
    csv_path = write_csv(tmp_path / "train.csv", rows, header=header)
    rc, text = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train")
    assert rc == 1
    assert f"{csv_path}: missing required column(s) SENTENCE;" in text
    assert "'CAPTION'" in text  # the header is shown
    assert not (root / "train.tsv").exists()


def test_comma_separated_csv(corpus, tmp_path):
    root, clips, rows = corpus
    csv_path = tmp_path / "train.csv"
    with open(csv_path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)  # captions with commas get quoted
        writer.writerow(HEADER)
        writer.writerows(rows)
    rc, text = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train")
    assert rc == 0, text
    assert f"{csv_path}: the file is comma-separated (How2Sign's CSVs are tab-separated)" in text
    assert read_manifest(root / "train.tsv").rows[0].tgt_text == "Hi, I'm going to show you how to tie a knot."


def test_comma_separated_csv_missing_column(corpus, tmp_path):
    root, clips, rows = corpus
    csv_path = write_csv(tmp_path / "train.csv", [",".join(r[:3]) for r in rows], header=HEADER[:3], sep=",")
    rc, text = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train")
    assert rc == 1
    assert f"{csv_path}: missing required column(s) SENTENCE_NAME, SENTENCE; the header row, read as comma-separated" in text


def test_not_utf8_is_reported_for_its_row(corpus, tmp_path):
    root, clips, rows = corpus
    csv_path = tmp_path / "train.csv"
    text = "\t".join(HEADER) + "\n" + "\t".join(row("vid1_0-1-rgb_front", "Caf\u00e9")) + "\n" + "\t".join(rows[1]) + "\n"
    csv_path.write_bytes(text.encode("latin-1"))
    rc, out = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train")
    assert rc == 0, out
    assert f"{csv_path}, line 2: SENTENCE holds bytes that are not UTF-8 (b'Caf\\xe9'; as Windows-1252 it would read 'Caf\u00e9')" in out
    assert "non-UTF-8 text: 1" in out
    assert [r.id for r in read_manifest(root / "train.tsv").rows] == [rows[1][3]]


def test_no_valid_rows_is_an_error(corpus, tmp_path):
    root, clips, _ = corpus
    csv_path = write_csv(tmp_path / "train.csv", [row("missing", "No clip.")])
    rc, text = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train", "--skip-invalid")
    assert rc == 1
    assert "no usable rows" in text
    assert not (root / "train.tsv").exists()
    assert json.loads((root / "prepare_report_train.json").read_text())["dropped_by_reason"] == {"missing clip": 1}


def test_cutting_options_need_full_videos(corpus, tmp_path, capsys):
    root, clips, rows = corpus
    csv_path = write_csv(tmp_path / "train.csv", rows)
    rc, _ = run("--csv", csv_path, "--clips", clips, "--out", root, "--short-side", 128)
    assert rc == 2 and "--short-side: only for cutting full videos (--videos)" in capsys.readouterr().err
