"""The command line's inputs -> the list of videos to translate.

Each argument is a video file, a folder (searched recursively for files with a video
extension), a glob pattern (``clips/**/*.mp4``; quote it so the shell leaves it alone), a URL
or webcam name (``rtsp://...``, ``webcam:0``), or ``-``: one such entry per line on stdin
(blank lines and ``#`` comments skipped). An argument that yields nothing (a folder without
videos, a pattern matching no file) is kept as an input with its error, so it is reported with
the others and the exit status says something failed.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, List, Optional, Sequence

from .sources import is_stream

# containers FFmpeg (PyAV) reads that hold video; other files in a folder are skipped
VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv",
    ".3gp", ".ogv", ".y4m", ".gif",
)


@dataclass(frozen=True)
class InputSpec:
    name: str
    error: Optional[str] = None


def _has_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def _folder(path: Path, extensions: Sequence[str]) -> List[InputSpec]:
    exts = {e.lower() for e in extensions}
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in exts)
    if not files:
        return [InputSpec(str(path), f"{path}: no video files ({', '.join(sorted(exts))}) in this folder or below")]
    return [InputSpec(str(p)) for p in files]


def expand_one(arg: str, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> List[InputSpec]:
    if is_stream(arg):
        return [InputSpec(arg)]
    path = Path(arg)
    if path.is_dir():
        return _folder(path, extensions)
    if path.exists() or not _has_glob(arg):
        return [InputSpec(arg)]  # a file, or a missing one: opening it reports the error
    matches = sorted(glob.glob(arg, recursive=True))
    if not matches:
        return [InputSpec(arg, f"{arg}: no file matches this pattern")]
    out: List[InputSpec] = []
    for m in matches:
        out.extend(_folder(Path(m), extensions) if Path(m).is_dir() else [InputSpec(m)])
    return out


def read_list(stream: IO[str]) -> List[str]:
    return [line.strip() for line in stream if line.strip() and not line.lstrip().startswith("#")]


def expand_inputs(args: Iterable[str], extensions: Sequence[str] = VIDEO_EXTENSIONS, stdin: Optional[IO[str]] = None) -> List[InputSpec]:
    """Every video the arguments name, in order (folders and patterns sorted by path)."""
    out: List[InputSpec] = []
    for arg in args:
        if arg == "-":
            import sys

            for line in read_list(stdin or sys.stdin):
                out.extend(expand_one(line, extensions))
        else:
            out.extend(expand_one(arg, extensions))
    return out
