"""Two-stage translation's second stage: the sign_features task (stored T x D features + captions) and the
feature_slt model, alone and through fairseq-hydra-train and fairseq-generate on extracted features."""

import re
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import BIN, REPO, hydra_train, load_task, run_script_captured
from conftest import run_tool as run
from ssvp_slt.corpus.data_config import VideoDataConfig
from ssvp_slt.corpus.manifest import read_manifest
from ssvp_slt.features.store import FeatureStoreError, SplitWriter, StoreInfo, open_store_for_writing
from ssvp_slt.scoring import parse_generate_output

D = 12  # any per-frame vector: nothing in the task or model assumes video-encoder features


def write_random_store(root: Path, data: Path, dim=D, leave_out=(), seed=0) -> dict:
    """A store with a random (T, dim) sequence for every manifest id of every split (ids in ``leave_out`` skipped)."""
    rng = np.random.default_rng(seed)
    info = open_store_for_writing(root, StoreInfo(dim=dim, dtype="float16", feature_rate=24.0, source={"kind": "test keypoints"}))
    written = {}
    for split in ("train", "val", "test"):
        with SplitWriter(root, split, info, "p0", chunk_rows=50) as w:
            for row in read_manifest(data / f"{split}.tsv").rows:
                if row.id in leave_out:
                    continue
                x = rng.normal(size=(int(rng.integers(3, 30)), dim)).astype(np.float16)
                w.add(row.id, x)
                written[row.id] = x
    return written


def load_features_task(data: Path, **overrides):
    from ssvp_plugin.tasks.sign_features import SignFeaturesConfig, SignFeaturesTask

    cfg = SignFeaturesConfig(data=str(data), seed=1, train_subset="train", **overrides)
    return SignFeaturesTask.setup_task(cfg)


@pytest.fixture
def features_root(data_root):
    """A private data root with a random-feature store at its default place, <data>/features."""
    return data_root, write_random_store(data_root / "features", data_root)


def test_task_pairs_each_manifest_row_with_its_features_and_how2sign_videos_captions(features_root):
    data, written = features_root
    task = load_features_task(data)
    video_task = load_task(data)
    task.load_dataset("val")
    ds = task.dataset("val")
    rows = read_manifest(data / "val.tsv").rows
    assert [r.id for r in ds.rows] == [r.id for r in rows]
    assert ds.sizes.tolist() == [len(written[r.id]) for r in rows]  # --max-tokens counts feature time steps
    expected_targets = video_task.encode_captions([r.tgt_text for r in rows])
    for i, row in enumerate(rows):
        item = ds[i]
        assert item["source"].dtype == torch.float32
        np.testing.assert_array_equal(item["source"].numpy(), written[row.id].astype(np.float32))
        assert torch.equal(item["target"], expected_targets[i])
    assert task.decode_tokens(ds[0]["target"]) == video_task.decode_tokens(expected_targets[0])
    batch = ds.collater([ds[i] for i in range(3)])
    lengths = [len(written[rows[i].id]) for i in range(3)]
    assert batch["net_input"]["source"].shape == (3, max(lengths), D)
    assert (~batch["net_input"]["padding_mask"]).sum(1).tolist() == lengths
    assert batch["net_input"]["prev_output_tokens"][:, 0].eq(task.target_dictionary.eos()).all()
    assert batch["ntokens"] == sum(len(t) for t in expected_targets[:3])
    assert task.max_positions() == (None, 128)


def test_batches_are_bounded_by_time_steps_and_keep_every_clip(features_root):
    data, _ = features_root
    task = load_features_task(data)
    task.load_dataset("train")
    ds = task.dataset("train")
    indices = ds.ordered_indices()
    batches = ds.batch_by_size(indices, max_tokens=60, required_batch_size_multiple=8)
    assert sorted(i for b in batches for i in b) == list(range(len(ds)))
    assert all(len(b) * ds.sizes[b].max() <= 60 or len(b) == 1 or len(b) < 8 for b in batches)
    with pytest.raises(ValueError, match=r"feature time steps, more than dataset.max_tokens=2"):
        ds.batch_by_size(indices, max_tokens=2)


def test_clips_without_features_are_an_error_or_a_counted_skip(data_root, caplog):
    rows = read_manifest(data_root / "val.tsv").rows
    write_random_store(data_root / "features", data_root, leave_out={rows[1].id})
    task = load_features_task(data_root)
    with pytest.raises(FeatureStoreError, match=rf"val.tsv: 1 of {len(rows)} clip\(s\) have no features .*{rows[1].id} \(line 3\)"):
        task.load_dataset("val")
    task = load_features_task(data_root, skip_invalid_samples=True)
    task.load_dataset("val")
    assert [r.id for r in task.dataset("val").rows] == [r.id for r in rows if r.id != rows[1].id]
    assert "skipped (task.skip_invalid_samples=true)" in caplog.text


def test_store_elsewhere_and_missing_store_or_split(data_root, tmp_path):
    write_random_store(tmp_path / "store", data_root)
    task = load_features_task(data_root, features=str(tmp_path / "store"))
    assert task.feature_dim == D
    task.load_dataset("test")
    with pytest.raises(FeatureStoreError, match=r"features/config.yaml: feature store config not found"):
        load_features_task(data_root)
    (tmp_path / "store" / "test").rename(tmp_path / "elsewhere")
    with pytest.raises(FeatureStoreError, match=r"no split 'test'.*extract_features.py --splits test"):
        load_features_task(data_root, features=str(tmp_path / "store")).load_dataset("test")


def build_model(task, **overrides):
    from omegaconf import OmegaConf

    from ssvp_plugin.models.feature_slt import FeatureSltConfig

    # as fairseq-hydra-train passes it: a DictConfig naming the model
    cfg = OmegaConf.structured(FeatureSltConfig(_name="feature_slt", max_target_positions=128, **overrides))
    return task.build_model(cfg), cfg


def test_model_presets_and_input_dim_from_the_store(features_root):
    data, _ = features_root
    task = load_features_task(data)
    model, cfg = build_model(task)  # default preset: SSVP-SLT's fairseq setting
    enc, dec = model.encoder, model.decoder
    assert cfg.input_dim == D and enc.input_dim == D  # recorded in the settings that checkpoints keep
    assert enc.proj.in_features == D and enc.proj.out_features == 256 and enc.out_proj is None
    assert len(enc.layers) == 6 and len(dec.layers) == 3
    layer = enc.layers[0]
    assert layer.normalize_before and layer.self_attn.num_heads == 4 and layer.fc1.out_features == 1024
    assert dec.embed_dim == 256 and dec.layers[0].self_attn.num_heads == 4 and dec.layers[0].fc1.out_features == 1024
    assert enc.dropout.p == 0.3 and dec.dropout_module.p == 0.3
    tiny, _ = build_model(task, preset="tiny", encoder_layers=1)
    assert len(tiny.encoder.layers) == 1 and tiny.encoder.proj.out_features == 64


def test_a_store_of_another_dimension_is_refused_naming_the_store(features_root):
    data, _ = features_root
    task = load_features_task(data)
    with pytest.raises(FeatureStoreError, match=r"features/config.yaml: the store holds D=12 features, the model reads D=99"):
        build_model(task, input_dim=99)


def test_encoder_masks_padding_reorders_for_beam_search_and_bounds_length(features_root):
    data, _ = features_root
    task = load_features_task(data)
    torch.manual_seed(0)
    model, _ = build_model(task, preset="tiny", max_source_positions=40)
    model.eval()
    x = torch.randn(2, 10, D)
    pad = torch.zeros(2, 10, dtype=torch.bool)
    pad[1, 6:] = True
    with torch.no_grad():
        out = model.encoder(x, pad)
        alone = model.encoder(x[1:, :6], None)
    assert out["encoder_out"][0].shape == (10, 2, 64)
    # a clip's encoding does not depend on the padding added to batch it with longer clips
    torch.testing.assert_close(out["encoder_out"][0][:6, 1], alone["encoder_out"][0][:, 0], rtol=1e-5, atol=1e-5)
    assert out["src_lengths"][0].tolist() == [10, 6]
    order = torch.tensor([1, 1, 0])
    re_out = model.encoder.reorder_encoder_out(out, order)
    assert torch.equal(re_out["encoder_out"][0], out["encoder_out"][0][:, order])
    assert torch.equal(re_out["encoder_padding_mask"][0], pad[order])
    assert model.max_positions() == (40, 128)
    with pytest.raises(ValueError, match="41 time steps is longer than model.max_source_positions=40"):
        model.encoder(torch.randn(1, 41, D))
    with pytest.raises(ValueError, match="D=5, the model reads D=12"):
        model.encoder(torch.randn(1, 4, 5))


# -- the whole two-stage recipe through the command-line tools --


@pytest.fixture(scope="module")
def two_stage(synthetic_root, tmp_path_factory):
    """Extract (a random tiny ViT) -> fairseq-hydra-train two_stage_quick (8 updates) -> fairseq-generate."""
    from test_extract_features import make_vit, write_encoder_file

    work = tmp_path_factory.mktemp("two_stage")
    data_cfg = VideoDataConfig.load(synthetic_root)
    encoder = write_encoder_file(work / "encoder.pt", make_vit(data_cfg), data_cfg)
    store = work / "features"
    rc, log = run_script_captured(
        "extract_features", "--data", synthetic_root, "--encoder", encoder, "--out", store, "--workers", 0,
        "--device", "cpu", "--no-progress",
    )
    assert rc == 0, log
    train_log = hydra_train(
        "two_stage_quick", synthetic_root, work / "ckpt", work, f"task.features={store}", "optimization.max_update=8",
        "lr_scheduler.warmup_updates=2", "dataset.validate_interval=1",
    )
    out = work / "gen"
    gen_log = run(
        [
            BIN / "fairseq-generate", synthetic_root, "--user-dir", REPO / "ssvp_plugin", "--task", "sign_features",
            "--features", store, "--path", work / "ckpt" / "checkpoint_best.pt", "--gen-subset", "test", "--beam", "5",
            "--max-len-a", "0.5", "--max-len-b", "10", "--scoring", "sacrebleu", "--results-path", out,
        ],
        work,
    )
    return work, store, train_log, out / "generate-test.txt", gen_log


def test_two_stage_training_validates_with_bleu_and_records_the_input_dim(two_stage):
    work, store, log, _, _ = two_stage
    assert "valid on 'val' subset" in log and "| bleu " in log
    assert re.search(r"num_updates[ =]8\b", log)
    assert "feature_slt preset=tiny: input D=32" in log
    state = torch.load(work / "ckpt" / "checkpoint_best.pt")  # weights_only default
    assert state["cfg"]["model"]["input_dim"] == 32 and state["cfg"]["task"]["_name"] == "sign_features"
    assert any(k.startswith("encoder.layers.") for k in state["model"])


def test_two_stage_generate_decodes_every_test_clip(two_stage, synthetic_root):
    _, _, _, gen_file, log = two_stage
    assert "Generate test with beam=5: BLEU" in gen_file.read_text()
    triples = parse_generate_output(gen_file)
    rows = read_manifest(synthetic_root / "test.tsv").rows
    assert len(triples) == len(rows)
    assert sorted(ref for _, ref, _ in triples) == sorted(r.tgt_text.lower() for r in rows)
    assert not any("\u2581" in hyp for _, _, hyp in triples)


def test_a_checkpoint_refuses_a_store_of_another_dimension(two_stage, synthetic_root, tmp_path):
    from fairseq import checkpoint_utils, utils

    work, _, _, _, _ = two_stage
    write_random_store(tmp_path / "store", synthetic_root, dim=7)
    utils.import_user_module(Namespace(user_dir=str(REPO / "ssvp_plugin")))
    with pytest.raises(FeatureStoreError, match=r"store/config.yaml: the store holds D=7 features, the model reads D=32"):
        checkpoint_utils.load_model_ensemble_and_task(
            [str(work / "ckpt" / "checkpoint_best.pt")],
            arg_overrides={"data": str(synthetic_root), "features": str(tmp_path / "store")},
        )
