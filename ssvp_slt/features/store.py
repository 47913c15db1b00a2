"""The feature store: per-clip sequences of D-dimensional vectors (one per time step), on disk.

Layout (one store serves every split of a data root; ids are the manifests' ``id`` column)::

    STORE/
      config.yaml                         # D, dtype, feature rate, how the features were made
      <split>/
        index-<part>.tsv                  # id, part (chunk file), offset (row), length (rows), one line per clip
        <part>-00000.npy, <part>-00001.npy, ...   # float16 (or float32) arrays of shape (rows, D)

Each writer (a run of the extraction, one shard of it, a resumed run) writes its own *part*: its
own chunk files and its own index file, so several processes write one store without locking and
an interrupted run loses only its unfinished chunk. A chunk is a few hundred MB of clips'
sequences stacked in time; it is renamed into place only when complete, and its index rows are
appended after that, so every index row points into a complete file. Reading parses the index
files (a 31k-clip split is one small table) and memory-maps the chunks: loading touches no
feature data, and DataLoader workers read only the rows of their clips.

Nothing here assumes video-encoder features: ``config.yaml``'s ``source`` records how a producer
made them (encoder file, hash, frame settings; or keypoint settings) and is compared, not read.
This module needs numpy and PyYAML only.
"""

import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import yaml

logger = logging.getLogger(__name__)

STORE_FORMAT = "ssvp_slt.feature_store.v1"
STORE_CONFIG_NAME = "config.yaml"
INDEX_COLUMNS = ("id", "part", "offset", "length")
STORE_DTYPES = ("float16", "float32")
DEFAULT_CHUNK_MB = 256


class FeatureStoreError(ValueError):
    """A feature store (or one of its files or index rows) is unusable; the message names the file and row."""


@dataclass
class StoreInfo:
    """The store's ``config.yaml``.

    ``feature_rate`` is time steps per second of the source (for windowed video encoders: within one
    window; overlapping windows repeat time, see ``source``). ``source`` records how the features
    were made; two writers of one store must agree on everything here except ``source.provenance``
    (paths, modification times: facts about files, not about the features). ``transform`` (optional)
    names the transform a reader applies to every clip, with its settings (``name: keypoints``:
    ``ssvp_slt.keypoints``; the task ``sign_features`` applies it); empty: features used as stored.
    """

    dim: int
    dtype: str = "float16"
    feature_rate: float = 0.0
    source: Dict[str, object] = field(default_factory=dict)
    format: str = STORE_FORMAT
    transform: Dict[str, object] = field(default_factory=dict)
    path: Optional[Path] = field(default=None, repr=False, compare=False)

    def validate(self) -> None:
        where = self.path or STORE_CONFIG_NAME
        if self.format != STORE_FORMAT:
            raise FeatureStoreError(f"{where}: format {self.format!r}, expected {STORE_FORMAT!r}")
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim <= 0:
            raise FeatureStoreError(f"{where}: dim must be a positive integer, got {self.dim!r}")
        if self.dtype not in STORE_DTYPES:
            raise FeatureStoreError(f"{where}: dtype must be one of {STORE_DTYPES}, got {self.dtype!r}")
        if not isinstance(self.feature_rate, (int, float)) or isinstance(self.feature_rate, bool) or self.feature_rate < 0:
            raise FeatureStoreError(f"{where}: feature_rate must be a number >= 0 (time steps per second), got {self.feature_rate!r}")
        if not isinstance(self.source, dict):
            raise FeatureStoreError(f"{where}: source must be a mapping, got {type(self.source).__name__}")
        if self.transform is None:
            self.transform = {}
        if not isinstance(self.transform, dict) or (self.transform and not self.transform.get("name")):
            raise FeatureStoreError(f"{where}: transform must be a mapping with a name, got {self.transform!r}")

    def to_dict(self) -> dict:
        d = {"format": self.format, "dim": self.dim, "dtype": self.dtype, "feature_rate": self.feature_rate,
             "source": self.source}
        if self.transform:  # only keypoint-like stores have one; video stores' files stay as they were
            d["transform"] = self.transform
        return d


def read_store_info(root) -> StoreInfo:
    path = Path(root) / STORE_CONFIG_NAME
    if not path.is_file():
        raise FeatureStoreError(
            f"{path}: feature store config not found (is {root} a feature store? scripts/extract_features.py writes one)"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise FeatureStoreError(f"{path}: not valid YAML ({e})") from e
    if not isinstance(raw, dict):
        raise FeatureStoreError(f"{path}: expected a mapping, got {type(raw).__name__}")
    known = {"format", "dim", "dtype", "feature_rate", "source", "transform"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise FeatureStoreError(f"{path}: unknown key(s) {unknown}; known: {sorted(known)}")
    missing = sorted({"format", "dim"} - set(raw))
    if missing:
        raise FeatureStoreError(f"{path}: missing key(s) {missing}")
    info = StoreInfo(**raw)
    info.path = path
    info.validate()
    return info


def _differences(a: object, b: object, prefix: str = "") -> List[str]:
    """Dotted keys at which two nested mappings differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            out += _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [f"{prefix[:-1]}: store has {a!r}, this run {b!r}"]


PROVENANCE_KEY = "provenance"


def _identity(config: dict) -> dict:
    """What two writers of one store must agree on: everything but ``source.provenance`` (where files
    were, when they were written: the same encoder copied to another path or node is the same encoder)."""
    source = {k: v for k, v in (config.get("source") or {}).items() if k != PROVENANCE_KEY}
    return {**config, "source": source}


def open_store_for_writing(root, info: StoreInfo) -> StoreInfo:
    """Create the store at ``root`` with ``info``, or check that the existing one was made the same way.

    Shards and resumed runs add to one store only when they would write the same features: the
    same dimension, dtype and rate, from the same encoder file and frame settings.
    """
    root = Path(root)
    info.validate()
    path = root / STORE_CONFIG_NAME
    if path.exists():
        existing = read_store_info(root)
        diffs = _differences(_identity(existing.to_dict()), _identity(_plain(info.to_dict())))
        if diffs:
            raise FeatureStoreError(
                f"{path}: this store was made otherwise than this run would make it ({'; '.join(diffs[:6])}). "
                f"Write to another directory, or run with the store's settings"
            )
        return existing
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(_plain(info.to_dict()), sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)  # shards starting together write identical files: last rename wins, harmlessly
    info.path = path
    return info


def _plain(value):
    """YAML-safe builtins (tuples -> lists, numpy scalars -> Python), so a written config compares equal when read."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def chunk_rows_for(dim: int, dtype: str, chunk_mb: float = DEFAULT_CHUNK_MB) -> int:
    """Rows (time steps) per chunk file of about ``chunk_mb`` MB."""
    return max(1, int(chunk_mb * 2**20) // (dim * np.dtype(dtype).itemsize))


def new_part_name(tag: str = "") -> str:
    """A part name no other writer uses: tag (e.g. the shard), start time, process id, and a random suffix
    (two runs in one process and one second, as in-process callers make them, still differ)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{tag + '-' if tag else ''}{stamp}-p{os.getpid()}-{secrets.token_hex(3)}"


class SplitWriter:
    """Appends clips' feature sequences to one part of one split of a store.

    Sequences are buffered and written as a chunk file of about ``chunk_rows`` rows; ``close``
    (or leaving the ``with`` block, also on an exception) writes the last, shorter chunk.
    """

    def __init__(self, root, split: str, info: StoreInfo, part: str, chunk_rows: int):
        self.dir = Path(root) / split
        self.dir.mkdir(parents=True, exist_ok=True)
        self.info, self.part, self.chunk_rows = info, part, max(1, int(chunk_rows))
        self.dtype = np.dtype(info.dtype)
        self.index_path = self.dir / f"index-{part}.tsv"
        if self.index_path.exists():
            raise FeatureStoreError(f"{self.index_path}: exists already; each writer needs its own part name")
        self._pending: List[Tuple[str, np.ndarray]] = []
        self._pending_rows = 0
        self._chunks = 0
        self.clips_written = 0
        self.rows_written = 0

    def add(self, clip_id: str, features) -> None:
        """``features``: (T, D) array-like, T >= 1. Raises FeatureStoreError (nothing added) if unusable."""
        if not clip_id or any(ch in clip_id for ch in "\t\n\r"):
            raise FeatureStoreError(f"clip id {clip_id!r}: empty or holds a tab or newline")
        x = np.asarray(features)
        if x.ndim != 2 or x.shape[1] != self.info.dim:
            raise FeatureStoreError(f"clip {clip_id}: features of shape {x.shape}, the store holds (T, {self.info.dim})")
        if x.shape[0] == 0:
            raise FeatureStoreError(f"clip {clip_id}: no time steps")
        with np.errstate(over="ignore"):
            stored = x.astype(self.dtype)
        if not np.isfinite(stored).all():
            finite_in = np.isfinite(x).all()
            raise FeatureStoreError(
                f"clip {clip_id}: features are not finite" + (
                    f" in {self.info.dtype} (values up to {np.abs(x).max():.3g} overflow it; extract with --store-dtype float32)"
                    if finite_in else " (NaN or inf from the encoder)"
                )
            )
        self._pending.append((clip_id, stored))
        self._pending_rows += len(stored)
        if self._pending_rows >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        name = f"{self.part}-{self._chunks:05d}.npy"
        path = self.dir / name
        tmp = self.dir / f"{name}.tmp"
        data = np.concatenate([x for _, x in self._pending], axis=0)
        with open(tmp, "wb") as f:
            np.save(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # complete before any index row names it
        lines, offset = [], 0
        for clip_id, x in self._pending:
            lines.append(f"{clip_id}\t{name}\t{offset}\t{len(x)}\n")
            offset += len(x)
        new_file = not self.index_path.exists()
        with open(self.index_path, "a", encoding="utf-8") as f:
            if new_file:
                f.write("\t".join(INDEX_COLUMNS) + "\n")
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())
        self._chunks += 1
        self.clips_written += len(self._pending)
        self.rows_written += offset
        self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        self.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _npy_layout(path: Path) -> Tuple[Tuple[int, ...], np.dtype, int]:
    """(shape, dtype, byte offset of the data) from an .npy header; the file must hold all the data."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            data_offset = f.tell()
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError) as e:
        raise FeatureStoreError(f"{path}: not a readable .npy file ({e})") from e
    if fortran:
        raise FeatureStoreError(f"{path}: Fortran-ordered array; chunks are written C-ordered")
    need = data_offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < need:
        raise FeatureStoreError(
            f"{path}: truncated: {size} bytes, its header promises {need} (shape {shape}, {dtype}); "
            f"delete it and the index file naming it, then re-run the extraction to redo its clips"
        )
    return tuple(shape), dtype, data_offset


class SplitFeatures:
    """The clips of one split of a store: ids, lengths, and each clip's (T, D) array (memory-mapped).

    Every index row is checked when the split is opened (its chunk exists, is complete, has the
    store's D and dtype, and holds the row's range); a bad one raises, naming the index file and line.
    An id listed twice (two writers did the same clip) keeps its first row, and is counted in the log.
    """

    def __init__(self, root, split: str, info: StoreInfo):
        self.dir = Path(root) / split
        self.split, self.info = split, info
        if not self.dir.is_dir():
            raise FeatureStoreError(
                f"{self.dir}: the feature store has no split {split!r} (splits: {list_splits(root) or 'none'}); "
                f"extract it with scripts/extract_features.py --splits {split}"
            )
        index_files = sorted(self.dir.glob("index-*.tsv"))
        if not index_files:
            raise FeatureStoreError(f"{self.dir}: no index-*.tsv files: no clip of split {split!r} has features yet")
        ids, chunk_names, offsets, lengths, where = [], [], [], [], []
        for file_no, path in enumerate(index_files):
            self._parse_index(path, file_no, ids, chunk_names, offsets, lengths, where)
        self.index_files = index_files
        # unique chunk files and each row's chunk number
        self.chunk_paths: List[Path] = []
        chunk_no: Dict[str, int] = {}
        row_chunk = np.empty(len(ids), dtype=np.int32)
        for i, name in enumerate(chunk_names):
            if name not in chunk_no:
                chunk_no[name] = len(self.chunk_paths)
                self.chunk_paths.append(self.dir / name)
            row_chunk[i] = chunk_no[name]
        offsets_a = np.asarray(offsets, dtype=np.int64)
        lengths_a = np.asarray(lengths, dtype=np.int64)
        self._check_chunks(row_chunk, offsets_a, lengths_a, where)
        # duplicates: keep the first row of each id
        position: Dict[str, int] = {}
        keep = np.ones(len(ids), dtype=bool)
        for i, clip_id in enumerate(ids):
            if clip_id in position:
                keep[i] = False
            else:
                position[clip_id] = len(position)
        self.duplicates = int((~keep).sum())
        if self.duplicates:
            logger.warning(f"{self.dir}: {self.duplicates} clip id(s) listed more than once; the first row of each is used")
            ids = [clip_id for clip_id, k in zip(ids, keep) if k]
        self.ids: List[str] = ids
        self.position = position
        self.row_chunk, self.offsets, self.lengths = row_chunk[keep], offsets_a[keep], lengths_a[keep]
        self._maps: Dict[int, np.ndarray] = {}

    @staticmethod
    def _parse_index(path: Path, file_no: int, ids, chunk_names, offsets, lengths, where) -> None:
        try:
            lines = path.read_text(encoding="utf-8").split("\n")
        except UnicodeDecodeError as e:
            raise FeatureStoreError(f"{path}: not valid UTF-8 ({e})") from e
        if not lines or lines[0].rstrip("\r").split("\t") != list(INDEX_COLUMNS):
            raise FeatureStoreError(f"{path}, line 1: header must be {' '.join(INDEX_COLUMNS)} (tab-separated), got {lines[0][:80]!r}")
        if len(lines) > 1 and lines[-1]:
            # writers end every row with a newline: a last line without one is being appended right now (another
            # shard) or was cut by a crash; either way its clips are not safely stored yet
            logger.warning(f"{path}, line {len(lines)}: incomplete last line (a writer still appending, or interrupted); ignored")
            lines[-1] = ""
        for lineno, line in enumerate(lines[1:], start=2):
            if not line:
                continue
            fields = line.rstrip("\r").split("\t")
            if len(fields) != 4:
                raise FeatureStoreError(f"{path}, line {lineno}: expected 4 tab-separated fields, found {len(fields)}")
            clip_id, name, offset, length = fields
            try:
                offset_i, length_i = int(offset), int(length)
            except ValueError:
                raise FeatureStoreError(f"{path}, line {lineno}: offset and length must be integers, got {offset!r}, {length!r}") from None
            if offset_i < 0 or length_i <= 0:
                raise FeatureStoreError(f"{path}, line {lineno}: offset must be >= 0 and length > 0, got {offset_i}, {length_i}")
            if not clip_id or "/" in name or name.startswith("."):
                raise FeatureStoreError(f"{path}, line {lineno}: bad id {clip_id!r} or chunk name {name!r}")
            ids.append(clip_id)
            chunk_names.append(name)
            offsets.append(offset_i)
            lengths.append(length_i)
            where.append((file_no, lineno))

    def _row_where(self, where, i: int) -> str:
        file_no, lineno = where[i]
        return f"{self.index_files[file_no]}, line {lineno}"

    def _check_chunks(self, row_chunk, offsets, lengths, where) -> None:
        rows = np.empty(len(self.chunk_paths), dtype=np.int64)
        self.chunk_data_offsets = []
        for c, path in enumerate(self.chunk_paths):
            try:
                shape, dtype, data_offset = _npy_layout(path)
            except FileNotFoundError:
                first = int(np.flatnonzero(row_chunk == c)[0])
                raise FeatureStoreError(
                    f"{path}: chunk file not found, named by {self._row_where(where, first)} "
                    f"({int((row_chunk == c).sum())} clip(s) point into it)"
                ) from None
            if len(shape) != 2 or shape[1] != self.info.dim:
                raise FeatureStoreError(f"{path}: array of shape {shape}; the store ({self.info.path}) holds (rows, {self.info.dim})")
            if dtype != np.dtype(self.info.dtype):
                raise FeatureStoreError(f"{path}: {dtype} data; the store ({self.info.path}) holds {self.info.dtype}")
            rows[c] = shape[0]
            self.chunk_data_offsets.append(data_offset)
        beyond = offsets + lengths > rows[row_chunk]
        if beyond.any():
            i = int(np.flatnonzero(beyond)[0])
            raise FeatureStoreError(
                f"{self._row_where(where, i)}: rows {offsets[i]}..{offsets[i] + lengths[i] - 1} are outside "
                f"{self.chunk_paths[row_chunk[i]]} ({rows[row_chunk[i]]} rows)"
                + (f"; {int(beyond.sum())} such rows in all" if beyond.sum() > 1 else "")
            )

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self, clip_id: str) -> Optional[int]:
        return self.position.get(clip_id)

    def _chunk(self, c: int) -> np.ndarray:
        m = self._maps.get(c)
        if m is None:
            path = self.chunk_paths[c]
            # np.memmap straight from the layout checked at open time (np.load would parse the header again)
            m = np.memmap(path, dtype=np.dtype(self.info.dtype), mode="r", offset=self.chunk_data_offsets[c])
            rows = m.shape[0] // self.info.dim
            m = m[: rows * self.info.dim].reshape(rows, self.info.dim)
            self._maps[c] = m
        return m

    def read(self, i: int) -> np.ndarray:
        """Clip ``i``'s (T, D) features: a read-only view into the memory-mapped chunk (copy before changing)."""
        o = int(self.offsets[i])
        return self._chunk(int(self.row_chunk[i]))[o : o + int(self.lengths[i])]

    def __getstate__(self):
        # DataLoader workers (spawned, or pickled): send the index, not open maps; each process maps its own
        state = dict(self.__dict__)
        state["_maps"] = {}
        return state


def list_splits(root) -> List[str]:
    root = Path(root)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("index-*.tsv"))) if root.is_dir() else []


class FeatureStore:
    """A store opened for reading: ``FeatureStore(root).split("train")``."""

    def __init__(self, root):
        self.root = Path(root)
        self.info = read_store_info(self.root)

    @property
    def dim(self) -> int:
        return self.info.dim

    def splits(self) -> List[str]:
        return list_splits(self.root)

    def split(self, name: str) -> SplitFeatures:
        return SplitFeatures(self.root, name, self.info)


def stored_ids(root, split: str) -> Iterable[str]:
    """Ids that already have features in ``root``'s split (none if the split does not exist yet)."""
    if not (Path(root) / split).is_dir() or not any((Path(root) / split).glob("index-*.tsv")):
        return []
    return SplitFeatures(root, split, read_store_info(root)).ids


def copy_clips(root, src_split: str, dst_split: str, pairs: Sequence[Tuple[str, str]], tag: str = "copy") -> int:
    """Write split ``dst_split`` of the store at ``root`` with, for each ``(new id, source id)`` pair,
    the source clip's sequence of ``src_split`` under the new id (control and degraded test splits:
    the features a row's input would give). A source id missing from ``src_split`` is an error naming
    it; nothing is written then. Returns the number of clips written."""
    store = FeatureStore(root)
    src = store.split(src_split)
    missing = [s for _, s in pairs if src.index_of(s) is None]
    if missing:
        raise FeatureStoreError(
            f"{Path(root) / src_split}: {len(missing)} source clip(s) not in the store, e.g. {missing[:3]}"
        )
    info = store.info
    with SplitWriter(root, dst_split, info, new_part_name(tag), chunk_rows_for(info.dim, info.dtype)) as writer:
        for new_id, source_id in pairs:
            writer.add(new_id, src.read(src.index_of(source_id)))
    return len(pairs)
