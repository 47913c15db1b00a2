"""The landmark baseline through the command-line tools: OpenPose JSON folders -> scripts/prepare_keypoints.py ->
fairseq-hydra-train landmarks_quick (8 updates) -> fairseq-generate --task sign_features; and the task reading a keypoint
store: normalisation at evaluation equal to inference's load_keypoints, augmentation in training only."""

import re
import shutil
from argparse import Namespace

import numpy as np
import pytest
import torch
import yaml

from conftest import BIN, REPO, hydra_train, run_script_captured
from conftest import run_tool as run
from ssvp_slt.corpus.manifest import read_manifest
from ssvp_slt.features.store import FeatureStore, FeatureStoreError
from ssvp_slt.keypoints import KeypointConfig, load_keypoints
from ssvp_slt.scoring import parse_generate_output
from test_keypoints import write_clip, write_csv

WORDS = ["the", "cat", "dog", "sat", "ran", "home", "a", "big", "red", "fox"]
SPLITS = {"train": 24, "val": 6, "test": 6}


@pytest.fixture(scope="module")
def landmark_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("landmarks")
    rng = np.random.default_rng(0)
    csv_dir = work / "csvs"
    csv_dir.mkdir()
    for split, n in SPLITS.items():
        rows = []
        for i in range(n):
            name = f"{split}{i:03d}-rgb_front"
            write_clip(work / "kp" / split / "openpose_output" / "json" / name, int(rng.integers(8, 30)), seed=int(rng.integers(1 << 30)))
            rows.append((name, " ".join(rng.choice(WORDS, size=int(rng.integers(3, 6))))))
        write_csv(csv_dir / f"how2sign_realigned_{split}.csv", rows)
    data = work / "data"
    rc, log = run_script_captured("prepare_keypoints", "--keypoints", work / "kp", "--csv-dir", csv_dir, "--out", data,
                                  "--vocab-size", 40, "--lowercase")
    assert rc == 0, log
    train_log = hydra_train("landmarks_quick", data, work / "ckpt", work, "optimization.max_update=8",
                            "lr_scheduler.warmup_updates=2", "dataset.validate_interval=1")
    out = work / "gen"
    gen_log = run(
        [
            BIN / "fairseq-generate", data, "--user-dir", REPO / "ssvp_plugin", "--task", "sign_features",
            "--path", work / "ckpt" / "checkpoint_best.pt", "--gen-subset", "test", "--beam", "5",
            "--max-len-a", "0.5", "--max-len-b", "10", "--scoring", "sacrebleu", "--results-path", out,
        ],
        work,
    )
    return work, data, train_log, out / "generate-test.txt", gen_log


def test_landmark_training_reads_normalised_keypoints_and_records_the_transform(landmark_run):
    work, data, log, _, _ = landmark_run
    assert "valid on 'val' subset" in log and "| bleu " in log
    assert re.search(r"num_updates[ =]8\b", log)
    assert "feature transform 'keypoints'" in log and "D=411 stored -> D=411 model input" in log
    assert "feature_slt preset=tiny: input D=411" in log
    state = torch.load(work / "ckpt" / "checkpoint_best.pt")  # weights_only default
    model_cfg = state["cfg"]["model"]
    assert model_cfg["input_dim"] == 411
    cfg = KeypointConfig.from_store_info(FeatureStore(data / "features").info)
    assert model_cfg["feature_transform"] == cfg.normalisation_json()
    # what the translator uses for a new video: the checkpoint alone gives the settings
    assert KeypointConfig.from_json(model_cfg["feature_transform"]).normalisation() == cfg.normalisation()


def test_landmark_generate_decodes_every_test_clip(landmark_run):
    _, data, _, gen_file, _ = landmark_run
    assert "Generate test with beam=5: BLEU" in gen_file.read_text()
    triples = parse_generate_output(gen_file)
    rows = read_manifest(data / "test.tsv").rows
    assert len(triples) == len(rows)
    assert sorted(ref for _, ref, _ in triples) == sorted(r.tgt_text.lower() for r in rows)


def test_task_normalises_like_inference_and_augments_only_in_training(landmark_run):
    from ssvp_plugin.tasks.sign_features import SignFeaturesConfig, SignFeaturesTask

    work, data, _, _, _ = landmark_run
    task = SignFeaturesTask.setup_task(SignFeaturesConfig(data=str(data), seed=1, train_subset="train"))
    assert task.feature_dim == 411 and task.feature_transform is not None
    cfg = KeypointConfig.from_store_info(task.store.info)
    task.load_dataset("val")
    val = task.dataset("val")
    for i, row in enumerate(val.rows):
        item = val[i]["source"].numpy()
        np.testing.assert_array_equal(item, load_keypoints(row.video, cfg))  # the keypoint folder, as a new video
        np.testing.assert_array_equal(item, val[i]["source"].numpy())
        assert len(item) == val.sizes[i] == row.n_frames
    task.load_dataset("train")
    train = task.dataset("train")
    assert not train.can_reuse_epoch_itr_across_epochs
    a = train[3]["source"].numpy()
    np.testing.assert_array_equal(a, train[3]["source"].numpy())  # deterministic per (epoch, index)
    train.set_epoch(2)
    b = train[3]["source"].numpy()
    assert not (a.shape == b.shape and np.allclose(a, b))
    row = train.rows[3]
    stored = row.n_frames
    assert max(len(a), len(b)) <= train.sizes[3] == int(np.floor(stored * 1.2 + 0.5))  # batching bounds the stretch
    assert not (a.shape == (stored, 411) and np.allclose(a, load_keypoints(row.video, cfg)))


def test_a_checkpoint_refuses_a_store_read_otherwise(landmark_run, tmp_path):
    from fairseq import checkpoint_utils, utils

    work, data, _, _, _ = landmark_run
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    store_cfg = copy / "features" / "config.yaml"
    values = yaml.safe_load(store_cfg.read_text())
    values["transform"]["augment"]["rotate_deg"] = 0.0  # augmentation does not change what a model reads
    store_cfg.write_text(yaml.safe_dump(values, sort_keys=False))
    utils.import_user_module(Namespace(user_dir=str(REPO / "ssvp_plugin")))
    ckpt = str(work / "ckpt" / "checkpoint_best.pt")
    checkpoint_utils.load_model_ensemble_and_task([ckpt], arg_overrides={"data": str(copy)})
    values["transform"]["anchor"] = "frame"  # normalisation does
    store_cfg.write_text(yaml.safe_dump(values, sort_keys=False))
    with pytest.raises(FeatureStoreError, match=r"features/config.yaml: the model was trained on features read with transform .*\"anchor\": \"clip\""):
        checkpoint_utils.load_model_ensemble_and_task([ckpt], arg_overrides={"data": str(copy)})
