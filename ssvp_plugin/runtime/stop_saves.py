"""A bad video found during training or validation stops the run only after saving its progress. (issue 14)

Without ``task.skip_invalid_samples``, a clip that cannot be read when a batch needs it raises
:class:`~ssvp_plugin.data.unreadable_clip.UnreadableClipError` (naming the manifest line, the file,
the problem and how to skip). In fairseq 0.12 any exception out of the training loop ends the run
with nothing saved since the last checkpoint: up to a whole epoch of training, or the epoch just
trained when its first validation meets a bad video.

fairseq_cli.train's ``main`` calls ``train`` (one epoch; it calls ``validate_and_save`` ->
``validate``) and ``validate`` through the module's globals, so both are wrapped here when the
plugin is imported (fairseq imports it at the start of ``main``). When an UnreadableClipError leaves
either, the progress is saved with fairseq's own ``checkpoint_utils.save_checkpoint`` (it chooses
the names: ``checkpoint_last.pt``, plus ``checkpoint<epoch>.pt`` when the epoch's training is
complete), the file saved is logged, and the error is raised again.

What resuming (the same command) then does: the epoch iterator records only the batches it handed
to the trainer, so the batch holding the bad clip was neither trained nor counted, and a resume
reads it again: it stops again on the same clip until the file is fixed, or skips the clip under
``task.skip_invalid_samples=true``; updates continue from the saved count. (With
``optimization.update_freq`` > 1, batches already read for the unfinished update are counted and
not trained: at most update_freq - 1 batches of the epoch are left out.) A failed validation at the
end of an epoch saves the complete epoch; the resumed run starts the next epoch without repeating
that validation.

Distributed training: the error is raised on the one rank that read the clip; the others wait in the
next collective and fail when it exits. In data-parallel training every rank holds the same model,
optimizer, scheduler and epoch position (they step in lockstep), so the rank that read the clip saves
the checkpoint itself, whichever rank it is (fairseq saves only from rank 0, which is waiting in a
collective and cannot). When saving needs the other ranks (sharded optimizer state to consolidate,
FSDP) it saves nothing (a collective would wait for ranks that never join) and says so; the last
regular checkpoint is then where a resume starts.
"""

import contextlib
import functools
import importlib
import logging

from ..data.unreadable_clip import UnreadableClipError, clip_error_text

logger = logging.getLogger(__name__)

TRAIN_MODULE = "fairseq_cli.train"
WRAPPED = ("train", "validate")
_SAVED_MARK = "_ssvp_progress_saved"  # set on an error whose progress was handled (validate runs inside train)


def _save_blocker(trainer):
    """Why this rank cannot save alone (a reason), or None."""
    if trainer.data_parallel_world_size <= 1:
        return None
    if getattr(trainer, "is_fsdp", False):
        return "FSDP gathers the model and optimizer state from every rank to save"
    optimizer = getattr(trainer.optimizer, "optimizer", None)
    if hasattr(optimizer, "consolidate_state_dict") and not trainer.cfg.checkpoint.no_save_optimizer_state:
        return "the sharded optimizer state is consolidated from every rank to save"
    return None


def _as_saving_rank(trainer):
    """``trainer`` with fairseq's "save from this rank" switched on (its state is every rank's: see the module doc)."""
    if trainer.should_save_checkpoint_on_current_rank:
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def switched():
        cls = type(trainer)
        trainer.__class__ = type(cls.__name__, (cls,), {"should_save_checkpoint_on_current_rank": True})
        try:
            yield
        finally:
            trainer.__class__ = cls

    logger.warning(
        f"rank {trainer.data_parallel_rank} read the unreadable clip: it saves the checkpoint itself (every rank holds "
        f"the same training state; rank 0 is waiting for it)"
    )
    return switched()


def save_progress(cfg, trainer, epoch_itr, error: BaseException):
    """Save what was trained before ``error`` stopped the run (fairseq's checkpoint names); the path, or None."""
    updates = trainer.get_num_updates()
    where = f"epoch {epoch_itr.epoch}, {updates} update(s)"
    blocker = _save_blocker(trainer)
    if blocker is not None:
        logger.error(f"stopping on an unreadable clip at {where}; no checkpoint saved by this rank: {blocker}")
        return None
    if cfg.checkpoint.no_save:
        logger.error(f"stopping on an unreadable clip at {where}; nothing saved (checkpoint.no_save=true)")
        return None
    from fairseq import checkpoint_utils

    # val_loss None: the save neither becomes nor replaces checkpoint_best
    with _as_saving_rank(trainer):
        path = checkpoint_utils.save_checkpoint(cfg.checkpoint, trainer, epoch_itr, None)
    if path:
        logger.error(
            f"stopping on an unreadable clip at {where}; progress saved to {path}: the same command resumes from it "
            f"and reads that batch again. The clip: {clip_error_text(error)}"
        )
    return path


def stops_after_saving(fn):
    """``fn(cfg, trainer, task, epoch_itr, ...)`` that saves progress before an UnreadableClipError leaves it."""

    @functools.wraps(fn)
    def wrapper(cfg, trainer, task, epoch_itr, *args, **kwargs):
        try:
            return fn(cfg, trainer, task, epoch_itr, *args, **kwargs)
        except UnreadableClipError as e:
            if not getattr(e, _SAVED_MARK, False):
                setattr(e, _SAVED_MARK, True)
                try:
                    save_progress(cfg, trainer, epoch_itr, e)
                except Exception as save_error:  # the clip's error is the one to report; say the save failed too
                    logger.exception(f"saving progress before stopping failed: {save_error}")
            raise

    wrapper._ssvp_stops_after_saving = True
    return wrapper


def install(module) -> None:
    """Wrap ``train`` and ``validate`` of fairseq_cli.train (once)."""
    for name in WRAPPED:
        fn = getattr(module, name, None)
        if fn is not None and not getattr(fn, "_ssvp_stops_after_saving", False):
            setattr(module, name, stops_after_saving(fn))


# fairseq-train / fairseq-hydra-train import fairseq_cli.train before the plugin; the Python API and
# tests may import the plugin first: importing it here (~13 ms) wraps it either way
install(importlib.import_module(TRAIN_MODULE))
