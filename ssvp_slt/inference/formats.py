"""Writing translations: plain text, TSV, JSON (one document or JSON Lines), SRT and WebVTT subtitles.

``txt``: one line per input (an input that failed gives an empty line, so lines stay aligned
with the inputs; its error goes to stderr). ``tsv``: ``input<TAB>text`` per input (what
``ssvp-slt-translate`` always printed). ``json``: one document with the run's settings and a
result per input (segments with start, end, text, score, timings). ``jsonl``: one result per
line, written as each input finishes. ``srt`` / ``vtt``: one subtitle cue per segment with
text; these describe one video each, so several inputs need an output folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Iterable, List, Optional

from .results import Translation

FORMATS = ("txt", "tsv", "json", "jsonl", "srt", "vtt")
PER_VIDEO = ("srt", "vtt")  # one file describes one video


def _clock(seconds: float, sep: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cues(t: Translation):
    """(start, end, text) of the segments that have text; each cue lasts at least a millisecond."""
    for s in t.segments:
        text = " ".join(s.text.split())
        if text:
            yield s.start, max(s.end, s.start + 0.001), text


def srt(t: Translation) -> str:
    blocks = [
        f"{i}\n{_clock(a, ',')} --> {_clock(b, ',')}\n{text}\n" for i, (a, b, text) in enumerate(_cues(t), start=1)
    ]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    # WebVTT cue text is markup: "&" and "<" start entities and tags, and "-->" may not appear at all
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt(t: Translation) -> str:
    blocks = [f"{_clock(a, '.')} --> {_clock(b, '.')}\n{_vtt_escape(text)}\n" for a, b, text in _cues(t)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def txt_line(t: Translation) -> str:
    return " ".join(t.text.split()) if t.ok else ""


def tsv_line(t: Translation) -> str:
    return f"{t.input}\t{txt_line(t)}"


def render(t: Translation, fmt: str) -> str:
    """One input's output in ``fmt`` (``json`` is the input's own object)."""
    if fmt == "txt":
        return txt_line(t) + "\n"
    if fmt == "tsv":
        return tsv_line(t) + "\n"
    if fmt in ("json", "jsonl"):
        return json.dumps(t.to_dict(), ensure_ascii=False) + "\n"
    if fmt == "srt":
        return srt(t)
    if fmt == "vtt":
        return vtt(t)
    raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")


class Writer:
    """Writes results as they come (in input order) to a stream, one file, or one file per input in a folder."""

    def __init__(self, fmt: str, output: Optional[str], n_inputs: int, header: Optional[dict] = None, stdout: Optional[IO] = None):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
        self.fmt, self.header, self.results = fmt, header or {}, []
        self.folder: Optional[Path] = None
        self.stream: Optional[IO] = None
        self._own = False
        self._names: set = set()
        self.written: List[Path] = []
        if output is not None and (Path(output).is_dir() or str(output).endswith(("/", "\\"))):
            self.folder = Path(output)
            self.folder.mkdir(parents=True, exist_ok=True)
        elif fmt in PER_VIDEO and n_inputs > 1:
            raise ValueError(
                f"--format {fmt} describes one video: with {n_inputs} inputs give --output a folder (one file per input)"
            )
        elif output is not None and output != "-":
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            self.stream, self._own = open(output, "w", encoding="utf-8"), True
            self.written.append(Path(output))
        else:
            import sys

            self.stream = stdout or sys.stdout

    def _file_for(self, t: Translation) -> Path:
        stem = Path(t.input.rstrip("/")).stem or "input"
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
        name, k = stem, 1
        while name in self._names:  # two inputs with the same name in different folders
            k += 1
            name = f"{stem}-{k}"
        self._names.add(name)
        return self.folder / f"{name}.{self.fmt}"

    def write(self, t: Translation) -> None:
        if self.folder is not None:
            if self.fmt == "json":
                text = json.dumps({**self.header, "results": [t.to_dict()]}, ensure_ascii=False, indent=1) + "\n"
            else:
                text = render(t, self.fmt)
            path = self._file_for(t)
            if t.ok or self.fmt in ("json", "jsonl"):  # a failed input gets no empty subtitle file
                path.write_text(text, encoding="utf-8")
                self.written.append(path)
            return
        if self.fmt == "json":
            self.results.append(t.to_dict())  # one document: written at the end
            return
        self.stream.write(render(t, self.fmt) if self.fmt not in PER_VIDEO or t.ok else "")
        self.stream.flush()

    def close(self) -> None:
        if self.folder is None and self.fmt == "json":
            self.stream.write(json.dumps({**self.header, "results": self.results}, ensure_ascii=False, indent=1) + "\n")
        if self._own:
            self.stream.close()
        elif self.stream is not None:
            self.stream.flush()


def write_all(results: Iterable[Translation], fmt: str, output: Optional[str], header: Optional[dict] = None) -> List[Path]:
    results = list(results)
    w = Writer(fmt, output, len(results), header)
    for t in results:
        w.write(t)
    w.close()
    return w.written
