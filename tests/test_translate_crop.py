"""The signer crop at inference: a data root prepared with --signer-crop records it, and uncut video
is cropped as preparation cut the training clips (the same box, nearly the same pixels)."""

import csv
import json

import numpy as np
import pytest

pytest.importorskip("cv2")

from conftest import run_script  # noqa: E402
from ssvp_slt.corpus.data_config import VideoDataConfig  # noqa: E402
from ssvp_slt.corpus.manifest import read_manifest  # noqa: E402
from ssvp_slt.corpus.video_io import decode_frames  # noqa: E402
from ssvp_slt.inference.clips import ClipJob, plan_segment, read_clip  # noqa: E402
from ssvp_slt.inference.crop import SignerCropper, recorded_signer_crop  # noqa: E402
from ssvp_slt.inference.sources import FileSource  # noqa: E402
from ssvp_slt.synthetic.full_videos import render_full_videos  # noqa: E402

SIDE = 64


@pytest.fixture(scope="module")
def cropped_root(tmp_path_factory):
    """A how2sign-like full-video corpus (320x180, signer off centre) prepared with --signer-crop."""
    work = tmp_path_factory.mktemp("crop")
    render_full_videos(work / "corpus", n_train=6, n_val=1, n_test=3, seed=11, style="how2sign", frame_size=(320, 180),
                       broken_rows=False, workers=2)
    raw = work / "corpus" / "raw"
    data = work / "data"
    rc = run_script("prepare_how2sign", "--csv", raw / "how2sign_realigned_test.csv", "--split", "test",
                    "--videos", raw / "videos", "--out", data, "--signer-crop", "--short-side", SIDE, "--workers", 1)
    assert rc == 0
    return raw, data


def test_preparation_records_the_signer_crop_in_the_data_config(cropped_root):
    _, data = cropped_root
    cfg = VideoDataConfig.load(data, check_files=False)
    assert cfg.signer_crop["size"] == SIDE and cfg.signer_crop["detect_every"] == 16
    crop, where = recorded_signer_crop(cfg)
    assert crop == cfg.signer_crop and where.endswith("config.yaml: signer_crop")
    # a data root prepared before the field existed: the preparation report says it
    cfg.signer_crop = None
    crop, where = recorded_signer_crop(cfg)
    assert crop["size"] == SIDE and where.endswith("prepare_report_test.json: settings.signer_crop")


def test_uncut_video_is_cropped_as_the_training_clips_were_cut(cropped_root):
    raw, data = cropped_root
    cfg = VideoDataConfig.load(data, check_files=False)
    cfg.resize_short_side, cfg.crop_size = SIDE, SIDE
    report = json.loads((data / "prepare_report_test.json").read_text())
    cropper = SignerCropper(cfg.signer_crop)
    rows = read_manifest(data / "test.tsv").rows
    assert rows
    with open(raw / "how2sign_realigned_test.csv", encoding="utf-8") as f:
        csv_rows = {r["SENTENCE_NAME"]: r for r in csv.DictReader(f, delimiter="\t")}
    for row in rows:
        source = FileSource(raw / "videos" / f"{csv_rows[row.id]['VIDEO_NAME']}.mp4")
        start = int(round(float(csv_rows[row.id]["START_REALIGNED"]) * source.fps))
        n = row.n_frames
        plan = plan_segment(n, source.fps, cfg)
        frames, _, _, box = read_clip(source, ClipJob(0, 0, start, start + n, plan, 0), cfg, cropper)
        assert box["box"] == report["signer_crop"]["boxes"][row.id]["box"], row.id  # the same detections, the same box
        clip, _ = decode_frames(data / row.video, plan.source_indices, SIDE)  # what the data set reads from the cut clip
        diff = np.abs(frames.astype(np.int16) - clip.astype(np.int16))
        assert diff.mean() < 3.0, (row.id, diff.mean())  # the cut clip went through one more H.264 encoding
