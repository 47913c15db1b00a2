"""Shared fixtures: a small prepared synthetic data root, built once per test session
with the same scripts a user runs (render -> prepare -> build_vocab)."""

import contextlib
import importlib.util
import io
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
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


def run_tool(cmd, cwd) -> str:
    """Run a command-line tool (fairseq-hydra-train, fairseq-generate, ...); assert success; return its output."""
    # one intra-op thread: the tiny test models run several times faster on a small shared machine
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"{cmd[0]} failed:\n{out[-4000:]}"
    return out


def hydra_train(config_name: str, data, save_dir, cwd, *overrides) -> str:
    """``fairseq-hydra-train`` with one of configs/, absolute paths, no loader workers, a log line per update."""
    return run_tool(
        [
            BIN / "fairseq-hydra-train", "--config-dir", REPO / "configs", "--config-name", config_name,
            f"task.data={data}", f"common.user_dir={REPO / 'ssvp_plugin'}", f"checkpoint.save_dir={save_dir}",
            "dataset.num_workers=0", "common.log_interval=1", *overrides,
        ],
        cwd,
    )


# data settings for tests: short clips, small frames (the synthetic clips are 64x64, 46-100 frames)
TEST_VIDEO_SETTINGS = ["--target-fps", 25, "--num-frames", 16, "--sampling-rate", 4, "--resize-short-side", 36, "--crop-size", 32]


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    from ssvp_slt.synthetic.corpus import render_corpus

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


def load_unlabelled_task(data: Path, **overrides):
    """Set up the unlabelled_video (pretraining) task on a data root, as fairseq would."""
    from ssvp_plugin.tasks.unlabelled_video import UnlabelledVideoConfig, UnlabelledVideoTask

    cfg = UnlabelledVideoConfig(data=str(data), seed=1, train_subset="train", **overrides)
    return UnlabelledVideoTask.setup_task(cfg)
