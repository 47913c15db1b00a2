"""ssvp-slt-compare: sacreBLEU's paired tests for every metric (agreeing with sacreBLEU called directly), verdicts on a
clearly better and an identical system, refusal of systems scored on other clips or references, and the outputs."""

import json
import random

import numpy as np
import pytest
from rouge_score.rouge_scorer import RougeScorer
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from ssvp_slt.evaluation.compare import CompareError, System, check_same_clips, main as compare_main, run_comparison
from ssvp_slt.evaluation.metrics import METRIC_KEYS, MeteorStatus, meteor_status, sentence_scores
from ssvp_slt.evaluation.predictions import Prediction, write_predictions_csv
from ssvp_slt.evaluation.significance import BETTER, SAME, WORSE, compare_systems

WORDS = "the a man woman dog cat takes sees wants red blue big ball bird car house runs sleeps".split()
NO_METEOR = MeteorStatus(reason="not needed for this test")  # METEOR has its own tests; WordNet costs seconds to load


def corpus(n=80, seed=0):
    """References, a system that gets most of them right, and one that outputs another sentence each time."""
    rng = random.Random(seed)
    refs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))) + "." for _ in range(n)]
    good = [r if i % 4 else " ".join(r.split()[:-2]) + " ball." for i, r in enumerate(refs)]
    bad = [refs[(i + 7) % n] for i in range(n)]
    return refs, good, bad


def test_clearly_better_and_identical_systems_get_the_right_verdicts():
    refs, good, bad = corpus()
    results = compare_systems([("good", good), ("bad", bad), ("same", list(good))], refs, meteor=NO_METEOR)
    assert set(results) == set(METRIC_KEYS) - {"meteor"}
    for key, comparison in results.items():
        base, worse, same = comparison.systems
        assert base.verdict == "baseline" and base.p_value is None
        assert worse.verdict == WORSE and worse.p_value < 0.01, key
        assert same.verdict == SAME and same.p_value == 1.0 and same.score == base.score, key
    # the other way round: lower WER / CER count as better
    reverse = compare_systems([("bad", bad), ("good", good)], refs, meteor=NO_METEOR)
    assert all(c.systems[1].verdict == BETTER for c in reverse.values())
    assert reverse["wer"].systems[1].score < reverse["wer"].systems[0].score


@pytest.mark.parametrize("test", ["bs", "ar"])
def test_bleu_and_chrf_are_sacrebleus_own_paired_test(test):
    refs, good, bad = corpus(60, seed=1)
    noisy = [h if i % 3 else "the man sees a dog." for i, h in enumerate(good)]
    n = 300 if test == "bs" else 500
    ours = compare_systems([("good", good), ("noisy", noisy), ("bad", bad)], refs, test=test, n_samples=n, meteor=NO_METEOR)
    direct = PairedTest([("good", good), ("noisy", noisy), ("bad", bad)], {"BLEU": BLEU(), "chrF": CHRF()}, [refs],
                        test_type=test, n_samples=n, n_ar_confidence=1000 if test == "ar" else -1)
    _, scores = direct()
    for key, name in (("bleu_4", "BLEU"), ("chrf", "chrF2")):  # sacreBLEU names chrF's score by its beta
        for mine, theirs in zip(ours[key].systems, scores[name]):
            assert mine.score == pytest.approx(theirs.score)
            assert mine.mean == pytest.approx(theirs.mean) and mine.ci == pytest.approx(theirs.ci)
            if mine.p_value is not None:
                assert mine.p_value == pytest.approx(theirs.p_value)


def test_the_other_metrics_are_resampled_the_same_way():
    """ROUGE-L's bootstrap mean and CI are those of the sentence-level F-measures over sacreBLEU's resampled clip sets."""
    refs, good, bad = corpus(50, seed=2)
    ours = compare_systems([("good", good), ("bad", bad)], refs, n_samples=1000, meteor=NO_METEOR)["rouge_l"].systems[0]
    scorer = RougeScorer(["rougeL"], use_stemmer=False)
    f = np.array([scorer.score(r, h)["rougeL"].fmeasure for r, h in zip(refs, good)], dtype="float32")
    idx = np.random.default_rng(12345).choice(len(refs), size=(1000, len(refs)), replace=True)  # sacreBLEU's draw
    scores = np.sort(100 * f[idx].sum(1) / len(refs))
    assert ours.score == pytest.approx(100 * f.mean(), rel=1e-6)
    assert ours.mean == pytest.approx(scores.mean(), rel=1e-5)
    assert ours.ci == pytest.approx(0.5 * (scores[1000 - 25 - 1] - scores[25]), rel=1e-5)


def records(refs, hyps, ids=None):
    return [Prediction(i, r, h) for i, r, h in zip(ids or [f"c{k}" for k in range(len(refs))], refs, hyps)]


def test_systems_on_other_clips_or_references_are_refused_naming_the_ids():
    refs, good, bad = corpus(10)
    base = System("video", "predictions file", "video.csv", records(refs, good))
    fewer = System("landmarks", "predictions file", "lm.csv", records(refs[:8], bad[:8]))
    with pytest.raises(CompareError, match=r"landmarks \(lm.csv\) was scored on other clips than video \(video.csv\): "
                                           r"2 id\(s\) only in video \['c8', 'c9'\], 0 only in landmarks \[\]"):
        check_same_clips([base, fewer])
    other_refs = list(refs)
    other_refs[3] = other_refs[3].upper()
    recased = System("cased", "predictions file", "cased.csv", records(other_refs, good))
    with pytest.raises(CompareError, match=r"cased \(cased.csv\) has other references than video for 1 clip\(s\) \['c3'\]"):
        check_same_clips([base, recased])
    # the same clips in another order are fine: aligned by id
    shuffled = System("shuffled", "predictions file", "s.csv", list(reversed(records(refs, bad))))
    comparison = run_comparison([base, shuffled], n_samples=100)
    assert comparison["systems"][1]["num_samples"] == 10


def test_command_line_writes_table_json_and_figure(tmp_path, capsys):
    refs, good, bad = corpus(40, seed=3)
    for name, hyps in (("video", good), ("landmarks", bad)):
        write_predictions_csv(tmp_path / f"{name}.csv", records(refs, hyps), sentence_scores(refs, hyps))
    out = tmp_path / "out" / "cmp"
    rc = compare_main([str(tmp_path / "video.csv"), f"lm={tmp_path / 'landmarks.csv'}", "--title", "SYNTHETIC test",
                       "--n-samples", "200", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "SYNTHETIC test" in printed and "worse, p=" in printed
    comparison = json.loads((tmp_path / "out" / "cmp.json").read_text())
    assert comparison["baseline"] == "video" and [s["name"] for s in comparison["systems"]] == ["video", "lm"]
    assert comparison["statistics"]["samples"] == 200
    meteor_computed = meteor_status().reader is not None
    for key in METRIC_KEYS:
        m = comparison["metrics"][key]
        if key == "meteor" and not meteor_computed:
            assert m["systems"] is None and m["signature"].startswith("not computed")
            continue
        lm = m["systems"][1]
        assert lm["verdict"] == "worse" and lm["ci95"][0] <= lm["bootstrap_mean"] <= lm["ci95"][1], key
    assert comparison["speed_note"].startswith("no checkpoint was decoded")
    md = (tmp_path / "out" / "cmp.md").read_text()
    assert md.startswith("**SYNTHETIC test** (40 clips)") and "| video (baseline) |" in md and "| lm |" in md
    png = (tmp_path / "out" / "cmp.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_plain_hypothesis_file_takes_ids_and_references_from_the_manifest(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.yaml").write_text("lowercase: true\npunctuation: keep\n")
    captions = ["The man sees a dog.", "A woman takes the ball.", "The bird sleeps."]
    (data / "test.tsv").write_text("id\tvideo\tn_frames\tfps\ttgt_text\n" + "".join(
        f"clip{i}\tclips/{i}.mp4\t50\t25\t{c}\n" for i, c in enumerate(captions)))
    normalised = [c.lower() for c in captions]
    write_predictions_csv(tmp_path / "video.csv", records(normalised, normalised, [f"clip{i}" for i in range(3)]),
                          sentence_scores(normalised, normalised))
    (tmp_path / "seq2seq.txt").write_text("the man sees a dog.\na woman takes a ball.\nthe bird runs.\n")
    rc = compare_main([str(tmp_path / "video.csv"), str(tmp_path / "seq2seq.txt"), "--data", str(data), "--split", "test",
                       "--n-samples", "100", "--out", str(tmp_path / "cmp"), "--no-figure"])
    assert rc == 0, capsys.readouterr().err
    systems = json.loads((tmp_path / "cmp.json").read_text())["systems"]
    assert systems[1]["kind"] == "hypotheses, one per line in manifest order" and systems[1]["num_samples"] == 3
    (tmp_path / "short.txt").write_text("one line\n")
    assert compare_main([str(tmp_path / "video.csv"), str(tmp_path / "short.txt"), "--data", str(data), "--split", "test",
                         "--out", str(tmp_path / "cmp2"), "--no-figure"]) == 1
    assert "1 lines, but" in capsys.readouterr().err
