"""SLURM submission through hydra-submitit-launcher (configs/slurm/): the presets compose with every
training config, fairseq turns them into the right ranks and rendezvous, the real
``fairseq-hydra-train -m ... +slurm=...`` writes the expected sbatch script (to a fake ``sbatch``), bad
combinations are refused before anything is submitted, and real tiny jobs train: one submitted to a fake
SLURM that runs it here (and, rerun as a requeued job is, resumes from checkpoint_last.pt), one through
submitit's local executor."""

import copy
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict, read_write

from conftest import BIN, REPO
from fairseq.dataclass.initialize import hydra_init
from ssvp_slt.launch import resolvers
from ssvp_slt.launch.slurm_check import SlurmLaunchCheck, SlurmLaunchError, check_launch, hydra_resolvable

CONFIG_DIR = REPO / "configs"
TRAINING_CONFIGS = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
# preset -> (nodes, GPUs per node, CPUs per task)
SLURM_PRESETS = {"1x1": (1, 1, 10), "1x8": (1, 8, 80), "4x8": (4, 8, 80)}
PRESETS = sorted(SLURM_PRESETS) + ["local"]
REQUIRED = ["task.data=/data", "common.user_dir=/plugin", "checkpoint.save_dir=/ckpt"]
JOB_ID = 4242


def compose_with(name, overrides=(), required=REQUIRED):
    """The config fairseq-hydra-train composes, with its ``hydra`` node (launcher, callbacks, sweep dir).
    Composed once per arguments (hydra is slow here); callers read it, never change it."""
    return _composed(name, tuple(overrides), tuple(required))


@functools.lru_cache(maxsize=None)
def _composed(name, overrides, required):
    hydra_init(name)  # as fairseq-hydra-train: the FairseqConfig schema under this config's name
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.1"):
        cfg = compose(config_name=name, overrides=list(required) + list(overrides), return_hydra_config=True)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def resolved(cfg):
    """``cfg`` resolved as inside the job (``${hydra:...}`` included), as a plain config; of the ``hydra``
    node only what the presets set (the rest, e.g. the job number, is filled in when a job runs)."""
    with hydra_resolvable(cfg) as scratch:
        plain = {
            key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
            for key, value in scratch.items() if key != "hydra"
        }
        plain["hydra"] = {
            "launcher": OmegaConf.to_container(scratch.hydra.launcher, resolve=True),
            "sweep": {"dir": scratch.hydra.sweep.dir},
            "callbacks": OmegaConf.to_container(OmegaConf.create(scratch.hydra.callbacks or {}), resolve=True),
        }
        return OmegaConf.create(plain)


# --- the presets ------------------------------------------------------------------------------------------


def test_the_presets_exist():
    assert {"1x1", "1x8", "4x8", "local"} <= {p.stem for p in (CONFIG_DIR / "slurm").glob("*.yaml")}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", TRAINING_CONFIGS)
def test_every_preset_composes_with_every_training_config(name, preset):
    composed = compose_with(name, [f"+slurm={preset}"])
    cfg = resolved(composed)
    launcher = cfg.hydra.launcher
    assert launcher.tasks_per_node == 1  # fairseq spawns one process per GPU itself
    assert cfg.hydra.sweep.dir.startswith("/ckpt/slurm/")  # logs and pickled jobs next to the checkpoints
    assert launcher.submitit_folder.startswith(cfg.hydra.sweep.dir)
    assert "SlurmLaunchCheck" in cfg.hydra.callbacks.ssvp_slt_launch_check._target_
    world = cfg.distributed_training.distributed_world_size
    if preset == "local":
        assert launcher._target_.endswith("LocalLauncher")
        assert world == 1 and cfg.distributed_training.distributed_port == -1
    else:
        nodes, gpus, cpus = SLURM_PRESETS[preset]
        assert launcher._target_.endswith("SlurmLauncher")
        assert (launcher.nodes, launcher.gpus_per_node, launcher.cpus_per_task) == (nodes, gpus, cpus)
        assert world == nodes * gpus
        assert cfg.distributed_training.distributed_port == resolvers.DEFAULT_PORT  # no SLURM job here
        assert launcher.timeout_min == 1440 and launcher.signal_delay_s == 120
        assert launcher.max_num_timeout > 0 and launcher.additional_parameters.requeue is True
    assert check_launch(composed) == ([], [])
    # the preset changes how the job is launched, nothing of the recipe itself
    assert cfg.bmuf.distributed_world_size == world  # fairseq's own interpolation of the world size
    plain = resolved(compose_with(name))
    for key in plain:
        if key not in ("hydra", "distributed_training", "bmuf"):
            assert cfg[key] == plain[key], key


@pytest.mark.parametrize(
    "overrides,world",
    [
        (["hydra.launcher.nodes=2"], 16),
        (["hydra.launcher.gpus_per_node=4"], 16),
        (["hydra.launcher.nodes=8", "hydra.launcher.gpus_per_node=4"], 32),
    ],
)
def test_world_size_follows_nodes_and_gpus_overridden_on_the_command_line(overrides, world):
    cfg = compose_with("finetune_base", ["+slurm=4x8", *overrides])
    assert resolved(cfg).distributed_training.distributed_world_size == world
    assert check_launch(cfg) == ([], [])


def test_resolvers():
    assert resolvers.world_size(4, 8) == 32 and resolvers.world_size(1, None) == 1 and resolvers.world_size(2, 0) == 2


def test_the_port_comes_from_the_slurm_job_id(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert resolvers.slurm_port() == resolvers.DEFAULT_PORT
    monkeypatch.setenv("SLURM_JOB_ID", "123456")
    port = resolvers.slurm_port()
    assert port == 20000 + 123456 % 10000 and 20000 <= port < 30000
    monkeypatch.setenv("SLURM_JOB_ID", "123457")  # another job on the same node gets another port
    assert resolvers.slurm_port() != port
    assert resolved(compose_with("finetune_base", ["+slurm=4x8"])).distributed_training.distributed_port == 20000 + 3457


# --- what fairseq makes of a preset on a SLURM node ---------------------------------------------------------


@pytest.fixture
def slurm_node(monkeypatch, tmp_path):
    """Node 2 of a 4-node job with 8 GPUs per node, as SLURM describes it to the task (one task per node)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"  # `scontrol show hostnames gpu[07-10]`
    scontrol.write_text("#!/bin/sh\nprintf 'gpu07\\ngpu08\\ngpu09\\ngpu10\\n'\n")
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for key, value in {
        "SLURM_JOB_ID": str(JOB_ID), "SLURM_JOB_NODELIST": "gpu[07-10]", "SLURM_NNODES": "4",
        "SLURM_NTASKS_PER_NODE": "1", "SLURM_NODEID": "2",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("SLURM_STEP_NODELIST", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)


def fairseq_distributed_setup(preset, *overrides):
    from fairseq.distributed.utils import infer_init_method

    dist = resolved(compose_with("finetune_base", [f"+slurm={preset}", *overrides])).distributed_training
    infer_init_method(dist)
    return dist


def test_fairseq_ranks_and_rendezvous_on_a_node_of_the_4x8_preset(slurm_node):
    dist = fairseq_distributed_setup("4x8")
    port = 20000 + JOB_ID % 10000
    assert dist.distributed_init_method == f"tcp://gpu07:{port}"  # the job's first node, the job's port
    assert dist.distributed_world_size == 32
    assert dist.distributed_rank == 16  # node 2 x 8 GPUs: this node's processes are ranks 16..23
    assert dist.distributed_num_procs == 8 and not dist.distributed_no_spawn


def test_without_a_port_fairseq_cannot_start_several_nodes(slurm_node):
    # why the presets set distributed_port and the check refuses <= 0 on several nodes
    with pytest.raises(AssertionError, match="world size is 32 but have 8 available devices"):
        fairseq_distributed_setup("4x8", "distributed_training.distributed_port=-1")


def test_one_gpu_preset_trains_without_distributed_setup(slurm_node, monkeypatch):
    monkeypatch.setenv("SLURM_NNODES", "1")
    monkeypatch.setenv("SLURM_NODEID", "0")
    dist = fairseq_distributed_setup("1x1")
    assert dist.distributed_world_size == 1 and dist.distributed_init_method is None


# --- bad input: refused before sbatch --------------------------------------------------------------------


def errors_for(*overrides, name="finetune_base", required=REQUIRED):
    errors, _ = check_launch(compose_with(name, overrides, required=required))
    return "\n".join(errors)


def test_world_size_that_disagrees_with_the_preset_is_refused_naming_the_preset_file():
    message = errors_for("+slurm=4x8", "distributed_training.distributed_world_size=16")
    assert str(CONFIG_DIR / "slurm" / "4x8.yaml") in message
    assert "distributed_world_size is 16" in message and "4 node(s) x 8 GPU(s) = 32" in message
    # a world size of 1 left from a single-GPU setup would train on one GPU of the job
    assert "distributed_world_size is 1" in errors_for("+slurm=1x8", "distributed_training.distributed_world_size=1")


def test_several_tasks_per_node_are_refused():
    assert "tasks_per_node is 8, but must be 1" in errors_for("+slurm=1x8", "hydra.launcher.tasks_per_node=8")


def test_several_nodes_without_a_port_are_refused():
    message = errors_for("+slurm=4x8", "distributed_training.distributed_port=-1")
    assert "4 nodes need distributed_training.distributed_port > 0" in message


def test_several_nodes_without_gpus_are_refused():
    assert "2 nodes without GPUs" in errors_for("+slurm=4x8", "hydra.launcher.nodes=2", "hydra.launcher.gpus_per_node=0")


def test_local_launcher_with_gpus_and_a_port_is_refused():
    message = errors_for("+slurm=local", "hydra.launcher.gpus_per_node=2", "distributed_training.distributed_port=29500")
    assert "needs distributed_training.distributed_port=-1" in message
    assert errors_for("+slurm=local", "hydra.launcher.gpus_per_node=2") == ""


@pytest.mark.parametrize("key", ["checkpoint.save_dir", "task.data", "common.user_dir"])
def test_relative_or_missing_paths_are_refused(key):
    required = [r for r in REQUIRED if not r.startswith(key)]
    assert f"{key}=relative/dir is relative" in errors_for("+slurm=1x8", required=required + [f"{key}=relative/dir"])
    # left out: `???` in the YAML, or fairseq's relative default (checkpoint.save_dir: checkpoints)
    assert re.search(rf"{re.escape(key)}( is not set|=\S+ is relative)", errors_for("+slurm=1x8", required=required))


def test_a_sweep_is_refused_because_its_jobs_would_share_the_checkpoint_dir():
    cfg = copy.deepcopy(compose_with("finetune_base", ["+slurm=1x8"]))
    with open_dict(cfg), read_write(cfg):  # as `-m ... optimization.lr=[1e-4],[5e-4]` records it
        cfg.hydra.overrides.task.append("optimization.lr=[1e-4],[5e-4]")
    (error,), _ = check_launch(cfg)
    assert "a sweep (optimization.lr=[1e-4],[5e-4])" in error and "same checkpoint.save_dir" in error


def test_too_few_cpus_for_the_loader_workers_is_a_warning():
    _, warnings = check_launch(compose_with("finetune_base", ["+slurm=1x8", "hydra.launcher.cpus_per_task=16"]))
    assert len(warnings) == 1 and "cpus_per_task=16 is fewer than the 72" in warnings[0]


def test_callback_stops_the_command():
    check = SlurmLaunchCheck()
    with pytest.raises(SlurmLaunchError, match="only in multirun mode: add -m"):
        check.on_run_start(compose_with("finetune_base", ["+slurm=1x8"]))
    with pytest.raises(SlurmLaunchError, match="distributed_world_size is 2") as refused:
        check.on_multirun_start(compose_with("finetune_base", ["+slurm=1x8", "distributed_training.distributed_world_size=2"]))
    assert isinstance(refused.value, SystemExit)  # hydra turns other exceptions from callbacks into warnings
    check.on_multirun_start(compose_with("finetune_base", ["+slurm=1x8"]))  # a good one passes


# --- the real command, submitting to a fake sbatch --------------------------------------------------------

FAKE_SBATCH = """#!{python}
# Fake sbatch: records the script, answers like sbatch, and reports every task of the job finished
# (the result pickle submitit waits for) so that the launcher's wait ends; the job itself does not run.
import pickle, re, sys
from pathlib import Path
from hydra.core.utils import JobReturn, JobStatus

script = Path(sys.argv[-1]).read_text()
Path({record!r}).write_text(script)
flag = lambda name: re.search(rf"^#SBATCH --{{name}}=(.*)$", script, re.M).group(1).strip("'")
folder = Path(flag("output").replace("%j", "{job_id}")).parent
folder.mkdir(parents=True, exist_ok=True)
done = JobReturn()
done.status = JobStatus.COMPLETED
for task in range(int(flag("nodes")) * int(flag("ntasks-per-node"))):
    with open(folder / f"{job_id}_{{task}}_result.pkl", "wb") as f:
        pickle.dump(("success", done), f)
print("Submitted batch job {job_id}")
"""


@pytest.fixture
def fake_slurm(tmp_path):
    """A PATH with a fake sbatch (see FAKE_SBATCH) and an srun that must never run here."""
    bin_dir = tmp_path / "fake_slurm"
    bin_dir.mkdir()
    record = tmp_path / "sbatch_script.sh"
    (bin_dir / "sbatch").write_text(FAKE_SBATCH.format(python=sys.executable, record=str(record), job_id=JOB_ID))
    (bin_dir / "srun").write_text("#!/bin/sh\necho 'fake srun must not run' >&2\nexit 1\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONWARNINGS="ignore")
    env.pop("SLURM_JOB_ID", None)
    return env, record


def hydra_train_multirun(env, cwd, config, *overrides):
    cmd = [BIN / "fairseq-hydra-train", "-m", "--config-dir", CONFIG_DIR, "--config-name", config, *overrides]
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("preset,nodes", [("1x8", 1), ("4x8", 4)])
def test_fairseq_hydra_train_submits_the_preset_through_sbatch(fake_slurm, tmp_path, preset, nodes):
    env, record = fake_slurm
    save_dir = tmp_path / "ckpt"
    res = hydra_train_multirun(
        env, tmp_path, "finetune_base", f"+slurm={preset}", "hydra.launcher.partition=gpu-large",
        "task.data=/data", f"common.user_dir={REPO / 'ssvp_plugin'}", f"checkpoint.save_dir={save_dir}",
    )
    assert res.returncode == 0, res.stdout + res.stderr[-4000:]
    script = record.read_text()
    flags = dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", script, re.M))
    assert flags["nodes"] == str(nodes) and flags["gpus-per-node"] == "8" and flags["ntasks-per-node"] == "1"
    assert flags["cpus-per-task"] == "80" and flags["partition"] == "gpu-large" and flags["time"] == "1440"
    assert flags["signal"] == "USR2@120" and "requeue" in flags  # submitit's requeue signal, 120 s before the limit
    assert flags["job-name"] == "ssvp-finetune_base"
    submitit_dir = Path(flags["output"]).parent
    assert str(submitit_dir).startswith(str(save_dir / "slurm")) and submitit_dir.name == "%j"
    srun = [line for line in script.splitlines() if line.startswith("srun ")]
    assert len(srun) == 1 and srun[0].endswith(f"{sys.executable} -u -m submitit.core._submit {submitit_dir}")

    # the pickled job the compute node runs: this submission's overrides, the resolvers, requeue allowance
    from submitit.core.utils import DelayedSubmission

    job = DelayedSubmission.load(Path(str(submitit_dir).replace("%j", str(JOB_ID))) / f"{JOB_ID}_submitted.pkl")
    overrides, _, _, _, singleton_state = job.args
    assert f"+slurm={preset}" in overrides and f"checkpoint.save_dir={save_dir}" in overrides
    assert {resolvers.WORLD_SIZE, resolvers.SLURM_PORT} <= set(singleton_state["omegaconf_resolvers"])
    assert job._timeout_countdown == 10  # max_num_timeout: requeued after up to 10 timeouts


def test_a_refused_submission_never_reaches_sbatch(fake_slurm, tmp_path):
    env, record = fake_slurm
    res = hydra_train_multirun(
        env, tmp_path, "finetune_base", "+slurm=4x8", "distributed_training.distributed_world_size=16",
        "task.data=/data", f"common.user_dir={REPO / 'ssvp_plugin'}", f"checkpoint.save_dir={tmp_path / 'ckpt'}",
    )
    assert res.returncode == 1
    assert "refusing to submit" in res.stderr and "4x8.yaml: distributed_training.distributed_world_size is 16" in res.stderr
    assert not record.exists()


# --- real jobs: a fake SLURM that runs them here, and submitit's local executor ------------------------------

SLURM_TASK_ENV = {  # what SLURM tells the one task of a one-node job
    "SLURM_JOB_ID": str(JOB_ID), "SLURM_JOB_NODELIST": "localhost", "SLURM_NNODES": "1", "SLURM_JOB_NUM_NODES": "1",
    "SLURM_NTASKS_PER_NODE": "1", "SLURM_NTASKS": "1", "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
}
RUNNING_SBATCH = """#!/bin/bash
# Fake sbatch that starts the job at once on this machine, in the background as a scheduler would
# (submitit moves the pickled job into place only after sbatch has answered).
{exports}
nohup bash -c 'bash "$1"; touch "$0"' {ended} "$1" >/dev/null 2>&1 &
echo "Submitted batch job {job_id}"
"""
# Fake srun for submitit's line `srun --unbuffered --output OUT --error ERR command...`: one task, here.
RUNNING_SRUN = """#!/bin/bash
shift; out=${2//%j/$SLURM_JOB_ID}; err=${4//%j/$SLURM_JOB_ID}; shift 4
exec "$@" >"${out//%t/0}" 2>"${err//%t/0}"
"""
# Fake sacct: the job's state, so that the launcher stops waiting if the job ends without a result
RUNNING_SACCT = """#!/bin/bash
echo "JobID|State|NodeList"
if [ -e {ended} ]; then echo "{job_id}|COMPLETED|localhost"; else echo "{job_id}|RUNNING|localhost"; fi
"""
TINY_TRAINING = [
    "common.cpu=true", "optimization.max_update=3", "optimizer.groups.default.lr_scheduler.warmup_updates=2",
    "dataset.validate_interval=1", "dataset.num_workers=0", "common.log_interval=1",
]


def tiny_training(env, cwd, preset, data, save_dir):
    return hydra_train_multirun(
        env, cwd, "quick_synthetic", f"+slurm={preset}", f"task.data={data}",
        f"common.user_dir={REPO / 'ssvp_plugin'}", f"checkpoint.save_dir={save_dir}", *TINY_TRAINING,
    )


def job_log(save_dir):
    """The job's own log (hydra_train.log in hydra's job directory), written on the 'node'."""
    (sweep_dir,) = (save_dir / "slurm").iterdir()
    return sweep_dir / "0" / "hydra_train.log"


def test_a_slurm_job_trains_on_the_node_and_resumes_when_requeued(synthetic_root, tmp_path):
    bin_dir = tmp_path / "slurm_bin"
    bin_dir.mkdir()
    exports = "export " + " ".join(f"{k}={v}" for k, v in SLURM_TASK_ENV.items())
    ended = tmp_path / "job_ended"
    (bin_dir / "sbatch").write_text(RUNNING_SBATCH.format(exports=exports, ended=ended, job_id=JOB_ID))
    (bin_dir / "srun").write_text(RUNNING_SRUN)
    (bin_dir / "sacct").write_text(RUNNING_SACCT.format(ended=ended, job_id=JOB_ID))
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}",
               PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    env.pop("SLURM_JOB_ID", None)
    save_dir = tmp_path / "ckpt"
    res = tiny_training(env, tmp_path, "1x1", synthetic_root, save_dir)
    assert res.returncode == 0, res.stdout + res.stderr[-4000:]
    assert (save_dir / "checkpoint_last.pt").is_file() and (save_dir / "checkpoint_best.pt").is_file()
    log = job_log(save_dir).read_text()
    assert "num_updates=3" in log and "'distributed_world_size': 1" in log
    assert f"'distributed_port': {20000 + JOB_ID % 10000}" in log  # resolved on the node, from SLURM_JOB_ID

    # A requeued job runs the same pickled submission again (submitit reloads <id>_submitted.pkl): fairseq
    # must restore checkpoint_last.pt from checkpoint.save_dir instead of starting over.
    (submitit_dir,) = (job_log(save_dir).parents[1] / ".submitit").glob(str(JOB_ID))
    requeued = subprocess.run(
        [sys.executable, "-m", "submitit.core._submit", str(submitit_dir.parent / "%j")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(env, SUBMITIT_EXECUTOR="slurm", **SLURM_TASK_ENV),
    )
    assert requeued.returncode == 0, requeued.stdout + requeued.stderr[-4000:]
    rerun = job_log(save_dir).read_text()[len(log):]  # the job appends to its log
    assert re.search(r"Loaded checkpoint .*checkpoint_last\.pt \(epoch \d+ @ 3 updates\)", rerun)
    # it goes on from update 3 (fairseq checks max_update after a step, hence one more), not from update 1
    assert re.findall(r"num_updates=(\d+)", rerun)[0] == "4"


def test_local_executor_job_trains_and_writes_checkpoints(synthetic_root, tmp_path):
    save_dir = tmp_path / "ckpt"
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    res = tiny_training(env, tmp_path, "local", synthetic_root, save_dir)
    assert res.returncode == 0, res.stdout + res.stderr[-4000:]
    assert (save_dir / "checkpoint_last.pt").is_file() and (save_dir / "checkpoint_best.pt").is_file()
    log = job_log(save_dir).read_text()  # written by the executor's subprocess
    assert "num_updates=3" in log and "'distributed_world_size': 1" in log
