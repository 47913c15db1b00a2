"""A fairseq user dir for the distributed-training tests: the real plugin, plus a record of what
each rank did at every update (which clips it trained on, and a checksum of the parameters after
the optimizer step), written to ``$SSVP_DDP_PROBE_DIR/rank<r>.jsonl``.

It wraps the plugin's own task methods (nothing in the training path is replaced), so a run with
``common.user_dir=tests/ddp_probe`` trains exactly as one with ``ssvp_plugin``.
"""

import json
import os

import torch

import ssvp_plugin  # noqa: F401  registers the tasks, models and criteria
from ssvp_plugin.tasks.how2sign_video import How2SignVideoTask
from ssvp_plugin.tasks.unlabelled_video import UnlabelledVideoTask


def _rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def _write(record: dict) -> None:
    out = os.environ.get("SSVP_DDP_PROBE_DIR")
    if out:
        with open(os.path.join(out, f"rank{_rank()}.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")


def _checksums(model) -> dict:
    model = getattr(model, "module", model)
    model = getattr(model, "module", model)  # fairseq's DDP wrappers nest
    sums = {"all": 0.0, "encoder": 0.0}
    for name, p in model.named_parameters():
        s = float(p.detach().double().sum()) + float(p.detach().double().abs().sum())
        sums["all"] += s
        if name.startswith("encoder.vit.") or not hasattr(model, "encoder"):
            sums["encoder"] += s
    return sums


def _probe(task_cls):
    train_step, optimizer_step = task_cls.train_step, task_cls.optimizer_step

    def probed_train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        ids = sample["id"].tolist() if sample and "id" in sample else []
        _write({"event": "batch", "update": int(update_num), "ids": ids, "dummy": bool(ignore_grad)})
        return train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad)

    def probed_optimizer_step(self, optimizer, model, update_num):
        optimizer_step(self, optimizer, model, update_num)
        _write({"event": "step", "update": int(update_num), **_checksums(model)})

    task_cls.train_step, task_cls.optimizer_step = probed_train_step, probed_optimizer_step


for _task in (How2SignVideoTask, UnlabelledVideoTask):  # sign_features inherits How2SignVideoTask's
    _probe(_task)
