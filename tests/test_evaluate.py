"""ssvp-slt-evaluate: every metric against the library that defines it (called directly here), the JSON schema,
the predictions CSV round trip, METEOR's WordNet, and a real tiny checkpoint decoded through fairseq's generator
exactly as fairseq-generate decodes it."""

import csv
import gzip
import io
import json
import lzma
import shutil
import tarfile

import jiwer
import pytest
import sacrebleu
from nltk.tokenize import word_tokenize
from nltk.translate.meteor_score import meteor_score
from rouge_score.rouge_scorer import RougeScorer

from conftest import BIN, REPO, hydra_train
from conftest import run_tool as run
from ssvp_slt.evaluation import wordnet
from ssvp_slt.evaluation.evaluate import main as evaluate_main
from ssvp_slt.evaluation.metrics import METRIC_KEYS, EvaluationError, MeteorStatus, meteor_status, score_corpus, sentence_scores
from ssvp_slt.evaluation.predictions import Prediction, read_predictions, write_predictions_csv

# built to exercise the definitions: an empty hypothesis, unicode, punctuation, case, numbers, exact matches
REFS = [
    "the cat sat on the red mat.",
    "Café déjà vu, naïve façade!",
    "First, take the rope.",
    'He said "hi", then left.',
    "数字 10:30 and 3.5% more",
    "and that's it",
    "the dog is large and the auto is fast",
    "a b c d e f g",
]
HYPS = [
    "the cat sat on the mat",
    "cafe deja vu naive facade",
    "",
    'He said "hi", then left.',
    "数字 10:30 and 3.5 % more",
    "And that is it!",
    "the dog is big and the car is fast",
    "a b c d e f g",
]

needs_wordnet = pytest.mark.skipif(
    meteor_status().reader is None, reason=f"WordNet 3.0 not installed (make install): {meteor_status().reason}"
)


def library_values(refs, hyps, with_meteor=True):
    """Each metric computed by its own library, directly."""
    out = {f"bleu_{n}": sacrebleu.metrics.BLEU(max_ngram_order=n).corpus_score(hyps, [refs]).score for n in range(1, 5)}
    out["chrf"] = sacrebleu.corpus_chrf(hyps, [refs]).score
    scorer = RougeScorer(["rougeL"], use_stemmer=False)
    out["rouge_l"] = 100 * sum(scorer.score(r, h)["rougeL"].fmeasure for r, h in zip(refs, hyps)) / len(refs)
    if with_meteor:
        out["meteor"] = 100 * sum(
            meteor_score([word_tokenize(r, preserve_line=True)], word_tokenize(h, preserve_line=True)) for r, h in zip(refs, hyps)
        ) / len(refs)
    out["wer"] = 100 * jiwer.wer(refs, hyps)
    out["cer"] = 100 * jiwer.cer(refs, hyps)
    return out


@needs_wordnet
def test_every_metric_equals_its_library_called_directly():
    result = score_corpus(REFS, HYPS)
    expected = library_values(REFS, HYPS)
    assert set(result["metrics"]) == set(METRIC_KEYS)
    for key in METRIC_KEYS:
        assert result["metrics"][key] == pytest.approx(expected[key], rel=1e-12, abs=1e-12), key
    # the data was built so that no metric is trivially 0 or 100
    assert all(0 < result["metrics"][k] < 100 for k in METRIC_KEYS)
    stats = result["caption_stats"]
    assert stats["avg_pred_length"] == pytest.approx(sum(len(h.split()) for h in HYPS) / len(HYPS))
    assert stats["avg_ref_length"] == pytest.approx(sum(len(r.split()) for r in REFS) / len(REFS))
    assert stats["exact_match_rate"] == pytest.approx(100 * 2 / len(REFS))  # two hypotheses equal their reference


def test_sentence_scores_equal_the_libraries():
    for (r, h), s in zip(zip(REFS, HYPS), sentence_scores(REFS, HYPS)):
        assert s["sentence_bleu"] == pytest.approx(sacrebleu.sentence_bleu(h, [r]).score)
        assert s["sentence_wer"] == pytest.approx(100 * jiwer.wer(r, h))
    assert sentence_scores([""], ["x"])[0]["sentence_wer"] is None  # no reference words: undefined, left empty


@needs_wordnet
def test_meteor_uses_wordnet_synonyms_and_reproduces_nltks_example():
    root, value = wordnet.check()
    assert round(value, 4) == wordnet.NLTK_EXAMPLE_SCORE
    ref, hyp = ["the dog is large and the auto is fast"], ["the dog is big and the car is fast"]
    with_wordnet = score_corpus(ref, hyp)["metrics"]["meteor"]
    no_synonyms = 100 * meteor_score([ref[0].split()], hyp[0].split(), wordnet=wordnet._NoSynonyms())
    assert with_wordnet > no_synonyms + 5  # big/large and car/auto matched only through WordNet
    lexnames = (root / "lexnames").read_text().splitlines()
    assert len(lexnames) == 45 and lexnames[0] == "00\tadj.all\t3" and lexnames[3] == "03\tnoun.Tops\t1"
    assert lexnames[44] == "44\tadj.ppl\t3"
    assert wordnet.provenance(root)["packages"]["wordnet-base"]["version"].startswith("1:3.0")


def test_meteor_is_null_with_the_reason_when_wordnet_is_missing():
    result = score_corpus(REFS, HYPS, meteor=MeteorStatus(reason="WordNet is not installed where NLTK looks"))
    assert result["metrics"]["meteor"] is None
    assert result["signatures"]["meteor"] == "not computed: WordNet is not installed where NLTK looks"
    expected = library_values(REFS, HYPS, with_meteor=False)
    for key in expected:
        assert result["metrics"][key] == pytest.approx(expected[key], rel=1e-12), key


def test_wordnet_load_names_where_it_looked(tmp_path):
    import nltk

    saved = list(nltk.data.path)
    nltk.data.path[:] = [str(tmp_path)]
    try:
        with pytest.raises(wordnet.WordNetError, match=f"not installed where NLTK looks \\({tmp_path}\\)"):
            wordnet.load()
    finally:
        nltk.data.path[:] = saved


def _fake_deb(path, files):
    """A .deb (ar archive with data.tar.xz) holding ``files``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    members = {"debian-binary": b"2.0\n", "control.tar.xz": lzma.compress(b""), "data.tar.xz": lzma.compress(buf.getvalue())}
    out = bytearray(b"!<arch>\n")
    for name, data in members.items():
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    path.write_bytes(bytes(out))


def test_installer_unpacks_debs_and_refuses_a_database_that_is_not_wordnet(tmp_path):
    table = "\n".join(f"{i:02d}\t{name}\tsomething" for i, name in enumerate(
        ["adj.all", "adj.pert", "adv.all"] + [f"noun.x{i}" for i in range(26)] + [f"verb.y{i}" for i in range(15)] + ["adj.ppl"]))
    man = ".TH LEXNAMES 5WN\n.TS\n" + table + "\n.TE\n"
    lexnames = wordnet.lexnames_from_man_page(man).splitlines()
    assert len(lexnames) == 45 and lexnames[0] == "00\tadj.all\t3" and lexnames[5] == "05\tnoun.x2\t1" and lexnames[44] == "44\tadj.ppl\t3"
    with pytest.raises(wordnet.WordNetError, match="45 numbered"):
        wordnet.lexnames_from_man_page(man.replace("\n44\tadj.ppl", "\n"))

    debs = tmp_path / "debs"
    debs.mkdir()
    junk = {wordnet.DEB_DATA_DIR + f: b"not wordnet\n" for f in wordnet.DATABASE_FILES}
    _fake_deb(debs / "wordnet-base_1%3a3.0-37_all.deb", {**junk, wordnet.LEXNAMES_MAN_PAGE: gzip.compress(man.encode())})
    _fake_deb(debs / "wordnet-sense-index_1%3a3.0-37_all.deb", {"usr/share/wordnet/cntlist": b""})
    files = wordnet._deb_files(debs / "wordnet-base_1%3a3.0-37_all.deb")
    assert files[wordnet.DEB_DATA_DIR + "data.noun"] == b"not wordnet\n"
    target = tmp_path / "nltk_data" / "corpora" / "wordnet"
    target.mkdir(parents=True)
    (target / "kept").write_text("a working install stays if the new one is broken")
    with pytest.raises(wordnet.WordNetError):
        wordnet.install(target, debs)
    assert (target / "kept").is_file() and not (target / "lexnames").exists()


def test_scoring_refuses_what_cannot_be_scored():
    with pytest.raises(EvaluationError, match="2 references but 1 hypotheses"):
        score_corpus(["a", "b"], ["a"], meteor=MeteorStatus(reason="-"))
    with pytest.raises(EvaluationError, match="nothing to score"):
        score_corpus([], [], meteor=MeteorStatus(reason="-"))
    with pytest.raises(EvaluationError, match="every reference is empty"):
        score_corpus(["", " "], ["a", "b"], meteor=MeteorStatus(reason="-"))


# -- the command line: JSON schema, CSV round trip --


def generate_output_text(refs, hyps):
    """What fairseq-generate prints (batch order, not id order; H- and D- lines; a closing BLEU line)."""
    lines = ["2024-05-01 12:00:00 | INFO | fairseq_cli.generate | loading model(s)"]
    for i in reversed(range(len(refs))):
        lines += [f"T-{i}\t{refs[i]}", f"H-{i}\t-0.5\t{hyps[i]}", f"D-{i}\t-0.5\t{hyps[i]}", f"P-{i}\t-0.5"]
    lines.append("Generate test with beam=5: BLEU4 = 45.12, 70.0/50.0/40.0/30.0 (BP=1.000, ratio=1.000, syslen=20, reflen=20)")
    return "\n".join(lines) + "\n"


def test_json_schema_and_values_from_a_generate_output(tmp_path, capsys):
    gen = tmp_path / "generate-test.txt"
    gen.write_text(generate_output_text(REFS, HYPS), encoding="utf-8")
    assert evaluate_main(["--generate-output", str(gen)]) == 0
    table = capsys.readouterr().out
    assert "BLEU-4" in table and "METEOR" in table and "CER %" in table
    report = json.loads((tmp_path / "generate-test.eval.json").read_text())
    assert set(report) == {"checkpoint", "split", "num_samples", "metrics", "caption_stats", "signatures", "speed", "generation"}
    assert set(report["metrics"]) == set(METRIC_KEYS)
    assert set(report["caption_stats"]) == {"avg_pred_length", "avg_ref_length", "exact_match_rate"}
    assert report["checkpoint"] is None and report["split"] == "test" and report["num_samples"] == len(REFS)
    expected = library_values(REFS, HYPS, with_meteor=meteor_status().reader is not None)
    for key, value in expected.items():
        assert report["metrics"][key] == pytest.approx(value, rel=1e-12), key
    sig = report["signatures"]
    for n in range(1, 5):
        assert sig[f"bleu_{n}"] == f"nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:{sacrebleu.__version__} (max_ngram_order={n})"
    assert sig["chrf"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no")
    assert "rouge-score" in sig["rouge_l"] and "jiwer" in sig["wer"] and "jiwer" in sig["cer"]
    assert sig["normalisation"]["lowercase"] is None  # no --data: unknown, and said so
    assert report["speed"]["measured"] is False
    assert report["generation"]["beam"] == 5 and report["generation"]["source"] == "fairseq-generate output"
    # the predictions CSV beside it, with sentence scores from the libraries
    with open(tmp_path / "generate-test.predictions.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["id", "video", "reference", "hypothesis", "sentence_bleu", "sentence_wer"]
    assert [r["id"] for r in rows] == [str(i) for i in range(len(REFS))]
    assert [r["hypothesis"] for r in rows] == HYPS and [r["reference"] for r in rows] == REFS
    assert float(rows[0]["sentence_bleu"]) == pytest.approx(sacrebleu.sentence_bleu(HYPS[0], [REFS[0]]).score, abs=1e-4)
    assert float(rows[0]["sentence_wer"]) == pytest.approx(100 * jiwer.wer(REFS[0], HYPS[0]), abs=1e-4)


def test_csv_round_trip_gives_identical_metrics(tmp_path):
    # texts a CSV must quote: commas, quotes, a newline, surrounding spaces; an empty hypothesis
    refs = REFS + ["line one\nline two", "  spaced  "]
    hyps = HYPS + ["line one\nline 2", " spaced"]
    first = tmp_path / "mine.csv"
    write_predictions_csv(first, [Prediction(f"clip{i}", r, h) for i, (r, h) in enumerate(zip(refs, hyps))], sentence_scores(refs, hyps))
    assert evaluate_main(["--predictions", str(first), "--json", str(tmp_path / "a.json"), "--csv", str(tmp_path / "a.csv"), "-q"]) == 0
    assert evaluate_main(["--predictions", str(tmp_path / "a.csv"), "--json", str(tmp_path / "b.json"), "-q"]) == 0
    a, b = (json.loads((tmp_path / f"{x}.json").read_text()) for x in "ab")
    assert a["metrics"] == b["metrics"] and a["caption_stats"] == b["caption_stats"]
    assert [(p.reference, p.hypothesis) for p in read_predictions(tmp_path / "a.csv")] == list(zip(refs, hyps))
    assert b["generation"]["predictions_csv"] == str((tmp_path / "a.predictions.csv").resolve())  # beside the input, not over it
    # texts scored exactly as given: the same pairs straight through the libraries
    expected = library_values(refs, hyps, with_meteor=meteor_status().reader is not None)
    for key, value in expected.items():
        assert a["metrics"][key] == pytest.approx(value, rel=1e-12), key


def test_a_tsv_from_another_tool_is_read_unquoted(tmp_path):
    tsv = tmp_path / "landmarks.tsv"
    tsv.write_text('id\treference\thypothesis\textra\nx1\tHe said "hi"\tHe said "hi"\t1\nx2\ta b\t\t2\n', encoding="utf-8")
    records = read_predictions(tsv)
    assert [(r.id, r.reference, r.hypothesis) for r in records] == [("x1", 'He said "hi"', 'He said "hi"'), ("x2", "a b", "")]


def test_bad_prediction_files_are_refused_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,ref,hyp\n1,a,b\n")
    assert evaluate_main(["--predictions", str(bad)]) == 1
    assert f"{bad}: missing column(s) ['reference', 'hypothesis']" in capsys.readouterr().err
    bad.write_text("id,reference,hypothesis\n1,a,b\n1,c,d\n")
    assert evaluate_main(["--predictions", str(bad)]) == 1
    assert "1 duplicate id(s), e.g. ['1']" in capsys.readouterr().err
    assert evaluate_main(["--predictions", str(tmp_path / "none.csv")]) == 1
    assert "predictions file not found" in capsys.readouterr().err
    assert evaluate_main(["--predictions", str(bad), "--", "--lenpen", "2"]) == 1
    assert "apply only to --checkpoint" in capsys.readouterr().err


# -- a real tiny checkpoint through fairseq's generator --

GEN_ARGS = ["--beam", "2", "--batch-size", "4"]
PASSED_THROUGH = ["--max-len-b", "8"]  # fairseq-generate's own option, passed after "--"


@pytest.fixture(scope="module")
def tiny_checkpoints(synthetic_root, tmp_path_factory):
    """A tiny video model trained 2 updates with fairseq-hydra-train, and a copy of it (a two-checkpoint ensemble)."""
    work = tmp_path_factory.mktemp("evaluate")
    hydra_train(
        "quick_synthetic", synthetic_root, work / "ckpt", work, "optimization.max_update=2", "dataset.disable_validation=true",
        "task.eval_bleu=false", "optimizer.groups.default.lr_scheduler.warmup_updates=1",
    )
    first = work / "ckpt" / "checkpoint_last.pt"
    second = work / "ckpt" / "copy.pt"
    shutil.copy(first, second)
    return work, first, second


def fairseq_generate(data, work, task, paths, out):
    run([BIN / "fairseq-generate", data, "--user-dir", REPO / "ssvp_plugin", "--task", task, "--path", ":".join(map(str, paths)),
         "--gen-subset", "test", *GEN_ARGS, *PASSED_THROUGH, "--results-path", out], work)
    return out / "generate-test.txt"


@pytest.mark.parametrize("ensemble", [False, True], ids=["one checkpoint", "two-checkpoint ensemble"])
def test_checkpoint_is_decoded_exactly_as_fairseq_generate_does(tiny_checkpoints, synthetic_root, tmp_path, ensemble):
    work, first, second = tiny_checkpoints
    paths = [first, second] if ensemble else [first]
    task = "sign_multimodal" if ensemble else "how2sign_video"
    out_json, out_csv = tmp_path / "eval.json", tmp_path / "eval.csv"
    rc = evaluate_main(["--checkpoint", *map(str, paths), "--data", str(synthetic_root), "--split", "test", *GEN_ARGS,
                        "--json", str(out_json), "--csv", str(out_csv), "-q", "--", *PASSED_THROUGH])
    assert rc == 0
    report = json.loads(out_json.read_text())
    ours = {p.id: p for p in read_predictions(out_csv)}

    # fairseq-generate's own output, its ids named by clip (fairseq numbers the manifest's clips in order)
    gen = fairseq_generate(synthetic_root, work, task, paths, tmp_path / "gen")
    assert evaluate_main(["--generate-output", str(gen), "--data", str(synthetic_root), "--json", str(tmp_path / "g.json"),
                          "--csv", str(tmp_path / "g.csv"), "-q"]) == 0
    theirs = {p.id: p for p in read_predictions(tmp_path / "g.csv")}
    from ssvp_slt.corpus.manifest import read_manifest

    rows = read_manifest(synthetic_root / "test.tsv").rows
    assert set(ours) == set(theirs) == {r.id for r in rows}
    for clip in ours:
        assert (ours[clip].reference, ours[clip].hypothesis) == (theirs[clip].reference, theirs[clip].hypothesis), clip
        assert ours[clip].video == theirs[clip].video
    assert report["metrics"] == json.loads((tmp_path / "g.json").read_text())["metrics"]

    assert report["split"] == "test" and report["num_samples"] == len(rows)
    assert report["checkpoint"] == ([str(p) for p in paths] if ensemble else str(first))
    g = report["generation"]
    assert g["task"] == task and g["beam"] == 2 and g["max_len_b"] == 8 and g["batch_size"] == 4
    assert g["fairseq_generate_equivalent"].endswith("--max-len-b 8")
    norm = report["signatures"]["normalisation"]
    assert norm["lowercase"] is True and norm["punctuation"] == "keep"  # the test data root is built with --lowercase
    s = report["speed"]
    assert s["clips"] == len(rows) and s["clips_per_second"] > 0 and s["peak_memory_mb"] > 0
    assert s["video_seconds"] == pytest.approx(sum(r.n_frames / r.fps for r in rows))
    assert s["real_time_factor"] == pytest.approx(s["wall_seconds"] / s["video_seconds"])
    assert s["parameters"] == sum(s["parameters_per_checkpoint"].values()) > 0
    assert s["device"].startswith("cpu")


def test_compare_decodes_checkpoints_in_the_same_run_and_finds_no_difference_with_itself(tiny_checkpoints, synthetic_root, tmp_path, capsys):
    from ssvp_slt.evaluation.compare import main as compare_main

    _, first, _ = tiny_checkpoints
    # the same model twice: once decoded here, once from its own predictions CSV
    csv_path = tmp_path / "saved.csv"
    assert evaluate_main(["--checkpoint", str(first), "--data", str(synthetic_root), "--split", "test", *GEN_ARGS,
                          "--json", str(tmp_path / "saved.json"), "--csv", str(csv_path), "-q", "--", *PASSED_THROUGH]) == 0
    capsys.readouterr()
    out = tmp_path / "cmp"
    rc = compare_main([f"decoded={first}", f"saved={tmp_path / 'saved.json'}", "--data", str(synthetic_root), "--split", "test",
                       "--beam", "2", "--batch-size", "4", "--out", str(out), "--no-figure", "--n-samples", "200",
                       "--", *PASSED_THROUGH])
    assert rc == 0, capsys.readouterr().err
    comparison = json.loads(out.with_suffix(".json").read_text())
    decoded, saved = comparison["systems"]
    assert decoded["speed"]["clips_per_second"] > 0 and decoded["speed"]["device"].startswith("cpu")
    assert saved["speed"] is None and "not in this run" in saved["speed_reported_in_its_evaluation_json"]["note"]
    assert (tmp_path / "cmp.decoded.predictions.csv").is_file() and (tmp_path / "cmp.decoded.eval.json").is_file()
    assert "clips/s" in out.with_suffix(".md").read_text()
    for key, m in comparison["metrics"].items():
        if m["systems"] is not None:
            assert m["systems"][1]["verdict"] == "no significant difference" and m["systems"][1]["p_value"] == 1.0, key
