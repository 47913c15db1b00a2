"""Ensembles across modalities: a video model (mae_vit_slt) and a landmark / feature model (feature_slt) decoded
together by the task sign_multimodal, fairseq-generate --path a.pt:b.pt --ensemble-weights, and SignTranslator."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from fairseq.sequence_generator import EnsembleModel, SequenceGenerator
from omegaconf import OmegaConf

from conftest import BIN, REPO, hydra_train
from conftest import run_tool as run
from ssvp_plugin.data.joined_dataset import FEATURES, MODALITY_KEY, VIDEO, JoinedDataset, modality_input
from ssvp_plugin.models.ensemble_checkpoints import check_ensemble_checkpoints
from ssvp_plugin.models.weighted_ensemble import EnsembleError, WeightedEnsembleModel, parse_ensemble_weights
from ssvp_slt.corpus.manifest import ManifestError, read_manifest
from ssvp_slt.features.store import FeatureStoreError
from ssvp_slt.scoring import parse_generate_output
from test_sign_features import D, write_random_store


def load_multimodal_task(data: Path, **overrides):
    from ssvp_plugin.tasks.multimodal import SignMultimodalConfig, SignMultimodalTask

    cfg = SignMultimodalConfig(data=str(data), seed=1, train_subset="train", checkpoint_paths=None, **overrides)
    return SignMultimodalTask.setup_task(cfg)


def build_video_model(task, seed):
    from ssvp_plugin.models.mae_vit_slt import MaeVitSltConfig

    torch.manual_seed(seed)
    cfg = OmegaConf.structured(MaeVitSltConfig(_name="mae_vit_slt", preset="tiny", max_target_positions=128))
    return task.build_model(cfg).eval()


def build_feature_model(task, seed):
    from ssvp_plugin.models.feature_slt import FeatureSltConfig

    torch.manual_seed(seed)
    cfg = OmegaConf.structured(FeatureSltConfig(_name="feature_slt", preset="tiny", max_target_positions=128))
    return task.build_model(cfg).eval()


@pytest.fixture
def features_root(data_root):
    """A private data root with a random D=12 feature store at <data>/features."""
    return data_root, write_random_store(data_root / "features", data_root)


@pytest.fixture
def video_and_features(features_root):
    """The multimodal task with a random tiny video model and a random tiny feature model, and a joined val batch."""
    data, written = features_root
    task = load_multimodal_task(data)
    video, feats = build_video_model(task, seed=0), build_feature_model(task, seed=1)
    task.load_dataset("val")
    ds = task.dataset("val")
    batch = ds.collater([ds[i] for i in range(3)])
    return task, video, feats, batch, written


def one_step(ensemble, net_input, tokens):
    """The first decoding step (``tokens``: the EOS column), as SequenceGenerator runs it."""
    encoder_outs = ensemble.forward_encoder(net_input)
    return ensemble.forward_decoder(tokens, encoder_outs, [{} for _ in ensemble.models])


def own_log_probs(model, encoder_input, tokens):
    with torch.no_grad():
        logits = model.decoder(tokens, encoder_out=model.encoder(**encoder_input))[0][:, -1]
    return torch.log_softmax(logits.double(), dim=-1)


def test_weighted_ensemble_equals_the_hand_computed_mixture_for_one_step(video_and_features):
    task, video, feats, batch, _ = video_and_features
    net_input = batch["net_input"]
    bsz = net_input["source"].shape[0]
    eos = task.target_dictionary.eos()
    tokens = torch.tensor([[eos]] * bsz)
    # each model alone, on its own input: frames for the video model, the stored sequence for the feature model
    video_input = {k: net_input[k] for k in ("source", "padding_mask", "window_starts")}
    feature_input = {"source": net_input["features_source"], "padding_mask": net_input["features_padding_mask"]}
    assert feature_input["source"].shape[-1] == D and net_input["source"].dtype == torch.uint8
    lp_video, lp_feats = own_log_probs(video, video_input, tokens), own_log_probs(feats, feature_input, tokens)
    expected = torch.log(0.7 * lp_video.exp() + 0.3 * lp_feats.exp())
    ensemble = WeightedEnsembleModel([video, feats], weights=[7, 3])  # normalised to 0.7, 0.3
    assert ensemble.weights == pytest.approx([0.7, 0.3]) and ensemble.modalities == [VIDEO, FEATURES]
    with torch.no_grad():
        combined, attn = one_step(ensemble, net_input, tokens)
    assert combined.shape == (bsz, len(task.target_dictionary))
    torch.testing.assert_close(combined.double(), expected, rtol=0, atol=2e-5)
    torch.testing.assert_close(combined.double().exp().sum(-1), torch.ones(bsz, dtype=torch.float64))
    assert not torch.allclose(combined.double(), lp_video, atol=1e-3)  # both models count
    assert attn is None  # video and landmark encoders have different time axes: no common alignment
    # the next step, with each model's cached decoder state (incremental decoding, as in beam search)
    encoder_outs, states = ensemble.forward_encoder(net_input), [{}, {}]
    longer = torch.cat([tokens, torch.full((bsz, 1), 7)], dim=1)
    with torch.no_grad():
        ensemble.forward_decoder(tokens, encoder_outs, states)
        second, _ = ensemble.forward_decoder(longer, encoder_outs, states)
    lp_video, lp_feats = own_log_probs(video, video_input, longer), own_log_probs(feats, feature_input, longer)
    expected = torch.log(0.7 * lp_video.exp() + 0.3 * lp_feats.exp())
    torch.testing.assert_close(second.double(), expected, rtol=0, atol=2e-5)


def test_equal_weights_decode_exactly_as_fairseqs_own_ensemble(features_root):
    data, _ = features_root
    task = load_multimodal_task(data)
    a, b = build_feature_model(task, seed=1), build_feature_model(task, seed=2)
    task.feature_task.load_dataset("val")
    ds = task.feature_task.dataset("val")  # a plain sign_features batch: both models read the same input
    batch = ds.collater([ds[i] for i in range(4)])
    bsz, eos = batch["net_input"]["source"].shape[0], task.target_dictionary.eos()
    tokens = torch.tensor([[eos]] * bsz)
    with torch.no_grad():
        theirs = one_step(EnsembleModel([a, b]), batch["net_input"], tokens)
        for weights in (None, [1, 1], "0.5,0.5"):
            ours = one_step(WeightedEnsembleModel([a, b], weights), batch["net_input"], tokens)
            assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
        # and a whole beam search through the stock SequenceGenerator, as fairseq-generate runs it
        theirs = SequenceGenerator([a, b], task.target_dictionary, beam_size=3, max_len_b=8).generate([a, b], batch)
        ours = task.build_generator([a, b], OmegaConf.create({"beam": 3, "max_len_b": 8})).generate([a, b], batch)
    for h_theirs, h_ours in zip(theirs, ours):
        assert [h["tokens"].tolist() for h in h_ours] == [h["tokens"].tolist() for h in h_theirs]
        assert [float(h["score"]) for h in h_ours] == [float(h["score"]) for h in h_theirs]


def test_weights_are_normalised_and_must_match_the_models(video_and_features):
    assert parse_ensemble_weights("0.7,0.3", 2) == pytest.approx([0.7, 0.3])
    assert parse_ensemble_weights([3, 1], 2) == pytest.approx([0.75, 0.25])
    assert parse_ensemble_weights(None, 3) is None and parse_ensemble_weights("", 2) is None
    with pytest.raises(EnsembleError, match=r"gives 1 weight\(s\) for 2 model\(s\) \(v.pt, f.pt\): give one weight per --path"):
        parse_ensemble_weights("1", 2, ["v.pt", "f.pt"])
    with pytest.raises(EnsembleError, match="every weight must be a positive number"):
        parse_ensemble_weights("0.5,0", 2)
    with pytest.raises(EnsembleError, match="expected comma-separated numbers"):
        parse_ensemble_weights("0.7;0.3", 2)
    task, video, feats, _, _ = video_and_features
    task.cfg.ensemble_weights = "0.2,0.3,0.5"
    with pytest.raises(EnsembleError, match=r"gives 3 weight\(s\) for 2 model\(s\)"):
        task.build_generator([video, feats], OmegaConf.create({"beam": 2}))


def fake_checkpoint(path: Path, data: Path, vocab: int, model="feature_slt") -> Path:
    """What the vocabulary check reads of a fairseq checkpoint: its settings and output layer."""
    torch.save({"cfg": {"model": {"_name": model}, "task": {"data": str(data)}},
                "model": {"decoder.embed_tokens.weight": torch.zeros(vocab, 4)}}, path)
    return path


def test_different_vocabularies_are_refused_naming_both_checkpoints(data_root, tmp_path):
    from fairseq.data import Dictionary

    from ssvp_slt.corpus.data_config import VideoDataConfig

    dict_file = VideoDataConfig.load(data_root).dictionary_path
    n = len(Dictionary.load(str(dict_file)))
    a = fake_checkpoint(tmp_path / "video.pt", data_root, n, model="mae_vit_slt")
    b = fake_checkpoint(tmp_path / "landmarks.pt", data_root, n)
    assert [s.modality for s in check_ensemble_checkpoints([a, b])] == [VIDEO, FEATURES]
    # another size: named both, with their sizes
    c = fake_checkpoint(tmp_path / "small.pt", data_root, n - 3)
    with pytest.raises(EnsembleError, match=rf"video.pt \({n} symbols, .*dict.txt\) and .*small.pt \({n - 3} symbols.*different vocabularies"):
        check_ensemble_checkpoints([a, c])
    # the same size, other symbols: a data root whose dictionary lists two pieces the other way round
    other = tmp_path / "other_root"
    other.mkdir()
    for f in data_root.iterdir():
        if f.is_file():
            (other / f.name).write_bytes(f.read_bytes())
    lines = (other / dict_file.name).read_text().splitlines()
    lines[0], lines[1] = lines[1], lines[0]
    (other / dict_file.name).write_text("\n".join(lines) + "\n")
    d = fake_checkpoint(tmp_path / "swapped.pt", other, n)
    with pytest.raises(EnsembleError, match=r"video.pt .* and .*swapped.pt .*different vocabularies \(2 symbol\(s\) changed, first at index 4"):
        check_ensemble_checkpoints([a, d])
    # against the data root generation reads
    task = load_multimodal_task(data_root)
    with pytest.raises(EnsembleError, match=r"swapped.pt .* was trained with another vocabulary than .*dict.txt"):
        task.check_checkpoints([d])
    e = fake_checkpoint(tmp_path / "other_model.pt", data_root, n, model="transformer")
    with pytest.raises(EnsembleError, match=r"other_model.pt: a checkpoint of model 'transformer'"):
        check_ensemble_checkpoints([a, e])


def test_modalities_are_joined_by_id_and_missing_ones_counted(data_root, caplog):
    rows = read_manifest(data_root / "val.tsv").rows
    no_features, no_video = rows[1].id, rows[3].id
    write_random_store(data_root / "features", data_root, leave_out={no_features})
    # the other clip's video is gone
    text = (data_root / "val.tsv").read_text().replace(rows[3].video, str(data_root / "gone.mp4"))
    (data_root / "val.tsv").write_text(text)
    task = load_multimodal_task(data_root)
    with pytest.raises(ManifestError, match=r"video file not found"):  # how2sign_video's own check and message
        task.load_dataset("val")

    task = load_multimodal_task(data_root, skip_invalid_samples=True)
    task.load_dataset("val")
    ds = task.dataset("val")
    assert isinstance(ds, JoinedDataset)
    assert ds.ids == [r.id for r in rows if r.id not in (no_features, no_video)]  # manifest order
    assert ds.missing == {VIDEO: [no_video], FEATURES: [no_features]}
    assert f"1 clip(s) have no video input ({no_video}); 1 clip(s) have no features input ({no_features})" in caplog.text
    for i, clip_id in enumerate(ds.ids):  # each part's item is the same clip
        assert ds.parts[VIDEO].rows[ds.index[VIDEO][i]].id == clip_id
        assert ds.parts[FEATURES].rows[ds.index[FEATURES][i]].id == clip_id
    batch = ds.collater([ds[i] for i in (0, 2)])
    net_input = batch["net_input"]
    assert net_input[MODALITY_KEY] == VIDEO and batch["id"].tolist() == [0, 2]
    assert set(modality_input(net_input, VIDEO)) == {"source", "padding_mask", "window_starts"}
    assert set(modality_input(net_input, FEATURES)) == {"source", "padding_mask"}
    features = ds.parts[FEATURES][int(ds.index[FEATURES][2])]["source"]
    torch.testing.assert_close(modality_input(net_input, FEATURES)["source"][1, : len(features)], features)
    target = ds.parts[VIDEO][int(ds.index[VIDEO][2])]["target"]
    assert torch.equal(batch["target"][1, : len(target)], target)


def test_only_the_inputs_the_models_read_are_loaded(data_root):
    task = load_multimodal_task(data_root)  # no feature store anywhere: video models need none
    build_video_model(task, seed=0)
    task.load_dataset("val")
    ds = task.dataset("val")
    assert list(ds.parts) == [VIDEO] and len(ds) == len(read_manifest(data_root / "val.tsv").rows)
    batch = ds.collater([ds[0], ds[1]])
    assert "features_source" not in batch["net_input"] and batch["net_input"]["source"].dtype == torch.uint8
    with pytest.raises(FeatureStoreError, match=r"features/config.yaml: feature store config not found"):
        build_feature_model(task, seed=1)  # a feature model needs the store it reads


def test_clips_without_features_are_refused_unless_skipped(data_root):
    rows = read_manifest(data_root / "val.tsv").rows
    write_random_store(data_root / "features", data_root, leave_out={rows[2].id})
    with pytest.raises(FeatureStoreError, match=rf"1 of {len(rows)} clip\(s\) have no features .*{rows[2].id}"):
        load_multimodal_task(data_root).load_dataset("val")


# -- the whole path: two models trained with their own tasks, decoded together --


@pytest.fixture(scope="module")
def trained_pair(synthetic_root, tmp_path_factory):
    """A tiny video model (how2sign_video) and a tiny feature model (sign_features, random D=12 features),
    each trained for 3 updates on the synthetic corpus."""
    work = tmp_path_factory.mktemp("ensemble")
    store = work / "features"
    written = write_random_store(store, synthetic_root)
    common = ["optimization.max_update=3", "dataset.disable_validation=true", "task.eval_bleu=false"]
    hydra_train(
        "quick_synthetic", synthetic_root, work / "video", work, *common,
        "optimizer.groups.default.lr_scheduler.warmup_updates=2",
    )
    hydra_train("two_stage_quick", synthetic_root, work / "feat", work, f"task.features={store}", *common,
                "lr_scheduler.warmup_updates=2")
    return work, store, written, work / "video" / "checkpoint_last.pt", work / "feat" / "checkpoint_last.pt"


def generate(data, work, store, paths, *extra, check=True):
    cmd = [
        BIN / "fairseq-generate", data, "--user-dir", REPO / "ssvp_plugin", "--task", "sign_multimodal",
        "--features", store, "--path", ":".join(map(str, paths)), "--gen-subset", "test", "--beam", "3",
        "--max-len-b", "10", *extra,
    ]
    if check:
        return run(cmd, work)
    import os
    import subprocess

    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    res = subprocess.run([str(c) for c in cmd], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    return res.returncode, res.stdout + res.stderr


@pytest.fixture(scope="module")
def generated(trained_pair, synthetic_root):
    work, store, _, video, feat = trained_pair
    out = work / "gen"
    log = generate(synthetic_root, work, store, [video, feat], "--ensemble-weights", "0.7,0.3", "--results-path", out)
    return out / "generate-test.txt", log


def test_fairseq_generate_decodes_every_test_clip_with_both_models(generated, trained_pair, synthetic_root):
    gen_file, log = generated
    _, _, _, video, feat = trained_pair
    triples = parse_generate_output(gen_file)
    rows = read_manifest(synthetic_root / "test.tsv").rows
    assert len(triples) == len(rows)
    assert sorted(ref for _, ref, _ in triples) == sorted(r.tgt_text.lower() for r in rows)
    log = log + gen_file.read_text()
    assert re.search(rf"{re.escape(str(video))} \(video\): 0\.7, {re.escape(str(feat))} \(features\): 0\.3", log)
    assert f"test: {len(rows)} clip(s) joined by id across ['video', 'features']" in log


def test_fairseq_generate_refuses_a_wrong_number_of_weights_and_other_vocabularies(trained_pair, synthetic_root):
    work, store, _, video, feat = trained_pair
    rc, out = generate(synthetic_root, work, store, [video, feat], "--ensemble-weights", "1", check=False)
    assert rc != 0 and "gives 1 weight(s) for 2 model(s)" in out
    # a feature model trained with a smaller vocabulary (its output layer cut down)
    state = torch.load(feat)
    for key in ("decoder.embed_tokens.weight", "decoder.output_projection.weight"):
        if key in state["model"]:
            state["model"][key] = state["model"][key][:-2].clone()
    small = work / "small_vocab.pt"
    torch.save(state, small)
    rc, out = generate(synthetic_root, work, store, [video, small], check=False)
    assert rc != 0 and re.search(rf"{re.escape(str(video))} \(\d+ symbols.*\) and {re.escape(str(small))} .*different vocabularies", out)


def test_sign_translator_with_two_checkpoints_translates_like_fairseq_generate(generated, trained_pair, synthetic_root):
    from ssvp_slt.translate import SignTranslator

    gen_file, _ = generated
    _, store, written, video, feat = trained_pair
    by_id = {int(i): hyp for i, _, hyp in parse_generate_output(gen_file)}
    rows = read_manifest(synthetic_root / "test.tsv").rows[:3]
    translator = SignTranslator.from_checkpoints([video, feat], weights=[0.7, 0.3], data=synthetic_root, beam=3, max_len_b=10)
    assert translator.modalities == [VIDEO, FEATURES]
    features = [written[r.id] for r in rows]  # (T, D) arrays, as stored
    texts = [t.text for t in translator.translate([synthetic_root / r.video for r in rows], batch_size=2, features=features)]
    assert texts == [by_id[i] for i in range(3)]
    with pytest.raises(ValueError, match=r"the ensemble has a features model: pass features="):
        translator.translate([synthetic_root / r.video for r in rows])
    with pytest.raises(ValueError, match=r"features\[0\]: D=5 features, .*feat/checkpoint_last.pt reads D=12"):
        translator.translate([synthetic_root / rows[0].video], features=[np.zeros((4, 5))])
    with pytest.raises(EnsembleError, match=r"gives 1 weight\(s\) for 2 model\(s\)"):
        SignTranslator.from_checkpoints([video, feat], weights=[1.0], data=synthetic_root)


def test_sign_translator_reads_feature_files(trained_pair, synthetic_root, tmp_path):
    from ssvp_slt.translate import SignTranslator

    _, _, written, _, feat = trained_pair
    rows = read_manifest(synthetic_root / "test.tsv").rows[:2]
    files = []
    for r in rows:
        np.save(tmp_path / f"{r.id}.npy", written[r.id])
        files.append(tmp_path / f"{r.id}.npy")
    translator = SignTranslator.from_checkpoints([feat], data=synthetic_root, beam=2, max_len_b=6)
    from_files = [t.text for t in translator.translate(features=files)]
    assert from_files == [t.text for t in translator.translate(features=[written[r.id] for r in rows])] and len(from_files) == 2
    with pytest.raises(ValueError, match=r"clip.txt: expected a .npy file of \(T, D\) features"):
        translator.translate(features=[tmp_path / "clip.txt"])
    # this model was trained on a store without a keypoint transform: keypoint files cannot become its input
    with pytest.raises(ValueError, match=r"clip.pose: .*feat/checkpoint_last.pt was trained on features used as stored"):
        translator.translate(features=[tmp_path / "clip.pose"])


def test_feature_reader_applies_the_keypoint_transform_a_checkpoint_records():
    """A landmark model trained on a keypoint store reads each clip through the store's transform
    (sign_features applies it when reading); SignTranslator's inputs go through the same."""
    keypoints = pytest.importorskip("ssvp_slt.keypoints")
    from ssvp_slt.translate import FeatureReader

    cfg = keypoints.KeypointConfig(drop_face=True)
    transform = keypoints.KeypointTransform(cfg)
    rng = np.random.default_rng(0)
    raw = np.concatenate([rng.uniform(0, 700, size=(9, keypoints.N_POINTS, 2)),
                          rng.uniform(0.2, 1, size=(9, keypoints.N_POINTS, 1))], axis=-1).reshape(9, keypoints.RAW_DIM)
    reader = FeatureReader(transform.output_dim, cfg.normalisation_json(), "landmarks.pt")
    stored = raw.astype(np.float16)  # what a keypoint store holds; the dataset applies the transform when reading
    expected = transform(stored)
    np.testing.assert_array_equal(reader(raw, "clip").numpy(), expected)
    np.testing.assert_array_equal(reader(stored, "clip").numpy(), expected)
    with pytest.raises(ValueError, match=rf"clip: D={transform.output_dim} features after its keypoint transform, landmarks.pt reads D=12"):
        FeatureReader(12, cfg.normalisation_json(), "landmarks.pt")(raw, "clip")
