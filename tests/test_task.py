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


def test_only_the_training_loop_draws_random_frames(synthetic_root):
    """fairseq-generate / fairseq-validate pass the checkpoint's task config to load_dataset; the trainer never does.
    So `--gen-subset train` decodes the training clips exactly as evaluation would."""
    import torch

    task = load_task(synthetic_root)
    task.load_dataset("train")  # as the trainer loads it
    assert task.datasets["train"].train
    task.load_dataset("train", task_cfg=task.cfg)  # as fairseq-generate --gen-subset train loads it
    ds = task.datasets["train"]
    assert not ds.train and not ds.shuffle
    ds.set_epoch(1)
    a = ds[0]["source"]
    ds.set_epoch(2)
    assert torch.equal(a, ds[0]["source"])
    task.load_dataset("val")
    assert not task.datasets["val"].train


def test_max_train_clips_trains_on_a_fixed_random_subset(synthetic_root, caplog):
    import logging

    with caplog.at_level(logging.INFO):
        task = load_task(synthetic_root, max_train_clips=10)
        task.load_dataset("train")
    ids = [r.id for r in task.datasets["train"].rows]
    assert len(ids) == 10 and "training on 10 of 24 clips" in caplog.text
    again = load_task(synthetic_root, max_train_clips=10)
    again.load_dataset("train")
    assert [r.id for r in again.datasets["train"].rows] == ids  # the same subset for the same seed
    task.load_dataset("val")
    assert len(task.datasets["val"]) == 6  # evaluation splits are never subsampled


def test_load_log_states_long_clips_and_time(synthetic_root, caplog):
    import logging
    import re

    with caplog.at_level(logging.INFO):
        task = load_task(synthetic_root)
        task.load_dataset("train")
    ds = task.datasets["train"]
    n_long = int((ds.num_windows > 1).sum())
    assert n_long > 0
    assert re.search(rf"train: 24 clips, {int(ds.sizes.sum())} encoder frames, {int(ds.num_windows.sum())} windows; "
                     rf"loaded in [\d.]+ s", caplog.text)
    assert re.search(rf"train: {n_long} of 24 clip\(s\) \([\d.]+%\) are longer than one 2\.56 s window", caplog.text)


def test_drop_policy_leaves_clips_beyond_max_windows_out_of_training_only(data_root, caplog):
    import logging

    cfg = data_root / "config.yaml"
    cfg.write_text(cfg.read_text().replace("max_windows: 6", "max_windows: 1").replace("long_clips: stretch", "long_clips: drop"))
    with caplog.at_level(logging.INFO):
        task = load_task(data_root)
        task.load_dataset("train")
        task.load_dataset("val")
    train, val = task.datasets["train"], task.datasets["val"]
    assert 0 < len(train) < 24 and all(n == 1 for n in train.num_windows)
    assert len(val) == 6 and val.n_stretched > 0  # evaluation keeps every clip, stretched into one window
    assert f"dropped from training ({24 - len(train)})" in caplog.text
