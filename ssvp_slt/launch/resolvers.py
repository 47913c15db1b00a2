"""OmegaConf resolvers used by the SLURM presets (``configs/slurm/``).

OmegaConf has no arithmetic, and the presets need ``distributed_world_size = nodes x GPUs per node``
to follow ``hydra.launcher.nodes`` / ``hydra.launcher.gpus_per_node`` when they are overridden.

Registration is guaranteed before anything resolves these interpolations:
- on the submitting machine the presets install the callback :class:`ssvp_slt.launch.slurm_check.
  SlurmLaunchCheck`, which imports this module; hydra instantiates callbacks right after composing
  the config, before the sweeper and the launcher exist (``hydra/_internal/hydra.py``, ``multirun``);
- on the compute node, hydra-submitit-launcher restores the submitting process's resolver table
  (``hydra.core.singleton.Singleton.get_state``/``set_state`` pickle ``BaseContainer._resolvers``)
  before it recomposes the job's config, and unpickling the callback imports this module again.
fairseq resolves the whole config inside the job (``fairseq_cli/hydra_train.py``:
``OmegaConf.to_container(cfg, resolve=True)``), i.e. after both.
"""

import os

from omegaconf import OmegaConf

WORLD_SIZE = "ssvp_slt.world_size"
SLURM_PORT = "ssvp_slt.slurm_port"

# fairseq's rendezvous port when no SLURM job id is known (composing the config on a login node)
DEFAULT_PORT = 29500
# ports derived from the job id stay in [20000, 30000): below Linux's ephemeral range (32768-60999),
# where outgoing connections could already hold the port
PORT_BASE, PORT_SPAN = 20000, 10000


def world_size(nodes, gpus_per_node) -> int:
    """Training processes for ``nodes`` nodes with ``gpus_per_node`` GPUs each: fairseq runs one per GPU,
    and one per node on a node without GPUs (``gpus_per_node`` null or 0)."""
    return int(nodes) * max(int(gpus_per_node or 0), 1)


def slurm_port() -> int:
    """fairseq's TCP rendezvous port for a multi-node job, derived from ``SLURM_JOB_ID``.

    Every node of a job (and the job again after a requeue, which keeps its id) computes the same
    port, while two jobs that share a node get different ones: a fixed port would make the second
    job's ``init_process_group`` fail with "address already in use". Each task of a job array has its
    own ``SLURM_JOB_ID``. Without a SLURM job (composing the config elsewhere) it is ``DEFAULT_PORT``.
    """
    job_id = os.environ.get("SLURM_JOB_ID", "")
    if not job_id.isdigit():
        return DEFAULT_PORT
    return PORT_BASE + int(job_id) % PORT_SPAN


def register() -> None:
    """Register the resolvers once (importing this module does it)."""
    for name, fn in ((WORLD_SIZE, world_size), (SLURM_PORT, slurm_port)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


register()
