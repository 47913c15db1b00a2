"""SignTranslator and ssvp-slt-translate with a real (tiny, briefly trained) checkpoint: result
objects, frames in memory against files, concurrent calls, given segments, bad inputs and the
exit status, output formats, the benchmark script."""

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, hydra_train, run_script_captured
from ssvp_slt.corpus.manifest import read_manifest
from ssvp_slt.corpus.video_io import decode_frames
from ssvp_slt.inference.results import InputError, Translation
from ssvp_slt.inference.sources import VideoFrames
from ssvp_slt.synthetic.corpus import write_mp4


@pytest.fixture(scope="module")
def checkpoint(synthetic_root, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("translate")
    hydra_train(
        "quick_synthetic", synthetic_root, work / "ckpt", work, "optimization.max_update=3",
        "dataset.disable_validation=true", "task.eval_bleu=false", "optimizer.groups.default.lr_scheduler.warmup_updates=2",
    )
    return work / "ckpt" / "checkpoint_last.pt"


@pytest.fixture(scope="module")
def translator(checkpoint, synthetic_root):
    from ssvp_slt.translate import SignTranslator

    return SignTranslator.from_checkpoint(checkpoint, synthetic_root, beam=2, max_len_b=8, device="auto")


@pytest.fixture(scope="module")
def clips(synthetic_root):
    return [str(synthetic_root / r.video) for r in read_manifest(synthetic_root / "test.tsv").rows]


def _same(a: Translation, b: Translation):
    return (a.text, a.score, [(s.start, s.end, s.text, s.score) for s in a.segments]) == (
        b.text, b.score, [(s.start, s.end, s.text, s.score) for s in b.segments]
    )


def test_results_are_objects_with_text_score_segments_and_timings(translator, clips):
    from ssvp_slt.inference.sources import FileSource

    results = translator.translate(clips[:3], batch_size=2)
    assert [r.input for r in results] == clips[:3]
    for r, path in zip(results, clips):
        src = FileSource(path)
        assert r.ok and isinstance(r.text, str) and r.text and r.score <= 0
        assert (r.start, r.end) == (0.0, src.n_frames / src.fps)
        assert r.segmentation["method"] == "none" and r.segmentation["chosen"].startswith("auto: ")
        assert len(r.segments) == 1 and (r.segments[0].start, r.segments[0].end) == (r.start, r.end)
        assert r.segments[0].text == r.text and r.segments[0].tokens >= 1
        assert set(r.timings) == {"decode", "segmentation", "encoder", "search"} and r.timings["encoder"] > 0
        assert str(r) == r.text and json.loads(json.dumps(r.to_dict()))["text"] == r.text
    assert translator.describe()["signer_crop"] is None and translator.describe()["device"] == "cpu"


def _exact_size_copy(path: str, tmp_path: Path, side: int) -> Path:
    """The clip re-encoded at the model's decode size, so that a file and its decoded frames give the same pixels."""
    frames, n = decode_frames(path, np.arange(10_000), side)
    return write_mp4(tmp_path / "exact.mp4", frames[:n], fps=25)


def test_frames_in_memory_translate_as_the_file(translator, clips, tmp_path):
    side = translator.data_cfg.resize_short_side
    exact = _exact_size_copy(clips[0], tmp_path, side)
    frames, n = decode_frames(exact, np.arange(10_000))  # every frame, as a pipeline decoding the file would hold them
    frames = frames[:n]
    from_file = translator.translate_one(exact)
    from_frames = translator.translate([frames], fps=25)[0]
    assert _same(from_file, from_frames) and from_frames.input == "input[0]"
    as_tensor = translator.translate_one(torch.from_numpy(frames), fps=25)
    wrapped = translator.translate([VideoFrames(frames, 25, name="camera-1")])[0]
    assert _same(as_tensor, from_file) and _same(wrapped, from_file) and wrapped.input == "camera-1"
    # frames at another size go through the same swscale resize: the colour conversion differs slightly
    big, n = decode_frames(clips[1], np.arange(10_000))
    a, b = translator.translate_one(clips[1]), translator.translate_one(big[:n], fps=25)
    assert a.text == b.text and abs(a.score - b.score) < 0.05
    with pytest.raises(ValueError, match="frames given without a frame rate: pass fps="):
        translator.translate([frames])
    with pytest.raises(ValueError, match=r"expected uint8 frames"):
        translator.translate([frames.astype(np.float32)], fps=25)
    with pytest.raises(TypeError, match="use translate_one"):
        translator.translate(frames, fps=25)


def test_concurrent_calls_give_the_serial_results(translator, clips, tmp_path):
    frames, n = decode_frames(clips[2], np.arange(10_000))
    calls = [clips[:4], clips[3:], [clips[5], clips[0]], clips[1:3], clips[:2], clips[4:]]
    inputs = [[c for c in call] for call in calls] + [[frames[:n]]]
    serial = [translator.translate(x, batch_size=2, fps=25) for x in inputs]
    out, errors = [None] * (2 * len(inputs)), []

    def worker(k):
        try:
            out[k] = translator.translate(inputs[k % len(inputs)], batch_size=2, fps=25, workers=2)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(out))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k, results in enumerate(out):
        expected = serial[k % len(inputs)]
        assert len(results) == len(expected) and all(_same(a, b) for a, b in zip(results, expected))


def test_given_spans_translate_each_sentence_of_a_long_input(translator, clips):
    """Three clips end to end are one 'recording'; cutting it at the clips' boundaries gives each clip's translation."""
    parts = []
    for c in clips[:3]:
        f, n = decode_frames(c, np.arange(10_000))
        parts.append(f[:n])
    bounds = np.cumsum([0] + [len(p) for p in parts]) / 25.0
    alone = translator.translate(parts, fps=25)
    long = translator.translate_one(np.concatenate(parts), fps=25, spans=list(zip(bounds[:-1], bounds[1:])))
    assert long.segmentation["method"] == "given"
    assert [s.text for s in long.segments] == [a.text for a in alone]
    assert [s.score for s in long.segments] == [a.score for a in alone]
    assert [(s.start, s.end) for s in long.segments] == list(zip(bounds[:-1], bounds[1:]))
    assert long.text == " ".join(a.text for a in alone)
    fixed = translator.translate_one(np.concatenate(parts), fps=25, segmentation="fixed")
    assert fixed.segmentation["method"] == "fixed" and len(fixed.segments) >= 2
    assert fixed.segments[0].start == 0 and fixed.segments[-1].end == pytest.approx(bounds[-1])


def _audio_only(path: Path) -> Path:
    import av

    with av.open(str(path), "w", format="wav") as c:
        stream = c.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.rate = 8000
        for packet in stream.encode(frame):
            c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)
    return path


@pytest.fixture
def bad_inputs(tmp_path, clips):
    (tmp_path / "unreadable.mp4").write_bytes(b"this is not a video")
    short = write_mp4(tmp_path / "short.mp4", np.zeros((3, 32, 32, 3), np.uint8), fps=25)
    (tmp_path / "empty_folder").mkdir()
    return [
        (clips[0], None),
        (str(tmp_path / "missing.mp4"), "missing.mp4: video file not found"),
        (str(tmp_path / "unreadable.mp4"), "unreadable.mp4: cannot open as a video"),
        (str(_audio_only(tmp_path / "audio.wav")), "audio.wav: file has no video stream"),
        (str(short), "short.mp4: too short: 0.12 s (3 frame(s) at 25 fps); inputs must last at least 0.2 s"),
        (str(tmp_path / "empty_folder"), "empty_folder: no video files"),
        (clips[1], None),
    ]


def test_each_bad_input_is_reported_and_the_others_translated(translator, bad_inputs):
    files = [x for x, _ in bad_inputs if not x.endswith("empty_folder")]
    results = translator.translate(files, errors="return")
    expected = [e for x, e in bad_inputs if not x.endswith("empty_folder")]
    for r, e in zip(results, expected):
        assert (r.error is None) if e is None else (e in r.error), (r.error, e)
    assert results[0].ok and results[-1].ok and results[0].text
    with pytest.raises(InputError, match="missing.mp4: video file not found"):
        translator.translate(files)


def test_cli_reports_every_bad_input_and_exits_1(checkpoint, synthetic_root, bad_inputs, tmp_path, capsys):
    from ssvp_slt.inference.cli import main

    out = tmp_path / "out.jsonl"
    rc = main(["--checkpoint", str(checkpoint), "--data", str(synthetic_root), "--beam", "2", "--max-len-b", "8",
               *[x for x, _ in bad_inputs], "--format", "jsonl", "--output", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["input"] for d in lines] == [x for x, _ in bad_inputs]  # every input, in order
    for d, (_, e) in zip(lines, bad_inputs):
        assert (d["error"] is None and d["text"]) if e is None else (e in d["error"] and f"error: {d['error']}" in err)
    assert "translated 2 of 7 input(s)" in err and "; 5 failed" in err
    # all good: exit status 0
    rc = main(["--checkpoint", str(checkpoint), "--data", str(synthetic_root), "--beam", "2", "--max-len-b", "8",
               bad_inputs[0][0], "-q"])
    assert rc == 0 and capsys.readouterr().out.startswith(f"{bad_inputs[0][0]}\t")


def test_cli_formats_and_outputs(checkpoint, synthetic_root, clips, tmp_path, capsys, monkeypatch):
    import io

    from ssvp_slt.inference.cli import main

    base = ["--checkpoint", str(checkpoint), "--data", str(synthetic_root), "--beam", "2", "--max-len-b", "8", "-q"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(clips[:3]) + "\n"))
    assert main(base + ["-", "--format", "txt"]) == 0
    texts = capsys.readouterr().out.splitlines()
    assert len(texts) == 3 and all(texts)
    assert main(base + [clips[0], "--format", "srt"]) == 0
    srt = pytest.importorskip("srt")
    subs = list(srt.parse(capsys.readouterr().out))
    assert len(subs) == 1 and subs[0].content == texts[0] and subs[0].start.total_seconds() == 0
    folder = tmp_path / "subs"
    assert main(base + clips[:2] + ["--format", "vtt", "--output", f"{folder}/"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(Path(c).stem + ".vtt" for c in clips[:2])
    assert main(base + clips[:2] + ["--format", "json", "--output", str(tmp_path / "r.json"), "--segment", "none"]) == 0
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["model"]["threads"] >= 1 and doc["model"]["frames"]["num_frames"] == translator_frames(synthetic_root)
    assert [r["segmentation"]["method"] for r in doc["results"]] == ["none", "none"]
    with pytest.raises(SystemExit):  # several inputs, one subtitle stream: refused before loading the model
        main(base + clips[:2] + ["--format", "srt"])
    assert "give --output a folder" in capsys.readouterr().err


def translator_frames(data):
    from ssvp_slt.corpus.data_config import VideoDataConfig

    return VideoDataConfig.load(data).num_frames


def test_device_and_precision_choices(checkpoint, synthetic_root, clips):
    from ssvp_slt.translate import SignTranslator, pick_device, pick_dtype

    assert pick_device("auto").type in ("cuda", "mps", "cpu")
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="fp16 needs a CUDA or MPS device"):
        pick_dtype("fp16", torch.device("cpu"))
    bf16 = SignTranslator.from_checkpoint(checkpoint, synthetic_root, beam=2, max_len_b=8, device="cpu", dtype="bf16")
    assert bf16.describe()["dtype"] == "bfloat16"
    assert bf16.translate_one(clips[0]).text


def test_benchmark_script_reports_speed_split_and_the_fairseq_generate_ratio(checkpoint, synthetic_root, tmp_path):
    out = tmp_path / "bench.json"
    rc, log = run_script_captured(
        "benchmark_translate", "--checkpoint", checkpoint, "--data", synthetic_root, "--subset", "test", "--limit", "3",
        "--repeats", "1", "--latency-clips", "2", "--beam", "2", "--json", out,
    )
    assert rc == 0, log
    report = json.loads(out.read_text())
    run = report["runs"][0]
    assert run["cli"]["clips"] == 3 and run["fairseq_generate"]["clips"] == 3
    assert run["cli"]["same_hypotheses_as_fairseq_generate"] is True
    assert set(run["cli"]["split_seconds"]) == {"decode", "segmentation", "encoder", "search"}
    assert report["summary"]["cli_over_fairseq_generate_wall"]["median"] > 0
    assert report["latency"]["clips"] == 2 and report["latency"]["p50_seconds"] > 0
    assert (REPO / "scripts" / "benchmark_translate.py").is_file()


def test_a_long_recording_is_cut_at_pauses_from_video_or_keypoints(translator, tmp_path):
    from ssvp_slt.inference.segment_eval import match
    from ssvp_slt.inference.segmentation import SegmentationSettings
    from ssvp_slt.synthetic import full_videos as fv

    layout = fv.plan_full_corpus(n_train=6, n_val=1, n_test=5, seed=9, broken_rows=False, sentences_per_video=(5, 5))
    video = next(v for v in layout.videos if v.split == "test")
    path = write_mp4(tmp_path / "recording.mp4", np.stack(list(layout.style.frames(video.plan))), fps=25)
    truth = [(g.start_frame / 25, g.end_frame / 25) for g in video.segments]
    keypoints = layout.style.keypoints(video.plan)
    pause = SegmentationSettings(method="pause", max_segment=8.0)
    from_video, from_keypoints = translator.translate([path, path], segmentation=pause, keypoints=[None, keypoints])
    for r, cue in ((from_video, "video"), (from_keypoints, "keypoints")):
        assert r.segmentation["method"] == "pause" and r.segmentation["cue"] == cue
        assert len(match(truth, [(s.start, s.end) for s in r.segments])) == len(truth) == 5
        assert r.text == " ".join(s.text for s in r.segments)
    assert translator.translate_one(path).segmentation["method"] == "pause"  # auto: longer than the training clips
    assert translator.translate_one(path, segmentation="none").segmentation["method"] == "none"


def test_a_stream_url_is_read_into_memory_and_translated(translator, clips):
    from ssvp_slt.inference.sources import is_stream

    url = Path(clips[0]).resolve().as_uri()  # file:///...: FFmpeg's URL reader, the path streams take
    assert is_stream(url) and is_stream("rtsp://camera/stream") and is_stream("webcam:1") and not is_stream(clips[0])
    a, b = translator.translate_one(clips[0]), translator.translate_one(url)
    assert b.ok and b.input == url and a.text == b.text and abs(a.score - b.score) < 0.05
    assert b.info["frames"] == a.info["frames"]
