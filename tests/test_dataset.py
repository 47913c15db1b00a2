import logging

import numpy as np
import pytest
import torch

from conftest import load_task
from ssvp_plugin.data.video_clip_dataset import crop_box
from ssvp_slt.corpus.frame_sampling import clip_layout


@pytest.fixture(scope="module")
def task(synthetic_root):
    t = load_task(synthetic_root)
    t.load_dataset("train")
    t.load_dataset("test")
    return t


def test_item_holds_the_sampled_frames_and_the_caption(task):
    ds = task.datasets["test"]
    c = task.data_cfg
    for i in range(len(ds)):
        item = ds[i]
        row = ds.rows[i]
        layout = clip_layout(row.n_frames, row.fps, c.window_settings())
        assert item["source"].dtype == torch.uint8
        # every sampled frame once, whatever the number of windows
        assert tuple(item["source"].shape) == (layout.n_sampled, c.crop_size, c.crop_size, 3)
        assert len(item["starts"]) == layout.windows
        assert item["target"][-1] == task.target_dictionary.eos()
        assert task.decode_tokens(item["target"]) == row.tgt_text.lower()


def test_collater_pads_and_keeps_uint8(task):
    ds = task.datasets["train"]
    order = np.argsort(ds.sizes)
    samples = [ds[int(order[0])], ds[int(order[-1])]]  # shortest and longest clip
    batch = ds.collater(samples)
    src, mask = batch["net_input"]["source"], batch["net_input"]["padding_mask"]
    lengths = [s["source"].shape[0] for s in samples]
    assert lengths[0] < lengths[1]
    # uint8 frames, time second: normalised on the model's device; SequenceGenerator reads size(1) as the length
    assert tuple(src.shape) == (2, max(lengths), task.data_cfg.crop_size, task.data_cfg.crop_size, 3)
    assert src.dtype == torch.uint8
    assert mask.tolist() == [[t >= n for t in range(max(lengths))] for n in lengths]
    assert torch.equal(src[1], samples[1]["source"]) and torch.all(src[0, lengths[0]:] == 0)
    starts = batch["net_input"]["window_starts"]
    assert starts[0].tolist()[:1] == [0] and all(s == -1 for s in starts[0].tolist()[1:])
    assert starts[1].tolist() == samples[1]["starts"].tolist()
    # targets: right-padded, teacher-forcing input starts with EOS
    eos, pad = task.target_dictionary.eos(), task.target_dictionary.pad()
    assert torch.all(batch["net_input"]["prev_output_tokens"][:, 0] == eos)
    assert batch["ntokens"] == sum(len(s["target"]) for s in samples)
    assert batch["target"].eq(pad).sum() == abs(len(samples[0]["target"]) - len(samples[1]["target"]))


def test_sizes_count_what_the_encoder_processes(task):
    ds = task.datasets["test"]
    c = task.data_cfg
    n_multi = 0
    for i in range(len(ds)):
        item = ds[i]
        n_windows = len(item["starts"])
        expected = c.num_frames * n_windows if n_windows > 1 else item["source"].shape[0]
        assert ds.num_tokens(i) == ds.sizes[i] == expected
        assert ds.size(i) == (ds.sizes[i], len(ds.targets[i]))
        n_multi += n_windows > 1
    assert n_multi > 0  # the test corpus has clips longer than one window


def test_max_tokens_below_the_longest_clip_fails_naming_it(task):
    ds = task.datasets["test"]
    longest = int(np.argmax(ds.sizes))
    with pytest.raises(ValueError, match=rf"manifest line \d+ .*needs {ds.sizes[longest]} encoder frames.*max_tokens"):
        ds.batch_by_size(ds.ordered_indices(), max_tokens=int(ds.sizes[longest]) - 1)


def test_crop_jitter_stays_on_the_signer_of_a_wide_frame():
    """On a 16:9 frame the training crop moves around the centre, never to a side: a hand inside the
    central square (by more than the jitter) stays in view, where a free random crop loses it."""
    h, w, crop = 256, 455, 224  # a 1280x720 frame at short side 256; the centred crop starts at x = 115.5
    hand_x0, hand_x1, hand_y0, hand_y1 = 140, 156, 100, 116
    rng = np.random.default_rng(0)
    lefts = set()
    for _ in range(500):
        top, left = crop_box(h, w, crop, jitter=0.1, rng=rng)
        assert 0 <= top <= h - crop and 0 <= left <= w - crop
        assert left <= hand_x0 and hand_x1 <= left + crop and top <= hand_y0 and hand_y1 <= top + crop
        lefts.add(left)
    assert len(lefts) > 20  # it does move
    free = [int(rng.integers(0, w - crop + 1)) for _ in range(500)]  # the old free random crop
    assert any(left > hand_x0 for left in free)
    assert crop_box(h, w, crop) == (16, 116)


def test_training_scale_jitter_stays_within_bounds(task):
    ds = task.datasets["train"]
    c = ds.cfg
    sizes = {ds.decode_size(np.random.default_rng(i)) for i in range(200)}
    assert min(sizes) >= max(c.crop_size, round(c.resize_short_side * (1 - c.train_jitter)))
    assert max(sizes) <= round(c.resize_short_side * (1 + c.train_jitter)) and len(sizes) > 1
    assert ds.decode_size(None) == c.resize_short_side


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
        task.filter_indices_by_size(indices, ds, max_positions=(task.max_positions()[0], max_len))
    with caplog.at_level(logging.WARNING):
        kept = task.filter_indices_by_size(
            indices, ds, max_positions=(task.max_positions()[0], max_len), ignore_invalid_inputs=True
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
