"""Issue 14, cases 2 and 6.

2. A caption with no word left after the data config's normalisation (``"?!..."`` under
   ``punctuation: strip``) never becomes an EOS-only target: preparation drops and reports it,
   manifest loading and vocabulary building stop naming its line (or skip and count it).
6. Manifests: a UTF-8 byte-order mark is accepted; a byte that is not UTF-8 is reported with its
   line and, under skip_invalid, costs only its row; skipped rows are counted per reason, not per
   offending value, with the first line numbers of each reason in the log.
"""

import json
import logging

import pytest
import yaml

from conftest import load_task, run_script_captured
from ssvp_slt.corpus.manifest import ManifestError, ManifestRow, read_manifest, write_manifest
from ssvp_slt.corpus.text import EMPTY_AFTER_NORMALISATION, empty_caption_problem, has_words, normalize_caption
from video_helpers import write_test_video

EMPTY_WHEN_STRIPPED = "?!..."
HEADER = "id\tvideo\tn_frames\tfps\ttgt_text"


def _manifest(path, rows, header=HEADER, prefix=b""):
    """header, rows: tab-joined str lines, or bytes (to hold bytes that are not UTF-8)."""
    lines = [r if isinstance(r, bytes) else r.encode("utf-8") for r in [header, *rows]]
    path.write_bytes(prefix + b"\n".join(lines) + b"\n")
    return path


def _row(i, caption="a caption", n_frames=10):
    return f"s{i}\tclips/s{i}.mp4\t{n_frames}\t25\t{caption}"


def _set_punctuation(data_root, value):
    cfg_path = data_root / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["punctuation"] = value
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def _set_caption(tsv, index, caption):
    """Replace the caption of data row ``index``; returns its manifest line number."""
    lines = tsv.read_text(encoding="utf-8").rstrip("\n").split("\n")
    col = lines[0].split("\t").index("tgt_text")
    fields = lines[index + 1].split("\t")
    fields[col] = caption
    lines[index + 1] = "\t".join(fields)
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return index + 2


# -- case 2: captions that normalise to nothing --


@pytest.mark.parametrize(
    "text", ["?!...", "...", "\u201c\u201d", "a", "don't", "3.5", "$5", "\u200b", "\u200b?", " \u00a0 ", "\u00bfQu\u00e9?"]
)
@pytest.mark.parametrize("punctuation", ["keep", "strip"])
def test_has_words_agrees_with_the_normalised_caption(text, punctuation):
    """has_words reads the raw text (fast); it must answer as if the caption had been normalised."""
    normalised = normalize_caption(text, lowercase=True, punctuation=punctuation)
    assert has_words(text, punctuation) == has_words(normalised, punctuation) == has_words(normalised)


def test_empty_caption_problem_names_the_reason():
    assert empty_caption_problem("Hello!", "strip") is None
    assert empty_caption_problem(EMPTY_WHEN_STRIPPED, "keep") is None  # kept punctuation is a target of its own
    reason, message = empty_caption_problem(EMPTY_WHEN_STRIPPED, "strip")
    assert reason == EMPTY_AFTER_NORMALISATION and "'?!...'" in message and "punctuation" in message
    assert empty_caption_problem("\u200b\u200b", "keep")[0] == EMPTY_AFTER_NORMALISATION  # sentencepiece: no piece
    assert empty_caption_problem("   ", "keep")[0] == "empty caption"


def test_manifest_caption_empty_after_normalisation_fails_or_is_skipped(tmp_path, caplog):
    tsv = _manifest(tmp_path / "train.tsv", [_row(0), _row(1, EMPTY_WHEN_STRIPPED), _row(2)])
    assert len(read_manifest(tsv, punctuation="keep").rows) == 3  # "?!..." is text under keep
    with pytest.raises(ManifestError) as e:
        read_manifest(tsv, punctuation="strip")
    assert f"{tsv}, line 3: {EMPTY_AFTER_NORMALISATION}" in str(e.value)
    with caplog.at_level(logging.WARNING):
        manifest = read_manifest(tsv, punctuation="strip", skip_invalid=True)
    assert [r.id for r in manifest.rows] == ["s0", "s2"]
    assert manifest.skipped == {EMPTY_AFTER_NORMALISATION: 1}
    assert f"'{EMPTY_AFTER_NORMALISATION}': 1 (line 3)" in caplog.text


def test_task_refuses_a_caption_that_normalises_to_nothing(data_root, caplog):
    """Before: the row trained as an EOS-only target without a word."""
    _set_punctuation(data_root, "strip")
    tsv = data_root / "val.tsv"
    n_rows = len(read_manifest(tsv).rows)
    line = _set_caption(tsv, 1, EMPTY_WHEN_STRIPPED)
    with pytest.raises(ManifestError) as e:
        load_task(data_root).load_dataset("val")
    assert f"{tsv}, line {line}: {EMPTY_AFTER_NORMALISATION}" in str(e.value)

    task = load_task(data_root, skip_invalid_samples=True)
    with caplog.at_level(logging.WARNING):
        task.load_dataset("val")
    dataset = task.datasets["val"]
    assert len(dataset) == n_rows - 1
    assert all(len(t) > 1 for t in dataset.targets)  # no EOS-only target
    assert f"'{EMPTY_AFTER_NORMALISATION}': 1 (line {line})" in caplog.text


def test_task_refuses_eos_only_targets_naming_the_line(data_root, tmp_path):
    """The last guard: a caption sentencepiece encodes to nothing never becomes a target."""
    task = load_task(data_root)
    rows = [
        ManifestRow(id="a", video="a.mp4", n_frames=10, fps=25.0, tgt_text="hello", line=2),
        ManifestRow(id="b", video="b.mp4", n_frames=10, fps=25.0, tgt_text="\u200b", line=3),
    ]
    with pytest.raises(ManifestError, match=r"x\.tsv: 1 caption\(s\) encode to no sentencepiece piece .*line 3"):
        task.encode_row_captions(tmp_path / "x.tsv", rows)


def test_build_vocab_refuses_or_skips_a_caption_that_normalises_to_nothing(tmp_path, caplog):
    """Before: build_vocab dropped it silently, and training then used it as an empty target."""
    caplog.set_level(logging.INFO)  # build_vocab logs how many captions it trains on
    captions = ["Hello there, how are you?", "I am fine, thank you.", EMPTY_WHEN_STRIPPED, "See you tomorrow!"]
    rows = [
        {"id": f"s{i}", "video": f"s{i}.mp4", "n_frames": 10, "fps": 25.0, "tgt_text": c} for i, c in enumerate(captions)
    ]
    write_manifest(tmp_path / "train.tsv", rows)
    rc, text = run_script_captured("build_vocab", "--data", tmp_path, "--vocab-size", 30, "--punctuation", "strip")
    assert rc == 1
    assert f"{tmp_path / 'train.tsv'}, line 4: {EMPTY_AFTER_NORMALISATION}" in text and "--skip-invalid" in text
    assert not (tmp_path / "spm.model").exists()

    rc, text = run_script_captured(
        "build_vocab", "--data", tmp_path, "--vocab-size", 30, "--punctuation", "strip", "--skip-invalid"
    )
    assert rc == 0, text
    assert f"skipped 1 invalid row(s): '{EMPTY_AFTER_NORMALISATION}': 1 (line 4)" in text
    assert "on 3 captions" in text
    # under punctuation=keep "?!..." is a caption like any other
    rc, text = run_script_captured("build_vocab", "--data", tmp_path, "--vocab-size", 30, "--punctuation", "keep")
    assert rc == 0 and "on 4 captions" in text, text


def _precut_corpus(tmp_path, captions):
    clips = tmp_path / "clips"
    header = "VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\tEND_REALIGNED\tSENTENCE"
    lines = [header]
    for i, caption in enumerate(captions):
        name = f"vid1_{i}-1-rgb_front"
        write_test_video(clips / f"{name}.mp4", n_frames=10)
        lines.append(f"vid1\tvid1-rgb_front\t{i}\t{name}\t1.5\t4.25\t{caption}")
    csv_path = tmp_path / "how2sign_train.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path, clips


@pytest.mark.parametrize("how", ["flag", "config.yaml"])
def test_preparation_drops_and_reports_a_caption_that_normalises_to_nothing(tmp_path, how):
    csv_path, clips = _precut_corpus(tmp_path, ["Hello there.", EMPTY_WHEN_STRIPPED, "Bye now!"])
    out = tmp_path / "data"
    args = ["--csv", csv_path, "--clips", clips, "--out", out, "--split", "train"]
    if how == "flag":
        args += ["--punctuation", "strip"]
    else:  # recorded by an earlier run (or build_vocab): preparation checks with the data root's setting
        out.mkdir()
        (out / "config.yaml").write_text("punctuation: strip\n")
    rc, text = run_script_captured("prepare_how2sign", *args)
    assert rc == 0, text
    assert f"{csv_path}, line 3: {EMPTY_AFTER_NORMALISATION}: '?!...'" in text
    assert f"read 3 rows, kept 2, dropped 1 ({EMPTY_AFTER_NORMALISATION}: 1)" in text
    report = json.loads((out / "prepare_report_train.json").read_text())
    assert report["dropped_by_reason"] == {EMPTY_AFTER_NORMALISATION: 1}
    manifest = read_manifest(out / "train.tsv", punctuation="strip")
    assert [r.tgt_text for r in manifest.rows] == ["Hello there.", "Bye now!"]


def test_preparation_keeps_punctuation_only_captions_when_punctuation_is_kept(tmp_path):
    csv_path, clips = _precut_corpus(tmp_path, ["Hello there.", EMPTY_WHEN_STRIPPED])
    rc, text = run_script_captured(
        "prepare_how2sign", "--csv", csv_path, "--clips", clips, "--out", tmp_path / "data", "--split", "train"
    )
    assert rc == 0 and "read 2 rows, kept 2, dropped 0" in text, text


# -- case 6: manifest encoding and skip counts --


def test_manifest_with_a_utf8_byte_order_mark_is_read(tmp_path):
    """Before: the header read '\\ufeffid' and the manifest was refused for a missing column id."""
    tsv = _manifest(tmp_path / "train.tsv", [_row(0), _row(1, "Caf\u00e9")], prefix=b"\xef\xbb\xbf")
    manifest = read_manifest(tsv)
    assert [r.id for r in manifest.rows] == ["s0", "s1"] and manifest.rows[1].tgt_text == "Caf\u00e9"
    assert [r.line for r in manifest.rows] == [2, 3]


def test_task_loads_a_manifest_with_a_byte_order_mark(data_root):
    tsv = data_root / "val.tsv"
    n_rows = len(read_manifest(tsv).rows)
    tsv.write_bytes(b"\xef\xbb\xbf" + tsv.read_bytes())
    task = load_task(data_root)
    task.load_dataset("val")
    assert len(task.datasets["val"]) == n_rows


def test_non_utf8_byte_is_reported_with_its_line_and_costs_only_its_row(tmp_path, caplog):
    """Before: the whole manifest was refused with a byte offset, even under skip_invalid."""
    bad = _row(1, "Caf\u00e9 au lait").encode("cp1252")
    tsv = _manifest(tmp_path / "train.tsv", [_row(0), bad, _row(2)])
    with pytest.raises(ManifestError) as e:
        read_manifest(tsv)
    message = str(e.value)
    assert f"{tsv}, line 3: not valid UTF-8: byte b'\\xe9'" in message
    assert "Caf\u00e9 au lait" in message  # the spot, read as Windows-1252, so the user can find it
    with caplog.at_level(logging.WARNING):
        manifest = read_manifest(tsv, skip_invalid=True)
    assert [r.id for r in manifest.rows] == ["s0", "s2"]
    assert manifest.skipped == {"not valid UTF-8": 1}
    assert f"{tsv}, line 3: not valid UTF-8" in caplog.text


def test_non_utf8_header_and_utf16_files_are_named(tmp_path):
    tsv = _manifest(tmp_path / "a.tsv", [_row(0)], header="id\tvideo\tn_frames\tfps\ttgt_text\t\xe9tat".encode("cp1252"))
    with pytest.raises(ManifestError, match=r"a\.tsv, line 1 \(the header\): not valid UTF-8"):
        read_manifest(tsv)
    utf16 = tmp_path / "b.tsv"
    utf16.write_text(HEADER + "\n" + _row(0) + "\n", encoding="utf-16")
    with pytest.raises(ManifestError, match=r"b\.tsv: the file is UTF-16 encoded; save it as UTF-8"):
        read_manifest(utf16)


def test_skipped_rows_are_counted_per_reason_with_their_first_lines(tmp_path, caplog):
    """Before: {'n_frames must be positive, got 0': 1, 'n_frames must be positive, got -5': 1}."""
    rows = [_row(0, n_frames=0), _row(1, n_frames=-5), _row(2), _row(3, n_frames=-1), "s4\tv.mp4\t10\tmany\tx"]
    rows += [_row(i, "   ") for i in range(5, 13)]  # 8 empty captions: lines 7-14
    tsv = _manifest(tmp_path / "train.tsv", rows)
    with caplog.at_level(logging.WARNING):
        manifest = read_manifest(tsv, skip_invalid=True)
    assert [r.id for r in manifest.rows] == ["s2"]
    assert manifest.skipped == {"n_frames must be positive": 3, "fps is not a number": 1, "empty caption": 8}
    assert manifest.skipped_lines["n_frames must be positive"] == [2, 3, 5]
    assert manifest.skipped_lines["empty caption"] == list(range(7, 15))
    summary = [r.getMessage() for r in caplog.records if "skipped 12 invalid row(s)" in r.getMessage()]
    assert len(summary) == 1
    assert "'n_frames must be positive': 3 (lines 2, 3, 5)" in summary[0]
    assert "'fps is not a number': 1 (line 6)" in summary[0]
    assert "'empty caption': 8 (lines 7, 8, 9, 10, 11, ...)" in summary[0]
    # each row's own message keeps its value, but only the first few of a reason are logged one by one
    assert f"{tsv}, line 3: n_frames must be positive, got -5; skipped" in caplog.text
    assert f"{tsv}, line 11: empty caption" in caplog.text and f"{tsv}, line 12: empty caption" not in caplog.text
