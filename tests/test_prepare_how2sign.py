import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_plugin.data.manifest import read_manifest  # noqa: E402
from video_helpers import write_audio_only, write_garbage, write_test_video, write_truncated_video  # noqa: E402

SCRIPT = REPO_ROOT / "scripts" / "prepare_how2sign.py"
HEADER = ["VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED", "END_REALIGNED", "SENTENCE"]


def row(name, sentence, video_id="vid1"):
    return [video_id, f"{video_id}-rgb_front", name.rsplit("_", 1)[-1], name, "1.5", "4.25", sentence]


def write_csv(path, rows, header=HEADER, sep="\t"):
    lines = [sep.join(header)] + [r if isinstance(r, str) else sep.join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60)


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
    res = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train", "--workers", 2)
    assert res.returncode == 0, res.stderr
    assert "misaligned" in res.stderr  # the pre-cut clips warning
    assert "read 3 rows, wrote 3, skipped 0" in res.stdout

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
    res = run("--csv", csv_path, "--clips", clips, "--out", out, "--split", "val")
    assert res.returncode == 0, res.stderr
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


def _bad_field_count(clips):
    write_test_video(clips / "vid9_0-1-rgb_front.mp4")
    fields = row("vid9_0-1-rgb_front", "A caption", "vid9")
    return "\t".join(fields[:-1] + ["A caption", "with a tab"]), "expected 7 tab-separated fields, found 8", "wrong number of fields"


BAD_CASES = {
    "missing_clip": _bad_missing_clip,
    "garbage": _bad_garbage,
    "truncated": _bad_truncated,
    "audio_only": _bad_audio_only,
    "empty_caption": _bad_empty_caption,
    "duplicate": _bad_duplicate,
    "field_count": _bad_field_count,
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_row(case, corpus, tmp_path):
    root, clips, rows = corpus
    bad, message, reason = BAD_CASES[case](clips)
    rows = rows[:2] + [bad] + rows[2:]  # header is line 1, so the bad row is line 4
    csv_path = write_csv(tmp_path / "train.csv", rows)

    res = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train")
    assert res.returncode != 0
    assert f"{csv_path}, line 4: " in res.stderr
    assert message in res.stderr
    assert f"{reason}: 1" in res.stderr
    assert "--skip-invalid" in res.stderr
    assert not (root / "train.tsv").exists()

    res = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train", "--skip-invalid")
    assert res.returncode == 0, res.stderr
    assert f"{csv_path}, line 4: " in res.stderr and message in res.stderr
    assert "read 4 rows, wrote 3, skipped 1" in res.stdout
    assert f"{reason}: 1" in res.stdout
    manifest = read_manifest(root / "train.tsv")
    assert [r.id for r in manifest.rows] == [r[3] for r in corpus[2]]


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
        row("nothing", "   "),  # line 8: two problems, no clip and no caption
        rows[1],  # line 9
        rows[2],  # line 10
    ]
    csv_path = write_csv(tmp_path / "train.csv", csv_rows)
    res = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train")
    assert res.returncode != 0
    for line in (3, 4, 5, 6, 7, 8):
        assert f"{csv_path}, line {line}: " in res.stderr
    for line in (2, 9, 10):
        assert f"{csv_path}, line {line}: " not in res.stderr
    assert f"{csv_path}, line 6: duplicate SENTENCE_NAME '{rows[0][3]}' (first on line 2)" in res.stderr
    assert f"{csv_path}, line 8: empty caption" in res.stderr
    assert f"{csv_path}, line 8: clip not found" in res.stderr
    assert "6 of 9 row(s) are invalid" in res.stderr

    res = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train", "--skip-invalid")
    assert res.returncode == 0, res.stderr
    assert "read 9 rows, wrote 3, skipped 6" in res.stdout
    for reason in ("missing clip: 2", "unreadable clip: 1", "no video stream: 1", "duplicate SENTENCE_NAME: 1", "empty caption: 2"):
        assert reason in res.stdout
    manifest = read_manifest(root / "train.tsv")
    assert [r.id for r in manifest.rows] == [rows[0][3], rows[1][3], rows[2][3]]
    assert manifest.rows[0].tgt_text.startswith("Hi, I'm")


def test_missing_column(corpus, tmp_path):
    root, clips, rows = corpus
    header = HEADER[:-1] + ["CAPTION"]
    csv_path = write_csv(tmp_path / "train.csv", rows, header=header)
    res = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train")
    assert res.returncode != 0
    assert f"{csv_path}: missing required column(s) SENTENCE;" in res.stderr
    assert "'CAPTION'" in res.stderr  # the header is shown
    assert not (root / "train.tsv").exists()


def test_comma_separated_csv(corpus, tmp_path):
    root, clips, rows = corpus
    csv_path = write_csv(tmp_path / "train.csv", [",".join(r) for r in rows], sep=",")
    res = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train")
    assert res.returncode != 0
    assert f"{csv_path}: missing required column(s) SENTENCE_NAME, SENTENCE" in res.stderr
    assert "comma-separated" in res.stderr


def test_not_utf8(corpus, tmp_path):
    root, clips, rows = corpus
    csv_path = tmp_path / "train.csv"
    text = "\t".join(HEADER) + "\n" + "\t".join(row("vid1_0-1-rgb_front", "Caf\u00e9")) + "\n"
    csv_path.write_bytes(text.encode("latin-1"))
    res = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train")
    assert res.returncode != 0
    assert f"{csv_path}: not valid UTF-8 (line 2" in res.stderr


def test_no_valid_rows_is_an_error(corpus, tmp_path):
    root, clips, _ = corpus
    csv_path = write_csv(tmp_path / "train.csv", [row("missing", "No clip.")])
    res = run("--csv", csv_path, "--clips", clips, "--out", root, "--split", "train", "--skip-invalid")
    assert res.returncode != 0
    assert "no valid rows" in res.stderr
    assert not (root / "train.tsv").exists()
