"""The vocabulary a translation model was trained with: recorded in its weights, checked at every load.

The decoder's output layer has one row per symbol of the target dictionary (``dict.txt``), and the
symbols are sentencepiece pieces (``spm.model``) that detokenise to text. Decoded or resumed with
another ``dict.txt``, a checkpoint either stops deep in ``load_state_dict`` with a tensor size
mismatch that never names the file (one symbol fewer) or, with the same size, silently decodes the
wrong pieces (two symbols swapped, as rebuilding a vocabulary can do).

So ``mae_vit_slt`` and ``feature_slt`` carry a record of their vocabulary as a buffer (state dict
key ``vocabulary``), set from the task's dictionary and data config when the model is built. Every
load path goes through the model's ``load_state_dict`` (fairseq-generate, ``SignTranslator`` /
``ssvp-slt-translate``, fairseq-hydra-train resuming a run), which calls
:func:`check_loaded_vocabulary` before any tensor is copied: a mismatch is refused naming both
vocabularies' files. Checkpoints written before the record existed load with a warning (and a clear
error, naming ``dict.txt``, if their output layer's size differs from the dictionary's).

The record is UTF-8 JSON in a uint8 buffer (a tensor, so it travels with the weights through every
fairseq and torch path, ``weights_only`` loading included; ~10 bytes a symbol):

- the dictionary's symbols in order, not their counts: a rebuilt ``dict.txt`` with the same symbols
  and other counts decodes alike;
- a fingerprint of the sentencepiece model's pieces, scores and types, not of its bytes: the trainer
  settings stored in the file (a temporary input file's name) change on every rebuild without
  changing a piece;
- where the files were (data config, ``dict.txt``, ``spm.model``), so that messages can name them.
"""

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional

import torch

logger = logging.getLogger(__name__)

BUFFER = "vocabulary"  # the model's buffer, hence the state dict key
FORMAT = 1
# the decoder's output layer: one row per dictionary symbol (embed_tokens when input and output are tied)
OUTPUT_KEYS = ("decoder.output_projection.weight", "decoder.embed_tokens.weight")
SHOWN_HEX = 12  # fingerprint characters shown in messages


class VocabularyMismatchError(ValueError):
    """A checkpoint loaded with another vocabulary (dict.txt / spm.model) than it was trained with."""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sentencepiece_fingerprint(path) -> str:
    """What decides tokenisation and detokenisation in a sentencepiece model: its pieces, their scores
    and types, in id order (not the file's bytes: see the module doc)."""
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(path))
    ids = list(range(sp.get_piece_size()))
    kinds = ["c" if sp.is_control(i) else "u" if sp.is_unknown(i) else "b" if sp.is_byte(i) else "x" if sp.is_unused(i)
             else "n" for i in ids]
    entries = [f"{p}\t{s!r}\t{k}" for p, s, k in zip(sp.id_to_piece(ids), sp.get_score(ids), kinds)]
    return _sha256("\n".join(entries))


@dataclass
class VocabularyRecord:
    symbols: List[str]  # the dictionary's symbols in index order (fairseq's specials first)
    sentencepiece_fingerprint: Optional[str] = None  # None: the model was not built from a data config
    dictionary: Optional[str] = None  # the files, where they were when the record was made
    sentencepiece: Optional[str] = None
    data_config: Optional[str] = None
    format: int = FORMAT

    @property
    def dictionary_fingerprint(self) -> str:
        return _sha256("\n".join(self.symbols))  # symbols are dict.txt lines' first fields: no newlines

    @property
    def fingerprint(self) -> str:
        return _sha256(f"{self.dictionary_fingerprint} {self.sentencepiece_fingerprint or ''}")[:SHOWN_HEX]

    def describe(self) -> str:
        if self.dictionary:
            files = f"{self.dictionary} + {Path(self.sentencepiece).name if self.sentencepiece else '(no spm.model)'}"
            if self.sentencepiece and Path(self.sentencepiece).parent != Path(self.dictionary).parent:
                files = f"{self.dictionary} + {self.sentencepiece}"
        else:
            files = "a dictionary (files not recorded)"
        return f"{files} ({len(self.symbols)} symbols, fingerprint {self.fingerprint})"

    def to_tensor(self) -> torch.Tensor:
        data = json.dumps(asdict(self), ensure_ascii=False).encode("utf-8")
        return torch.frombuffer(bytearray(data), dtype=torch.uint8)

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor) -> "VocabularyRecord":
        raw = json.loads(tensor.detach().cpu().to(torch.uint8).numpy().tobytes().decode("utf-8"))
        if not isinstance(raw, dict) or not isinstance(raw.get("symbols"), list):
            raise ValueError("not a vocabulary record")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})


def record_for_task(task) -> VocabularyRecord:
    """The vocabulary a model built for ``task`` decodes with: its target dictionary and, when the task
    read a data config (``task.data_cfg`` loaded from a file), that config's vocabulary files."""
    symbols = list(task.target_dictionary.symbols)
    data_cfg = getattr(task, "data_cfg", None)
    if getattr(data_cfg, "path", None) is None:  # a stand-in config (benchmarks, tests): symbols only
        return VocabularyRecord(symbols)
    spm_path, dict_path = Path(data_cfg.sentencepiece_path), Path(data_cfg.dictionary_path)
    return VocabularyRecord(
        symbols,
        sentencepiece_fingerprint(spm_path) if spm_path.is_file() else None,
        dictionary=str(dict_path.absolute()),
        sentencepiece=str(spm_path.absolute()),
        data_config=str(Path(data_cfg.path).absolute()),
    )


def attach_vocabulary(model: torch.nn.Module, task) -> VocabularyRecord:
    """Give a freshly built translation model the record of ``task``'s vocabulary (saved with its weights)."""
    record = record_for_task(task)
    model.register_buffer(BUFFER, record.to_tensor(), persistent=True)
    return record


def model_vocabulary(model: torch.nn.Module) -> Optional[VocabularyRecord]:
    buffer = getattr(model, BUFFER, None)
    return VocabularyRecord.from_tensor(buffer) if isinstance(buffer, torch.Tensor) else None


def read_record(state_dict, where: str = "the checkpoint") -> Optional[VocabularyRecord]:
    """The record in a model state dict; None for checkpoints written before records existed."""
    tensor = state_dict.get(BUFFER) if hasattr(state_dict, "get") else None
    if tensor is None:
        return None
    try:
        return VocabularyRecord.from_tensor(tensor)
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise VocabularyMismatchError(
            f"{where}: its vocabulary record (state dict key {BUFFER!r}) is unreadable ({e}); the checkpoint "
            f"was altered after training (averaged or edited?)"
        ) from e


def symbol_difference(old: List[str], new: List[str], old_name: str = "the checkpoint's", new_name: str = "the current") -> str:
    """How two symbol lists differ, in words ('' if they are equal)."""
    if old == new:
        return ""
    first = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), None)
    where = f"first at index {first}: {old[first]!r} in {old_name}, {new[first]!r} in {new_name}" if first is not None else None
    if len(old) != len(new):
        detail = f"{len(old)} symbols in {old_name}, {len(new)} in {new_name}"
        if where:
            return f"{detail}; they differ {where}"
        return f"{detail}; the same up to index {min(len(old), len(new)) - 1}"
    n_changed = sum(a != b for a, b in zip(old, new))
    return f"{n_changed} symbol(s) changed, {where}"


def vocabulary_difference(old: VocabularyRecord, new: VocabularyRecord, old_name: str = "the checkpoint's",
                          new_name: str = "the current") -> str:
    """How the vocabularies of two records differ, in words ('' if they decode alike)."""
    symbols = symbol_difference(old.symbols, new.symbols, f"{old_name} dictionary", f"{new_name} dictionary")
    if symbols:
        return symbols
    if old.sentencepiece_fingerprint and new.sentencepiece_fingerprint and old.sentencepiece_fingerprint != new.sentencepiece_fingerprint:
        return (
            f"the dictionaries have the same symbols, but the sentencepiece models differ (other pieces, scores or "
            f"types: fingerprint {old.sentencepiece_fingerprint[:SHOWN_HEX]} against {new.sentencepiece_fingerprint[:SHOWN_HEX]})"
        )
    return ""


def _output_rows(state_dict) -> Optional[int]:
    key = next((k for k in OUTPUT_KEYS if k in state_dict), None)
    return int(state_dict[key].shape[0]) if key is not None else None


def check_loaded_vocabulary(model: torch.nn.Module, state_dict) -> None:
    """Refuse ``state_dict`` (a checkpoint's weights, about to be copied into ``model``) if it was trained
    with another vocabulary than the model was built with. Called by the models' ``load_state_dict``
    before any tensor is copied; afterwards ``state_dict`` holds the model's own record (the current
    files' paths, the same content), so that a checkpoint saved later names the files in use."""
    current = model_vocabulary(model)
    if current is None:  # built without a task's vocabulary (nothing to compare with)
        return
    here = current.data_config or "the task"
    recorded = read_record(state_dict)
    if recorded is None:
        rows = _output_rows(state_dict)
        if rows is not None and rows != len(current.symbols):
            raise VocabularyMismatchError(
                f"vocabulary mismatch: the checkpoint's output layer has {rows} symbols, {here} names "
                f"{current.describe()}. The checkpoint records no vocabulary (written before vocabulary records); "
                f"use the data root it was trained with"
            )
        logger.warning(
            f"the checkpoint records no vocabulary (written before vocabulary records): cannot check that it was "
            f"trained with {current.describe()}, which {here} names; only the size ({len(current.symbols)} symbols) "
            f"matches. Use the data root it was trained with: another dict.txt of the same size decodes wrong text"
        )
    else:
        difference = vocabulary_difference(recorded, current, "the checkpoint's", "the current")
        if difference:
            raise VocabularyMismatchError(
                f"vocabulary mismatch: the checkpoint was trained with {recorded.describe()}; {here} names "
                f"{current.describe()}: they differ ({difference}). Decode or resume with the data root the model "
                f"was trained with (its config.yaml, dict.txt and spm.model); a rebuilt vocabulary needs a model "
                f"trained on it"
            )
    state_dict[BUFFER] = getattr(model, BUFFER)
