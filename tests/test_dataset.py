import logging

import numpy as np
import pytest
import torch

from conftest import load_task


@pytest.fixture(scope="module")
def task(synthetic_root):
    t = load_task(synthetic_root)
    t.load_dataset("train")
    t.load_dataset("test")
    return t


def test_item_holds_the_sampled_frames_and_the_caption(task):
    ds = task.datasets["test"]
    item = ds[0]
    c = task.data_cfg
    assert item["source"].dtype == torch.uint8
    assert tuple(item["source"].shape) == (ds.sizes[0], c.crop_size, c.crop_size, 3)
    assert item["target"][-1] == task.target_dictionary.eos()
    assert task.decode_tokens(item["target"]) == ds.rows[0].tgt_text.lower()


def test_collater_pads_and_masks(task):
    ds = task.datasets["train"]
    order = np.argsort(ds.sizes)
    samples = [ds[int(order[0])], ds[int(order[-1])]]  # shortest and longest clip
    batch = ds.collater(samples)
    src, mask = batch["net_input"]["source"], batch["net_input"]["padding_mask"]
    lengths = [s["source"].shape[0] for s in samples]
    assert lengths[0] < lengths[1]
    assert tuple(src.shape) == (2, 3, max(lengths), task.data_cfg.crop_size, task.data_cfg.crop_size)
    assert src.dtype == torch.float32
    assert mask.tolist() == [[t >= n for t in range(max(lengths))] for n in lengths]
    assert torch.all(src[0, :, lengths[0]:] == 0)
    # normalisation: uint8 value v becomes (v/255 - mean)/std
    c = task.data_cfg
    expected = (samples[1]["source"][0, 0, 0, 0].float() / 255 - c.mean[0]) / c.std[0]
    assert torch.isclose(src[1, 0, 0, 0, 0], expected, atol=1e-5)
    # targets: right-padded, teacher-forcing input starts with EOS
    eos, pad = task.target_dictionary.eos(), task.target_dictionary.pad()
    assert torch.all(batch["net_input"]["prev_output_tokens"][:, 0] == eos)
    assert batch["ntokens"] == sum(len(s["target"]) for s in samples)
    assert batch["target"].eq(pad).sum() == abs(len(samples[0]["target"]) - len(samples[1]["target"]))


def test_sizes_count_sampled_frames(task):
    ds = task.datasets["train"]
    c = task.data_cfg
    for i in range(len(ds)):
        assert ds.num_tokens(i) == ds[i]["source"].shape[0] == ds.sizes[i] <= c.num_frames
        assert ds.size(i) == (ds.sizes[i], len(ds.targets[i]))


def test_training_items_vary_by_epoch_and_are_reproducible(task):
    ds = task.datasets["train"]
    long_clip = int(np.argmax([r.n_frames for r in ds.rows]))
    ds.set_epoch(1)
    a = ds[long_clip]["source"]
    assert torch.equal(a, ds[long_clip]["source"])
    ds.set_epoch(2)
    b = ds[long_clip]["source"]
    ds.set_epoch(1)
    assert not torch.equal(a, b)


def test_evaluation_items_are_deterministic(task):
    ds = task.datasets["test"]
    assert not ds.train
    assert torch.equal(ds[1]["source"], ds[1]["source"])


def test_ordered_indices_sort_by_frames(task):
    ds = task.datasets["train"]
    order = ds.ordered_indices()
    assert sorted(order.tolist()) == list(range(len(ds)))
    assert np.all(np.diff(ds.sizes[order]) >= 0)


def test_over_long_captions_fail_or_are_skipped_with_a_count(task, caplog):
    ds = task.datasets["train"]
    max_len = int(np.median(ds.tgt_sizes))
    n_long = int((ds.tgt_sizes > max_len).sum())
    assert n_long > 0
    indices = ds.ordered_indices()
    with pytest.raises(Exception, match="skip-invalid-size-inputs-valid-test"):
        task.filter_indices_by_size(indices, ds, max_positions=(task.data_cfg.num_frames, max_len))
    with caplog.at_level(logging.WARNING):
        kept = task.filter_indices_by_size(
            indices, ds, max_positions=(task.data_cfg.num_frames, max_len), ignore_invalid_inputs=True
        )
    assert len(kept) == len(ds) - n_long
    assert f"{n_long} samples have invalid sizes" in caplog.text


@pytest.mark.parametrize("multiple", [1, 8])
def test_batching_keeps_every_clip(task, multiple):
    # fairseq's own batch_by_size drops a last batch that is not a multiple of `multiple`
    ds = task.datasets["train"]
    indices = ds.ordered_indices()[:13]
    batches = ds.batch_by_size(indices, max_tokens=5 * task.data_cfg.num_frames, max_sentences=None,
                               required_batch_size_multiple=multiple)
    assert sorted(np.concatenate(batches).tolist()) == sorted(indices.tolist())
    assert all(ds.sizes[b].sum() <= 5 * task.data_cfg.num_frames for b in batches)
