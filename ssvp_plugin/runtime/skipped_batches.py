"""A batch whose every clip was skipped as unreadable must not crash fairseq's trainer. (issue 14)

With ``task.skip_invalid_samples`` a dataset returns None for a clip it cannot read and the
collater leaves it out (:mod:`ssvp_plugin.data.unreadable_clip`); a batch left with no clip
collates to ``{}``. fairseq's trainer trains its *dummy batch* in place of an empty sample (the
forward and backward still run, so every distributed rank joins the gradient all-reduce, with the
loss multiplied by 0), and takes the dummy batch from the epoch iterator's ``first_batch``: the
first batch of the epoch, read in the main process when the iterator is made.

fairseq 0.12's ``first_batch`` breaks on unreadable clips in two ways, changed here:

- every clip of the first batch skipped: the dummy batch is ``{}`` and the first empty sample
  stops training on ``AssertionError: Invalid dummy batch: {}``;
- an unreadable clip in the first batch without the skip flag: the error is raised while the
  iterator is made (for training, at an epoch boundary, outside the training loop that saves
  progress before stopping: :mod:`ssvp_plugin.runtime.stop_saves`).

``first_batch`` now returns the first batch of the epoch that has a readable clip. The batches
passed over still come in the epoch's own order, where an unreadable clip is skipped with its
count, or stops the run after a save. If no batch has a readable clip, the first error is raised
(or, when every clip was skipped, an error saying so).

A dummy batch in the middle of an update (``optimization.update_freq`` > 1) is marked by fairseq
only when it is the last of the update; the tasks return zero sample size and zero logging
outputs for every dummy (``ignore_grad``), so a skipped batch adds nothing to the update either way
(:func:`ssvp_plugin.data.unreadable_clip.note_skipped_clips`).
"""

import functools
import logging

from fairseq.data import iterators

from ..data.unreadable_clip import UnreadableClipError

logger = logging.getLogger(__name__)


def first_readable_batch(dataset, collate_fn, batches):
    """The collated first batch of ``batches`` that has a readable clip (what fairseq keeps as its dummy batch)."""
    first_error = None
    n_passed = n_empty = 0
    for batch in batches:
        try:
            sample = collate_fn([dataset[i] for i in batch])
        except UnreadableClipError as e:  # raised again, with a save first, when the training loop reaches it
            first_error = first_error or e
            n_passed += 1
            continue
        if sample:
            if n_passed:
                logger.info(
                    f"the first {n_passed} batch(es) of the epoch hold an unreadable clip or none readable; fairseq's "
                    f"dummy batch (trained with zero loss in place of an empty batch) is batch {n_passed + 1}"
                )
            return sample
        n_passed += 1
        n_empty += 1
    if first_error is not None:
        raise first_error
    raise UnreadableClipError(
        f"no clip of this split could be read: all {n_empty} batch(es) were skipped (task.skip_invalid_samples); "
        f"the WARNING lines above name the files"
    )


def _first_batch(original):
    @functools.wraps(original.fget)
    def first_batch(self):
        if not getattr(self.dataset, "supports_fetch_outside_dataloader", True) or len(self.frozen_batches) == 0:
            return original.fget(self)  # fairseq's "DUMMY" / "The dataset is empty" answers, unchanged
        batches = self.frozen_batches
        if isinstance(self, iterators.GroupedEpochBatchIterator):
            batches = [b for group in batches for b in group]
        return first_readable_batch(self.dataset, self.collate_fn, batches)

    first_batch._ssvp_readable_first_batch = True
    return property(first_batch)


def install() -> None:
    """Replace ``first_batch`` of fairseq's epoch iterators (once)."""
    for cls in (iterators.EpochBatchIterator, iterators.GroupedEpochBatchIterator):
        current = cls.__dict__.get("first_batch")
        if current is not None and not getattr(current.fget, "_ssvp_readable_first_batch", False):
            setattr(cls, "first_batch", _first_batch(current))


install()
