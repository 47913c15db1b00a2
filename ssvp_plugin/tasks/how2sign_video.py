"""Task ``how2sign_video``: sign-language video clips -> English captions.

The data root holds ``<split>.tsv`` manifests and ``config.yaml`` (see
:mod:`ssvp_slt.corpus.data_config`); everything about frames and vocabulary
is read from that config, so ``fairseq-generate DATA --path ckpt`` needs no
further data flags.
"""

import json
import logging
import time
from argparse import Namespace
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import torch
from fairseq import metrics
from fairseq.data import Dictionary, encoders
from fairseq.tasks import FairseqTask, register_task

from ssvp_slt.corpus.data_config import VideoDataConfig
from ..data.splits import is_training_load, load_video_split, log_split_summary, max_encoder_frames
from ssvp_slt.corpus.manifest import ManifestError
from ssvp_slt.corpus.text import normalize_caption
from ..data.unreadable_clip import note_skipped_clips, reduce_skipped_clips, train_step_outputs
from ..data.video_clip_dataset import VideoClipDataset
from .training_setup import RankBatchesCheck, check_training_setup, step_optimizer
from .video_task_config import VideoTaskConfig

logger = logging.getLogger(__name__)

EVAL_BLEU_ORDER = 4


@dataclass
class How2SignVideoConfig(VideoTaskConfig):
    max_target_positions: int = field(default=128, metadata={"help": "longest caption in tokens (with EOS)"})
    eval_bleu: bool = field(default=False, metadata={"help": "decode the validation set and report BLEU"})
    eval_bleu_args: str = field(
        default='{"beam": 5}', metadata={"help": "generation args for validation BLEU, as JSON"}
    )
    eval_bleu_print_samples: bool = field(default=False, metadata={"help": "print a hypothesis/reference per batch"})


@register_task("how2sign_video", dataclass=How2SignVideoConfig)
class How2SignVideoTask(RankBatchesCheck, FairseqTask):
    cfg: How2SignVideoConfig

    def __init__(self, cfg: How2SignVideoConfig, data_cfg: VideoDataConfig, tgt_dict: Dictionary):
        super().__init__(cfg)
        self.data_cfg = data_cfg
        self.tgt_dict = tgt_dict
        self._spm = None
        self._optimizer_checked = False

    @classmethod
    def setup_task(cls, cfg: How2SignVideoConfig, **kwargs):
        data_cfg = VideoDataConfig.load(cfg.data)
        tgt_dict = Dictionary.load(str(data_cfg.dictionary_path))
        logger.info(f"data config {data_cfg.path}: {data_cfg.to_dict()}")
        logger.info(f"target dictionary: {len(tgt_dict)} types")
        return cls(cfg, data_cfg, tgt_dict)

    @property
    def source_dictionary(self):
        return None

    @property
    def target_dictionary(self):
        return self.tgt_dict

    def max_positions(self):
        return max_encoder_frames(self.data_cfg), self.cfg.max_target_positions

    @property
    def spm(self):
        if self._spm is None:
            import sentencepiece

            self._spm = sentencepiece.SentencePieceProcessor(model_file=str(self.data_cfg.sentencepiece_path))
        return self._spm

    def encode_caption(self, text: str) -> torch.Tensor:
        return self.encode_captions([text])[0]

    def encode_captions(self, texts: List[str]) -> List[torch.Tensor]:
        """Each caption's target ids, ending with EOS: exactly ``tgt_dict.encode_line`` of its space-joined
        sentencepiece pieces (``add_if_not_exist=False``), but with one batched sentencepiece call and a
        plain dict lookup. encode_line's per-token Python calls and per-caption IntTensor took ~0.1 ms a
        caption: most of a 31k-row split's load time, paid at every start."""
        c = self.data_cfg
        pieces = self.spm.encode([normalize_caption(t, c.lowercase, c.punctuation) for t in texts], out_type=str)
        index, unk, eos = self.tgt_dict.indices, self.tgt_dict.unk(), self.tgt_dict.eos()
        targets = []
        for caption in pieces:
            # " ".join(...).split() is encode_line's own whitespace tokenisation (fairseq.tokenizer.tokenize_line)
            ids = [index.get(piece, unk) for piece in " ".join(caption).split()]
            ids.append(eos)
            targets.append(torch.tensor(ids, dtype=torch.long))
        return targets

    def encode_row_captions(self, manifest_path, rows) -> List[torch.Tensor]:
        """The targets of manifest rows. An EOS-only target would teach the model to stop at once: the manifest
        reader already refuses captions with no word left after normalisation, so this only guards against
        what sentencepiece's own normaliser might still remove, naming the lines."""
        targets = self.encode_captions([r.tgt_text for r in rows])
        empty = [r for r, t in zip(rows, targets) if len(t) < 2]
        if empty:
            shown = ", ".join(f"line {r.line} ({r.tgt_text!r})" for r in empty[:5])
            raise ManifestError(
                f"{manifest_path}: {len(empty)} caption(s) encode to no sentencepiece piece (an EOS-only target): "
                f"{shown}; fix or remove these rows"
            )
        return targets

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        t0 = time.perf_counter()
        train = is_training_load(split, self.cfg.train_subset, kwargs)
        manifest_path, rows, video_paths, summary = load_video_split(self.cfg, self.data_cfg, split, train, need_text=True)
        targets = self.encode_row_captions(manifest_path, rows)
        unk = self.tgt_dict.unk()
        n_unk = sum(1 for t in targets if unk in t.tolist())  # a list scan: a tensor op per caption costs more
        if n_unk:
            logger.warning(f"{manifest_path}: {n_unk} caption(s) contain pieces missing from the dictionary (<unk>)")
        self.datasets[split] = VideoClipDataset(
            split, rows, video_paths, self.data_cfg, targets, pad=self.tgt_dict.pad(), eos=self.tgt_dict.eos(),
            train=train, shuffle=train, seed=self.cfg.seed, skip_invalid=self.cfg.skip_invalid_samples,
        )
        log_split_summary(logger, split, self.datasets[split], summary, self.data_cfg.max_windows, time.perf_counter() - t0)

    def build_bpe(self, args=None):
        # the data config names the sentencepiece model, so generation needs no --bpe flags
        return encoders.build_bpe(
            Namespace(bpe="sentencepiece", sentencepiece_model=str(self.data_cfg.sentencepiece_path))
        )

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        pretrained = getattr(cfg, "pretrained_encoder", None)
        # a checkpoint being restored (generation, the Python API) already holds the fine-tuned encoder
        if pretrained and not from_checkpoint:
            if Path(pretrained).is_file():
                model.load_pretrained_encoder(pretrained)  # a resumed run's checkpoint then overwrites it
            else:
                # fine when resuming: the run's checkpoint holds the fine-tuned encoder. If no checkpoint
                # is restored, the first training step stops with this file's name.
                model.pending_pretrained_encoder = pretrained
                logger.warning(f"{pretrained}: pretrained encoder not found; continuing only if a checkpoint is restored")
        if self.cfg.eval_bleu:
            gen_args = json.loads(self.cfg.eval_bleu_args or "{}")
            self.sequence_generator = self.build_generator([model], Namespace(**gen_args))
            self.bpe = self.build_bpe()
        return model

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if not self._optimizer_checked:
            self._optimizer_checked = True
            check_training_setup(model, optimizer)
        outputs = super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)
        return train_step_outputs(sample, *outputs, ignore_grad)  # counts clips left out as unreadable

    def optimizer_step(self, optimizer, model, update_num):
        step_optimizer(optimizer, model, update_num)

    # -- validation BLEU, logged as sufficient statistics so it sums across workers --

    def valid_step(self, sample, model, criterion):
        loss, sample_size, logging_output = super().valid_step(sample, model, criterion)
        note_skipped_clips(sample, logging_output)
        if self.cfg.eval_bleu:
            bleu = self._inference_with_bleu(self.sequence_generator, sample, model)
            logging_output["_bleu_sys_len"] = bleu.sys_len
            logging_output["_bleu_ref_len"] = bleu.ref_len
            for i in range(EVAL_BLEU_ORDER):
                logging_output[f"_bleu_counts_{i}"] = bleu.counts[i]
                logging_output[f"_bleu_totals_{i}"] = bleu.totals[i]
        return loss, sample_size, logging_output

    def decode_tokens(self, tokens) -> str:
        text = self.tgt_dict.string(tokens.int().cpu(), extra_symbols_to_ignore={self.tgt_dict.pad()})
        return self.bpe.decode(text) if getattr(self, "bpe", None) else self.build_bpe().decode(text)

    def _inference_with_bleu(self, generator, sample, model):
        import sacrebleu

        hyps = self.inference_step(generator, [model], sample)
        hyp_strs, ref_strs = [], []
        for i in range(len(hyps)):
            hyp_strs.append(self.decode_tokens(hyps[i][0]["tokens"]))
            ref_strs.append(self.decode_tokens(sample["target"][i]))
        if self.cfg.eval_bleu_print_samples:
            logger.info(f"example hypothesis: {hyp_strs[0]}")
            logger.info(f"example reference:  {ref_strs[0]}")
        return sacrebleu.corpus_bleu(hyp_strs, [ref_strs])

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        reduce_skipped_clips(logging_outputs)
        if not any("_bleu_sys_len" in log for log in logging_outputs):
            return  # training steps, or validation without eval_bleu

        def sum_logs(key):
            return sum(log.get(key, 0) for log in logging_outputs)

        # plain scalars, not numpy arrays: checkpoints store these meters, and torch.load's
        # weights_only mode (default since torch 2.6) rejects numpy arrays. Logged even when all
        # counts are zero (an untrained model's empty hypotheses): best_checkpoint_metric needs "bleu".
        for i in range(EVAL_BLEU_ORDER):
            metrics.log_scalar(f"_bleu_counts_{i}", sum_logs(f"_bleu_counts_{i}"))
            metrics.log_scalar(f"_bleu_totals_{i}", sum_logs(f"_bleu_totals_{i}"))
        metrics.log_scalar("_bleu_sys_len", sum_logs("_bleu_sys_len"))
        metrics.log_scalar("_bleu_ref_len", sum_logs("_bleu_ref_len"))

        def compute_bleu(meters):
            from sacrebleu.metrics import BLEU

            if meters["_bleu_sys_len"].sum == 0:
                return 0.0

            score = BLEU.compute_bleu(
                correct=[meters[f"_bleu_counts_{i}"].sum for i in range(EVAL_BLEU_ORDER)],
                total=[meters[f"_bleu_totals_{i}"].sum for i in range(EVAL_BLEU_ORDER)],
                sys_len=int(meters["_bleu_sys_len"].sum),
                ref_len=int(meters["_bleu_ref_len"].sum),
                smooth_method="exp",
            ).score
            return round(float(score), 2)

        metrics.log_derived("bleu", compute_bleu)
