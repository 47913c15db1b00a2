import importlib.util
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_slt.corpus.manifest import PREPARED_COLUMNS, read_manifest, write_manifest  # noqa: E402
from ssvp_slt.corpus.text import normalize_caption  # noqa: E402

SCRIPT = REPO_ROOT / "scripts" / "make_control_split.py"


def load_script():
    spec = importlib.util.spec_from_file_location("make_control_split", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CAPTIONS = [
    "Hello there.",
    "hello   THERE.",  # the same caption up to case and spacing
    "Take the rope.",
    "Pull it through.",
    "That's it!",
    "Thanks for watching.",
    "Hello there.",
]


def make_split(root, captions=CAPTIONS):
    rows = [
        {"id": f"s{i}", "video": f"clips/s{i}.mp4", "n_frames": 10 + i, "fps": 25.0 + i, "width": 64, "height": 36 + i,
         "file_size": 1000 + i, "tgt_text": c}
        for i, c in enumerate(captions)
    ]
    write_manifest(root / "test.tsv", rows, columns=PREPARED_COLUMNS)
    return rows


@pytest.mark.parametrize("seed", [0, 1])
def test_cli_writes_a_derangement(tmp_path, seed):
    make_split(tmp_path)
    rows = [vars(r) for r in read_manifest(tmp_path / "test.tsv").rows]  # as written (whitespace collapsed)
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(tmp_path), "--split", "test", "--out-split", "test_swapped", "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    swapped = read_manifest(tmp_path / "test_swapped.tsv").rows
    by_id = {r["id"]: r for r in rows}
    by_video = {r["video"]: r for r in rows}
    assert [r.id for r in swapped] == [r["id"] for r in rows]
    assert [r.tgt_text for r in swapped] == [r["tgt_text"] for r in rows]
    assert sorted(r.video for r in swapped) == sorted(r["video"] for r in rows)  # every video used once
    for r in swapped:
        donor = by_video[r.video]
        assert donor["id"] != r.id
        assert normalize_caption(donor["tgt_text"], True) != normalize_caption(r.tgt_text, True)
        # the video's facts move with it: loading checks file_size against the file
        assert (r.n_frames, r.fps, r.height, r.file_size) == (donor["n_frames"], donor["fps"], donor["height"], donor["file_size"])
    lines = (tmp_path / "test_swapped.tsv").read_text().splitlines()
    assert lines[0].split("\t")[-1] == "video_from"
    for line, r in zip(lines[1:], swapped):
        assert by_id[line.split("\t")[-1]]["video"] == r.video


def test_seed_is_reproducible(tmp_path):
    mod = load_script()
    captions = [f"caption {i}" for i in range(50)]
    videos = [f"v{i}.mp4" for i in range(50)]
    assert mod.control_permutation(captions, videos, seed=3) == mod.control_permutation(captions, videos, seed=3)
    assert mod.control_permutation(captions, videos, seed=3) != mod.control_permutation(captions, videos, seed=4)


def test_permutation_constraints_random():
    mod = load_script()
    rng = random.Random(0)
    for trial in range(200):
        n = rng.randint(2, 30)
        n_distinct = rng.randint(2, n) if n > 2 else 2
        captions = [f"c{rng.randrange(n_distinct)}" for _ in range(n)]
        videos = [f"v{i}.mp4" for i in range(n)]
        if rng.random() < 0.3:
            videos[rng.randrange(n)] = videos[0]  # two rows sharing a video file
        groups = mod.conflict_groups(captions, videos)
        feasible = 2 * max(groups.count(g) for g in set(groups)) <= n
        if not feasible:
            with pytest.raises(mod.ControlSplitError):
                mod.control_permutation(captions, videos, seed=trial)
            continue
        perm = mod.control_permutation(captions, videos, seed=trial)
        assert sorted(perm) == list(range(n))
        for i, j in enumerate(perm):
            assert i != j and captions[i] != captions[j] and videos[i] != videos[j]


def test_impossible_splits_fail_clearly(tmp_path):
    mod = load_script()
    with pytest.raises(mod.ControlSplitError, match="at least 2 rows"):
        mod.control_permutation(["a"], ["a.mp4"])
    with pytest.raises(mod.ControlSplitError, match="share a caption"):
        mod.control_permutation(["same", "Same", "other"], ["a.mp4", "b.mp4", "c.mp4"])
    make_split(tmp_path, ["Same.", "same.", "SAME."])
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(tmp_path), "--out-split", "swapped"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0 and "share a caption" in res.stderr
    assert not (tmp_path / "swapped.tsv").exists()
