"""Launching ``fairseq-hydra-train`` through hydra-submitit-launcher (``configs/slurm/``).

- :mod:`~ssvp_slt.launch.resolvers`: the OmegaConf resolvers the presets interpolate with
  (world size = nodes x GPUs per node; a per-job rendezvous port);
- :mod:`~ssvp_slt.launch.slurm_check`: the hydra callback the presets install, which checks a
  submission before anything reaches ``sbatch``.

Imports hydra and omegaconf only (no fairseq, no torch): it runs on the submitting machine.
"""
