"""What an ensemble's checkpoints are, read before any model is built: type, vocabulary, data root.

An ensemble adds the models' next-token probabilities symbol by symbol, so every model must have been
trained with the same target dictionary. fairseq itself would either stop deep in ``load_state_dict``
with a tensor size mismatch (dictionaries of different sizes) or, worse, decode silently with
misaligned symbols (same size, other pieces). :func:`check_ensemble_checkpoints` refuses both,
naming the checkpoints. A checkpoint records its output layer (hence the dictionary's size) and the
data root it was trained on; where that root's dictionary is still readable, its symbols are compared
too (checkpoints do not store the symbols themselves).
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from .weighted_ensemble import MODEL_MODALITIES, EnsembleError

logger = logging.getLogger(__name__)

OUTPUT_KEYS = ("decoder.output_projection.weight", "decoder.embed_tokens.weight")


@dataclass
class CheckpointSummary:
    path: Path
    model: str  # fairseq model name (cfg.model._name)
    vocab_size: int  # rows of the decoder's output layer
    data_root: Optional[str]  # cfg.task.data: the data root it was trained on
    dictionary_file: Optional[Path]  # that root's dictionary, if still readable
    symbols: Optional[List[str]]  # its symbols, if readable
    input_dim: Optional[int] = None  # feature_slt: D of its input (model.input_dim)
    feature_transform: Optional[str] = None  # feature_slt: the store transform it was trained with ('' or None: none)

    @property
    def modality(self) -> str:
        return MODEL_MODALITIES[self.model]

    def describe_vocabulary(self) -> str:
        where = f", {self.dictionary_file}" if self.dictionary_file else (f", data root {self.data_root}" if self.data_root else "")
        return f"{self.vocab_size} symbols{where}"


def _training_dictionary(data_root: Optional[str]):
    """(dictionary file, symbols) of the data root a checkpoint was trained on, or (None, None) if gone."""
    if not data_root:
        return None, None
    from fairseq.data import Dictionary

    from ssvp_slt.corpus.data_config import VideoDataConfig

    try:
        path = VideoDataConfig.load(data_root).dictionary_path
        return path, list(Dictionary.load(str(path)).symbols)
    except Exception as e:  # moved or deleted since training: only the size can be compared
        logger.info(f"{data_root}: the training data root's dictionary is not readable ({type(e).__name__}: {e}); "
                    f"comparing vocabulary sizes only")
        return None, None


def read_checkpoint_summary(path) -> CheckpointSummary:
    """Read a fairseq checkpoint's settings and output-layer shape (memory-mapped: the weights are not read)."""
    path = Path(path)
    if not path.is_file():
        raise EnsembleError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        try:  # torch's legacy (non-zip) format cannot be memory-mapped
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise EnsembleError(f"{path}: not a readable fairseq checkpoint ({type(e).__name__}: {e})") from e
    cfg = state.get("cfg") if isinstance(state, dict) else None
    weights = state.get("model") if isinstance(state, dict) else None
    if not isinstance(cfg, dict) or not isinstance(weights, dict):
        raise EnsembleError(f"{path}: not a fairseq training checkpoint (no 'cfg' and 'model' entries)")
    model_cfg = cfg.get("model") or {}
    model = model_cfg.get("_name")
    if model not in MODEL_MODALITIES:
        raise EnsembleError(
            f"{path}: a checkpoint of model {model!r}; ensembles combine {sorted(MODEL_MODALITIES)} "
            f"(video: mae_vit_slt, landmarks/features: feature_slt)"
        )
    key = next((k for k in OUTPUT_KEYS if k in weights), None)
    if key is None:
        raise EnsembleError(f"{path}: no decoder output layer ({' or '.join(OUTPUT_KEYS)}) in the checkpoint")
    data_root = (cfg.get("task") or {}).get("data")
    dictionary_file, symbols = _training_dictionary(data_root)
    return CheckpointSummary(
        path, model, int(weights[key].shape[0]), data_root, dictionary_file, symbols,
        input_dim=model_cfg.get("input_dim"), feature_transform=model_cfg.get("feature_transform"),
    )


def _first_difference(a: List[str], b: List[str]) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"symbol {i} is {x!r} in one, {y!r} in the other"
    return f"{len(a)} against {len(b)} symbols"


def check_ensemble_checkpoints(paths: Sequence, dictionary=None, dictionary_file=None) -> List[CheckpointSummary]:
    """Summaries of ``paths``; refuses checkpoints whose vocabularies differ from each other or from
    ``dictionary`` (the generation data root's, read from ``dictionary_file``), naming them."""
    summaries = [read_checkpoint_summary(p) for p in paths]
    first = summaries[0]
    for other in summaries[1:]:
        differ = other.vocab_size != first.vocab_size
        detail = f"{first.vocab_size} against {other.vocab_size} symbols"
        if not differ and first.symbols is not None and other.symbols is not None and first.symbols != other.symbols:
            differ, detail = True, _first_difference(first.symbols, other.symbols)
        if differ:
            raise EnsembleError(
                f"{first.path} ({first.describe_vocabulary()}) and {other.path} ({other.describe_vocabulary()}) were "
                f"trained with different vocabularies ({detail}): an ensemble adds next-token probabilities symbol by "
                f"symbol, so all its models need the same target dictionary (the same spm.model and dict.txt)"
            )
    if dictionary is not None:
        current = list(dictionary.symbols)
        for s in summaries:
            if s.vocab_size != len(current) or (s.symbols is not None and s.symbols != current):
                detail = (
                    f"{s.vocab_size} against {len(current)} symbols" if s.vocab_size != len(current)
                    else _first_difference(s.symbols, current)
                )
                raise EnsembleError(
                    f"{s.path} ({s.describe_vocabulary()}) was trained with another vocabulary than "
                    f"{dictionary_file or 'the data root'} ({len(current)} symbols) has ({detail}): generate with "
                    f"the data root (spm.model, dict.txt) it was trained on"
                )
    return summaries
