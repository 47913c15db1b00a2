"""A checkpoint records the vocabulary it was trained with (dict.txt's symbols, a fingerprint of spm.model) and
refuses another at load, naming both: fairseq-generate, SignTranslator / ssvp-slt-translate, fairseq-hydra-train
resuming a run, ensembles. Checkpoints written before the record load with a warning."""

import logging
import os
import shutil
import subprocess
from argparse import Namespace
from pathlib import Path

import pytest
import torch

from conftest import BIN, REPO, hydra_train
from ssvp_plugin.models.vocabulary_check import (
    BUFFER,
    VocabularyMismatchError,
    VocabularyRecord,
    record_for_task,
    sentencepiece_fingerprint,
)

TRAIN = ["dataset.disable_validation=true", "task.eval_bleu=false", "optimizer.groups.default.lr_scheduler.warmup_updates=1"]


def copy_root(synthetic_root: Path, dst: Path) -> Path:
    """A private copy of the data root's files. Its manifests name clips as ../corpus/...: a link next to the
    copy points there, so the clips stay shared."""
    dst.mkdir(parents=True)
    for f in synthetic_root.iterdir():
        if f.is_file():
            shutil.copy2(f, dst / f.name)
    corpus = dst.parent / "corpus"
    if not corpus.exists():
        corpus.symlink_to(synthetic_root.parent / "corpus")
    return dst


def dict_lines(root: Path):
    return (root / "dict.txt").read_text(encoding="utf-8").splitlines()


def write_dict(root: Path, lines):
    (root / "dict.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def swap_first_two(root: Path):
    """Two symbols the other way round: what rebuilding a vocabulary can do (same size, other ids)."""
    lines = dict_lines(root)
    lines[0], lines[1] = lines[1], lines[0]
    write_dict(root, lines)
    return [line.split()[0] for line in lines[:2]]


def run(cmd, cwd):
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    return res.returncode, res.stdout + res.stderr


def load(checkpoint: Path, data: Path):
    """The checkpoint loaded for the data root as fairseq-generate loads it (task from the data root)."""
    from fairseq import checkpoint_utils, utils

    from conftest import load_task

    utils.import_user_module(Namespace(user_dir=str(REPO / "ssvp_plugin")))
    models, _ = checkpoint_utils.load_model_ensemble([str(checkpoint)], task=load_task(data))
    return models[0]


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    """A tiny mae_vit_slt trained for 2 updates on a private copy of the synthetic data root."""
    work = tmp_path_factory.mktemp("vocabulary")
    root = copy_root(synthetic_root, work / "data")
    hydra_train("quick_synthetic", root, work / "ckpt", work, "optimization.max_update=2", *TRAIN)
    return work, root, work / "ckpt" / "checkpoint_last.pt"


def test_the_checkpoint_records_the_vocabulary_it_was_trained_with(trained):
    from fairseq.data import Dictionary

    _, root, checkpoint = trained
    state = torch.load(checkpoint)  # weights_only (torch's default): the record is a plain uint8 tensor
    record = VocabularyRecord.from_tensor(state["model"][BUFFER])
    assert record.symbols == Dictionary.load(str(root / "dict.txt")).symbols
    assert record.dictionary == str(root / "dict.txt") and record.sentencepiece == str(root / "spm.model")
    assert record.data_config == str(root / "config.yaml")
    assert record.sentencepiece_fingerprint == sentencepiece_fingerprint(root / "spm.model")
    assert load(checkpoint, root) is not None  # and loads with its own data root


@pytest.mark.parametrize("change", ["one symbol fewer", "two symbols swapped"])
def test_fairseq_generate_refuses_another_dict_txt_naming_both_files(trained, change):
    work, root, checkpoint = trained
    other = copy_root(root, work / change.replace(" ", "_"))
    n = len(dict_lines(root)) + 4  # fairseq's <s> <pad> </s> <unk> come first
    if change == "one symbol fewer":
        write_dict(other, dict_lines(other)[:-1])
        difference = f"{n} symbols in the checkpoint's dictionary, {n - 1} in the current dictionary"
    else:
        a, b = swap_first_two(other)
        difference = f"2 symbol(s) changed, first at index 4: {b!r} in the checkpoint's dictionary, {a!r} in the current"
    rc, out = run(
        [BIN / "fairseq-generate", other, "--user-dir", REPO / "ssvp_plugin", "--task", "how2sign_video",
         "--path", checkpoint, "--gen-subset", "test", "--beam", "1", "--max-len-b", "5"],
        work,
    )
    assert rc != 0, f"decoded with another dictionary:\n{out[-2000:]}"
    assert "vocabulary mismatch: the checkpoint was trained with " + str(root / "dict.txt") + " + spm.model" in out
    assert f"{other / 'config.yaml'} names {other / 'dict.txt'} + spm.model" in out
    assert difference in out


def test_same_symbols_with_other_counts_load_and_another_spm_model_is_refused(trained, caplog):
    import sentencepiece

    work, root, checkpoint = trained
    recounted = copy_root(root, work / "recounted")
    write_dict(recounted, [f"{line.split()[0]} {i + 1}" for i, line in enumerate(dict_lines(recounted))])
    with caplog.at_level(logging.WARNING):
        load(checkpoint, recounted)  # counts do not decide decoding
    assert "vocabulary" not in caplog.text

    # the same dict.txt with a sentencepiece model trained on other text
    respm = copy_root(root, work / "other_spm")
    text = respm / "text.txt"
    text.write_text("\n".join(["the quick brown fox jumps over the lazy dog"] * 20 + ["a cat sat on a mat"] * 20) + "\n")
    sentencepiece.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(respm / "spm"), vocab_size=40, hard_vocab_limit=False, bos_id=0, pad_id=1, eos_id=2, unk_id=3,
        minloglevel=2,
    )
    with pytest.raises(VocabularyMismatchError, match=r"same symbols, but the sentencepiece models differ"):
        load(checkpoint, respm)


def rerooted_checkpoint(checkpoint: Path, dst: Path, data: Path) -> Path:
    """The checkpoint as if trained on ``data`` (its cfg.task.data), which then had its vocabulary rebuilt."""
    state = torch.load(checkpoint)
    state["cfg"]["task"]["data"] = str(data)
    torch.save(state, dst)
    return dst


def test_translate_refuses_a_rebuilt_vocabulary_in_the_training_data_root(trained, capsys):
    from ssvp_slt.inference.cli import main as translate_main
    from ssvp_slt.translate import SignTranslator

    work, root, checkpoint = trained
    rebuilt = copy_root(root, work / "rebuilt")
    swap_first_two(rebuilt)
    moved = rerooted_checkpoint(checkpoint, work / "rebuilt.pt", rebuilt)
    # its own (now rebuilt) data root: the one SignTranslator and ssvp-slt-translate read by default
    with pytest.raises(ValueError, match=rf"trained with another vocabulary than {rebuilt / 'dict.txt'} .*index 4"):
        SignTranslator.from_checkpoint(moved)
    clip = next((root.parent / "corpus" / "raw" / "clips").glob("*.mp4"))
    assert translate_main(["--checkpoint", str(moved), "--device", "cpu", str(clip)]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and str(root / "dict.txt") in err and str(rebuilt / "dict.txt") in err


def test_resuming_after_the_data_roots_dict_txt_changed_is_refused(trained):
    work, root, checkpoint = trained
    save_dir = work / "resumed"
    save_dir.mkdir()
    shutil.copy2(checkpoint, save_dir / "checkpoint_last.pt")
    original = (root / "dict.txt").read_bytes()
    try:
        swap_first_two(root)  # the vocabulary rebuilt in place, under the run's data root
        rc, out = run(
            [BIN / "fairseq-hydra-train", "--config-dir", REPO / "configs", "--config-name", "quick_synthetic",
             f"task.data={root}", f"common.user_dir={REPO / 'ssvp_plugin'}", f"checkpoint.save_dir={save_dir}",
             "dataset.num_workers=0", "optimization.max_update=3", *TRAIN],
            work,
        )
    finally:
        (root / "dict.txt").write_bytes(original)
    assert rc != 0, f"resumed with another dictionary:\n{out[-2000:]}"
    assert "VocabularyMismatchError: vocabulary mismatch" in out
    assert f"{root / 'config.yaml'} names {root / 'dict.txt'} + spm.model" in out
    assert "2 symbol(s) changed, first at index 4" in out
    assert "num_updates 3" not in out
    # the mismatch is the run's error, not fairseq's "please ensure that the architectures match"
    assert "Cannot load model parameters" not in out


def test_checkpoints_without_a_record_load_with_a_warning(trained, caplog):
    work, root, checkpoint = trained
    state = torch.load(checkpoint)
    del state["model"][BUFFER]  # as written before vocabulary records
    old = work / "old.pt"
    torch.save(state, old)
    with caplog.at_level(logging.WARNING):
        model = load(old, root)
    assert "records no vocabulary" in caplog.text and str(root / "dict.txt") in caplog.text
    assert VocabularyRecord.from_tensor(getattr(model, BUFFER)).dictionary == str(root / "dict.txt")
    smaller = copy_root(root, work / "old_smaller")
    write_dict(smaller, dict_lines(smaller)[:-1])
    with pytest.raises(VocabularyMismatchError, match=rf"output layer has \d+ symbols, {smaller / 'config.yaml'} names"):
        load(old, smaller)  # a clear message instead of a tensor size mismatch


def test_ensembles_compare_the_recorded_vocabularies(trained, synthetic_root):
    from ssvp_plugin.models.ensemble_checkpoints import check_ensemble_checkpoints
    from ssvp_plugin.models.weighted_ensemble import EnsembleError

    work, root, checkpoint = trained
    # the same data root on record, but trained when its dictionary listed two symbols the other way round
    state = torch.load(checkpoint)
    record = VocabularyRecord.from_tensor(state["model"][BUFFER])
    record.symbols[4], record.symbols[5] = record.symbols[5], record.symbols[4]
    state["model"][BUFFER] = record.to_tensor()
    swapped = work / "swapped.pt"
    torch.save(state, swapped)
    with pytest.raises(EnsembleError, match=r"checkpoint_last.pt .* and .*swapped.pt .*different vocabularies \(2 symbol"):
        check_ensemble_checkpoints([checkpoint, swapped])
    summaries = check_ensemble_checkpoints([checkpoint, checkpoint])
    assert summaries[0].vocabulary is not None and summaries[0].dictionary_file == root / "dict.txt"


def test_a_model_built_without_a_data_config_records_only_its_symbols():
    from types import SimpleNamespace

    from fairseq.data import Dictionary

    d = Dictionary()
    d.add_symbol("▁a")
    record = record_for_task(SimpleNamespace(target_dictionary=d, data_cfg=SimpleNamespace(path=None)))
    assert record.symbols == d.symbols and record.dictionary is None and record.sentencepiece_fingerprint is None
    assert VocabularyRecord.from_tensor(record.to_tensor()) == record
