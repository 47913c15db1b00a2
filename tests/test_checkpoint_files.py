"""Checkpoint files (issue 14): a save killed half-way never leaves a torn file under a checkpoint's
name; a torn checkpoint_last.pt found on start is replaced by the newest intact checkpoint (same
command, a warning naming both); every checkpoint load passes weights_only=True explicitly."""

import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
from argparse import Namespace
from pathlib import Path

import pytest
import torch

import ssvp_plugin  # noqa: F401  (applies ssvp_plugin.runtime.checkpoint_files to fairseq, as --user-dir does)
from conftest import BIN, REPO, hydra_train
from fairseq import checkpoint_utils
from ssvp_plugin.runtime import checkpoint_files as cf


def _fake_checkpoint(path: Path, updates: int, megabytes: float = 0.01) -> Path:
    """What fairseq's trainer writes, as far as restoring cares: a zip with the update count."""
    n = int(megabytes * 2**20 / 4)
    torch.save({"model": {"w": torch.arange(n, dtype=torch.float32)}, "optimizer_history": [{"num_updates": updates}]}, path)
    return path


def _truncate(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


# --- atomic copies -------------------------------------------------------------------------------

# A child process that runs fairseq's real save_checkpoint with a stand-in trainer. The trainer writes
# the first file normally, then lowers the file size limit below the checkpoint's size, so the kernel
# kills the process (SIGXFSZ) in the middle of the copy to checkpoint_last.pt: a kill at a chosen
# moment, whatever the copy's implementation.
KILLED_SAVE = textwrap.dedent(
    """
    import resource, signal, sys
    from types import SimpleNamespace
    import torch
    import ssvp_plugin  # as fairseq's --user-dir does
    from fairseq import checkpoint_utils
    from fairseq.dataclass.configs import CheckpointConfig

    save_dir, limit = sys.argv[1], int(sys.argv[2])

    def save(filename, extra_state):
        checkpoint_utils.torch_persistent_save(
            {"model": {"w": torch.ones(2**20)}, "optimizer_history": [{"num_updates": 20}], "extra_state": extra_state},
            filename,
        )
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it by default (then writes fail instead)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    trainer = SimpleNamespace(
        data_parallel_rank=0, consolidate_optimizer=lambda: None, should_save_checkpoint_on_current_rank=True,
        always_call_state_dict_during_save_checkpoint=False, get_num_updates=lambda: 20, checkpoint_suffix="",
        task=object(), save_checkpoint=save,
    )
    epoch_itr = SimpleNamespace(epoch=1, end_of_epoch=lambda: False, state_dict=lambda: {"epoch": 1})
    cfg = CheckpointConfig(save_dir=save_dir, save_interval_updates=10)
    checkpoint_utils.save_checkpoint(cfg, trainer, epoch_itr, None)
    print("save finished")
    """
)


def test_a_kill_during_the_copy_to_checkpoint_last_leaves_the_previous_file_whole(tmp_path):
    save_dir = tmp_path / "ckpt"
    save_dir.mkdir()
    previous = _fake_checkpoint(save_dir / "checkpoint_last.pt", updates=10, megabytes=0.1).read_bytes()
    res = subprocess.run(
        [sys.executable, "-c", KILLED_SAVE, str(save_dir), str(2**20)],  # killed after 1 MiB of the 4 MiB file
        cwd=REPO, capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert res.returncode == -signal.SIGXFSZ, res.stdout + res.stderr[-3000:]
    assert (save_dir / "checkpoint_1_20.pt").stat().st_size > 4 * 2**20  # written before the limit: whole
    # the name never holds a partial copy: still the previous checkpoint, byte for byte
    assert (save_dir / "checkpoint_last.pt").read_bytes() == previous
    assert cf.checkpoint_problem(str(save_dir / "checkpoint_last.pt")) is None


def test_a_copy_that_fails_half_way_removes_its_temporary_file(tmp_path, monkeypatch):
    src = _fake_checkpoint(tmp_path / "checkpoint_1_20.pt", updates=20)
    dst = tmp_path / "checkpoint_last.pt"
    dst.write_bytes(b"previous")

    def half_then_fail(a, b):
        Path(b).write_bytes(Path(a).read_bytes()[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        checkpoint_utils.PathManager.copy(str(src), str(dst), overwrite=True)
    assert dst.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_1_20.pt", "checkpoint_last.pt"]


def test_copies_are_atomic_only_inside_checkpoint_utils():
    from fairseq.file_io import PathManager

    assert checkpoint_utils.PathManager is cf.AtomicCopyPathManager
    assert PathManager.copy is not cf.AtomicCopyPathManager.copy  # the rest of fairseq keeps its own


# --- detecting torn files ------------------------------------------------------------------------


def test_torn_files_are_detected_from_the_zip_directory(tmp_path):
    whole = _fake_checkpoint(tmp_path / "whole.pt", updates=3, megabytes=0.5)
    assert cf.checkpoint_problem(str(whole)) is None
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert cf.checkpoint_problem(str(empty)) == "empty file (0 bytes)"
    for fraction in (0.01, 0.15, 0.5, 0.999):
        torn = tmp_path / f"torn{fraction}.pt"
        torn.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * fraction)])
        assert cf.checkpoint_problem(str(torn)).startswith("torn:"), fraction
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    assert cf.checkpoint_problem(str(garbage)).startswith("not a torch checkpoint")


def test_the_newest_intact_checkpoint_is_chosen_by_its_stored_update_count(tmp_path):
    _fake_checkpoint(tmp_path / "checkpoint_best.pt", updates=30)  # best: written at update 30
    _fake_checkpoint(tmp_path / "checkpoint_1_20.pt", updates=20)
    _fake_checkpoint(tmp_path / "checkpoint_1_40.pt", updates=40)
    _truncate(tmp_path / "checkpoint_1_40.pt", 0.5)  # newest, but torn
    _fake_checkpoint(tmp_path / "checkpoint_last.pt", updates=40)
    (tmp_path / "checkpoint_1_50.pt.tmp").write_bytes(b"")  # a save killed before its rename
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    path, updates = cf.newest_intact_checkpoint(str(tmp_path), exclude=(str(tmp_path / "checkpoint_last.pt"),))
    assert (Path(path).name, updates) == ("checkpoint_best.pt", 30)


def _restore_call(save_dir: Path, restore_file="checkpoint_last.pt"):
    """cf.load_checkpoint_or_newest_intact with a stand-in trainer: returns the file fairseq restored."""
    cfg = Namespace(
        save_dir=str(save_dir), restore_file=restore_file, finetune_from_model=None, reset_optimizer=False,
        reset_lr_scheduler=False, reset_meters=False, reset_dataloader=False, optimizer_overrides="{}",
    )
    loaded = []

    class Trainer:
        checkpoint_suffix = ""

        def load_checkpoint(self, filename, *args, **kwargs):
            loaded.append(filename)
            return None  # no extra state: fairseq then starts the iterator at epoch 1

        def get_train_iterator(self, epoch, **kwargs):
            return Namespace(epoch=epoch)

        def lr_step(self, epoch):
            pass

    trainer = Trainer()
    cf.load_checkpoint_or_newest_intact(cfg, trainer)
    assert "load_checkpoint" not in vars(trainer)  # the redirection is gone after the call
    return loaded[0]


def test_a_torn_checkpoint_last_is_replaced_by_the_newest_intact_one_with_a_warning(tmp_path, caplog):
    _fake_checkpoint(tmp_path / "checkpoint_1_20.pt", updates=20)
    _fake_checkpoint(tmp_path / "checkpoint_best.pt", updates=10)
    last = tmp_path / "checkpoint_last.pt"
    last.write_bytes(b"")
    assert checkpoint_utils.load_checkpoint is cf.load_checkpoint_or_newest_intact  # what fairseq-train calls
    with caplog.at_level("WARNING"):
        restored = _restore_call(tmp_path)
    assert restored == str(tmp_path / "checkpoint_1_20.pt")
    assert f"{last}: empty file (0 bytes). Restoring the newest intact checkpoint instead: {restored} (20 updates)" in caplog.text
    assert last.read_bytes() == b""  # read-only: every rank of a distributed run does the same


def test_an_intact_checkpoint_last_is_restored_as_fairseq_does(tmp_path, caplog):
    _fake_checkpoint(tmp_path / "checkpoint_1_20.pt", updates=20)
    _fake_checkpoint(tmp_path / "checkpoint_last.pt", updates=10)  # older than another file: still the one
    assert _restore_call(tmp_path) == str(tmp_path / "checkpoint_last.pt")
    assert "Restoring" not in caplog.text


def test_no_intact_checkpoint_stops_with_an_error_listing_what_was_found(tmp_path):
    _fake_checkpoint(tmp_path / "checkpoint_best.pt", updates=10)
    _truncate(tmp_path / "checkpoint_best.pt", 0.3)
    (tmp_path / "checkpoint_1_20.pt").write_bytes(b"")
    _fake_checkpoint(tmp_path / "checkpoint_last.pt", updates=20)
    _truncate(tmp_path / "checkpoint_last.pt", 0.6)
    with pytest.raises(cf.CheckpointFileError) as e:
        _restore_call(tmp_path)
    text = str(e.value)
    assert text.startswith(f"{tmp_path / 'checkpoint_last.pt'}: torn:")
    assert f"no intact checkpoint in {tmp_path}" in text
    assert "checkpoint_1_20.pt: empty file (0 bytes)" in text and "checkpoint_best.pt: torn:" in text


def test_a_torn_file_named_by_restore_file_is_not_swapped_for_another(tmp_path):
    _fake_checkpoint(tmp_path / "checkpoint_1_20.pt", updates=20)
    chosen = _fake_checkpoint(tmp_path / "mine.pt", updates=5)
    _truncate(chosen, 0.5)
    with pytest.raises(cf.CheckpointFileError, match=r"mine\.pt: torn: .*named by checkpoint\.restore_file"):
        _restore_call(tmp_path, restore_file=str(chosen))


# --- the real command: a torn checkpoint_last.pt, then the same command again -----------------------


def _train(data, save_dir, cwd, max_update):
    return hydra_train(
        "quick_synthetic", data, save_dir, cwd, f"optimization.max_update={max_update}",
        "optimizer.groups.default.lr_scheduler.warmup_updates=2", "checkpoint.save_interval_updates=2",
        "dataset.batch_size=4", "dataset.disable_validation=true", "task.eval_bleu=false",  # saves inside epoch 1
    )


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("torn")
    _train(synthetic_root, work / "ckpt", work, max_update=4)
    return work


def test_training_resumes_from_the_newest_intact_checkpoint_when_checkpoint_last_is_torn(trained, synthetic_root, tmp_path):
    save_dir = tmp_path / "ckpt"
    shutil.copytree(trained / "ckpt", save_dir)
    assert (save_dir / "checkpoint_1_4.pt").is_file() or any(save_dir.glob("checkpoint_*_4.pt"))
    _truncate(save_dir / "checkpoint_last.pt", 0.15)  # what a kill during the old plain copy left
    log = _train(synthetic_root, save_dir, tmp_path, max_update=6)
    assert f"{save_dir / 'checkpoint_last.pt'}: torn:" in log and "Restoring the newest intact checkpoint instead" in log
    newest = next(save_dir.glob("checkpoint_*_4.pt"))
    assert f"instead: {newest} (4 updates)" in log
    assert f"Loaded checkpoint {newest} (epoch" in log and "@ 4 updates)" in log
    assert "num_updates 6" in log or "num_updates=6" in log
    assert cf.checkpoint_problem(str(save_dir / "checkpoint_last.pt")) is None  # the next save replaced it


# --- weights_only=True, whatever the environment says ------------------------------------------------


class _OpensAFile:
    """Unpickling this creates a file: what a hostile checkpoint could do with weights_only=False."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def hostile_checkpoint(trained, tmp_path):
    """A real checkpoint of this plugin with one non-allowlisted pickled object in it."""
    state = torch.load(trained / "ckpt" / "checkpoint_last.pt", weights_only=True)
    marker = tmp_path / "code_ran"
    state["extra_state"]["payload"] = _OpensAFile(marker)
    path = tmp_path / "checkpoint_hostile.pt"
    torch.save(state, path)
    return path, marker


def _load_with_fairseq(path, data):
    checkpoint_utils.load_checkpoint_to_cpu(str(path))


def _load_like_fairseq_generate(path, data):
    checkpoint_utils.load_model_ensemble([str(path)], arg_overrides={"data": str(data)})


def _load_with_sign_translator(path, data):
    from ssvp_slt.translate import SignTranslator

    SignTranslator.from_checkpoint(path, data)


@pytest.mark.parametrize("load", [_load_with_fairseq, _load_like_fairseq_generate, _load_with_sign_translator])
def test_checkpoints_load_weights_only_even_when_the_environment_turns_it_off(hostile_checkpoint, synthetic_root, monkeypatch, load):
    path, marker = hostile_checkpoint
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # what torch's own error text suggests
    with pytest.raises(Exception) as e:
        load(path, synthetic_root)
    assert not marker.exists(), "the checkpoint ran code while loading"
    chain = [e.value, e.value.__cause__, e.value.__context__]
    assert any(isinstance(x, pickle.UnpicklingError) or "weights_only" in str(x) for x in chain if x is not None), repr(e.value)


def test_the_weights_only_change_leaves_the_rest_of_torch_alone():
    assert checkpoint_utils.torch.device("cpu") == torch.device("cpu")
    assert checkpoint_utils.torch.Tensor is torch.Tensor
    assert torch.load is not checkpoint_utils.torch.load
