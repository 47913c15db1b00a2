"""Every kind of bad input fails when the split loads, naming the file and row,
or is skipped with a logged count when the user asks for it."""

import logging

import pytest

from conftest import load_task
from ssvp_slt.corpus.data_config import DataConfigError
from ssvp_slt.corpus.manifest import ManifestError
from video_helpers import write_audio_only, write_garbage, write_test_video, write_video_without_frames


def _rows(tsv):
    lines = tsv.read_text().strip("\n").split("\n")
    return lines[0], [line.split("\t") for line in lines[1:]]


def _set(header, row, column, value):
    row = list(row)
    row[header.split("\t").index(column)] = value
    return row


def _write(tsv, header, rows):
    tsv.write_text("\n".join([header] + ["\t".join(r) for r in rows]) + "\n")


def _replace_video(data_root, row_index, path, split="val"):
    tsv = data_root / f"{split}.tsv"
    header, rows = _rows(tsv)
    rows[row_index][header.split("\t").index("video")] = str(path)
    _write(tsv, header, rows)
    return tsv, row_index + 2  # header is line 1


BAD_VIDEOS = {
    "missing file": (lambda p: p, "video file not found"),
    "not a video": (lambda p: write_garbage(p), "cannot open as a video"),
    "no video stream": (lambda p: write_audio_only(p.with_suffix(".m4a")), "no video stream"),
    "zero frames": (lambda p: write_video_without_frames(p.with_suffix(".mkv")), "zero frames"),
}


@pytest.mark.parametrize("case", list(BAD_VIDEOS))
def test_unusable_video_fails_at_load_naming_file_and_line(data_root, tmp_path, case):
    """check_videos=probe opens every video, as preparation did."""
    make, message = BAD_VIDEOS[case]
    path = make(tmp_path / "bad.mp4")
    tsv, line = _replace_video(data_root, 1, path)
    task = load_task(data_root, check_videos="probe")
    with pytest.raises(ManifestError) as e:
        task.load_dataset("val")
    text = str(e.value)
    assert f"{tsv}, line {line}" in text and str(path) in text and message in text
    assert "skip_invalid_samples" in text


def test_default_load_finds_missing_and_changed_files_without_opening_them(data_root, tmp_path, monkeypatch):
    import av

    def no_open(*args, **kwargs):
        raise AssertionError("loading a split opened a video")

    monkeypatch.setattr(av, "open", no_open)
    header, rows = _rows(data_root / "val.tsv")
    assert "file_size" in header.split("\t")  # preparation records it
    load_task(data_root).load_dataset("val")  # trusts the manifest: no video is opened

    tsv, line = _replace_video(data_root, 1, tmp_path / "missing.mp4")
    with pytest.raises(ManifestError, match=rf"line {line} .*missing\.mp4: video file not found"):
        load_task(data_root).load_dataset("val")
    # a clip replaced by a file of another size since preparation (the row keeps its recorded size)
    tsv, line = _replace_video(data_root, 1, write_garbage(tmp_path / "garbage.mp4"))
    with pytest.raises(ManifestError, match=rf"line {line} .*garbage\.mp4: file is \d+ bytes, the manifest recorded \d+"):
        load_task(data_root).load_dataset("val")


def test_unusable_videos_are_skipped_with_a_count_when_asked(data_root, tmp_path, caplog):
    _replace_video(data_root, 0, tmp_path / "missing.mp4")
    _replace_video(data_root, 2, write_garbage(tmp_path / "garbage.mp4"))
    n_rows = len(_rows(data_root / "val.tsv")[1])
    task = load_task(data_root, skip_invalid_samples=True, check_videos="probe")
    with caplog.at_level(logging.WARNING):
        task.load_dataset("val")
    assert len(task.datasets["val"]) == n_rows - 2
    assert f"skipping 2 of {n_rows} row(s)" in caplog.text


def test_frame_count_disagreeing_with_the_manifest_fails(data_root, tmp_path):
    tsv, line = _replace_video(data_root, 0, write_test_video(tmp_path / "short.mp4", n_frames=10, size=(64, 64)))
    with pytest.raises(ManifestError, match=rf"line {line}.*manifest says \d+ frames, the file has 10"):
        load_task(data_root, check_videos="probe").load_dataset("val")


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda h, r: (h, [_set(h, r[0], "tgt_text", "   ")] + r[1:]), "line 2: empty caption"),
        (lambda h, r: (h, [_set(h, r[0], "fps", "many")] + r[1:]), "line 2: fps is not a number: 'many'"),
        (lambda h, r: (h, [_set(h, r[0], "n_frames", "0")] + r[1:]), "line 2: n_frames must be positive"),
        (lambda h, r: (h, [_set(h, r[0], "file_size", "big")] + r[1:]), "line 2: file_size is not an integer: 'big'"),
        (lambda h, r: (h, r[:1] + [r[1][:3]] + r[2:]), "line 3: wrong number of fields"),
        (lambda h, r: (h, r + [r[0]]), "duplicate id"),
        (lambda h, r: (h.replace("tgt_text", "caption"), r), "missing column(s) tgt_text"),
    ],
    ids=["empty caption", "bad fps", "zero frames in manifest", "bad file size", "short row", "duplicate id", "missing column"],
)
def test_malformed_manifest_fails_naming_file_and_line(data_root, edit, message):
    tsv = data_root / "val.tsv"
    header, rows = edit(*_rows(tsv))
    _write(tsv, header, rows)
    with pytest.raises(ManifestError) as e:
        load_task(data_root).load_dataset("val")
    assert str(tsv) in str(e.value) and message in str(e.value)


def test_malformed_rows_are_skipped_with_a_count_when_asked(data_root, caplog):
    tsv = data_root / "val.tsv"
    header, rows = _rows(tsv)
    rows[0] = _set(header, rows[0], "tgt_text", " ")
    rows[1] = rows[1][:3]
    _write(tsv, header, rows)
    with caplog.at_level(logging.WARNING):
        task = load_task(data_root, skip_invalid_samples=True)
        task.load_dataset("val")
    assert len(task.datasets["val"]) == len(rows) - 2
    assert "skipped 2 invalid row(s)" in caplog.text and "'empty caption': 1" in caplog.text


def test_missing_manifest_is_named(data_root):
    with pytest.raises(ManifestError, match=r"dev\.tsv: manifest not found"):
        load_task(data_root).load_dataset("dev")


@pytest.mark.parametrize("key", ["sentencepiece_model", "dictionary"])
def test_data_config_naming_a_missing_file_fails_at_setup(data_root, key):
    (data_root / ("spm.model" if key == "sentencepiece_model" else "dict.txt")).unlink()
    with pytest.raises(DataConfigError, match=rf"config\.yaml: {key} names .* which does not exist"):
        load_task(data_root)


def test_data_config_with_unknown_or_bad_settings_fails(data_root):
    cfg = data_root / "config.yaml"
    original = cfg.read_text()
    cfg.write_text(original + "frame_rate: 25\n")
    with pytest.raises(DataConfigError, match=r"unknown setting\(s\) \['frame_rate'\]"):
        load_task(data_root)
    cfg.write_text(original + "punctuation: remove\n")
    with pytest.raises(DataConfigError, match="punctuation must be 'keep' or 'strip'"):
        load_task(data_root)
    cfg.write_text(original.replace("crop_size: 32", "crop_size: 64"))
    with pytest.raises(DataConfigError, match="crop_size .* is larger than resize_short_side"):
        load_task(data_root)


@pytest.mark.parametrize(
    "line,message",
    [
        ("window_stride: 0", "window_stride must be an integer from 1 to num_frames"),
        ("window_stride: 99", "window_stride must be an integer from 1 to num_frames (16), got 99"),
        ("max_windows: 0", "max_windows must be a positive integer"),
        ("long_clips: crop", "long_clips must be one of ['stretch', 'drop', 'truncate']"),
        ("train_jitter: 0.7", "train_jitter must be a number in [0, 0.5)"),
    ],
)
def test_data_config_window_and_jitter_settings_are_checked(data_root, line, message):
    cfg = data_root / "config.yaml"
    key = line.split(":")[0]
    kept = [x for x in cfg.read_text().splitlines() if not x.startswith(f"{key}:")]
    cfg.write_text("\n".join(kept + [line]) + "\n")
    with pytest.raises(DataConfigError) as e:
        load_task(data_root)
    assert str(cfg) in str(e.value) and message in str(e.value)
