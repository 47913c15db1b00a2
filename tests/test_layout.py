"""The offline tools (ssvp_slt) stay apart from what fairseq loads (ssvp_plugin)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAIRSEQ_FREE = [
    "ssvp_slt.corpus.data_config", "ssvp_slt.corpus.manifest", "ssvp_slt.corpus.frame_sampling",
    "ssvp_slt.corpus.video_io", "ssvp_slt.corpus.video_checks", "ssvp_slt.corpus.text",
    "ssvp_slt.prep.pipeline", "ssvp_slt.prep.signer_crop", "ssvp_slt.synthetic", "ssvp_slt.scoring",
    "ssvp_slt.features.store", "ssvp_slt.download",
]


def test_offline_tools_import_neither_fairseq_nor_torch():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in FAIRSEQ_FREE)
        + "heavy = sorted(m for m in ('fairseq', 'torch') if m in sys.modules)\n"
        + "print(','.join(heavy))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", f"importing the offline tools imported {res.stdout.strip()}"


def test_the_plugin_holds_only_what_fairseq_loads():
    plugin = REPO / "ssvp_plugin"
    assert sorted(p.name for p in plugin.iterdir() if p.is_dir() and p.name != "__pycache__") == [
        "criterions", "data", "models", "runtime", "tasks"
    ]  # runtime: how fairseq's training loop survives faults (checkpoint files, DDP, bad videos), applied at import
    assert sorted(p.name for p in plugin.glob("*.py")) == ["__init__.py"]
