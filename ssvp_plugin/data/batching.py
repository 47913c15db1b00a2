"""Batching shared by the plugin's datasets."""

from typing import List

import numpy as np


def keep_every_clip(batches: List[np.ndarray], indices: np.ndarray) -> List[np.ndarray]:
    """fairseq's ``batch_by_size`` drops a last batch whose size is not a multiple of
    ``required_batch_size_multiple`` (8 by default in fairseq-generate): that would silently leave
    clips out of evaluation. Append them as one more batch (``batches`` follow ``indices``' order)."""
    n_batched = sum(len(b) for b in batches)
    if n_batched < len(indices):
        batches.append(np.asarray(indices[n_batched:], dtype=np.int64))
    return batches
