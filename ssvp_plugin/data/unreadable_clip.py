"""Clips that cannot be read when a batch needs them: stop naming file and line, or skip with a count. (issue 14)

Loading a split trusts the manifest (``task.check_videos=files``, the default: each file exists with
the size preparation recorded), so a video that breaks after the start (corrupt, cut short and
re-recorded, no decodable frame at the sampled window) or a feature chunk cut short is found only
when a batch reads it, in the trainer or in a DataLoader worker process. The datasets hand such a
clip to :class:`UnreadableClips`, which

- without ``task.skip_invalid_samples``: raises :class:`UnreadableClipError` naming the manifest
  line, the file and the problem, and saying how to skip. ``ssvp_plugin.runtime.stop_saves`` saves
  the training progress before the run stops;
- with it: logs a WARNING naming them with a running count and returns None; the collater leaves
  the clip out and counts it in the batch (``skipped_clips``), and the training tasks log the
  ``skipped_clips`` metric, summed over workers and ranks.
"""

import logging
import os
from typing import Optional

from ssvp_slt.corpus.skip_flag import SKIP_INVALID_HINT, SKIP_INVALID_OVERRIDE

logger = logging.getLogger(__name__)

SKIPPED_KEY = "skipped_clips"  # batch entry and logging output: clips of the batch left out as unreadable


class UnreadableClipError(RuntimeError):
    """A clip of a loaded split cannot be read; the message names the manifest line, the file and the problem.

    Constructible from the message alone: a DataLoader worker's exception reaches the main process
    as ``type(e)(message)`` (torch's ExceptionWrapper), with the worker's traceback in the message.
    ``problem``: the file and what is wrong with it, without the advice (for callers that record
    failures themselves, as feature extraction does).
    """

    def __init__(self, message: str, path: Optional[str] = None, line: Optional[int] = None, problem: Optional[str] = None):
        super().__init__(message)
        self.path, self.line, self.problem = path, line, problem


def clip_error_text(error: BaseException) -> str:
    """The message of an UnreadableClipError without the worker traceback a DataLoader adds around it."""
    text = str(error)
    marker = f"{UnreadableClipError.__name__}: "
    if "Traceback" in text and marker in text:
        return text.rsplit(marker, 1)[1].strip()
    return text


class UnreadableClips:
    """What a dataset does with a clip it cannot read (one per dataset, so one count per process).

    Args:
        where: the manifest (path, or a description) whose lines the rows' ``line`` numbers refer to.
        skip: task.skip_invalid_samples.
        advice: how to fix such a clip, for the error.
    """

    def __init__(self, where, skip: bool, advice: str = "fix or remove it"):
        self.where, self.skip, self.advice, self.count = str(where), bool(skip), advice, 0

    def __call__(self, row, path, problem) -> None:
        """Raise, or (skip) log with the running count and return None: the dataset's item for the clip.

        ``problem``: text, or an exception whose message may already start with the file's path.
        """
        problem = str(problem)
        if problem.startswith(f"{path}: "):
            problem = problem[len(f"{path}: "):]
        text = f"{self.where}, line {row.line} (id {row.id}): {path}: {problem}"
        if not self.skip:
            raise UnreadableClipError(
                f"{text}. The clip passed the check made when the split loaded but cannot be read now: "
                f"{self.advice}, or set {SKIP_INVALID_HINT} to skip unreadable clips with a logged count",
                path=str(path), line=row.line, problem=f"{path}: {problem}",
            )
        self.count += 1
        logger.warning(
            f"{text}; clip skipped ({SKIP_INVALID_OVERRIDE}): {self.count} unreadable clip(s) skipped so far by "
            f"this data loader process (pid {os.getpid()})"
        )
        return None


def count_skipped(samples) -> int:
    """How many items of a batch a dataset returned as None (unreadable, skipped)."""
    return sum(1 for s in samples if s is None)


def note_skipped_clips(sample, logging_output: dict) -> dict:
    """Copy a batch's count of skipped clips into its logging output (a task's valid step).

    Always set, 0 when none: fairseq's fast all-reduce of logging outputs needs the same keys on every rank.
    """
    logging_output[SKIPPED_KEY] = int(sample.get(SKIPPED_KEY, 0)) if isinstance(sample, dict) else 0
    return logging_output


def train_step_outputs(sample, loss, sample_size, logging_output: dict, ignore_grad: bool):
    """A task's train step result with the batch's count of skipped clips; for fairseq's dummy batch
    (``ignore_grad``: it stands in for a batch with no clip) zero sample size and zero logging outputs.

    fairseq zeroes a dummy's sample size and drops its logging outputs only when it is the last batch
    of an update; with ``update_freq`` > 1 an earlier one would count in the update's gradient
    normalisation and logged loss.
    """
    if ignore_grad:
        return loss, 0, {key: 0 for key in {**logging_output, SKIPPED_KEY: 0}}
    return loss, sample_size, note_skipped_clips(sample, logging_output)


def reduce_skipped_clips(logging_outputs) -> None:
    """Log ``skipped_clips``: the logging outputs' sum (all workers and ranks), summed over the log interval
    and the epoch. Logged once a clip was skipped, so runs without unreadable clips show no new column."""
    from fairseq import metrics

    n = int(sum(log.get(SKIPPED_KEY, 0) for log in logging_outputs))
    if n > 0:
        metrics.log_scalar_sum(SKIPPED_KEY, n)
