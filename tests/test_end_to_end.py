"""The user's path through the real command-line tools: fairseq-hydra-train, then
fairseq-generate, then parsing and scoring the output."""

import pytest
import torch

from conftest import BIN, REPO, hydra_train
from conftest import run_tool as run
from ssvp_slt.corpus.manifest import read_manifest
from ssvp_slt.scoring import parse_generate_output, score


def train(data, save_dir, cwd, max_update):
    return hydra_train(
        "quick_synthetic", data, save_dir, cwd,
        f"optimization.max_update={max_update}", "optimizer.groups.default.lr_scheduler.warmup_updates=2", "dataset.validate_interval=1",
    )


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    log = train(synthetic_root, work / "ckpt", work, max_update=6)
    return work, log


def test_training_runs_validates_with_bleu_and_saves_checkpoints(trained):
    work, log = trained
    assert "valid on 'val' subset" in log and "| bleu " in log
    assert "num_updates 6" in log or "num_updates=6" in log
    for name in ("checkpoint_best.pt", "checkpoint_last.pt"):
        assert (work / "ckpt" / name).is_file()
    assert list((work / "ckpt" / "tensorboard").iterdir())


def test_checkpoint_loads_with_torch_weights_only_default(trained):
    work, _ = trained
    state = torch.load(work / "ckpt" / "checkpoint_last.pt")  # torch>=2.6 default: weights_only=True
    assert state["cfg"]["model"]["preset"] == "tiny"
    assert any(k.startswith("encoder.vit.blocks.") for k in state["model"])


@pytest.fixture(scope="module")
def generated(trained, synthetic_root):
    work, _ = trained
    out = work / "gen"
    log = run(
        [
            BIN / "fairseq-generate", synthetic_root, "--user-dir", REPO / "ssvp_plugin", "--task", "how2sign_video",
            "--path", work / "ckpt" / "checkpoint_best.pt", "--gen-subset", "test", "--beam", "5",
            "--max-len-b", "20", "--scoring", "sacrebleu", "--results-path", out,
        ],
        work,
    )
    return out / "generate-test.txt", log


def test_generate_decodes_and_the_output_is_parsed_and_scored(generated, synthetic_root):
    gen_file, log = generated
    assert "Generate test with beam=5: BLEU" in gen_file.read_text()
    triples = parse_generate_output(gen_file)
    rows = read_manifest(synthetic_root / "test.tsv").rows
    assert len(triples) == len(rows)
    # references come back detokenised by the task's sentencepiece model: the normalised captions
    assert sorted(ref for _, ref, _ in triples) == sorted(r.tgt_text.lower() for r in rows)
    assert not any("\u2581" in hyp for _, _, hyp in triples)
    metrics = score([r for _, r, _ in triples], [h for _, _, h in triples])["metrics"]
    assert 0.0 <= metrics["bleu_4"] <= 100.0 and metrics["wer"] >= 0.0
    assert "how2sign_video" in log


def test_score_script_as_documented_on_real_generate_output(generated, synthetic_root, tmp_path, capsys):
    """scripts/score_generate.py's own usage line, on what fairseq-generate really wrote."""
    import json

    import sacrebleu

    from conftest import run_script_captured

    gen_file, _ = generated
    capsys.readouterr()
    rc, out = run_script_captured("score_generate", gen_file, "--json", tmp_path / "scores.json")
    warnings = capsys.readouterr().err
    assert rc == 0, out
    assert "joined" not in warnings and "pieces" not in warnings
    triples = parse_generate_output(gen_file)
    refs, hyps = [r for _, r, _ in triples], [h for _, _, h in triples]
    assert refs and all(len(r.split()) > 1 for r in refs)  # real sentences, not pieces or joined words
    data = json.loads((tmp_path / "scores.json").read_text())
    assert data["num_samples"] == len(refs)
    assert data["metrics"]["bleu_4"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)


def test_post_process_sentencepiece_joins_words_and_the_scorer_says_so(trained, synthetic_root, tmp_path, capsys):
    """The task already detokenises: --post-process sentencepiece decodes a second time and joins every word."""
    from conftest import run_script_captured

    work, _ = trained
    out = tmp_path / "gen"
    run(
        [
            BIN / "fairseq-generate", synthetic_root, "--user-dir", REPO / "ssvp_plugin", "--task", "how2sign_video",
            "--path", work / "ckpt" / "checkpoint_best.pt", "--gen-subset", "test", "--beam", "1",
            "--max-len-b", "20", "--post-process", "sentencepiece", "--results-path", out,
        ],
        work,
    )
    refs = [r for _, r, _ in parse_generate_output(out / "generate-test.txt")]
    assert all(" " not in r for r in refs)
    capsys.readouterr()
    rc, _ = run_script_captured("score_generate", out / "generate-test.txt")
    warnings = capsys.readouterr().err
    assert rc == 0 and "joined without spaces" in warnings and "--post-process" in warnings


def test_python_api_translates_like_fairseq_generate(trained, generated, synthetic_root):
    from ssvp_slt.translate import SignTranslator

    work, _ = trained
    by_id = {int(i): hyp for i, _, hyp in parse_generate_output(generated[0])}
    rows = read_manifest(synthetic_root / "test.tsv").rows
    translator = SignTranslator.from_checkpoint(work / "ckpt" / "checkpoint_best.pt", synthetic_root, beam=5, max_len_b=20)
    texts = [t.text for t in translator.translate([synthetic_root / r.video for r in rows[:3]], batch_size=2)]
    assert texts == [by_id[i] for i in range(3)]


def test_training_resumes_from_the_last_checkpoint(trained, synthetic_root):
    work, _ = trained
    log = train(synthetic_root, work / "ckpt", work, max_update=8)
    assert "checkpoint_last.pt (epoch" in log and "@ 6 updates)" in log
    assert "num_updates 8" in log or "num_updates=8" in log
