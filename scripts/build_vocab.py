#!/usr/bin/env python
"""Train the sentencepiece model and fairseq dictionary of a data root and write its config.yaml.

    python scripts/build_vocab.py --data DATA_ROOT [--train-split train] [--vocab-size 5000]
        [--model-type unigram|bpe] [--lowercase | --no-lowercase] [--punctuation keep|strip] [--skip-invalid]
        [--target-fps 25 --num-frames 128 --sampling-rate 2 --resize-short-side 256
         --crop-size 224 --mean 0.45 0.45 0.45 --std 0.225 0.225 0.225]

Reads DATA_ROOT/<train-split>.tsv, normalises the captions exactly as the task
does (ssvp_slt.corpus.text.normalize_caption) and writes

    DATA_ROOT/spm.model, spm.vocab   sentencepiece model (ids: <s>=0 <pad>=1 </s>=2 <unk>=3)
    DATA_ROOT/dict.txt                fairseq dictionary, in sentencepiece id order, so a
                                      piece's fairseq index equals its sentencepiece id
    DATA_ROOT/config.yaml             the data config (VideoDataConfig)

If config.yaml exists already, its settings are kept unless a flag overrides
them, so re-running this does not reset the frame sampling or crop settings
(nor the caption normalisation, lowercase and punctuation, that
scripts/prepare_how2sign.py may have recorded there).

An invalid manifest row (a caption with no word left after normalisation
included) stops it naming the file and line, as it would stop training;
--skip-invalid leaves such rows out with a logged count per reason.
"""

import argparse
import logging
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_slt.corpus.data_config import (  # noqa: E402
    DATA_CONFIG_NAME,
    VIDEO_SETTINGS,
    DataConfigError,
    VideoDataConfig,
    add_video_setting_arguments,
)
from ssvp_slt.corpus.manifest import ManifestError, ManifestRowError, read_manifest  # noqa: E402
from ssvp_slt.corpus.text import PUNCTUATION_CHOICES, normalize_caption  # noqa: E402

logger = logging.getLogger("build_vocab")

SPM_PREFIX = "spm"
DICT_NAME = "dict.txt"
# fairseq's Dictionary puts these at 0..3; sentencepiece is told to use the same ids
SPECIAL_IDS = {"bos_id": 0, "pad_id": 1, "eos_id": 2, "unk_id": 3}
N_SPECIAL = len(SPECIAL_IDS)

# command-line flag -> VideoDataConfig field, for the settings kept from an existing config


class VocabError(Exception):
    pass


def load_captions(data: Path, split: str, lowercase: bool, punctuation: str = "keep", skip_invalid: bool = False):
    manifest_path = data / f"{split}.tsv"
    try:
        # a caption with no word left after normalisation (punctuation=strip: "?!...") stops here, naming its
        # line, as it would stop training: it would teach the model EOS-only targets
        manifest = read_manifest(manifest_path, need_text=True, skip_invalid=skip_invalid, punctuation=punctuation)
    except ManifestRowError as e:
        raise VocabError(f"{e}. Fix the row, or pass --skip-invalid to build the vocabulary without such rows")
    except ManifestError as e:
        raise VocabError(str(e))
    captions = [normalize_caption(row.tgt_text, lowercase, punctuation) for row in manifest.rows]
    if not captions:
        raise VocabError(f"{manifest_path}: no captions to train the vocabulary on")
    return manifest_path, captions


def base_config(data: Path) -> VideoDataConfig:
    """The existing config.yaml's settings, or the defaults if there is none."""
    if not (data / DATA_CONFIG_NAME).is_file():
        return VideoDataConfig()
    try:
        cfg = VideoDataConfig.load(data, check_files=False)
    except DataConfigError as e:
        raise VocabError(f"{e}. Fix or delete it; this script keeps the existing settings and will not overwrite a broken file")
    logger.info(f"keeping the settings of the existing {data / DATA_CONFIG_NAME} unless flags override them")
    return cfg


def train_sentencepiece(captions, data: Path, vocab_size: int, model_type: str):
    import sentencepiece as spm

    fd, tmp = tempfile.mkstemp(prefix="spm_input_", suffix=".txt", dir=data)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for c in captions:
                f.write(c + "\n")
        try:
            spm.SentencePieceTrainer.train(
                input=tmp,
                model_prefix=str(data / SPM_PREFIX),
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=1.0,
                hard_vocab_limit=False,  # a small corpus gets a smaller vocabulary instead of an error
                minloglevel=2,
                **SPECIAL_IDS,
            )
        except (RuntimeError, OSError) as e:
            raise VocabError(f"sentencepiece training failed ({e}); try a different --vocab-size")
    finally:
        os.unlink(tmp)
    return spm.SentencePieceProcessor(model_file=str(data / f"{SPM_PREFIX}.model"))


def write_dictionary(sp, captions, path: Path):
    """fairseq dict.txt: pieces after the 4 specials, in sentencepiece id order, with counts (>= 1)."""
    counts = Counter()
    for ids in sp.encode(captions):
        counts.update(ids)
    for name, i in SPECIAL_IDS.items():
        piece = sp.id_to_piece(i)
        expected = {"bos_id": "<s>", "pad_id": "<pad>", "eos_id": "</s>", "unk_id": "<unk>"}[name]
        if piece != expected:
            raise VocabError(f"sentencepiece id {i} is {piece!r}, expected {expected!r}")
    with open(path, "w", encoding="utf-8") as f:
        for i in range(N_SPECIAL, sp.get_piece_size()):
            f.write(f"{sp.id_to_piece(i)} {max(1, counts[i])}\n")


def verify(sp, dict_path: Path, captions):
    from fairseq.data import Dictionary

    dictionary = Dictionary.load(str(dict_path))
    if len(dictionary) != sp.get_piece_size():
        raise VocabError(f"{dict_path}: {len(dictionary)} entries, but the sentencepiece model has {sp.get_piece_size()}")
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        if dictionary.index(piece) != i:
            raise VocabError(f"{dict_path}: piece {piece!r} has fairseq index {dictionary.index(piece)} but sentencepiece id {i}")
    for caption in captions:
        pieces = sp.encode(caption, out_type=str)
        ids = dictionary.encode_line(" ".join(pieces), add_if_not_exist=False, append_eos=False)
        if (ids == dictionary.unk()).any():
            unk = [p for p, t in zip(pieces, ids.tolist()) if t == dictionary.unk()]
            raise VocabError(f"caption {caption!r} encodes to unknown piece(s) {unk}")
    return dictionary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="data root holding <train-split>.tsv")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--vocab-size", type=int, default=5000, help="upper bound; small corpora get fewer pieces")
    parser.add_argument("--model-type", choices=["unigram", "bpe"], default="unigram")
    parser.add_argument(
        "--lowercase",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="lower-case captions before sentencepiece (default: as in an existing config.yaml, else no)",
    )
    parser.add_argument(
        "--punctuation",
        choices=PUNCTUATION_CHOICES,
        default=None,
        help="keep or strip punctuation before sentencepiece (default: as in an existing config.yaml, else keep)",
    )
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave out invalid manifest rows (logged with their line and counted by reason) instead of stopping, "
        "as training's task.skip_invalid_samples=true does",
    )
    g = parser.add_argument_group("video settings (default: an existing config.yaml's, else the VideoDataConfig defaults)")
    add_video_setting_arguments(g)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)

    data = args.data
    try:
        if not data.is_dir():
            raise VocabError(f"{data}: data root not found")
        if args.vocab_size <= N_SPECIAL:
            raise VocabError(f"--vocab-size must be larger than {N_SPECIAL}")
        cfg = base_config(data)
        overrides = {name: getattr(args, name) for name in VIDEO_SETTINGS if getattr(args, name) is not None}
        if args.lowercase is not None:
            overrides["lowercase"] = args.lowercase
        if args.punctuation is not None:
            overrides["punctuation"] = args.punctuation
        overrides["sentencepiece_model"] = f"{SPM_PREFIX}.model"
        overrides["dictionary"] = DICT_NAME
        values = {**cfg.to_dict(), **overrides}
        values["mean"], values["std"] = list(values["mean"]), list(values["std"])
        cfg = VideoDataConfig(**values)
        try:
            cfg.validate()
        except DataConfigError as e:
            raise VocabError(str(e))

        if cfg.punctuation not in PUNCTUATION_CHOICES:
            raise VocabError(f"{data / DATA_CONFIG_NAME}: punctuation must be one of {', '.join(PUNCTUATION_CHOICES)}, got {cfg.punctuation!r}")
        manifest_path, captions = load_captions(
            data, args.train_split, cfg.lowercase, cfg.punctuation, skip_invalid=args.skip_invalid
        )
        logger.info(f"training a {args.model_type} sentencepiece model on {len(captions)} captions from {manifest_path}")
        sp = train_sentencepiece(captions, data, args.vocab_size, args.model_type)
        dict_path = data / DICT_NAME
        write_dictionary(sp, captions, dict_path)
        dictionary = verify(sp, dict_path, captions)
        cfg_path = cfg.save(data)
        VideoDataConfig.load(data)  # what training will do; fails loudly if anything is off
    except VocabError as e:
        logger.error(str(e))
        return 1

    if sp.get_piece_size() < args.vocab_size:
        logger.warning(f"the corpus only supports {sp.get_piece_size()} pieces (asked for {args.vocab_size})")
    settings = ", ".join(f"{k}={v}" for k, v in cfg.to_dict().items())
    print(f"vocabulary: {len(dictionary)} symbols ({args.model_type}, lowercase={cfg.lowercase}, punctuation={cfg.punctuation}) -> {data / (SPM_PREFIX + '.model')}, {dict_path}")
    print(f"config: {cfg_path} ({settings})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
