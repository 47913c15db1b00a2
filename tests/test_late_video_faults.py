"""Issue 14, cases 4 and 5: clips that break after the split loaded, and the documented skip flag.

Loading trusts the manifest (task.check_videos=files: each video exists with its recorded size), so a
video whose bytes are corrupt, or one cut short whose new size was recorded, is found when a batch reads
it. Without task.skip_invalid_samples the run stops naming the manifest line and file, after saving what
it trained; with it the clip is left out, logged and counted. The flag is spelled as every message prints
it, and fairseq-hydra-train takes it in exactly that form with every config in configs/.
"""

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import BIN, REPO, load_task, load_unlabelled_task
from ssvp_plugin.data.unreadable_clip import (
    SKIPPED_KEY, UnreadableClipError, clip_error_text, train_step_outputs,
)
from ssvp_slt.corpus.manifest import read_manifest
from ssvp_slt.corpus.skip_flag import SKIP_INVALID_OVERRIDE

# -- breaking clips after preparation --


def _rows(tsv):
    lines = tsv.read_text().strip("\n").split("\n")
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def _write(tsv, header, rows):
    tsv.write_text("\n".join(["\t".join(header)] + ["\t".join(r) for r in rows]) + "\n")


def video_of(data_root, split, row_index) -> Path:
    header, rows = _rows(data_root / f"{split}.tsv")
    return Path(rows[row_index][header.index("video")])


def point_row_at(data_root, split, row_index, path, record_size=False) -> int:
    """Point a manifest row at ``path`` (recording its size, as a re-run preparation would); its line number."""
    tsv = data_root / f"{split}.tsv"
    header, rows = _rows(tsv)
    rows[row_index][header.index("video")] = str(path)
    if record_size:
        rows[row_index][header.index("file_size")] = str(path.stat().st_size)
    _write(tsv, header, rows)
    return row_index + 2  # the header is line 1


def corrupt_keeping_size(src: Path, dst: Path) -> Path:
    """A copy of an mp4 whose coded frames are zeroed: same size and container, nothing decodes."""
    data = bytearray(src.read_bytes())
    at = data.index(b"mdat") + 4
    end = at - 8 + int.from_bytes(data[at - 8 : at - 4], "big")  # the box size counts its 8-byte header
    data[at:end] = bytes(end - at)
    dst.write_bytes(bytes(data))
    return dst


def cut_short(src: Path, dst: Path, keep_bytes=1500) -> Path:
    dst.write_bytes(src.read_bytes()[:keep_bytes])
    return dst


BREAKS = {
    # (how, whether the manifest records the new size, what the error says)
    "corrupt, same size": (corrupt_keeping_size, False, "decoding failed"),
    "cut short, size recorded again": (cut_short, True, "cannot open as a video"),
}


def break_row(data_root, tmp_path, split, row_index, how="corrupt, same size"):
    """Replace a row's clip with a broken copy the load-time check passes; (manifest line, broken file, original)."""
    make, record, _ = BREAKS[how]
    original = video_of(data_root, split, row_index)
    broken = make(original, tmp_path / f"broken_{split}_{row_index}.mp4")
    return point_row_at(data_root, split, row_index, broken, record_size=record), broken, original


LOADERS = {"how2sign_video": load_task, "unlabelled_video": load_unlabelled_task}


# -- the datasets: error naming line and file, or a counted skip --


@pytest.mark.parametrize("how", list(BREAKS))
@pytest.mark.parametrize("task_name", list(LOADERS))
def test_a_clip_that_no_longer_decodes_stops_naming_manifest_line_file_and_the_skip_flag(data_root, tmp_path, how, task_name):
    line, broken, _ = break_row(data_root, tmp_path, "val", 1, how)
    task = LOADERS[task_name](data_root)
    task.load_dataset("val")  # the default check (files) passes: the file exists with its recorded size
    ds = task.dataset("val")
    ds[0]  # the other clips read as before
    with pytest.raises(UnreadableClipError) as e:
        ds[1]
    text = str(e.value)
    assert f"{data_root / 'val.tsv'}, line {line}" in text and str(broken) in text and BREAKS[how][2] in text
    assert SKIP_INVALID_OVERRIDE in text
    assert (e.value.path, e.value.line) == (str(broken), line) and e.value.problem.startswith(f"{broken}: {BREAKS[how][2]}")


@pytest.mark.parametrize("task_name", list(LOADERS))
def test_with_the_skip_flag_the_clip_is_left_out_logged_and_counted_in_its_batch(data_root, tmp_path, caplog, task_name):
    line, broken, _ = break_row(data_root, tmp_path, "val", 1)
    task = LOADERS[task_name](data_root, skip_invalid_samples=True)
    task.load_dataset("val")
    ds = task.dataset("val")
    with caplog.at_level(logging.WARNING):
        assert ds[1] is None
        assert ds[1] is None
    assert f"val.tsv, line {line}" in caplog.text and str(broken) in caplog.text
    assert "2 unreadable clip(s) skipped so far" in caplog.text
    batch = ds.collater([ds[0], ds[1], ds[2]])
    assert batch["nsentences"] == 2 and batch["id"].tolist() == [0, 2] and batch[SKIPPED_KEY] == 1
    assert ds.collater([ds[0]])[SKIPPED_KEY] == 0
    assert ds.collater([ds[1]]) == {}  # an empty sample: fairseq trains its dummy batch with zero loss


def test_the_skipped_clips_metric_sums_the_logging_outputs_of_workers_and_ranks(synthetic_root):
    from fairseq import metrics

    task = load_task(synthetic_root)
    with metrics.aggregate() as agg:
        for logs in ([{SKIPPED_KEY: 1}, {SKIPPED_KEY: 0}], [{SKIPPED_KEY: 2}]):  # two updates, outputs of two ranks
            task.reduce_metrics(logs, criterion=type("C", (), {"reduce_metrics": staticmethod(lambda logs: None)})())
    assert agg.get_smoothed_values()[SKIPPED_KEY] == 3
    # fairseq's dummy batch (ignore_grad) counts nothing, even as a non-last batch of an update (update_freq > 1)
    loss = torch.tensor(2.0)
    _, size, log = train_step_outputs({SKIPPED_KEY: 4}, loss, 7, {"loss": 5.0, "ntokens": 9}, ignore_grad=True)
    assert size == 0 and log == {"loss": 0, "ntokens": 0, SKIPPED_KEY: 0}
    _, size, log = train_step_outputs({SKIPPED_KEY: 4}, loss, 7, {"loss": 5.0}, ignore_grad=False)
    assert size == 7 and log == {"loss": 5.0, SKIPPED_KEY: 4}


def test_the_error_survives_a_dataloader_worker_with_its_message(data_root, tmp_path):
    line, broken, _ = break_row(data_root, tmp_path, "val", 1)
    task = load_task(data_root)
    task.load_dataset("val")
    ds = task.dataset("val")
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=ds.collater, num_workers=1)
    with pytest.raises(UnreadableClipError) as e:
        list(loader)
    assert "DataLoader worker" in str(e.value)  # torch re-raises type(e)(worker message with traceback)
    clean = clip_error_text(e.value)
    assert clean.startswith(f"{data_root / 'val.tsv'}, line {line} ") and str(broken) in clean
    assert "Traceback" not in clean and SKIP_INVALID_OVERRIDE in clean


def test_fairseq_dummy_batch_is_the_first_batch_with_a_readable_clip(data_root, tmp_path):
    import ssvp_plugin  # noqa: F401  (patches fairseq's epoch iterators)
    from fairseq.data import iterators

    break_row(data_root, tmp_path, "val", 0)
    for skip in (True, False):
        task = load_task(data_root, skip_invalid_samples=skip)
        task.load_dataset("val")
        ds = task.dataset("val")
        itr = iterators.EpochBatchIterator(ds, ds.collater, [[0], [1, 2]])
        first = itr.first_batch  # fairseq 0.12: {} (then "Invalid dummy batch") or the clip's error here
        assert first["id"].tolist() == [1, 2]
    all_bad = iterators.EpochBatchIterator(ds, ds.collater, [[0]])
    with pytest.raises(UnreadableClipError, match="val.tsv, line 2"):
        all_bad.first_batch  # nothing readable at all: the clip's own error
    task = load_task(data_root, skip_invalid_samples=True)
    task.load_dataset("val")
    with pytest.raises(UnreadableClipError, match="no clip of this split could be read"):
        iterators.EpochBatchIterator(task.dataset("val"), task.dataset("val").collater, [[0]]).first_batch


# -- feature stores and joined (ensemble) datasets --


def _features_task(data_root, **overrides):
    from test_sign_features import load_features_task, write_random_store

    write_random_store(data_root / "features", data_root)
    task = load_features_task(data_root, **overrides)
    task.load_dataset("val")
    return task, task.dataset("val")


def _cut_chunk_of(ds, index):
    """Cut the chunk file holding clip ``index`` to end just after the clip's first stored row."""
    feats = ds.features
    i = int(ds.feature_index[index])
    chunk = feats.chunk_paths[int(feats.row_chunk[i])]
    row_bytes = feats.info.dim * np.dtype(feats.info.dtype).itemsize
    keep = feats.chunk_data_offsets[int(feats.row_chunk[i])] + (int(feats.offsets[i]) + 1) * row_bytes
    with open(chunk, "r+b") as f:
        f.truncate(keep)
    feats._maps.clear()
    return chunk


def test_a_feature_chunk_cut_short_after_loading_is_an_error_or_a_counted_skip(data_root, caplog):
    task, ds = _features_task(data_root)
    last = max(range(len(ds)), key=lambda k: int(ds.features.offsets[ds.feature_index[k]]))  # not the chunk's first clip
    chunk = _cut_chunk_of(ds, last)
    line = ds.rows[last].line
    with pytest.raises(UnreadableClipError) as e:
        ds[last]
    assert f"val.tsv, line {line}" in str(e.value) and str(chunk) in str(e.value) and "feature rows" in str(e.value)
    assert SKIP_INVALID_OVERRIDE in str(e.value)
    ds.unreadable.skip = True  # what task.skip_invalid_samples=true builds
    with caplog.at_level(logging.WARNING):
        assert ds[last] is None
    assert f"line {line}" in caplog.text and "1 unreadable clip(s) skipped so far" in caplog.text


def test_a_joined_clip_is_skipped_when_one_input_cannot_be_read(data_root, tmp_path):
    from ssvp_plugin.data.joined_dataset import FEATURES, VIDEO, JoinedDataset

    break_row(data_root, tmp_path, "val", 1)
    _, features = _features_task(data_root, skip_invalid_samples=True)
    video_task = load_task(data_root, skip_invalid_samples=True)
    video_task.load_dataset("val")
    joined = JoinedDataset("val", {VIDEO: video_task.dataset("val"), FEATURES: features})
    k = joined.ids.index(joined.parts[VIDEO].rows[1].id)
    assert joined[k] is None
    others = [i for i in range(3) if i != k]
    batch = joined.collater([joined[i] for i in range(3)])
    assert batch[SKIPPED_KEY] == 1 and batch["id"].tolist() == others


# -- the documented skip flag (case 5) --


def test_every_config_takes_the_skip_flag_as_messages_print_it():
    from test_configs import CONFIGS, composed

    assert CONFIGS
    for name in CONFIGS:
        cfg = composed(name, [SKIP_INVALID_OVERRIDE])
        assert cfg.task.skip_invalid_samples is True, name
        if cfg.task._name in ("how2sign_video", "unlabelled_video"):  # the task with a video check
            assert composed(name, ["task.check_videos=probe"]).task.check_videos == "probe"


def hydra_train_run(data, save_dir, cwd, *overrides, workers=0):
    """fairseq-hydra-train on quick_synthetic, a few updates; (exit code, output). Does not assert success."""
    cmd = [
        BIN / "fairseq-hydra-train", "--config-dir", REPO / "configs", "--config-name", "quick_synthetic",
        f"task.data={data}", f"common.user_dir={REPO / 'ssvp_plugin'}", f"checkpoint.save_dir={save_dir}",
        f"dataset.num_workers={workers}", "common.log_interval=1", "optimizer.groups.default.lr_scheduler.warmup_updates=2",
        "task.eval_bleu=false", "checkpoint.best_checkpoint_metric=loss", "checkpoint.maximize_best_checkpoint_metric=false",
        *overrides,
    ]
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    return res.returncode, res.stdout + res.stderr


def test_hydra_train_takes_the_override_exactly_as_the_error_prints_it(data_root, tmp_path):
    point_row_at(data_root, "train", 3, tmp_path / "gone.mp4")  # a bad row: its video is missing
    rc, out = hydra_train_run(data_root, tmp_path / "ckpt", tmp_path, "optimization.max_update=1")
    assert rc != 0 and "gone.mp4: video file not found" in out
    printed = re.search(r"set (task\.\S+=\S+)", out)
    assert printed, out[-3000:]
    rc, out = hydra_train_run(data_root, tmp_path / "ckpt", tmp_path, "optimization.max_update=1", printed.group(1))
    assert rc == 0, out[-3000:]
    assert "skipping 1 of" in out and "num_updates=1" in out


def _checkpoint_state(path):
    state = torch.load(path, map_location="cpu")
    return state["optimizer_history"][-1]["num_updates"], state["extra_state"]["train_iterator"]


def test_with_the_skip_flag_training_and_validation_go_past_videos_that_no_longer_decode(data_root, tmp_path):
    train_line, train_broken, _ = break_row(data_root, tmp_path, "train", 5)
    val_line, val_broken, _ = break_row(data_root, tmp_path, "val", 2)
    rc, out = hydra_train_run(
        data_root, tmp_path / "ckpt", tmp_path, "optimization.max_update=6", "dataset.batch_size=4", "dataset.validate_interval=1",
        SKIP_INVALID_OVERRIDE, workers=1,  # the skip happens in a loader process
    )
    assert rc == 0, out[-3000:]
    assert f"train.tsv, line {train_line} " in out and str(train_broken) in out
    assert f"val.tsv, line {val_line} " in out and str(val_broken) in out
    assert re.search(r"\| valid on 'val' subset .*\| skipped_clips 1 \|", out), out[-3000:]
    assert re.search(r"\[train\]\[INFO\] - epoch 001 \|.*\| skipped_clips 1 \|", out)  # the epoch's sum
    assert "num_updates=6" in out


# the row broken for the training-stop test: by the synthetic corpus' order (seed 3) and fairseq's batch
# shuffling (common.seed 1), its batch is not the first of epoch 1, so some updates come before it
TRAIN_ROW_READ_MID_EPOCH = 5


def test_without_the_flag_a_bad_training_video_stops_after_saving_and_resume_reads_it_again(data_root, tmp_path):
    line, broken, original = break_row(data_root, tmp_path, "train", TRAIN_ROW_READ_MID_EPOCH)
    save_dir = tmp_path / "ckpt"
    args = ("optimization.max_update=30", "dataset.batch_size=1", "dataset.validate_interval=9")
    rc, out = hydra_train_run(data_root, save_dir, tmp_path, *args, workers=1)
    assert rc != 0
    assert f"train.tsv, line {line} " in out and str(broken) in out and SKIP_INVALID_OVERRIDE in out
    done = [int(n) for n in re.findall(r"num_updates[= ](\d+)", out)]
    assert done and done[-1] > 0, "the broken clip must come after some updates for this test"
    assert f"progress saved to {save_dir / 'checkpoint_last.pt'}" in out
    updates, itr = _checkpoint_state(save_dir / "checkpoint_last.pt")
    assert updates == done[-1] and (itr["epoch"], itr["iterations_in_epoch"]) == (1, updates)  # nothing trained is lost
    # the same command resumes there and reads the same clip again: the bad batch is not skipped silently
    rc, out = hydra_train_run(data_root, save_dir, tmp_path, *args)
    assert rc != 0 and f"train.tsv, line {line} " in out and f"@ {updates} updates" in out
    assert _checkpoint_state(save_dir / "checkpoint_last.pt")[0] == updates
    # fixed: training goes on from the saved updates
    shutil.copyfile(original, broken)
    rc, out = hydra_train_run(data_root, save_dir, tmp_path, "optimization.max_update=%d" % (updates + 2), *args[1:])
    assert rc == 0, out[-3000:]
    assert [int(n) for n in re.findall(r"num_updates=(\d+)", out)] == [updates + 1, updates + 2]


def test_without_the_flag_a_bad_validation_video_stops_before_training_naming_it(data_root, tmp_path):
    # fairseq 0.12 reads the whole validation set once before training (its "dry-run validation"): a video
    # that no longer decodes stops the run there, before anything is trained
    line, broken, _ = break_row(data_root, tmp_path, "val", 2)
    rc, out = hydra_train_run(data_root, tmp_path / "ckpt", tmp_path, "optimization.max_update=50")
    assert rc != 0 and "begin dry-run validation" in out and "num_updates" not in out
    assert f"val.tsv, line {line} " in out and str(broken) in out and SKIP_INVALID_OVERRIDE in out


class _Trainer:
    """What save_progress reads of fairseq's Trainer, on one process."""

    data_parallel_world_size, data_parallel_rank, should_save_checkpoint_on_current_rank = 1, 0, True
    is_fsdp, optimizer = False, None

    def get_num_updates(self):
        return 7


def test_an_unreadable_clip_out_of_validate_or_train_saves_once_then_stops(monkeypatch, caplog):
    """A video that breaks while training runs (after the dry run): fairseq_cli.train's validate and train
    save through fairseq's save_checkpoint, once (validate runs inside train), then raise the clip's error."""
    import fairseq_cli.train as fairseq_train
    from fairseq import checkpoint_utils
    from omegaconf import OmegaConf

    import ssvp_plugin  # noqa: F401  (wraps fairseq_cli.train's train and validate)
    from ssvp_plugin.runtime.stop_saves import stops_after_saving

    assert all(getattr(fairseq_train, f)._ssvp_stops_after_saving for f in ("train", "validate"))
    saves = []
    monkeypatch.setattr(checkpoint_utils, "save_checkpoint", lambda cfg, trainer, itr, val_loss: saves.append(val_loss) or "/ckpt/checkpoint_last.pt")
    cfg = OmegaConf.create({"checkpoint": {"no_save": False, "no_save_optimizer_state": False}})
    epoch_itr = type("Itr", (), {"epoch": 2})()
    error = UnreadableClipError("/data/val.tsv, line 4 (id x): /v/x.mp4: decoding failed", "/v/x.mp4", 4)

    def validate(cfg, trainer, task, epoch_itr, subsets):
        raise error

    def train(cfg, trainer, task, epoch_itr):
        return stops_after_saving(validate)(cfg, trainer, task, epoch_itr, ["val"])

    with caplog.at_level(logging.ERROR), pytest.raises(UnreadableClipError) as e:
        stops_after_saving(train)(cfg, _Trainer(), None, epoch_itr)
    assert e.value is error and saves == [None]  # saved once; val_loss None: not a "best" checkpoint
    assert "epoch 2, 7 update(s); progress saved to /ckpt/checkpoint_last.pt" in caplog.text and "val.tsv, line 4" in caplog.text


def test_the_rank_that_read_the_clip_saves_unless_saving_needs_the_other_ranks(monkeypatch, caplog):
    """Distributed: the rank that read the clip is alone (the others wait in a collective). Data-parallel ranks
    hold the same state, so it saves, whichever rank it is; with sharded optimizer state it cannot, and says why."""
    from fairseq import checkpoint_utils
    from omegaconf import OmegaConf

    from ssvp_plugin.runtime.stop_saves import save_progress

    saved_as = []
    monkeypatch.setattr(
        checkpoint_utils, "save_checkpoint", lambda cfg, trainer, *a: saved_as.append(trainer.should_save_checkpoint_on_current_rank) or "/ckpt/checkpoint_last.pt"
    )
    cfg = OmegaConf.create({"checkpoint": {"no_save": False, "no_save_optimizer_state": False}})
    itr = type("Itr", (), {"epoch": 1})()
    rank1 = type("T", (_Trainer,), {"data_parallel_world_size": 2, "data_parallel_rank": 1,
                                     "should_save_checkpoint_on_current_rank": False})()
    sharded = type("T", (_Trainer,), {"data_parallel_world_size": 2,
                                      "optimizer": type("O", (), {"optimizer": type("OSS", (), {"consolidate_state_dict": None})()})(),
                                      "cfg": cfg})()
    with caplog.at_level(logging.WARNING):
        assert save_progress(cfg, rank1, itr, UnreadableClipError("x")) == "/ckpt/checkpoint_last.pt"
        assert saved_as == [True] and rank1.should_save_checkpoint_on_current_rank is False  # switched back after
        assert save_progress(cfg, sharded, itr, UnreadableClipError("x")) is None
    assert "rank 1 read the unreadable clip: it saves the checkpoint itself" in caplog.text
    assert "sharded optimizer state" in caplog.text and saved_as == [True]
