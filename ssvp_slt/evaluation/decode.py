"""Decode a split with checkpoints through fairseq's generator, exactly as ``fairseq-generate`` does, and time it.

The options are parsed by fairseq-generate's own parser (``options.get_generation_parser``), so every
generation option it accepts can be passed and its defaults apply (beam 5 is set here, as the recipe
uses). The loop below is ``fairseq_cli.generate._main``'s: the task's own data set for the split (its
ids, its references decoded from the target tokens with the data config's sentencepiece model, after
the data config's normalisation), ``task.build_generator`` + ``task.inference_step`` in batches, the
best hypothesis post-processed and detokenised as the ``D-`` lines are. What it adds is the clip
names (the manifest ids), the timing and the memory measurement.

Task: one ``mae_vit_slt`` checkpoint decodes with ``how2sign_video``, one ``feature_slt`` with
``sign_features`` (the tasks they were trained with), several with ``sign_multimodal`` (a weighted
ensemble, docs/ensembles.md); ``--task`` overrides.

This module imports fairseq and torch.
"""

import ast
import gc
import logging
import resource
import time
import warnings
from argparse import Namespace
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from fairseq import checkpoint_utils, options, tasks, utils
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

from .metrics import EvaluationError
from .predictions import Prediction

logger = logging.getLogger(__name__)

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "ssvp_plugin"  # the fairseq --user-dir
TASK_OF_MODALITY = {"video": "how2sign_video", "features": "sign_features"}
TASKS_WITH_FEATURES = ("sign_features", "sign_multimodal")


@dataclass
class DecodeResult:
    records: List[Prediction]
    speed: Dict
    generation: Dict
    normalisation: Dict
    fairseq_ids: List[int] = field(default_factory=list)


def default_task(checkpoints: Sequence[Path]) -> str:
    from ssvp_plugin.models.ensemble_checkpoints import read_checkpoint_summary

    if len(checkpoints) > 1:
        return "sign_multimodal"
    return TASK_OF_MODALITY[read_checkpoint_summary(checkpoints[0]).modality]


def fairseq_argv(
    checkpoints: Sequence[Path], data, split: str, task: str, beam: int = 5, batch_size: Optional[int] = None,
    max_tokens: Optional[int] = None, features=None, ensemble_weights: Optional[str] = None, cpu: bool = False,
    extra: Sequence[str] = (),
) -> List[str]:
    """The fairseq-generate command line (without the program name) this decode is equivalent to."""
    argv = [
        str(data), "--user-dir", str(PLUGIN_DIR), "--task", task, "--path", ":".join(str(c) for c in checkpoints),
        "--gen-subset", split, "--beam", str(beam),
    ]
    if batch_size is not None:
        argv += ["--batch-size", str(batch_size)]
    if max_tokens is not None:
        argv += ["--max-tokens", str(max_tokens)]
    if features is not None:
        if task not in TASKS_WITH_FEATURES:
            raise EvaluationError(f"--features is an option of the tasks {TASKS_WITH_FEATURES}, not of {task}")
        argv += ["--features", str(features)]
    if ensemble_weights is not None:
        argv += ["--ensemble-weights", ensemble_weights]
    if cpu:
        argv.append("--cpu")
    return argv + list(extra)  # last: the user's own generation options win


# -- memory --


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> Optional[float]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak memory while decoding: CUDA's allocator peak on a GPU; the process's peak resident memory on CPU."""

    def __init__(self, device: torch.device):
        self.device = device

    def start(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.kind = "torch.cuda.max_memory_allocated during decoding (model weights included)"
        elif _reset_peak_rss():
            self.kind = ("peak resident memory of the process during decoding (VmHWM after resetting it), including "
                         "Python, torch, fairseq, the model and video decoding")
        else:
            self.kind = "peak resident memory of the process since it started (ru_maxrss; could not reset it)"

    def stop(self) -> Dict:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            mb = _peak_rss_mb() if "VmHWM" in self.kind else None
            if mb is None:
                mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
        return {"peak_memory_mb": mb, "peak_memory_kind": self.kind}


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    import os

    return f"cpu: {torch.get_num_threads()} torch threads, {os.cpu_count()} cores visible"


# -- decoding --


def decode(
    checkpoints: Sequence, data, split: str, task: Optional[str] = None, beam: int = 5, batch_size: Optional[int] = None,
    max_tokens: Optional[int] = None, features=None, ensemble_weights: Optional[str] = None, cpu: bool = False,
    extra: Sequence[str] = (),
) -> DecodeResult:
    """Decode ``split`` of the data root ``data`` with ``checkpoints``; see the module doc."""
    from fairseq_cli.generate import get_symbols_to_strip_from_output

    checkpoints = [Path(c) for c in checkpoints]
    for c in checkpoints:
        if not c.is_file():
            raise EvaluationError(f"{c}: checkpoint not found")
    if not (Path(data) / f"{split}.tsv").is_file():
        raise EvaluationError(f"{Path(data) / f'{split}.tsv'}: no manifest for split {split!r} in the data root {data}")
    utils.import_user_module(Namespace(user_dir=str(PLUGIN_DIR)))
    task_name = task or default_task(checkpoints)
    argv = fairseq_argv(checkpoints, data, split, task_name, beam, batch_size, max_tokens, features, ensemble_weights, cpu, extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hydra's deprecation notices while fairseq builds its config: not the user's concern
        parser = options.get_generation_parser()
        args = options.parse_args_and_arch(parser, argv)
        cfg = convert_namespace_to_omegaconf(args)

    # fairseq_cli.generate._main, from here on
    if cfg.generation.lm_path is not None or cfg.generation.replace_unk is not None:
        raise EvaluationError("--lm-path and --replace-unk are not supported here; use fairseq-generate and --generate-output")
    if cfg.dataset.max_tokens is None and cfg.dataset.batch_size is None:
        cfg.dataset.max_tokens = 12000  # fairseq-generate's default
    if cfg.common.seed is not None and not cfg.generation.no_seed_provided:
        np.random.seed(cfg.common.seed)
        utils.set_torch_seed(cfg.common.seed)
    use_cuda = torch.cuda.is_available() and not cfg.common.cpu
    device = torch.device("cuda" if use_cuda else "cpu")

    t_load = time.perf_counter()
    fs_task = tasks.setup_task(cfg.task)
    tgt_dict = fs_task.target_dictionary
    overrides = ast.literal_eval(cfg.common_eval.model_overrides)
    models, saved_cfg = checkpoint_utils.load_model_ensemble(
        utils.split_paths(cfg.common_eval.path), arg_overrides=overrides, task=fs_task,
        suffix=cfg.checkpoint.checkpoint_suffix, strict=(cfg.checkpoint.checkpoint_shard_count == 1),
        num_shards=cfg.checkpoint.checkpoint_shard_count,
    )
    fs_task.load_dataset(cfg.dataset.gen_subset, task_cfg=saved_cfg.task)
    for model in models:
        if cfg.common.fp16:
            model.half()
        if use_cuda:
            model.cuda()
        model.prepare_for_inference_(cfg)
    dataset = fs_task.dataset(cfg.dataset.gen_subset)
    itr = fs_task.get_batch_iterator(
        dataset=dataset, max_tokens=cfg.dataset.max_tokens, max_sentences=cfg.dataset.batch_size,
        max_positions=utils.resolve_max_positions(fs_task.max_positions(), *[m.max_positions() for m in models]),
        ignore_invalid_inputs=cfg.dataset.skip_invalid_size_inputs_valid_test,
        required_batch_size_multiple=cfg.dataset.required_batch_size_multiple, seed=cfg.common.seed,
        num_shards=cfg.distributed_training.distributed_world_size, shard_id=cfg.distributed_training.distributed_rank,
        num_workers=cfg.dataset.num_workers, data_buffer_size=cfg.dataset.data_buffer_size,
    ).next_epoch_itr(shuffle=False)
    generator = fs_task.build_generator(models, cfg.generation, extra_gen_cls_kwargs={"lm_model": None, "lm_weight": cfg.generation.lm_weight})
    tokenizer = fs_task.build_tokenizer(cfg.tokenizer)
    bpe = fs_task.build_bpe(cfg.bpe)
    load_seconds = time.perf_counter() - t_load

    def decode_fn(x):
        if bpe is not None:
            x = bpe.decode(x)
        if tokenizer is not None:
            x = tokenizer.decode(x)
        return x

    strip = get_symbols_to_strip_from_output(generator)
    rows = dataset.rows  # every data set of this plugin keeps its manifest rows in index order
    # fairseq asks its DataLoader for pinned memory; torch warns once per loader that a CPU has none
    warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true but no accelerator.*")
    by_index: Dict[int, Prediction] = {}
    memory = PeakMemory(device)
    memory.start()
    model_seconds = 0.0
    t0 = time.perf_counter()
    for sample in itr:  # the wall time includes reading and decoding the video: part of translating a clip
        sample = utils.move_to_cuda(sample) if use_cuda else sample
        if "net_input" not in sample:
            continue
        prefix_tokens = sample["target"][:, : cfg.generation.prefix_size] if cfg.generation.prefix_size > 0 else None
        if use_cuda:
            torch.cuda.synchronize()
        t_model = time.perf_counter()
        hypos = fs_task.inference_step(generator, models, sample, prefix_tokens=prefix_tokens, constraints=sample.get("constraints"))
        if use_cuda:
            torch.cuda.synchronize()
        model_seconds += time.perf_counter() - t_model
        for i, sample_id in enumerate(sample["id"].tolist()):
            target_tokens = utils.strip_pad(sample["target"][i, :], tgt_dict.pad()).int().cpu()
            target_str = decode_fn(
                tgt_dict.string(target_tokens, cfg.common_eval.post_process, escape_unk=True, extra_symbols_to_ignore=strip)
            )
            hypo = hypos[i][0]  # the best of the n-best
            _, hypo_str, _ = utils.post_process_prediction(
                hypo_tokens=hypo["tokens"].int().cpu(), src_str="", alignment=hypo["alignment"], align_dict=None,
                tgt_dict=tgt_dict, remove_bpe=cfg.common_eval.post_process, extra_symbols_to_ignore=strip,
            )
            row = rows[sample_id]
            by_index[sample_id] = Prediction(row.id, target_str, decode_fn(hypo_str), row.video)
    wall = time.perf_counter() - t0
    peak = memory.stop()

    order = sorted(by_index)
    if len(order) < len(dataset):
        logger.warning(
            f"{split}: {len(dataset) - len(order)} of {len(dataset)} clips were not decoded (longer than the models "
            f"accept, left out by --skip-invalid-size-inputs-valid-test)"
        )
    video_seconds = sum(rows[i].n_frames / rows[i].fps for i in order if rows[i].fps)
    n_params = [sum(p.numel() for p in m.parameters()) for m in models]
    speed = {
        "device": describe_device(device),
        "clips": len(order),
        "wall_seconds": wall,
        "clips_per_second": len(order) / wall if wall else None,
        "video_seconds": video_seconds,
        "video_seconds_per_second": video_seconds / wall if wall else None,
        "real_time_factor": wall / video_seconds if video_seconds else None,
        "model_seconds": model_seconds,
        "load_seconds": load_seconds,
        "parameters": sum(n_params),
        "parameters_per_checkpoint": {str(c): n for c, n in zip(checkpoints, n_params)},
        **peak,
        "definitions": (
            "wall_seconds: from the first batch read to the last hypothesis (video reading and decoding included, "
            "model loading excluded); clips_per_second = clips / wall_seconds; video_seconds = sum of n_frames / fps "
            "of the decoded clips; video_seconds_per_second = video_seconds / wall_seconds; real_time_factor = "
            "wall_seconds / video_seconds (below 1: faster than real time); model_seconds: inside "
            "task.inference_step only"
        ),
    }
    g = cfg.generation
    generation = {
        "source": "checkpoint(s) decoded in-process with fairseq's generator (task.build_generator + task.inference_step)",
        "fairseq_generate_equivalent": "fairseq-generate " + " ".join(argv),
        "task": task_name,
        "checkpoints": [str(c) for c in checkpoints],
        "ensemble_weights": getattr(cfg.task, "ensemble_weights", None),
        "beam": g.beam, "nbest_used": 1, "lenpen": g.lenpen, "unkpen": g.unkpen, "max_len_a": g.max_len_a,
        "max_len_b": g.max_len_b, "min_len": g.min_len, "no_repeat_ngram_size": g.no_repeat_ngram_size,
        "sampling": g.sampling, "temperature": g.temperature, "prefix_size": g.prefix_size,
        "batch_size": cfg.dataset.batch_size, "max_tokens": cfg.dataset.max_tokens, "fp16": cfg.common.fp16,
        "seed": cfg.common.seed, "post_process": cfg.common_eval.post_process,
    }
    data_cfg = getattr(fs_task, "data_cfg", None)
    normalisation = {
        "lowercase": getattr(data_cfg, "lowercase", None),
        "punctuation": getattr(data_cfg, "punctuation", None),
        "source": str(getattr(data_cfg, "path", Path(data) / "config.yaml")),
        "references": "the task's targets decoded back to text (fairseq-generate's T- lines): the manifest captions "
                      "after the data config's normalisation, through the sentencepiece model and dictionary",
    }
    del models, generator
    gc.collect()
    return DecodeResult([by_index[i] for i in order], speed, generation, normalisation, fairseq_ids=order)
