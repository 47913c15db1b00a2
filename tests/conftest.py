"""Shared fixtures: a small prepared synthetic data root, built once per test session
with the same scripts a user runs (render -> prepare -> build_vocab)."""

import contextlib
import importlib.util
import io
import logging
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


_scripts = {}


def load_script(name: str):
    """scripts/<name>.py as a module, loaded once."""
    if name not in _scripts:
        spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
        _scripts[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_scripts[name])
    return _scripts[name]


def run_script_captured(name: str, *argv):
    """Run scripts/<name>.py's main(argv) in-process (an interpreter start costs seconds here):
    returns (exit code, stdout + log output)."""
    module = load_script(name)
    buf, log = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger().addHandler(handler)
    try:
        with contextlib.redirect_stdout(buf):
            try:
                rc = module.main([str(a) for a in argv])
            except SystemExit as e:
                rc = e.code
    finally:
        logging.getLogger().removeHandler(handler)
    return rc or 0, buf.getvalue() + log.getvalue()


def run_script(name: str, *argv) -> int:
    return run_script_captured(name, *argv)[0]


# data settings for tests: short clips, small frames (the synthetic clips are 64x64, 46-100 frames)
TEST_VIDEO_SETTINGS = ["--target-fps", 25, "--num-frames", 16, "--sampling-rate", 4, "--resize-short-side", 36, "--crop-size", 32]


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    from ssvp_plugin.synthetic.corpus import render_corpus

    work = tmp_path_factory.mktemp("synthetic")
    render_corpus(work / "corpus", n_train=24, n_val=6, n_test=6, seed=3, size=64, workers=2)
    data = work / "data"
    for split in ("train", "val", "test"):
        rc = run_script(
            "prepare_how2sign", "--csv", work / "corpus" / "raw" / f"how2sign_{split}.csv",
            "--clips", work / "corpus" / "raw" / "clips", "--out", data, "--split", split,
        )
        assert rc == 0
    assert run_script("build_vocab", "--data", data, "--vocab-size", 60, "--lowercase", *TEST_VIDEO_SETTINGS) == 0
    return data


@pytest.fixture
def data_root(synthetic_root, tmp_path) -> Path:
    """A private copy of the prepared data root (tests may break it); clips stay shared."""
    copy = tmp_path / "data"
    shutil.copytree(synthetic_root, copy)
    # manifests name clips relative to the original root; point them at the shared clips
    for tsv in copy.glob("*.tsv"):
        lines = tsv.read_text().split("\n")
        header = lines[0].split("\t")
        col = header.index("video")
        fixed = [lines[0]]
        for line in lines[1:]:
            if line:
                f = line.split("\t")
                f[col] = str((synthetic_root / f[col]).resolve())
                line = "\t".join(f)
            fixed.append(line)
        tsv.write_text("\n".join(fixed))
    return copy


def load_task(data: Path, **overrides):
    """Set up the how2sign_video task on a data root, as fairseq would."""
    from ssvp_plugin.tasks.how2sign_video import How2SignVideoConfig, How2SignVideoTask

    cfg = How2SignVideoConfig(data=str(data), seed=1, train_subset="train", **overrides)
    return How2SignVideoTask.setup_task(cfg)
