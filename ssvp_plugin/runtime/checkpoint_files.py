"""Checkpoint files: never a torn file under a checkpoint's name; weights-only loading. (issue 14)

Three changes to fairseq 0.12's ``checkpoint_utils``, applied once when the plugin is imported:

1. **Atomic copies.** ``save_checkpoint`` writes the first name of a save (``checkpoint_3_800.pt``,
   ``checkpoint_best.pt``, ...) through ``<name>.tmp`` + rename, but fills the other names
   (``checkpoint_best.pt``, ``checkpoint_last.pt``, ...) with ``PathManager.copy``, a plain copy onto
   the destination. A ``kill -9`` during that copy (SLURM pre-emption, an out-of-memory killer) left
   a torn ``checkpoint_last.pt`` and the same command then died on start. Those copies now go to
   ``<name>.tmp`` in the same directory, are flushed and fsynced, and only then replace ``<name>``
   (``os.replace``: atomic on a local file system). Remote paths (iopath handlers) keep fairseq's copy.
2. **Restore.** Files torn before this fix (or by a disk that filled up) are caught on start: before
   fairseq restores ``checkpoint_last.pt`` the file's zip directory is checked (cheap: the tensors
   are not read). If it is torn, the newest intact checkpoint in ``checkpoint.save_dir`` (by the
   update count stored in it, then modification time, then name) is restored instead, with a
   WARNING naming both files. Nothing is rewritten or deleted, and every rank of a distributed run
   makes the same choice from the same files. If no checkpoint is intact, the run stops with an
   error listing what was found. A torn file named explicitly (``checkpoint.restore_file``) stops
   the run with an error naming it: the user asked for that file.
3. **weights_only.** Every ``torch.load`` in ``checkpoint_utils`` (``load_checkpoint_to_cpu``: resume,
   ``fairseq-generate``, ``SignTranslator``; ``load_ema_from_checkpoint``) passes
   ``weights_only=True`` explicitly. torch only honours ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``
   (which its own error text suggests) when the caller did not choose, so that variable can no
   longer turn a checkpoint into arbitrary code execution.

``SSVP_UNPROTECTED_CHECKPOINT_SAVES=1`` leaves changes 1 and 2 out. It exists for measurement only
(scripts/trial_kill_during_save.py compares both ways in one run); never set it for real training.
"""

import contextlib
import logging
import os
import re
import shutil
import types
import zipfile
from typing import List, Optional, Tuple

import torch
from fairseq import checkpoint_utils
from fairseq.file_io import PathManager

logger = logging.getLogger(__name__)

UNPROTECTED_ENV = "SSVP_UNPROTECTED_CHECKPOINT_SAVES"
# fairseq's default restore_file: the one name a torn file may be replaced for without being asked
DEFAULT_RESTORE_FILE = "checkpoint_last.pt"


class CheckpointFileError(RuntimeError):
    """A checkpoint file to restore is torn and no intact one can stand in for it."""


# --- 1. atomic copies -----------------------------------------------------------------------------


def atomic_copy(src: str, dst: str) -> None:
    """Copy ``src`` to ``dst`` so that ``dst`` is always either its old content or the whole copy.

    The copy goes to ``<dst>.tmp`` first (the name fairseq's own atomic save uses, so a copy
    killed half-way leaves one stale ``.tmp`` that the next save overwrites, not a pile of them)."""
    tmp = dst + ".tmp"
    try:
        shutil.copyfile(src, tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data is on disk before the name points at it (a crash, not only a kill)
        finally:
            os.close(fd)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_directory(os.path.dirname(os.path.abspath(dst)))


def _fsync_directory(path: str) -> None:
    """Make a rename durable; some file systems cannot open or fsync a directory: then skip it."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class AtomicCopyPathManager(PathManager):
    """fairseq's PathManager, as ``checkpoint_utils`` sees it, with local copies made atomic.

    Only ``checkpoint_utils`` gets this class (its module attribute ``PathManager``): the rest of
    fairseq keeps the original."""

    @staticmethod
    def copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
        if PathManager.path_requires_pathmanager(src_path) or PathManager.path_requires_pathmanager(dst_path):
            return PathManager.copy(src_path, dst_path, overwrite=overwrite)  # remote: fairseq's own copy
        if not overwrite and os.path.exists(dst_path):
            return False  # as iopath's copy does
        atomic_copy(src_path, dst_path)
        return True  # save_checkpoint asserts the result


# --- 2. restore: detect a torn file, fall back to the newest intact one -----------------------------


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be a whole checkpoint, or None. Reads the zip directory only, not the tensors.

    torch writes checkpoints as zip files whose directory sits at the very end, so a file cut short
    (a killed copy, a full disk) has none. Files in torch's legacy (non-zip) format are loaded whole."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            return "empty file (0 bytes)"
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if magic != b"PK\x03\x04":
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            return f"not a torch checkpoint ({type(e).__name__}: {_first_line(e)})"
        return None
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        return f"torn: {size} bytes and no zip directory at its end ({_first_line(e)})"
    if not any(i.filename.endswith("/data.pkl") or i.filename == "data.pkl" for i in infos):
        return "a zip file without torch's data.pkl"
    end = max(i.header_offset + i.compress_size for i in infos)
    if end > size:
        return f"torn: its zip directory says {end} bytes, the file has {size}"
    return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def stored_updates(path: str) -> int:
    """The update count saved in a checkpoint (-1 when it has none). Memory-mapped: the tensors are not read."""
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    history = state.get("optimizer_history") or [{}]
    return int(history[-1].get("num_updates", -1))


def _is_checkpoint_name(name: str, suffix: str) -> bool:
    if not (name.startswith("checkpoint") and name.endswith(f"{suffix}.pt")):
        return False
    return suffix != "" or "-shard" not in name  # another rank's shard is not this rank's checkpoint


def newest_intact_checkpoint(save_dir: str, suffix: str = "", exclude: Tuple[str, ...] = ()) -> Tuple[str, int]:
    """(path, stored update count) of the newest intact checkpoint in ``save_dir``.

    Newest = most updates, then latest modification time, then name: the same files give the same
    answer on every rank. Raises :class:`CheckpointFileError` listing what was found when none is intact."""
    excluded = {os.path.abspath(p) for p in exclude}
    found: List[Tuple[int, float, str]] = []
    rejected: List[str] = []
    names = sorted(os.listdir(save_dir)) if os.path.isdir(save_dir) else []
    for name in names:
        path = os.path.join(save_dir, name)
        if not _is_checkpoint_name(name, suffix) or os.path.abspath(path) in excluded or not os.path.isfile(path):
            continue
        problem = checkpoint_problem(path)
        if problem is None:
            try:
                updates = stored_updates(path)
            except Exception as e:  # an intact zip that still does not load: not a candidate
                problem = f"does not load ({type(e).__name__}: {_first_line(e)})"
        if problem is not None:
            rejected.append(f"{name}: {problem}")
            continue
        found.append((updates, os.path.getmtime(path), name))
    if not found:
        listing = "; ".join(rejected) if rejected else "no other checkpoint*.pt file"
        raise CheckpointFileError(f"no intact checkpoint in {save_dir} ({listing})")
    updates, _mtime, name = max(found)
    return os.path.join(save_dir, name), updates


def _restore_path(cfg, suffix: str) -> str:
    """The file fairseq's load_checkpoint will restore (its own rule, without the fine-tuning cases,
    which apply only when checkpoint_last.pt does not exist)."""
    if cfg.restore_file == DEFAULT_RESTORE_FILE:
        return os.path.join(cfg.save_dir, f"checkpoint_last{suffix}.pt")
    return cfg.restore_file.replace(".pt", suffix + ".pt")


@contextlib.contextmanager
def _redirect_restore(trainer, torn: str, chosen: str):
    """Make ``trainer.load_checkpoint`` read ``chosen`` when fairseq asks for ``torn``, for one call.

    fairseq's load_checkpoint derives the path from the config and also handles suffixes,
    fine-tuning and the data iterator; swapping the file name at the trainer keeps all of that."""
    load = trainer.load_checkpoint

    def load_instead(filename, *args, **kwargs):
        return load(chosen if filename == torn else filename, *args, **kwargs)

    trainer.load_checkpoint = load_instead  # an instance attribute over the method, removed below
    try:
        yield
    finally:
        del trainer.load_checkpoint


def load_checkpoint_or_newest_intact(cfg, trainer, **passthrough_args):
    """fairseq's ``checkpoint_utils.load_checkpoint``, restoring the newest intact checkpoint
    when the file to restore is torn (see the module docstring)."""
    suffix = trainer.checkpoint_suffix or ""
    path = _restore_path(cfg, suffix)
    problem = checkpoint_problem(path) if PathManager.isfile(path) else None
    if problem is None:  # intact, absent (first launch) or remote: fairseq as is
        return _fairseq_load_checkpoint(cfg, trainer, **passthrough_args)
    if cfg.restore_file != DEFAULT_RESTORE_FILE:
        raise CheckpointFileError(
            f"{path}: {problem}. It is named by checkpoint.restore_file, so no other file is used in its place; "
            f"name an intact checkpoint"
        )
    if "-shard" in suffix:  # FSDP sharded state: each rank reads its own file and might choose another update
        raise CheckpointFileError(f"{path}: {problem}. Sharded checkpoints: pick an intact update by hand (checkpoint.restore_file)")
    try:
        chosen, updates = newest_intact_checkpoint(cfg.save_dir, suffix, exclude=(path,))
    except CheckpointFileError as e:
        raise CheckpointFileError(f"{path}: {problem}, and {e}") from None
    logger.warning(
        f"{path}: {problem}. Restoring the newest intact checkpoint instead: {chosen} ({updates} updates). "
        f"{os.path.basename(path)} is left as it is; the next save replaces it"
    )
    with _redirect_restore(trainer, path, chosen):
        return _fairseq_load_checkpoint(cfg, trainer, **passthrough_args)


# --- 3. weights_only=True on every torch.load in checkpoint_utils ---------------------------------


class WeightsOnlyTorch(types.ModuleType):
    """``torch`` as ``checkpoint_utils`` sees it: all of torch, except that ``load`` always passes
    ``weights_only=True``. Installed as that module's global ``torch``, so fairseq's own calls
    (``torch.load(f, map_location=...)``) pass it explicitly without copying fairseq's code."""

    def __init__(self):
        super().__init__("torch", "torch, with torch.load(weights_only=True) (ssvp_plugin.runtime.checkpoint_files)")

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(*args, **kwargs):
        kwargs["weights_only"] = True
        return torch.load(*args, **kwargs)


# --- applying the changes ----------------------------------------------------------------------

# fairseq's own function, also when this module is imported a second time (importlib.reload)
_fairseq_load_checkpoint = getattr(checkpoint_utils.load_checkpoint, "fairseq_load_checkpoint", checkpoint_utils.load_checkpoint)
load_checkpoint_or_newest_intact.fairseq_load_checkpoint = _fairseq_load_checkpoint


def apply() -> None:
    """Install the changes in fairseq's checkpoint_utils; a second call changes nothing."""
    if checkpoint_utils.torch is torch:
        checkpoint_utils.torch = WeightsOnlyTorch()
    if os.environ.get(UNPROTECTED_ENV, "") not in ("", "0"):
        logger.warning(f"{UNPROTECTED_ENV} is set: checkpoint copies are not atomic and torn files are not detected (for measurement only)")
        return
    if checkpoint_utils.PathManager is PathManager:  # not yet replaced (by this or an earlier import)
        checkpoint_utils.PathManager = AtomicCopyPathManager
    if not hasattr(checkpoint_utils.load_checkpoint, "fairseq_load_checkpoint"):
        # fairseq_cli/train.py calls it through the module attribute, after importing the plugin
        checkpoint_utils.load_checkpoint = load_checkpoint_or_newest_intact


apply()
