"""Checks a ``fairseq-hydra-train -m ... +slurm=<preset>`` submission before it reaches ``sbatch``.

The presets in ``configs/slurm/`` install :class:`SlurmLaunchCheck` as a hydra callback. Hydra calls
``on_multirun_start`` on the submitting machine after composing the config and before the sweeper and
the launcher exist, so a bad combination stops there, with the preset's file named, instead of after
hours in the queue. What it refuses, and why (the fairseq behaviour is in
``fairseq/distributed/utils.py``, ``infer_init_method`` and ``_infer_slurm_init``):

- no ``-m``: without multirun hydra ignores the launcher and trains right here, on the login node;
- ``tasks_per_node`` other than 1: fairseq starts one training process per GPU itself when SLURM runs
  one task per node; more tasks per node would each do so;
- ``distributed_world_size`` other than nodes x GPUs per node (only when it is overridden: the presets
  interpolate it). Under SLURM fairseq recomputes it from the allocation anyway when it is > 1, but a 1
  (left over from a single-GPU config) skips distributed training altogether: one GPU of the job trains;
- several nodes without GPUs: fairseq's process-per-GPU start has nothing to start;
- several nodes with ``distributed_port`` <= 0: fairseq then falls back to single-node initialisation,
  which fails (``world size is 32 but have 8 available devices``);
- the local launcher with several GPUs and ``distributed_port`` > 0: outside SLURM fairseq only sets up
  distributed training when the port is unset, so it would silently train on one GPU;
- a sweep (``key=a,b``): its jobs would all write and resume the same ``checkpoint.save_dir``;
- relative or missing ``checkpoint.save_dir``, ``task.data``, ``common.user_dir``: the job runs in hydra's
  output directory on another machine, and a requeued job resumes only from the same ``save_dir``.

Hydra turns an exception raised in a callback into a warning (``hydra/_internal/callbacks.py``) and
goes on submitting, so a refused submission raises :class:`SlurmLaunchError`, a ``SystemExit``: the
command stops with the message and exit status 1.
"""

import contextlib
import copy
import logging
import os
from pathlib import Path
from typing import List, Tuple

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from . import resolvers  # importing it registers the presets' resolvers before anything resolves them

logger = logging.getLogger(__name__)

PRESET_GROUP = "slurm"
ABSOLUTE_PATHS = ("checkpoint.save_dir", "task.data", "common.user_dir")


class SlurmLaunchError(SystemExit):
    """A submission the presets refuse; exits the command with the message (see the module's docstring)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def preset_file(config: DictConfig) -> str:
    """The preset's YAML file (``<config dir>/slurm/<name>.yaml``) for messages, or its group path."""
    name = OmegaConf.select(config, f"hydra.runtime.choices.{PRESET_GROUP}", default=None)
    if name is None:
        return "the launcher settings (no +slurm preset)"
    for source in OmegaConf.select(config, "hydra.runtime.config_sources", default=None) or []:
        if source.get("schema") == "file":
            path = Path(source["path"]) / PRESET_GROUP / f"{name}.yaml"
            if path.is_file():
                return str(path)
    return f"{PRESET_GROUP}/{name}.yaml"


class _Unresolvable(Exception):
    pass


def _resolved(config: DictConfig, key: str):
    """``key``'s value with its interpolations resolved; None if missing or unset."""
    try:
        return OmegaConf.select(config, key, default=None, throw_on_missing=False)
    except Exception as e:  # an interpolation that cannot resolve here
        raise _Unresolvable(f"{key}: {e}") from e


@contextlib.contextmanager
def hydra_resolvable(config: DictConfig):
    """A copy of ``config`` in which ``${hydra:...}`` resolves, as it does inside the job.

    Only the keys checked below are resolved: the rest may interpolate what exists only on the compute
    node (``${oc.env:SLURM_...}``), which fairseq resolves there."""
    scratch = copy.deepcopy(config)
    holder = HydraConfig.instance()
    previous = holder.cfg
    try:
        holder.set_config(scratch)
        yield scratch
    finally:
        holder.cfg = previous


def check_launch(config: DictConfig) -> Tuple[List[str], List[str]]:
    """(errors, warnings) for a composed config with its ``hydra`` node and a submitit launcher."""
    try:
        with hydra_resolvable(config) as resolved:
            return _check(resolved, preset_file(config), swept_overrides(config))
    except _Unresolvable as e:
        return [f"{preset_file(config)}: cannot resolve {e}"], []


def swept_overrides(config: DictConfig) -> List[str]:
    """The command line's sweep overrides (``key=a,b``, ``range(...)``): each value becomes a job."""
    overrides = list(OmegaConf.select(config, "hydra.overrides.task", default=None) or [])
    return [o.input_line for o in OverridesParser.create().parse_overrides(overrides) if o.is_sweep_override()]


def _check(resolved: DictConfig, where: str, swept: List[str]) -> Tuple[List[str], List[str]]:
    on_slurm = str(resolved.hydra.launcher.get("_target_", "")).endswith("SlurmLauncher")
    nodes = int(_resolved(resolved, "hydra.launcher.nodes") or 1)
    gpus = int(_resolved(resolved, "hydra.launcher.gpus_per_node") or 0)
    tasks = int(_resolved(resolved, "hydra.launcher.tasks_per_node") or 1)
    expected = resolvers.world_size(nodes, gpus)
    world = _resolved(resolved, "distributed_training.distributed_world_size")
    port = _resolved(resolved, "distributed_training.distributed_port")
    errors: List[str] = []
    warnings: List[str] = []

    if tasks != 1:
        errors.append(
            f"{where}: hydra.launcher.tasks_per_node is {tasks}, but must be 1: fairseq starts one training "
            f"process per GPU itself when SLURM runs one task per node (fairseq/distributed/utils.py, "
            f"_infer_slurm_init); {tasks} tasks per node would each start their own"
        )
    if world is not None and int(world) != expected:
        errors.append(
            f"{where}: distributed_training.distributed_world_size is {world}, but the launcher asks for "
            f"{nodes} node(s) x {gpus} GPU(s) = {expected} training process(es). Drop the world-size override "
            f"(the presets set it to hydra.launcher.nodes x hydra.launcher.gpus_per_node) and change "
            f"hydra.launcher.nodes / hydra.launcher.gpus_per_node instead"
        )
    if nodes > 1 and gpus < 1:
        errors.append(
            f"{where}: {nodes} nodes without GPUs (hydra.launcher.gpus_per_node={gpus}): fairseq's multi-node "
            f"training starts one process per GPU; set hydra.launcher.gpus_per_node"
        )
    if on_slurm and nodes > 1 and (port is None or int(port) <= 0):
        errors.append(
            f"{where}: {nodes} nodes need distributed_training.distributed_port > 0 (it is {port}): with a port "
            f"<= 0 fairseq falls back to single-node initialisation, which fails on the first node "
            f"(world size {expected} but {gpus} devices)"
        )
    if not on_slurm and expected > 1 and port is not None and int(port) > 0:
        errors.append(
            f"{where}: the local launcher with {expected} GPUs needs distributed_training.distributed_port=-1: "
            f"outside SLURM fairseq sets up distributed training only when the port is unset, and with "
            f"port {port} it would train on one GPU"
        )
    if swept:
        errors.append(
            f"{where}: a sweep ({', '.join(swept)}) would submit one job per value, all writing and resuming "
            f"the same checkpoint.save_dir; submit one command per setting, each with its own save_dir"
        )
    for key in ABSOLUTE_PATHS:
        value = _resolved(resolved, key)
        if value is None or str(value) == "":
            errors.append(f"{where}: {key} is not set; pass it as an absolute path ({key}=/abs/path)")
        elif not os.path.isabs(str(value)):
            errors.append(
                f"{where}: {key}={value} is relative; pass an absolute path on storage every node sees: the job "
                f"runs in hydra's output directory on a compute node, and a requeued job resumes only from "
                f"the same checkpoint.save_dir"
            )

    cpus = _resolved(resolved, "hydra.launcher.cpus_per_task")
    workers = _resolved(resolved, "dataset.num_workers")
    per_node = max(gpus, 1)
    if cpus is not None and workers is not None and int(cpus) < per_node * (int(workers) + 1):
        warnings.append(
            f"{where}: hydra.launcher.cpus_per_task={cpus} is fewer than the {per_node * (int(workers) + 1)} "
            f"processes a node runs ({per_node} training process(es) x (dataset.num_workers={workers} loader "
            f"workers + 1)): data loading may be the bottleneck; lower dataset.num_workers or raise cpus_per_task"
        )
    return errors, warnings


class SlurmLaunchCheck(Callback):
    """Hydra callback installed by ``configs/slurm/*.yaml`` (see the module's docstring)."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        raise SlurmLaunchError(
            f"{preset_file(config)}: +{PRESET_GROUP}=... submits through hydra's launcher only in multirun "
            f"mode: add -m (fairseq-hydra-train -m ...). Without it hydra ignores the launcher and "
            f"would train here, on this machine"
        )

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        errors, warnings = check_launch(config)
        for warning in warnings:
            logger.warning(warning)
        if errors:
            raise SlurmLaunchError("\n".join(["refusing to submit:"] + errors))
