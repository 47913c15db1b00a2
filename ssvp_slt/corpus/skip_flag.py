"""How a user asks to skip bad input: the one spelling every message and document prints. (issue 14)

``fairseq-hydra-train`` accepts ``task.<key>=value`` only for keys its YAML already holds, so every config
in configs/ whose task has the field lists ``skip_invalid_samples: false`` (tests/test_late_video_faults.py
composes each config with this override). ``fairseq-train`` / ``fairseq-generate`` spell it as a flag.
"""

SKIP_INVALID_OVERRIDE = "task.skip_invalid_samples=true"
SKIP_INVALID_FLAG = "--skip-invalid-samples"
SKIP_INVALID_HINT = f"{SKIP_INVALID_OVERRIDE} (fairseq-train, fairseq-generate: {SKIP_INVALID_FLAG})"
