"""What an ensemble's checkpoints are, read before any model is built: type, vocabulary, data root.

An ensemble adds the models' next-token probabilities symbol by symbol, so every model must have been
trained with the same target dictionary. fairseq itself would either stop deep in ``load_state_dict``
with a tensor size mismatch (dictionaries of different sizes) or, worse, decode silently with
misaligned symbols (same size, other pieces). :func:`check_ensemble_checkpoints` refuses both,
naming the checkpoints. A checkpoint records its vocabulary with its weights (the dictionary's
symbols and a fingerprint of the sentencepiece model: :mod:`.vocabulary_check`), so checkpoints are
compared with each other and with the generation data root's ``dict.txt`` from what they store.
Checkpoints written before that record existed hold only their output layer (hence the dictionary's
size) and the data root they were trained on: for them, that root's dictionary, where still
readable, stands in for the symbols.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from .vocabulary_check import OUTPUT_KEYS, VocabularyRecord, read_record, symbol_difference, vocabulary_difference
from .weighted_ensemble import MODEL_MODALITIES, EnsembleError

logger = logging.getLogger(__name__)


@dataclass
class CheckpointSummary:
    path: Path
    model: str  # fairseq model name (cfg.model._name)
    vocab_size: int  # rows of the decoder's output layer
    data_root: Optional[str]  # cfg.task.data: the data root it was trained on
    dictionary_file: Optional[Path]  # the dictionary it was trained with (recorded; old checkpoints: its data root's, if readable)
    symbols: Optional[List[str]]  # that dictionary's symbols (recorded; old checkpoints: read from the file, if readable)
    input_dim: Optional[int] = None  # feature_slt: D of its input (model.input_dim)
    feature_transform: Optional[str] = None  # feature_slt: the store transform it was trained with ('' or None: none)
    vocabulary: Optional[VocabularyRecord] = None  # what it recorded (None: written before vocabulary records)

    @property
    def modality(self) -> str:
        return MODEL_MODALITIES[self.model]

    def describe_vocabulary(self) -> str:
        where = f", {self.dictionary_file}" if self.dictionary_file else (f", data root {self.data_root}" if self.data_root else "")
        recorded = f", fingerprint {self.vocabulary.fingerprint}" if self.vocabulary is not None else ""
        return f"{self.vocab_size} symbols{where}{recorded}"


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
    try:
        record = read_record(weights, str(path))
    except ValueError as e:
        raise EnsembleError(str(e)) from e
    if record is not None:
        dictionary_file = Path(record.dictionary) if record.dictionary else None
        symbols = record.symbols
    else:
        dictionary_file, symbols = _training_dictionary(data_root)
    return CheckpointSummary(
        path, model, int(weights[key].shape[0]), data_root, dictionary_file, symbols,
        input_dim=model_cfg.get("input_dim"), feature_transform=model_cfg.get("feature_transform"), vocabulary=record,
    )


def _difference(a: CheckpointSummary, b: CheckpointSummary) -> str:
    """How two checkpoints' vocabularies differ, in words ('' if they may be combined)."""
    if a.vocab_size != b.vocab_size:
        return f"{a.vocab_size} against {b.vocab_size} symbols"
    if a.vocabulary is not None and b.vocabulary is not None:
        return vocabulary_difference(a.vocabulary, b.vocabulary, "the first's", "the other's")
    if a.symbols is not None and b.symbols is not None:
        return symbol_difference(a.symbols, b.symbols, "the first's dictionary", "the other's dictionary")
    return ""


def check_ensemble_checkpoints(paths: Sequence, dictionary=None, dictionary_file=None) -> List[CheckpointSummary]:
    """Summaries of ``paths``; refuses checkpoints whose vocabularies differ from each other or from
    ``dictionary`` (the generation data root's, read from ``dictionary_file``), naming them. The
    sentencepiece models are compared between checkpoints here, and with the data root's when each
    model's weights are loaded (:func:`.vocabulary_check.check_loaded_vocabulary`)."""
    summaries = [read_checkpoint_summary(p) for p in paths]
    first = summaries[0]
    for other in summaries[1:]:
        detail = _difference(first, other)
        if detail:
            raise EnsembleError(
                f"{first.path} ({first.describe_vocabulary()}) and {other.path} ({other.describe_vocabulary()}) were "
                f"trained with different vocabularies ({detail}): an ensemble adds next-token probabilities symbol by "
                f"symbol, so all its models need the same target dictionary (the same spm.model and dict.txt)"
            )
    if dictionary is not None:
        current = list(dictionary.symbols)
        for s in summaries:
            if s.vocab_size != len(current):
                detail = f"{s.vocab_size} against {len(current)} symbols"
            else:
                detail = symbol_difference(s.symbols, current, "the checkpoint's dictionary", str(dictionary_file or "the data root's")) if s.symbols is not None else ""
            if detail:
                raise EnsembleError(
                    f"{s.path} ({s.describe_vocabulary()}) was trained with another vocabulary than "
                    f"{dictionary_file or 'the data root'} ({len(current)} symbols) has ({detail}): generate with "
                    f"the data root (spm.model, dict.txt) it was trained on"
                )
    return summaries
