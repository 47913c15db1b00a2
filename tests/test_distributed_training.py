"""Distributed training on fairseq's own engine, proven without GPUs: two CPU ranks over gloo.

Each rank is a real ``fairseq-hydra-train`` process launched with fairseq's explicit-rank settings
(the form ../shared/NOTES.md records as working for CPU ranks here). The user dir is
tests/ddp_probe: the plugin itself, plus a per-rank record of the clips each update trained on and
a checksum of the parameters after each optimizer step.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, REPO
from conftest import run_tool as run

PROBE = REPO / "tests" / "ddp_probe"
LAUNCH_TIMEOUT_S = 300  # a hung rank fails the test instead of hanging CI


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def rank_command(config, data, save_dir, rank, world, port, *overrides):
    return [
        str(BIN / "fairseq-hydra-train"), "--config-dir", str(REPO / "configs"), "--config-name", config,
        f"task.data={data}", f"common.user_dir={PROBE}", f"checkpoint.save_dir={save_dir}",
        "dataset.num_workers=0", "common.log_interval=1", "common.cpu=true",
        f"distributed_training.distributed_world_size={world}", f"distributed_training.distributed_rank={rank}",
        f"distributed_training.distributed_init_method=tcp://localhost:{port}",
        "distributed_training.distributed_no_spawn=true", "distributed_training.distributed_backend=gloo",
        *[str(o) for o in overrides],
    ]


def start_ranks(config, data, save_dir, probe_dir, *overrides, world=2):
    probe_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", SSVP_DDP_PROBE_DIR=str(probe_dir))
    port = free_port()
    procs = []
    for rank in range(world):
        log = open(probe_dir / f"rank{rank}.log", "w")
        cmd = rank_command(config, data, save_dir, rank, world, port, *overrides)
        procs.append(subprocess.Popen(cmd, cwd=probe_dir, env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def wait_ranks(procs, probe_dir, timeout=LAUNCH_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"distributed run hung for {timeout} s; logs in {probe_dir}")
    logs = [(probe_dir / f"rank{r}.log").read_text() for r in range(len(procs))]
    return codes, logs


def train_ranks(config, data, save_dir, probe_dir, *overrides, world=2, expect_ok=True):
    codes, logs = wait_ranks(start_ranks(config, data, save_dir, probe_dir, *overrides, world=world), probe_dir)
    if expect_ok:
        assert codes == [0] * world, "\n\n".join(log[-3000:] for log in logs)
    return codes, logs


def records(probe_dir, rank, event):
    path = probe_dir / f"rank{rank}.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [r for r in map(json.loads, lines) if r["event"] == event]


def valid_metrics(line: str) -> dict:
    """``{name: value}`` of a ``valid on 'val' subset | loss 4.1 | ...`` log line."""
    fields = [f.strip() for f in line.split("|")]
    start = next(i for i, f in enumerate(fields) if f.startswith("valid on"))
    return dict(f.split(" ", 1) for f in fields[start + 1 :] if " " in f)


def valid_line(log: str, num_updates: int) -> dict:
    """The metrics of the validation logged at ``num_updates``."""
    for line in log.splitlines():
        if "valid on 'val' subset" in line and valid_metrics(line).get("num_updates") == str(num_updates):
            return valid_metrics(line)
    raise AssertionError(f"no validation at update {num_updates} in the log")


# the translation recipe with the parts DDP most easily breaks: a frozen encoder for the first
# updates, layer-wise lr decay (composite optimizer), selective weight decay, validation BLEU
VIDEO_RUN = (
    "optimizer.groups.default.lr_scheduler.warmup_updates=2", "dataset.validate_interval=1", "dataset.batch_size=4",
    "++model.freeze_encoder_updates=3", "++model.encoder_layer_decay=0.75",
)
FROZEN_UPDATES = 3  # update 0 has lr 0 (warmup): updates 1 and 2 show the freeze


@pytest.fixture(scope="module")
def video_run(synthetic_root, tmp_path_factory):
    """quick_synthetic on two ranks (torch DDP, the GPU default), 6 updates; checkpoint_last kept aside."""
    work = tmp_path_factory.mktemp("ddp_video")
    _, logs = train_ranks("quick_synthetic", synthetic_root, work / "ckpt", work / "probe", *VIDEO_RUN,
                          "optimization.max_update=6", "distributed_training.ddp_backend=pytorch_ddp")
    shutil.copy(work / "ckpt" / "checkpoint_last.pt", work / "at_6_updates.pt")
    return work, logs


def test_each_rank_trains_on_its_own_clips_and_every_clip_once_per_epoch(video_run, synthetic_root):
    work, _ = video_run
    batches = [records(work / "probe", r, "batch") for r in (0, 1)]
    assert [b["update"] for b in batches[0]] == [b["update"] for b in batches[1]] == list(range(6))
    n_train = sum(1 for _ in open(synthetic_root / "train.tsv")) - 1
    for epoch in (range(0, 3), range(3, 6)):  # 24 clips, 4 per batch: 3 updates per epoch on 2 ranks
        seen = [i for r in (0, 1) for u in epoch for i in batches[r][u]["ids"]]
        assert sorted(seen) == list(range(n_train))
    for u in range(6):
        assert not set(batches[0][u]["ids"]) & set(batches[1][u]["ids"])


def test_parameters_are_identical_on_both_ranks_after_every_update(video_run):
    work, _ = video_run
    steps = [records(work / "probe", r, "step") for r in (0, 1)]
    assert len(steps[0]) == len(steps[1]) == 6
    for a, b in zip(*steps):
        assert a == b  # same bits: gradients were averaged over the ranks before each step
    assert steps[0][-1]["all"] != steps[0][0]["all"]  # and the model did train


def test_a_frozen_encoder_stays_frozen_under_ddp_then_trains(video_run):
    work, logs = video_run
    encoder = [s["encoder"] for s in records(work / "probe", 0, "step")]
    everything = [s["all"] for s in records(work / "probe", 0, "step")]
    assert len(set(encoder[:FROZEN_UPDATES])) == 1  # no change while frozen (updates 0..FROZEN_UPDATES-1)
    assert everything[FROZEN_UPDATES - 1] != everything[0]  # while the rest trains
    assert encoder[FROZEN_UPDATES] != encoder[0]  # and it trains once unfrozen
    assert "find_unused_parameters turned on" in logs[0]


def test_legacy_ddp_backend_trains_the_same_model(video_run, synthetic_root, tmp_path):
    """fairseq's other backend fills missing gradients with zeros: the frozen encoder must still not move,
    and both backends must compute the same updates."""
    work, _ = video_run
    train_ranks("quick_synthetic", synthetic_root, tmp_path / "ckpt", tmp_path / "probe", *VIDEO_RUN,
                "optimization.max_update=6", "distributed_training.ddp_backend=legacy_ddp")
    legacy = records(tmp_path / "probe", 0, "step")
    torch_ddp = records(work / "probe", 0, "step")
    assert len({s["encoder"] for s in legacy[:FROZEN_UPDATES]}) == 1
    for a, b in zip(legacy, torch_ddp):
        assert a["all"] == pytest.approx(b["all"], rel=1e-6)
    assert [b["ids"] for b in records(tmp_path / "probe", 1, "batch")] == [
        b["ids"] for b in records(work / "probe", 1, "batch")
    ]  # the same clips on the same rank: batches (and the windows and crops drawn per clip) are seeded


def test_validation_over_two_ranks_equals_one_process(video_run, synthetic_root):
    work, logs = video_run
    two_ranks = valid_line(logs[0], 6)
    out = run(
        [
            BIN / "fairseq-validate", synthetic_root, "--user-dir", REPO / "ssvp_plugin", "--task", "how2sign_video",
            "--path", work / "at_6_updates.pt", "--valid-subset", "val", "--batch-size", "4", "--cpu",
        ],
        work,
    )
    one_process = valid_metrics([line for line in out.splitlines() if "valid on 'val' subset" in line][-1])
    assert float(one_process["loss"]) == pytest.approx(float(two_ranks["loss"]), abs=1e-3)
    # loss and accuracy are sums over every rank's clips, gathered as BLEU's n-gram counts are. BLEU itself is 0
    # for a model this young (it emits no matching word even after 30 updates), so that line alone would not
    # catch a rank's counts going missing; that BLEU is computed from the counts summed over every logging output
    # (fairseq hands reduce_metrics all ranks' outputs) is tested in test_task.py on real hypotheses
    assert float(one_process["bleu"]) == float(two_ranks["bleu"])
    assert float(one_process["accuracy"]) == pytest.approx(float(two_ranks["accuracy"]), abs=1e-2)


def test_resuming_on_two_ranks_continues_the_update_count(video_run, synthetic_root):
    work, _ = video_run
    save = work / "resumed"
    shutil.copytree(work / "ckpt", save, ignore=shutil.ignore_patterns("tensorboard"))
    _, logs = train_ranks("quick_synthetic", synthetic_root, save, work / "probe_resumed", *VIDEO_RUN,
                          "optimization.max_update=9", "distributed_training.ddp_backend=pytorch_ddp")
    assert "@ 6 updates" in logs[0]  # fairseq's "Loaded checkpoint ... (epoch 3 @ 6 updates)"
    for r in (0, 1):
        assert [s["update"] for s in records(work / "probe_resumed", r, "step")] == [6, 7, 8]
    a, b = (records(work / "probe_resumed", r, "step")[-1] for r in (0, 1))
    assert a == b


@pytest.mark.parametrize("config", ["pretrain_mae_tiny", "pretrain_mae_hiera_tiny", "two_stage_quick"])
def test_mae_pretraining_and_feature_models_train_in_step_on_two_ranks(config, synthetic_root, tmp_path):
    overrides = ["optimization.max_update=4", "lr_scheduler.warmup_updates=2", "dataset.batch_size=4",
                 "dataset.validate_interval=1", "distributed_training.ddp_backend=pytorch_ddp"]
    if config == "two_stage_quick":
        from test_sign_features import write_random_store

        write_random_store(tmp_path / "features", synthetic_root)
        overrides.append(f"task.features={tmp_path / 'features'}")
    else:
        overrides += ["dataset.train_subset=train", "dataset.valid_subset=val", "checkpoint.save_interval_updates=0"]
    train_ranks(config, synthetic_root, tmp_path / "ckpt", tmp_path / "probe", *overrides)
    steps = [records(tmp_path / "probe", r, "step") for r in (0, 1)]
    assert len(steps[0]) == 4 and steps[0] == steps[1]
    assert (tmp_path / "ckpt" / "checkpoint_last.pt").is_file()


def test_mae_masks_differ_between_ranks_and_repeat_for_the_same_seed(monkeypatch):
    """fairseq seeds torch's RNG identically on every rank at every update; the masks must not follow."""
    import torch

    from ssvp_plugin.models import masking

    def masks(rank):
        monkeypatch.setattr(masking, "rank", lambda: rank)
        torch.manual_seed(7)  # what fairseq does on every rank before an update
        return masking.make_mask(4, 2, 16, 0.75, "tube", masking.training_mask_generator(), "cpu")[0]

    assert torch.equal(masks(0), masks(0))
    assert not torch.equal(masks(0), masks(1))


def test_fewer_training_batches_than_ranks_is_a_clear_error_on_every_rank(synthetic_root, tmp_path):
    codes, logs = train_ranks(
        "quick_synthetic", synthetic_root, tmp_path / "ckpt", tmp_path / "probe", "dataset.batch_size=32",
        "dataset.max_tokens=100000", "optimization.max_update=2", world=2, expect_ok=False,
    )
    assert codes[0] != 0 and codes[1] != 0
    for log in logs:
        assert "1 batch(es) per epoch for 2 ranks" in log and "would get no batch" in log


def test_a_rank_that_dies_stops_the_others_and_the_same_command_resumes(synthetic_root, tmp_path):
    probe = tmp_path / "probe"
    run_args = (
        "quick_synthetic", synthetic_root, tmp_path / "ckpt", probe, *VIDEO_RUN,
        "checkpoint.save_interval_updates=2", "distributed_training.ddp_backend=pytorch_ddp",
    )
    procs = start_ranks(*run_args, "optimization.max_update=300")
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    while len(records(probe, 1, "step")) < 5:
        assert time.monotonic() < deadline and procs[1].poll() is None, "rank 1 never got going"
        time.sleep(0.2)
    procs[1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    codes, logs = wait_ranks(procs, probe, timeout=120)
    assert codes[0] != 0, "rank 0 kept going without its peer"
    assert time.monotonic() - killed_at < 120
    assert "Connection closed by peer" in logs[0] or "remote worker" in logs[0], logs[0][-2000:]
    done = len(records(probe, 0, "step"))

    # the same command again: resumes from the last checkpoint written (every 2 updates), on both ranks
    resumed = tmp_path / "probe_resumed"
    codes, logs = train_ranks(*run_args[:3], resumed, *run_args[4:], f"optimization.max_update={done + 2}")
    first = records(resumed, 0, "step")[0]["update"]
    assert 2 <= first <= done and first % 2 == 0
    assert records(resumed, 0, "step")[-1] == records(resumed, 1, "step")[-1]


def test_an_unreadable_clip_met_by_another_rank_is_saved_past_and_named(video_run, data_root, tmp_path):
    """Without the skip flag a clip that no longer decodes stops the run; the rank that read it is not rank 0
    (which fairseq saves from) but holds the same state, so it saves what was trained, and names the clip."""
    import torch

    from test_late_video_faults import break_row

    work, _ = video_run
    bad = records(work / "probe", 1, "batch")[2]["ids"][0]  # a clip rank 1 first reads at update 2
    line, _, _ = break_row(data_root, tmp_path, "train", bad)
    codes, logs = train_ranks("quick_synthetic", data_root, tmp_path / "ckpt", tmp_path / "probe", *VIDEO_RUN,
                              "optimization.max_update=6", "distributed_training.ddp_backend=pytorch_ddp", expect_ok=False)
    assert codes[0] != 0 and codes[1] != 0
    assert f"line {line}" in logs[1] and "progress saved to" in logs[1], logs[1][-3000:]
    state = torch.load(tmp_path / "ckpt" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert state["optimizer_history"][-1]["num_updates"] == 2
