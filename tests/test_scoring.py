import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_slt.scoring import ScoringError, parse_generate_output, score  # noqa: E402

SCRIPT = REPO_ROOT / "scripts" / "score_generate.py"

# What `fairseq-generate DATA --task how2sign_video --path ckpt --beam 5 --nbest 2
# --post-process sentencepiece` prints: samples in batch order (not id order), the H- line
# after --post-process, the D- line after the tokenizer's decode, n-best hypotheses best first.
GENERATE_OUTPUT = """\
2024-05-01 12:00:00 | INFO | fairseq_cli.generate | {'_name': None, 'common': {'_name': None, 'no_progress_bar': False}}
2024-05-01 12:00:01 | INFO | fairseq.tasks.fairseq_task | loaded 3 examples from: data/test.tsv
2024-05-01 12:00:02 | INFO | fairseq_cli.generate | loading model(s) from checkpoints/checkpoint_best.pt
S-2\t<video clips/c.mp4>
T-2\tAnd that's it!
H-2\t-0.2101\tAnd that's it!
D-2\t-0.2101\tAnd that's it!
P-2\t-0.1000 -0.2000 -0.3000 -0.2404
H-2\t-0.9000\tAnd that is it!
D-2\t-0.9000\tAnd that is it!
P-2\t-0.5000 -0.9000 -1.2000 -1.0000
S-0\t<video clips/a.mp4>
T-0\tthe cat sat on the red mat
H-0\t-0.4312\tthe cat sat on the mat
D-0\t-0.4312\tthe cat sat on the mat
P-0\t-0.3000 -0.4000 -0.5000 -0.4000 -0.5000 -0.4000 -0.5184
H-0\t-0.8000\tthe cat on the mat
D-0\t-0.8000\tthe cat on the mat
P-0\t-0.3000 -0.4000 -0.5000 -0.4000 -0.5000 -3.2000
S-10\t<video clips/k.mp4>
T-10\tFirst, take the rope.
H-10\t-1.0500\t
D-10\t-1.0500\t
P-10\t-1.0500
2024-05-01 12:00:05 | INFO | fairseq_cli.generate | NOTE: hypothesis and token scores are output in base 2
2024-05-01 12:00:05 | INFO | fairseq_cli.generate | Translated 3 sentences (17 tokens) in 1.2s (2.50 sentences/s, 14.17 tokens/s)
Generate test with beam=5: BLEU4 = 45.12, 70.0/50.0/40.0/30.0 (BP=1.000, ratio=1.000, syslen=20, reflen=20)
"""


def test_parse_generate_output_text_and_path(tmp_path):
    expected = [
        ("0", "the cat sat on the red mat", "the cat sat on the mat"),
        ("2", "And that's it!", "And that's it!"),
        ("10", "First, take the rope.", ""),
    ]
    assert parse_generate_output(GENERATE_OUTPUT) == expected
    path = tmp_path / "gen.txt"
    path.write_text(GENERATE_OUTPUT)
    assert parse_generate_output(path) == expected
    assert parse_generate_output(str(path)) == expected


def test_parse_falls_back_to_h_lines():
    text = "\n".join(line for line in GENERATE_OUTPUT.splitlines() if not line.startswith("D-"))
    text = text.replace("H-0\t-0.4312\tthe cat sat on the mat", "H-0\t-0.4312\tthe cat sat on the rug")
    assert parse_generate_output(text)[0] == ("0", "the cat sat on the red mat", "the cat sat on the rug")


def test_parse_errors():
    with pytest.raises(ScoringError, match="no hypotheses"):
        parse_generate_output("T-0\tsome reference\nS-0\tsource\n")
    with pytest.raises(ScoringError, match="no references"):
        parse_generate_output("D-0\t-0.5\thyp\n")
    with pytest.raises(ScoringError, match=r"ids without a hypothesis: \['1'\]"):
        parse_generate_output("T-0\ta\nD-0\t-1\ta\nT-1\tb\n")
    with pytest.raises(ScoringError, match="2 references but 1 hypotheses"):
        score(["a", "b"], ["a"])


def test_perfect_hypotheses():
    refs = ["the cat sat on the mat", "And that's it!", "First, take the rope."]
    result = score(refs, list(refs))
    m = result["metrics"]
    for n in range(1, 5):
        assert m[f"bleu_{n}"] == pytest.approx(100.0)
    assert m["chrf"] == pytest.approx(100.0)
    assert m["wer"] == 0.0
    assert m["exact_match"] == 100.0
    assert result["num_samples"] == 3


def test_known_example():
    ref, hyp = "the cat sat on the red mat", "the cat sat on the mat"
    m = score([ref], [hyp])["metrics"]
    # 6 hypothesis words vs 7 reference words; n-gram precisions 6/6, 4/5, 3/4, 2/3
    bp = math.exp(1 - 7 / 6)
    assert m["bleu_1"] == pytest.approx(100 * bp, abs=1e-6)
    assert m["bleu_2"] == pytest.approx(100 * bp * (1 * 4 / 5) ** (1 / 2), abs=1e-6)
    assert m["bleu_3"] == pytest.approx(100 * bp * (1 * 4 / 5 * 3 / 4) ** (1 / 3), abs=1e-6)
    assert m["bleu_4"] == pytest.approx(100 * bp * (1 * 4 / 5 * 3 / 4 * 2 / 3) ** (1 / 4), abs=1e-6)
    assert m["bleu_4"] == pytest.approx(67.3182, abs=1e-3)
    assert m["bleu_4"] == pytest.approx(sacrebleu.corpus_bleu([hyp], [[ref]]).score)
    assert m["chrf"] == pytest.approx(sacrebleu.corpus_chrf([hyp], [[ref]]).score)
    assert m["wer"] == pytest.approx(100 / 7)  # one deletion
    assert m["exact_match"] == 0.0
    assert (m["avg_hyp_len"], m["avg_ref_len"]) == (6, 7)


def test_lowercase_option():
    assert score(["Hello World"], ["hello world"])["metrics"]["exact_match"] == 0.0
    lower = score(["Hello World"], ["hello world"], lowercase=True)
    assert lower["metrics"]["exact_match"] == 100.0 and lower["metrics"]["wer"] == 0.0
    assert "case:lc" in lower["sacrebleu_signature"]


def test_cli_writes_json(tmp_path):
    gen = tmp_path / "gen.txt"
    gen.write_text(GENERATE_OUTPUT)
    out = tmp_path / "scores" / "test.json"
    res = subprocess.run(
        [sys.executable, str(SCRIPT), str(gen), "--json", str(out)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert "BLEU-4" in res.stdout and "WER" in res.stdout
    assert "1 hypothesis/es are empty" in res.stderr
    data = json.loads(out.read_text())
    assert data["num_samples"] == 3
    refs = ["the cat sat on the red mat", "And that's it!", "First, take the rope."]
    hyps = ["the cat sat on the mat", "And that's it!", ""]
    assert data["metrics"]["bleu_4"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert data["metrics"]["exact_match"] == pytest.approx(100 / 3)
    assert data["metrics"]["wer"] == pytest.approx(100 * (1 + 4) / (7 + 3 + 4))
    for key in ("bleu_1", "bleu_2", "bleu_3", "chrf"):
        assert key in data["metrics"]
    assert data["sacrebleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")


def test_cli_fails_without_hypotheses(tmp_path):
    gen = tmp_path / "gen.txt"
    gen.write_text("2024-05-01 12:00:00 | INFO | fairseq_cli.generate | nothing generated\n")
    res = subprocess.run([sys.executable, str(SCRIPT), str(gen)], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert f"{gen}: no hypotheses" in res.stderr
