"""Per-clip predictions: read from a fairseq-generate output or a CSV/TSV, written as the predictions CSV.

The predictions CSV (``id, video, reference, hypothesis, sentence_bleu, sentence_wer``) is both what
``ssvp-slt-evaluate`` writes and what it reads back, so any model's output can be scored and compared:
only ``id``, ``reference`` and ``hypothesis`` are required. Texts round-trip exactly (the ``csv``
module quotes commas, quotes and newlines; UTF-8). A ``.tsv`` file is read tab-separated without
quoting (a text cannot then hold a tab or a newline), as other tools write TSV.

This module imports neither fairseq nor torch.
"""

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .metrics import EvaluationError

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("id", "video", "reference", "hypothesis", "sentence_bleu", "sentence_wer")
REQUIRED_COLUMNS = ("id", "reference", "hypothesis")
SHOWN = 10  # ids named in an error message


@dataclass
class Prediction:
    id: str
    reference: str
    hypothesis: str
    video: Optional[str] = None


def _check_unique(records: Sequence[Prediction], source: str) -> None:
    seen, dupes = set(), []
    for r in records:
        if r.id in seen:
            dupes.append(r.id)
        seen.add(r.id)
    if dupes:
        raise EvaluationError(f"{source}: {len(dupes)} duplicate id(s), e.g. {dupes[:SHOWN]}; every clip must appear once")


def read_predictions(path) -> List[Prediction]:
    """Rows of a predictions CSV (or ``.tsv``): at least ``id``, ``reference``, ``hypothesis``; texts as given."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"{path}: predictions file not found")
    tsv = path.suffix.lower() == ".tsv"
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: a spreadsheet's byte-order mark
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if tsv else csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise EvaluationError(
                    f"{path}: missing column(s) {missing} (header: {header}); a predictions file needs "
                    f"{', '.join(REQUIRED_COLUMNS)}" + ("" if tsv else " (is it a TSV? name it .tsv)")
                )
            records = []
            for row in reader:
                line = reader.line_num
                if None in row.values() or None in row:
                    raise EvaluationError(f"{path}, line {line}: {'fewer' if None in row.values() else 'more'} fields than the header")
                if not row["id"]:
                    raise EvaluationError(f"{path}, line {line}: empty id")
                records.append(Prediction(row["id"], row["reference"], row["hypothesis"], row.get("video") or None))
    except UnicodeDecodeError as e:
        raise EvaluationError(f"{path}: not UTF-8 text ({e})") from e
    except csv.Error as e:
        raise EvaluationError(f"{path}: not a readable {'TSV' if tsv else 'CSV'} file ({e})") from e
    if not records:
        raise EvaluationError(f"{path}: no rows")
    _check_unique(records, str(path))
    return records


def read_generate_output(path) -> List[Prediction]:
    """The T-/D- lines of a ``fairseq-generate`` output (ids are fairseq's sample ids)."""
    from ssvp_slt.scoring import ScoringError, parse_generate_output

    try:
        triples = parse_generate_output(Path(path))
    except ScoringError as e:
        raise EvaluationError(str(e)) from e
    return [Prediction(i, ref, hyp) for i, ref, hyp in triples]


def map_to_manifest(records: List[Prediction], data, split: str) -> List[Prediction]:
    """Name fairseq's sample ids by clip: fairseq-generate numbers the clips of its data set 0..N-1 in manifest
    order. Mapped only if the manifest has as many clips and each reference is that clip's caption after the data
    config's normalisation; otherwise the records are returned unchanged, with a warning saying why."""
    from ssvp_slt.corpus.data_config import VideoDataConfig
    from ssvp_slt.corpus.manifest import read_manifest
    from ssvp_slt.corpus.text import normalize_caption

    cfg = VideoDataConfig.load(data, check_files=False)
    rows = read_manifest(Path(data) / f"{split}.tsv").rows
    if len(rows) != len(records) or not all(r.id.isdigit() and int(r.id) < len(rows) for r in records):
        logger.warning(
            f"{data}/{split}.tsv: {len(rows)} clips, the generate output {len(records)} with ids "
            f"{records[0].id}..{records[-1].id}: ids kept as fairseq's sample numbers"
        )
        return records
    mapped, mismatched = [], []
    for r in records:
        row = rows[int(r.id)]
        if normalize_caption(row.tgt_text, cfg.lowercase, cfg.punctuation) != r.reference:
            mismatched.append(r.id)
        mapped.append(Prediction(row.id, r.reference, r.hypothesis, row.video))
    if mismatched:
        logger.warning(
            f"{data}/{split}.tsv: the references of fairseq ids {mismatched[:SHOWN]} are not those clips' captions "
            f"(pieces missing from the dictionary, or another data root): ids kept as fairseq's sample numbers"
        )
        return records
    return mapped


def write_predictions_csv(path, records: Sequence[Prediction], per_sentence: Sequence[Dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r, s in zip(records, per_sentence):
            wer = s["sentence_wer"]
            writer.writerow([
                r.id, r.video or "", r.reference, r.hypothesis, f"{s['sentence_bleu']:.4f}", "" if wer is None else f"{wer:.4f}",
            ])
    return path
