"""Reading How2Sign sentence CSVs robustly: one bad row never stops the others.

The realigned CSVs are tab-separated with the header

    VIDEO_ID VIDEO_NAME SENTENCE_ID SENTENCE_NAME START_REALIGNED END_REALIGNED SENTENCE

Real files are messy, so:

* the delimiter is detected from the header (tab, comma or semicolon) and a
  non-tab one is noted, since How2Sign's own files are tab-separated;
* bytes that are not UTF-8 are kept apart per row (``surrogateescape``) and
  reported for that row, instead of failing on the whole file;
* a caption may be quoted and span lines or hold tabs (pandas writes them so);
  a quote that never closes is not allowed to swallow the following rows;
  an unquoted caption with a stray tab or line break is joined back together
  when SENTENCE is the last column; each repair is reported;
* captions are cleaned to single-spaced text without control characters; a
  caption with no word left after the data config's normalisation (``"?!..."``
  under ``punctuation: strip``) is dropped like an empty one;
* names, times and captions are checked; a bad row is reported with its file
  and line and dropped, the rest go on.

A missing required column is the one problem that stops everything
(:class:`CsvFormatError`), since no row can be read without it.
"""

import csv
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..corpus.text import EMPTY_AFTER_NORMALISATION, empty_caption_problem
from .report import DROPPED, REPAIRED, Problem

VIDEO_ID = "VIDEO_ID"
VIDEO_NAME = "VIDEO_NAME"
SENTENCE_ID = "SENTENCE_ID"
SENTENCE_NAME = "SENTENCE_NAME"
START = "START_REALIGNED"
END = "END_REALIGNED"
SENTENCE = "SENTENCE"
HOW2SIGN_HEADER = (VIDEO_ID, VIDEO_NAME, SENTENCE_ID, SENTENCE_NAME, START, END, SENTENCE)
FULL_VIDEO_COLUMNS = (VIDEO_NAME, SENTENCE_NAME, START, END, SENTENCE)  # cutting full videos
CLIP_COLUMNS = (SENTENCE_NAME, SENTENCE)  # pre-cut clips: names and captions only

DELIMITERS = {"\t": "tab", ",": "comma", ";": "semicolon"}
# a quoted caption spanning more lines than this is taken for a stray, unclosed quote
MAX_CAPTION_LINES = 20

# reasons for dropping a row
WRONG_FIELDS = "wrong number of fields"
NOT_UTF8 = "non-UTF-8 text"
EMPTY_NAME = "empty name"
BAD_NAME = "unusable name"
DUPLICATE = "duplicate SENTENCE_NAME"
EMPTY_CAPTION = "empty caption"
EMPTY_NORMALISED = EMPTY_AFTER_NORMALISATION  # "?!..." under punctuation=strip: an EOS-only target
BAD_TIME = "bad time"
NEGATIVE_TIME = "negative time"
START_NOT_BEFORE_END = "START not before END"
# repairs (the row is kept)
MULTILINE_CAPTION = "caption across lines"
TAB_IN_CAPTION = "tab in caption"
STRAY_DELIMITER = "unquoted delimiter in caption"  # comma/semicolon files
STRAY_QUOTE = "unclosed quote"
CONTROL_CHARS = "control characters in caption"
DECIMAL_COMMA = "decimal comma in time"

_DECIMAL_COMMA_RE = re.compile(r"[+-]?\d+,\d+")


class CsvFormatError(Exception):
    """The file as a whole cannot be read (missing file or required column); the message is for the user."""


@dataclass(frozen=True)
class Sentence:
    file: str
    line: int
    name: str
    caption: str  # cleaned: single-spaced, no control characters; otherwise as written
    video_name: str = ""
    start: Optional[float] = None
    end: Optional[float] = None


@dataclass
class CsvContents:
    path: Path
    delimiter: str
    header: List[str]
    rows_read: int = 0
    sentences: List[Sentence] = field(default_factory=list)
    dropped: List[List[Problem]] = field(default_factory=list)  # one list of problems per dropped row
    repairs: List[Problem] = field(default_factory=list)  # problems of kept rows
    notes: List[str] = field(default_factory=list)


def clean_caption(text: str) -> Tuple[str, bool]:
    """(single-spaced caption, whether invisible control/format characters were removed).

    Zero-width spaces, BOMs, NULs and the like carry no text but would become
    tokens of their own in sentencepiece; whitespace of any kind (tabs, line
    breaks, no-break spaces) becomes one space."""
    removed = False
    kept = []
    for ch in text:
        if not ch.isspace() and unicodedata.category(ch) in ("Cc", "Cf"):
            removed = True
            continue
        kept.append(ch)
    return " ".join("".join(kept).split()), removed


def _split(line: str, delimiter: str) -> List[str]:
    return line.split(delimiter)


def _parse_header(line: str, delimiter: str) -> List[str]:
    fields = next(csv.reader([line], delimiter=delimiter, quotechar='"'), [])
    return [f.strip().strip('"').strip() for f in fields]


def _detect_delimiter(line: str, required: Sequence[str]) -> str:
    """The delimiter that yields the most known column names (ties: tab, How2Sign's own)."""

    def score(d):
        names = set(_parse_header(line, d))
        return len(names & set(required)), len(names & set(HOW2SIGN_HEADER)), d == "\t"

    return max(DELIMITERS, key=score)


def _non_utf8(value: str) -> Optional[bytes]:
    """The raw bytes of ``value`` if it holds undecodable bytes (kept as surrogates), else None."""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        return value.encode("utf-8", "surrogateescape")
    return None


def _records(lines: List[str], first: int, delimiter: str, n_columns: int, text_last: bool):
    """Yield (line_number, fields, repairs) for the data rows, starting at index ``first``.

    ``repairs`` is a list of (reason, message) for rows that were put back together."""
    i = first
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        lineno = i + 1
        repairs = []
        fields, span = None, 1
        if '"' in line:
            # quoted fields may hold delimiters and line breaks: let the csv module read them,
            # over at most MAX_CAPTION_LINES lines
            chunk = lines[i : i + MAX_CAPTION_LINES]
            reader = csv.reader((c + "\n" for c in chunk), delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
            try:
                fields, span = next(reader), reader.line_num
            except (csv.Error, StopIteration):
                fields = None
            # a quote that swallowed lines which look like rows of their own is a stray quote, not a caption
            if fields is not None and span > 1:
                if any(len(_split(c, delimiter)) >= n_columns for c in chunk[1:span]) or len(fields) != n_columns:
                    fields = None
            if fields is None:
                fields, span = _split(line, delimiter), 1
                fields = [f.strip('"') if f.count('"') % 2 else f for f in fields]
                repairs.append((STRAY_QUOTE, f"unclosed quote on line {lineno}; read the line without quoting"))
            elif span > 1:
                repairs.append((MULTILINE_CAPTION, f"quoted caption spans lines {lineno}-{lineno + span - 1}; joined"))
        else:
            fields = _split(line, delimiter)
        i += span
        # an unquoted caption broken over lines: the following lines have no delimiter at all
        while (
            text_last
            and len(fields) == n_columns
            and i < len(lines)
            and lines[i].strip()
            and delimiter not in lines[i]
            and '"' not in lines[i]
        ):
            repairs.append((MULTILINE_CAPTION, f"line {i + 1} continues the caption of line {lineno}; joined"))
            fields[-1] += " " + lines[i]
            i += 1
        if len(fields) > n_columns and text_last:
            extra = len(fields) - n_columns
            # a stray tab is whitespace; a stray comma/semicolon was the caption's own punctuation
            joiner = " " if delimiter == "\t" else delimiter
            fields = fields[: n_columns - 1] + [joiner.join(fields[n_columns - 1 :])]
            reason = TAB_IN_CAPTION if delimiter == "\t" else STRAY_DELIMITER
            repairs.append((reason, f"{extra} stray {DELIMITERS[delimiter]}(s) inside the caption; joined"))
        yield lineno, fields, repairs


def _parse_time(value: str, column: str, decimal_comma: bool):
    """(seconds, None, repaired) or (None, (reason, message), False)."""
    s = value.strip()
    repaired = False
    if decimal_comma and _DECIMAL_COMMA_RE.fullmatch(s):
        s, repaired = s.replace(",", "."), True
    try:
        t = float(s)
    except ValueError:
        return None, (BAD_TIME, f"{column} is not a number: {value!r}"), False
    if not math.isfinite(t):
        return None, (BAD_TIME, f"{column} is not a finite number: {value!r}"), False
    if t < 0:
        return None, (NEGATIVE_TIME, f"{column} is negative: {value!r}"), False
    return t, None, repaired


def _check_name(value: str, column: str):
    """(name, None) or (None, (reason, message)). Names become file names, so no paths."""
    name = value.strip()
    if not name:
        return None, (EMPTY_NAME, f"empty {column}")
    if "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        return None, (BAD_NAME, f"{column} {name!r} cannot be used as a file name")
    return name, None


def read_sentences(
    path,
    required: Sequence[str] = FULL_VIDEO_COLUMNS,
    seen: Optional[Dict[str, Tuple[str, int]]] = None,
    punctuation: str = "keep",
) -> CsvContents:
    """Read and check every row of a How2Sign CSV.

    ``seen`` maps SENTENCE_NAME -> (file, line) of rows already accepted (shared
    across the splits of one run, so a name is used once). ``punctuation`` is the
    caption normalisation training will apply (the data config's): a caption it
    leaves without a word is dropped. Raises :class:`CsvFormatError` only for an
    unreadable file or a missing column."""
    path = Path(path)
    seen = {} if seen is None else seen
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CsvFormatError(f"{path}: CSV file not found")
    except OSError as e:
        raise CsvFormatError(f"{path}: cannot read CSV file ({e})")
    # undecodable bytes survive as surrogates and are reported per row below
    text = raw.decode("utf-8", errors="surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    notes = []
    if "\x00" in text:
        text = text.replace("\x00", "")
        notes.append(f"{path}: NUL bytes removed")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")

    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise CsvFormatError(f"{path}: empty CSV (no header row)")
    header_line = lines[header_index]
    delimiter = _detect_delimiter(header_line, required)
    header = _parse_header(header_line, delimiter)
    missing = [c for c in required if c not in header]
    if missing:
        others = [name for d, name in DELIMITERS.items() if d != delimiter and d in header_line]
        hint = f" (it also contains {' and '.join(others)}s)" if others else ""
        raise CsvFormatError(
            f"{path}: missing required column(s) {', '.join(missing)}; the header row, read as "
            f"{DELIMITERS[delimiter]}-separated{hint}, is {header}. Expected a tab-separated header like: "
            f"{' '.join(HOW2SIGN_HEADER)}"
        )
    duplicated = sorted(c for c in set(required) if header.count(c) > 1)
    if duplicated:
        raise CsvFormatError(f"{path}: column(s) {', '.join(duplicated)} appear more than once in the header {header}")
    if delimiter != "\t":
        notes.append(
            f"{path}: the file is {DELIMITERS[delimiter]}-separated (How2Sign's CSVs are tab-separated); "
            f"read it as {DELIMITERS[delimiter]}-separated with quoted fields"
        )

    contents = CsvContents(path=path, delimiter=delimiter, header=header, notes=notes)
    col = {name: header.index(name) for name in header if name in HOW2SIGN_HEADER or name in required}
    text_last = header[-1] == SENTENCE
    full = START in required
    file = str(path)

    for lineno, fields, repairs in _records(lines, header_index + 1, delimiter, len(header), text_last):
        contents.rows_read += 1

        def problem(reason, message, action=DROPPED, name=None):
            return Problem(file=file, line=lineno, reason=reason, message=message, action=action, sentence=name)

        if len(fields) != len(header):
            hint = ""
            if len(fields) > len(header):
                hint = " (a delimiter inside a field? quote it)"
            elif len(fields) == 1 and delimiter == "\t" and ("," in fields[0] or ";" in fields[0]):
                hint = " (the line looks comma- or semicolon-separated)"
            contents.dropped.append(
                [problem(WRONG_FIELDS, f"expected {len(header)} {DELIMITERS[delimiter]}-separated fields, found {len(fields)}{hint}")]
            )
            continue

        row_problems: List[Problem] = []
        for column in required:
            bad = _non_utf8(fields[col[column]])
            if bad is not None:
                as_cp1252 = bad.decode("cp1252", errors="replace")
                row_problems.append(
                    problem(
                        NOT_UTF8,
                        f"{column} holds bytes that are not UTF-8 ({bad!r}; as Windows-1252 it would read {as_cp1252!r}); "
                        f"re-save the CSV as UTF-8",
                    )
                )
        if row_problems:  # the other checks would only repeat the garbled text
            contents.dropped.append(row_problems)
            continue

        name, bad = _check_name(fields[col[SENTENCE_NAME]], SENTENCE_NAME)
        if bad:
            row_problems.append(problem(*bad))
        caption, had_controls = clean_caption(fields[col[SENTENCE]])
        if "\t" in fields[col[SENTENCE]] and not any(r[0] == TAB_IN_CAPTION for r in repairs):
            repairs.append((TAB_IN_CAPTION, "tab inside the quoted caption; replaced by a space"))
        if not caption:
            row_problems.append(problem(EMPTY_CAPTION, f"empty caption for {name or '(no name)'!r}", name=name))
        else:
            empty = empty_caption_problem(caption, punctuation)
            if empty is not None:
                row_problems.append(problem(EMPTY_NORMALISED, f"{empty[1]} (for {name or '(no name)'!r})", name=name))
        video_name, start, end = "", None, None
        time_repairs = []
        if full:
            video_name, bad = _check_name(fields[col[VIDEO_NAME]], VIDEO_NAME)
            if bad:
                row_problems.append(problem(*bad, name=name))
            times = {}
            for column in (START, END):
                t, bad, repaired = _parse_time(fields[col[column]], column, decimal_comma=delimiter != ",")
                if bad:
                    row_problems.append(problem(*bad, name=name))
                if repaired:
                    time_repairs.append(f"{column} {fields[col[column]].strip()!r} read with a decimal comma")
                times[column] = t
            start, end = times[START], times[END]
            if start is not None and end is not None and start >= end:
                row_problems.append(problem(START_NOT_BEFORE_END, f"{START} {start:g} is not before {END} {end:g}", name=name))
        if name is not None and name in seen:
            first_file, first_line = seen[name]
            where = f"line {first_line}" if first_file == file else f"{first_file}, line {first_line}"
            row_problems.append(problem(DUPLICATE, f"duplicate SENTENCE_NAME {name!r} (first on {where})", name=name))
        if row_problems:
            contents.dropped.append(row_problems)
            continue

        seen[name] = (file, lineno)
        for reason, message in repairs:
            contents.repairs.append(problem(reason, message, action=REPAIRED, name=name))
        if had_controls:
            contents.repairs.append(problem(CONTROL_CHARS, "invisible control/format characters removed from the caption", REPAIRED, name))
        for message in time_repairs:
            contents.repairs.append(problem(DECIMAL_COMMA, message, REPAIRED, name))
        contents.sentences.append(
            Sentence(file=file, line=lineno, name=name, caption=caption, video_name=video_name, start=start, end=end)
        )
    return contents
