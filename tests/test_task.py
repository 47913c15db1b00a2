from fairseq import metrics

from conftest import load_task


def _reduce(task, logging_outputs):
    with metrics.aggregate() as agg:
        task.reduce_metrics(logging_outputs, criterion=type("C", (), {"reduce_metrics": staticmethod(lambda logs: None)})())
    return agg.get_smoothed_values()


def _bleu_log(hyp, ref, task):
    import sacrebleu

    b = sacrebleu.corpus_bleu([hyp], [[ref]])
    log = {"_bleu_sys_len": b.sys_len, "_bleu_ref_len": b.ref_len}
    for i in range(4):
        log[f"_bleu_counts_{i}"], log[f"_bleu_totals_{i}"] = b.counts[i], b.totals[i]
    return log


def test_validation_bleu_sums_statistics_across_batches(synthetic_root):
    import sacrebleu

    task = load_task(synthetic_root, eval_bleu=True)
    pairs = [("the dog sees a cat .", "the dog sees a big cat ."), ("a man runs .", "a man runs .")]
    stats = _reduce(task, [_bleu_log(h, r, task) for h, r in pairs])
    expected = sacrebleu.corpus_bleu([h for h, _ in pairs], [[r for _, r in pairs]]).score
    assert abs(stats["bleu"] - expected) < 0.01


def test_validation_bleu_is_zero_not_missing_for_empty_hypotheses(synthetic_root):
    # best_checkpoint_metric=bleu needs the key even when an untrained model outputs nothing
    task = load_task(synthetic_root, eval_bleu=True)
    empty = {"_bleu_sys_len": 0, "_bleu_ref_len": 5, **{f"_bleu_{k}_{i}": 0 for k in ("counts", "totals") for i in range(4)}}
    assert _reduce(task, [empty])["bleu"] == 0.0


def test_training_outputs_log_no_bleu(synthetic_root):
    task = load_task(synthetic_root, eval_bleu=True)
    assert "bleu" not in _reduce(task, [{"loss": 1.0}])
