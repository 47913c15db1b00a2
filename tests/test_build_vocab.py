import subprocess
import sys
from pathlib import Path

import pytest
import sentencepiece as spm
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_slt.corpus.data_config import VideoDataConfig  # noqa: E402
from ssvp_slt.corpus.manifest import write_manifest  # noqa: E402
from ssvp_slt.corpus.text import normalize_caption  # noqa: E402

SCRIPT = REPO_ROOT / "scripts" / "build_vocab.py"

CAPTIONS = [
    "Hi, I'm going to show you how to tie a knot.",
    "First, take the rope and make a loop.",
    "Then pull the end through the loop.",
    "And that's it!  Now you know how to tie a knot.",
    "Today we're talking about\tguitar chords.",
    "Put your FIRST finger on the second fret.",
    "Strum all six strings; it's a G chord.",
    "Caf\u00e9 au lait costs $3.50 \u2014 cheap.",
]


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120)


def make_root(path):
    rows = [
        {"id": f"s{i}", "video": f"clips/s{i}.mp4", "n_frames": 10, "fps": 25.0, "tgt_text": c}
        for i, c in enumerate(CAPTIONS)
    ]
    write_manifest(path / "train.tsv", rows)
    return path


def check_alignment(root, lowercase):
    from fairseq.data import Dictionary

    sp = spm.SentencePieceProcessor(model_file=str(root / "spm.model"))
    dictionary = Dictionary.load(str(root / "dict.txt"))
    assert len(dictionary) == sp.get_piece_size()
    assert (dictionary.bos(), dictionary.pad(), dictionary.eos(), dictionary.unk()) == (
        sp.bos_id(),
        sp.pad_id(),
        sp.eos_id(),
        sp.unk_id(),
    ) == (0, 1, 2, 3)
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        assert dictionary.index(piece) == i == sp.piece_to_id(piece)
    for caption in CAPTIONS:
        text = normalize_caption(caption, lowercase)
        ids = sp.encode(text)
        line = " ".join(sp.encode(text, out_type=str))
        tokens = dictionary.encode_line(line, add_if_not_exist=False, append_eos=False).tolist()
        assert tokens == ids
        assert dictionary.unk() not in tokens
    counts = [int(line.rsplit(" ", 1)[1]) for line in (root / "dict.txt").read_text(encoding="utf-8").splitlines()]
    assert min(counts) >= 1
    return sp


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = make_root(tmp_path_factory.mktemp("vocab"))
    res = run("--data", root, "--vocab-size", 60, "--target-fps", 30, "--crop-size", 112, "--resize-short-side", 128)
    return root, res


def test_writes_model_dictionary_and_config(built):
    root, res = built
    assert res.returncode == 0, res.stderr
    for name in ("spm.model", "dict.txt", "config.yaml"):
        assert (root / name).is_file()
    assert "vocabulary:" in res.stdout
    cfg = VideoDataConfig.load(root)
    assert cfg.sentencepiece_path == root / "spm.model"
    assert cfg.dictionary_path == root / "dict.txt"
    assert (cfg.target_fps, cfg.crop_size, cfg.resize_short_side) == (30.0, 112, 128)
    defaults = VideoDataConfig()
    assert (cfg.num_frames, cfg.sampling_rate, cfg.mean, cfg.std) == (
        defaults.num_frames,
        defaults.sampling_rate,
        defaults.mean,
        defaults.std,
    )
    assert cfg.lowercase is False
    sp = check_alignment(root, lowercase=False)
    assert sp.get_piece_size() <= 60
    assert any(c.isupper() for i in range(4, sp.get_piece_size()) for c in sp.id_to_piece(i))  # case kept


def test_rerun_keeps_video_settings(built):
    root, first = built
    assert first.returncode == 0, first.stderr
    # vocab_size far beyond what 8 captions support: hard_vocab_limit=False makes it a smaller vocabulary
    res = run("--data", root, "--vocab-size", 5000, "--model-type", "bpe", "--lowercase", "--num-frames", 64)
    assert res.returncode == 0, res.stderr
    raw = yaml.safe_load((root / "config.yaml").read_text())
    assert raw["target_fps"] == 30.0 and raw["crop_size"] == 112 and raw["resize_short_side"] == 128  # kept
    assert raw["num_frames"] == 64 and raw["lowercase"] is True  # overridden
    sp = check_alignment(root, lowercase=True)
    assert sp.get_piece_size() < 5000
    assert not any(c.isupper() for i in range(4, sp.get_piece_size()) for c in sp.id_to_piece(i))


def test_invalid_settings_fail_before_training(tmp_path):
    root = make_root(tmp_path)
    res = run("--data", root, "--crop-size", 300)
    assert res.returncode != 0
    assert "crop_size (300) is larger than resize_short_side (256)" in res.stderr
    assert not (root / "spm.model").exists()


def test_normalize_caption():
    assert normalize_caption("  Hello,\tWorld!\n Again  ", lowercase=False) == "Hello, World! Again"
    assert normalize_caption("  Hello,\tWorld!\n Again  ", lowercase=True) == "hello, world! again"
    assert normalize_caption(" \t\n", lowercase=True) == ""
