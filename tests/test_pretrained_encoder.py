"""Fine-tuning from a pretrained encoder: model.pretrained_encoder, freeze_encoder_updates, encoder_layer_decay.

Pretrained files are written in-process with the structure fairseq writes
(``{"cfg": {"model": {"_name": ...}}, "model": state_dict, ...}``, checked
against a real fairseq-hydra-train MAE checkpoint) from models whose weights
are all randomised, so that an untouched, freshly initialised tensor can
never pass for a loaded one. Three short subprocess runs check the command
line: fine-tuning with quick_synthetic, fairseq-generate from its checkpoint
once the pretraining file is gone, and finetune_base_pretrained's composite
optimizer with layer-wise lr decay. Freezing and the optimizer check run
in-process through the task's own train_step, with optimizers built from the
configs' optimizer sections the way fairseq's trainer builds them.
"""

import argparse
import logging
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from fairseq import optim
from fairseq.dataclass.configs import CommonConfig, DistributedTrainingConfig, OptimizationConfig
from omegaconf import OmegaConf

from conftest import BIN, REPO, hydra_train, load_task, load_unlabelled_task
from conftest import run_tool as run
from ssvp_plugin.criterions.label_smoothed_ce import SltLabelSmoothedCrossEntropy
from ssvp_plugin.models.param_groups import ENCODER_MARK, NO_DECAY_GROUP
from ssvp_slt.corpus.manifest import read_manifest
from ssvp_plugin.models.mae_vit import MaeVitConfig, MaeVitModel
from ssvp_plugin.models.mae_vit_slt import MaeVitSltConfig, encoder_layer_lr_scales
from ssvp_plugin.models.pretrained_encoder import PretrainedEncoderError, save_encoder_file
from ssvp_plugin.models.video_vit import (
    VideoViT,
    resize_joint_pos_embed,
    resize_spatial_pos_embed,
    resize_temporal_pos_embed,
)
from ssvp_slt.scoring import parse_generate_output

REPORT_LOGGER = "ssvp_plugin.models.pretrained_encoder"
# the test data config: 16 frames (8 tubelet steps), 32 px crops of 16 px patches (2x2 grid); tiny preset
T, GRID, DIM, DEPTH = 8, (2, 2), 128, 4


# ------------------------------------------------------------------------------------------ helpers


def randomise_(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Move every parameter away from any initialisation (LayerNorms start at exactly 1 and 0 otherwise)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g))
    return module


def geometry(num_frames: int, crop_size: int):
    """A stand-in task for models that only read the clip length and crop from the task's data config."""
    return SimpleNamespace(
        data_cfg=SimpleNamespace(num_frames=num_frames, crop_size=crop_size, mean=[0.45] * 3, std=[0.225] * 3)
    )


def build_mae(task, seed=0, **overrides) -> MaeVitModel:
    torch.manual_seed(seed)
    return randomise_(MaeVitModel.build_model(MaeVitConfig(preset="tiny", **overrides), task), seed + 100)


def build_slt(task, **overrides):
    """mae_vit_slt through the task, as fairseq-hydra-train builds it (so model.pretrained_encoder is read)."""
    torch.manual_seed(0)
    cfg = MaeVitSltConfig(_name="mae_vit_slt", preset="tiny", max_target_positions=128, **overrides)
    return task.build_model(OmegaConf.structured(cfg))


def save_fairseq_checkpoint(path: Path, model, name: str) -> Path:
    torch.save(
        {"args": None, "cfg": {"model": {"_name": name, "preset": "tiny"}}, "model": model.state_dict(),
         "optimizer_history": [], "extra_state": {}, "last_optimizer_state": None},
        path,
    )
    return path


def vit_geometry(vit: VideoViT, num_frames: int, crop_size: int) -> dict:
    return dict(
        embed_dim=vit.embed_dim, depth=len(vit.blocks), num_heads=vit.blocks[0].attn.num_heads, mlp_ratio=4.0,
        patch_size=vit.patch_size, tubelet_size=vit.tubelet_size, img_size=crop_size, num_frames=num_frames,
        pos_embed_type=vit.pos_embed_type, cls_token=vit.cls_token is not None,
    )


def state(module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


def assert_same_tensors(actual: dict, expected: dict, skip=()):
    assert set(actual) == set(expected)
    for k in actual:
        if k not in skip:
            assert torch.equal(actual[k], expected[k]), k


def adam(params, lr=0.002):
    """A plain (not composite) Adam with quick_synthetic.yaml's settings, built as fairseq's trainer builds it (fp32)."""
    section = OmegaConf.to_container(OmegaConf.load(REPO / "configs" / "quick_synthetic.yaml").optimizer)
    settings = section["groups"]["default"]["optimizer"]
    return optim.build_optimizer(OmegaConf.create({**settings, "lr": [lr], "tpu": False}), params)


def composite_cfg(fp16: bool, bf16: bool = False, lr: float = 1e-4, warmup_updates: int = 500):
    """finetune_base_pretrained.yaml's optimizer section, interpolations filled as fairseq-hydra-train fills them."""
    section = OmegaConf.to_container(OmegaConf.load(REPO / "configs" / "finetune_base_pretrained.yaml").optimizer)
    section["groups"]["default"]["optimizer"]["tpu"] = False
    section["groups"]["default"]["lr_float"] = lr
    section["groups"]["default"]["lr_scheduler"]["warmup_updates"] = warmup_updates
    common = OmegaConf.to_container(OmegaConf.structured(CommonConfig))
    common.update(fp16=fp16, bf16=bf16, fp16_no_flatten_grads=True)
    return OmegaConf.create({
        "common": common,
        "optimization": OmegaConf.to_container(OmegaConf.structured(OptimizationConfig)),
        "distributed_training": OmegaConf.to_container(OmegaConf.structured(DistributedTrainingConfig)),
        "optimizer": section,
    })


def criterion(task):
    return SltLabelSmoothedCrossEntropy(task, sentence_avg=False, label_smoothing=0.1, report_accuracy=True)


def train_briefly(config_name, data, save_dir, cwd, *overrides):
    return hydra_train(
        config_name, data, save_dir, cwd, "optimization.max_update=1", "dataset.disable_validation=true", *overrides
    )


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a small shared machine: one intra-op thread is several times faster (no spinning)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def task(synthetic_root):
    t = load_task(synthetic_root)
    t.load_dataset("test")
    return t


@pytest.fixture(scope="module")
def batch(task):
    ds = task.datasets["test"]
    return ds.collater([ds[0]])


@pytest.fixture(scope="module")
def mae(synthetic_root):
    """A mae_vit model as pretraining on the test data builds it (same clip length and crop), weights random."""
    return build_mae(load_unlabelled_task(synthetic_root))


@pytest.fixture(scope="module")
def mae_ckpt(mae, tmp_path_factory) -> Path:
    return save_fairseq_checkpoint(tmp_path_factory.mktemp("mae") / "checkpoint_last.pt", mae, "mae_vit")


@pytest.fixture(scope="module")
def small_root(synthetic_root, tmp_path_factory) -> Path:
    """The test data root cut to 4 train / 2 val / 2 test clips: the command-line runs here only need to start."""
    root = tmp_path_factory.mktemp("small") / "data"
    root.mkdir()
    for name in ("config.yaml", "dict.txt", "spm.model"):
        shutil.copy(synthetic_root / name, root / name)
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        lines = (synthetic_root / f"{split}.tsv").read_text().splitlines()
        col = lines[0].split("\t").index("video")
        out = [lines[0]]
        for line in lines[1 : n + 1]:
            f = line.split("\t")
            f[col] = str((synthetic_root / f[col]).resolve())
            out.append("\t".join(f))
        (root / f"{split}.tsv").write_text("\n".join(out) + "\n")
    return root


# ------------------------------------------------------------------------------- 1. weight transfer


def test_mae_checkpoint_initialises_every_vit_tensor_and_nothing_else(task, mae, mae_ckpt, caplog):
    caplog.set_level(logging.INFO, logger=REPORT_LOGGER)
    # decoder width 64: the encoder has a projection to the decoder, which must stay as initialised
    reference = build_slt(task, decoder_embed_dim=64)
    model = build_slt(task, decoder_embed_dim=64, pretrained_encoder=str(mae_ckpt))
    assert model.encoder.proj is not None

    assert_same_tensors(model.encoder.vit.state_dict(), mae.encoder.state_dict())
    rest = {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.vit.")}
    assert_same_tensors(rest, {k: v for k, v in reference.state_dict().items() if not k.startswith("encoder.vit.")})
    assert not torch.equal(reference.encoder.vit.blocks[0].attn.qkv.weight, model.encoder.vit.blocks[0].attn.qkv.weight)

    log = caplog.text
    assert f"pretrained encoder from {mae_ckpt} (fairseq mae_vit checkpoint):" in log
    assert f"loaded {len(mae.encoder.state_dict())} tensors" in log
    assert "missing (left as initialised): none" in log
    assert "unexpected (not used): none" in log
    assert f"ignored {len(mae.decoder.state_dict())} non-encoder tensors (decoder)" in log


def test_mae_vit_slt_checkpoint_initialises_the_vit(task, tmp_path):
    donor = randomise_(build_slt(task, decoder_embed_dim=64), seed=5)
    path = save_fairseq_checkpoint(tmp_path / "slt.pt", donor, "mae_vit_slt")
    model = build_slt(task)
    report = model.load_pretrained_encoder(path)
    assert_same_tensors(model.encoder.vit.state_dict(), donor.encoder.vit.state_dict())
    assert sorted(report.loaded) == sorted(model.encoder.vit.state_dict())
    assert report.missing == [] and report.unexpected == [] and report.interpolated == []
    # the donor's text decoder and projection are not encoder weights
    assert set(report.ignored) == {k for k in donor.state_dict() if not k.startswith("encoder.vit.")}
    assert {"encoder.proj.weight", "decoder.embed_tokens.weight"} <= set(report.ignored)


def test_encoder_file_initialises_the_vit(task, mae, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=REPORT_LOGGER)
    geo = vit_geometry(mae.encoder, 16, 32)
    path = save_encoder_file(tmp_path / "enc.pt", mae.encoder.state_dict(), geo, "unit test")
    model = build_slt(task, pretrained_encoder=str(path))
    assert_same_tensors(model.encoder.vit.state_dict(), mae.encoder.state_dict())
    assert f"pretrained encoder from {path} (encoder file (unit test)):" in caplog.text
    assert "ignored" not in caplog.text


# --------------------------------------------------------------------------- 2. position interpolation


def test_separable_tables_are_interpolated_from_another_clip_length_and_crop(task, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=REPORT_LOGGER)
    pretrained = build_mae(geometry(num_frames=32, crop_size=48), seed=1)  # 16 steps, 3x3 grid
    source = pretrained.encoder
    path = save_fairseq_checkpoint(tmp_path / "mae48.pt", pretrained, "mae_vit")
    model = build_slt(task, pretrained_encoder=str(path))
    vit = model.encoder.vit

    assert f"interpolated pos_embed_spatial: (1, 9, {DIM}) -> (1, 4, {DIM})" in caplog.text
    assert f"interpolated pos_embed_temporal: (1, 16, {DIM}) -> (1, {T}, {DIM})" in caplog.text
    with torch.no_grad():
        assert torch.equal(vit.pos_embed_spatial, resize_spatial_pos_embed(source.pos_embed_spatial, (3, 3), GRID))
        assert torch.equal(vit.pos_embed_temporal, resize_temporal_pos_embed(source.pos_embed_temporal, T))
    assert_same_tensors(vit.state_dict(), source.state_dict(), skip=("pos_embed_spatial", "pos_embed_temporal"))


@pytest.mark.parametrize("kind", ["encoder file", "mae_vit checkpoint"])
def test_joint_table_is_interpolated(task, tmp_path, kind):
    """Encoder files carry their geometry: clip length and crop may both differ. A fairseq checkpoint does
    not: its joint table is read at the model's crop, so only the clip length differs here."""
    crop = 48 if kind == "encoder file" else 32
    pretrained = build_mae(geometry(num_frames=32, crop_size=crop), seed=2, encoder_pos_embed="joint")
    source = pretrained.encoder
    old_grid = (crop // 16, crop // 16)
    if kind == "encoder file":
        path = save_encoder_file(tmp_path / "enc.pt", source.state_dict(), vit_geometry(source, 32, crop), "unit test")
    else:
        path = save_fairseq_checkpoint(tmp_path / "mae.pt", pretrained, "mae_vit")
    model = build_slt(task, encoder_pos_embed="joint")
    report = model.load_pretrained_encoder(path)
    n_old = 16 * old_grid[0] * old_grid[1]
    assert report.interpolated == [("pos_embed_joint", (1, n_old, DIM), (1, T * 4, DIM))]
    with torch.no_grad():
        expected = resize_joint_pos_embed(source.pos_embed_joint, 16, old_grid, T, GRID)
    assert torch.equal(model.encoder.vit.pos_embed_joint, expected)
    assert_same_tensors(model.encoder.vit.state_dict(), source.state_dict(), skip=("pos_embed_joint",))


def test_joint_table_of_another_crop_from_a_checkpoint_is_interpolated_right_or_refused(task, tmp_path):
    pretrained = build_mae(geometry(num_frames=32, crop_size=48), seed=3, encoder_pos_embed="joint")
    source = pretrained.encoder
    path = save_fairseq_checkpoint(tmp_path / "mae.pt", pretrained, "mae_vit")
    model = build_slt(task, encoder_pos_embed="joint")
    try:
        model.load_pretrained_encoder(path)
    except PretrainedEncoderError as e:
        assert str(path) in str(e)
        return
    with torch.no_grad():
        expected = resize_joint_pos_embed(source.pos_embed_joint, 16, (3, 3), T, GRID)
    assert torch.equal(model.encoder.vit.pos_embed_joint, expected)


# ------------------------------------------------------------------------------------------ 3. errors


class RunsCodeWhenUnpickled:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.makedirs, (self.marker,)


def write_mae(path, **mae_overrides):
    def write(tmp_path):
        return save_fairseq_checkpoint(tmp_path / path, build_mae(geometry(16, 32), seed=4, **mae_overrides), "mae_vit")
    return write


def write_raw(payload):
    def write(tmp_path):
        p = tmp_path / "file.pt"
        torch.save(payload(tmp_path), p)
        return p
    return write


def write_text(tmp_path):
    p = tmp_path / "notes.pt"
    p.write_text("hello, this is not a checkpoint\n")
    return p


# id -> (writes the file, model settings, patterns the message must contain)
ERROR_CASES = {
    "missing file": (lambda tmp_path: tmp_path / "nowhere" / "checkpoint_last.pt", {}, [r"not found"]),
    "text file": (write_text, {}, [r"not a readable PyTorch checkpoint"]),
    "unrelated dict": (
        write_raw(lambda _: {"weights": torch.zeros(3), "step": 7}), {},
        [r"neither a mae_vit / mae_vit_slt checkpoint", r"convert_video_mae_checkpoint"],
    ),
    "other fairseq model": (
        write_raw(lambda _: {"args": None, "cfg": {"model": {"_name": "transformer"}},
                             "model": {"encoder.x": torch.zeros(1)}}),
        {}, [r"model 'transformer'", r"mae_vit"],
    ),
    "disallowed global": (
        write_raw(lambda tmp: {"args": None, "cfg": {"model": {"_name": "mae_vit"}}, "model": {},
                               "extra": RunsCodeWhenUnpickled(tmp / "unpickled_code_ran")}),
        {}, [r"refused by torch\.load\(weights_only=True\)"],
    ),
    "narrower encoder": (write_mae("w64.pt", encoder_embed_dim=64), {},
                         [r"shape mismatches", r"file \(1, 4, 64\) vs model \(1, 4, 128\)", r"width 64",
                          r"model\.preset", r"encoder_embed_dim"]),
    "shallower encoder": (write_mae("d2.pt", encoder_layers=2), {},
                          [r"lacks", r"blocks\.2\.", r"2 blocks of width 128", r"encoder_layers"]),
    "joint file, separable model": (write_mae("joint.pt", encoder_pos_embed="joint"), {},
                                    [r"pos_embed_spatial", r"model\.encoder_pos_embed=joint"]),
    "separable file, joint model": (write_mae("sep.pt"), {"encoder_pos_embed": "joint"},
                                    [r"pos_embed_joint", r"model\.encoder_pos_embed=separable"]),
    "no class token in file": (write_mae("nocls.pt"), {"encoder_cls_token": True},
                               [r"cls_token", r"model\.encoder_cls_token=false"]),
}
UNUSABLE_WEIGHT_CASES = {
    "class token only in file": (
        write_mae("cls.pt", encoder_cls_token=True), {}, [r"model\.encoder_cls_token=true"],
    ),
    "deeper encoder": (
        write_mae("d6.pt", encoder_layers=6), {}, [r"6 blocks", r"encoder_layers"],
    ),
}


def check_error(task, tmp_path, write, settings, patterns):
    path = write(tmp_path)
    model = build_slt(task, **settings)
    before = state(model)
    with pytest.raises(PretrainedEncoderError) as info:
        model.load_pretrained_encoder(path)
    message = str(info.value)
    assert str(path) in message
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)
    assert_same_tensors(model.state_dict(), before)  # nothing half-loaded
    return path, message


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_bad_pretrained_file_is_refused_naming_the_file_and_the_fix(task, tmp_path, case):
    write, settings, patterns = ERROR_CASES[case]
    path, message = check_error(task, tmp_path, write, settings, patterns)
    if case == "disallowed global":
        assert not (tmp_path / "unpickled_code_ran").exists()  # refused before anything ran
    hint = re.search(r"model\.(encoder_\w+)=(\w+)", message)
    if hint:  # the setting the message names is a real one, and it fixes the load
        value = {"true": True, "false": False}.get(hint.group(2), hint.group(2))
        fixed = build_slt(task, **{**settings, hint.group(1): value})
        report = fixed.load_pretrained_encoder(path)
        assert report.missing == [] and report.unexpected == []


@pytest.mark.parametrize("case", list(UNUSABLE_WEIGHT_CASES))
def test_encoder_weights_the_model_cannot_use_are_refused(task, tmp_path, case):
    write, settings, patterns = UNUSABLE_WEIGHT_CASES[case]
    check_error(task, tmp_path, write, settings, patterns)


def test_refused_pickle_message_names_the_global(task, tmp_path):
    write = write_raw(lambda tmp: {"model": {}, "extra": RunsCodeWhenUnpickled(tmp / "unpickled_code_ran")})
    check_error(task, tmp_path, write, {}, [r"os\.makedirs|posix\.makedirs"])


def test_argparse_namespace_in_a_checkpoint_is_allowed(task, mae, tmp_path):
    path = tmp_path / "with_args.pt"
    torch.save({"args": argparse.Namespace(arch="mae_vit", lr=[0.1]), "cfg": {"model": {"_name": "mae_vit"}},
                "model": mae.state_dict()}, path)
    model = build_slt(task)
    assert not model.load_pretrained_encoder(path).missing
    assert_same_tensors(model.encoder.vit.state_dict(), mae.encoder.state_dict())


# ------------------------------------------------------------------- 4. self-contained fine-tuned checkpoint


@pytest.fixture(scope="module")
def finetuned(small_root, mae, tmp_path_factory):
    """One update of quick_synthetic from a pretrained encoder (given with ++, as the config has no such key)."""
    work = tmp_path_factory.mktemp("finetune")
    (work / "pretraining").mkdir()
    pretrained = save_fairseq_checkpoint(work / "pretraining" / "checkpoint_last.pt", mae, "mae_vit")
    log = train_briefly("quick_synthetic", small_root, work / "ckpt", work, "optimizer.groups.default.lr_scheduler.warmup_updates=1",
                      f"++model.pretrained_encoder={pretrained}")
    return SimpleNamespace(work=work, pretrained=pretrained, ckpt=work / "ckpt" / "checkpoint_last.pt", log=log)


def test_training_starts_from_the_pretrained_encoder_and_logs_the_report(finetuned, mae):
    log = finetuned.log
    assert f"pretrained encoder from {finetuned.pretrained} (fairseq mae_vit checkpoint):" in log
    assert f"loaded {len(mae.encoder.state_dict())} tensors" in log
    assert "missing (left as initialised): none" in log
    assert "num_updates 1" in log
    saved = torch.load(finetuned.ckpt, weights_only=True)
    assert saved["cfg"]["model"]["pretrained_encoder"] == str(finetuned.pretrained)
    # one Adam step (lr 0.002) away from the pretrained weights, which are ~0.5 away from any initialisation
    for k, v in mae.encoder.state_dict().items():
        assert (saved["model"][f"encoder.vit.{k}"] - v).abs().max() < 0.05, k


def test_checkpoint_needs_no_pretraining_file(finetuned, small_root):
    from ssvp_slt.translate import SignTranslator

    finetuned.pretrained.unlink()
    rows = read_manifest(small_root / "test.tsv").rows
    translator = SignTranslator.from_checkpoint(finetuned.ckpt, small_root, beam=1, max_len_b=10)
    texts = [t.text for t in translator.translate([rows[0].video, rows[1].video])]
    work = finetuned.work
    run(
        [
            BIN / "fairseq-generate", small_root, "--user-dir", REPO / "ssvp_plugin", "--task", "how2sign_video",
            "--path", finetuned.ckpt, "--gen-subset", "test", "--beam", "1", "--max-len-b", "10",
            "--results-path", work / "gen",
        ],
        work,
    )
    by_id = {int(i): hyp for i, _, hyp in parse_generate_output(work / "gen" / "generate-test.txt")}
    assert sorted(by_id) == [0, 1] and texts == [by_id[0], by_id[1]]


def test_resuming_needs_only_the_training_checkpoint(finetuned, small_root, mae):
    """model.pretrained_encoder is recorded in the run's config; a resumed run must not need the file."""
    if finetuned.pretrained.exists():
        finetuned.pretrained.unlink()
    work = finetuned.work
    before = torch.load(finetuned.ckpt, weights_only=True)["extra_state"]["train_iterator"]
    log = train_briefly(
        "quick_synthetic", small_root, work / "ckpt", work, "optimizer.groups.default.lr_scheduler.warmup_updates=1",
        f"++model.pretrained_encoder={finetuned.pretrained}", "optimization.max_update=2",
    )
    assert "pretrained encoder not found; continuing only if a checkpoint is restored" in log
    assert "Loaded checkpoint" in log and "num_updates 2" in log
    assert before is not None

    # a fresh run without the file stops before its first update, naming it
    with pytest.raises(AssertionError, match=rf"{re.escape(str(finetuned.pretrained))}: pretrained checkpoint not found"):
        train_briefly("quick_synthetic", small_root, work / "fresh", work, f"++model.pretrained_encoder={finetuned.pretrained}")
    assert not (work / "fresh" / "checkpoint_last.pt").exists()


# ---------------------------------------------------------------------------------------- 5. freezing


def test_encoder_is_frozen_for_the_first_updates_only(task, batch):
    model = build_slt(task, freeze_encoder_updates=3, encoder_drop_path=0.0)
    crit, opt = criterion(task), adam(list(model.parameters()))

    def grads(update_num):
        model.zero_grad(set_to_none=True)
        task.train_step(batch, model, crit, opt, update_num)  # sets the model's num_updates, as in training
        return ([p.grad for p in model.encoder.vit.parameters()], [p.grad for p in model.decoder.parameters()])

    for update_num in (0, 2):
        vit, dec = grads(update_num)
        assert all(g is None for g in vit), update_num
        assert all(g is not None for g in dec) and any(g.abs().sum() > 0 for g in dec)
    vit, dec = grads(3)
    assert all(g is not None for g in vit) and any(g.abs().sum() > 0 for g in vit)
    assert all(p.requires_grad for p in model.encoder.vit.parameters())  # still in the optimizer

    # freezing changes gradients only, never outputs: the same features frozen or not, training or generating
    src, pad = batch["net_input"]["source"], batch["net_input"]["padding_mask"]
    outputs = []
    for training in (True, False):
        model.train(training)
        for n in (0, 3):
            model.set_num_updates(n)
            outputs.append(model.encoder(src, pad)["encoder_out"][0].detach())
    assert all(torch.equal(o, outputs[0]) for o in outputs[1:])
    model.eval()
    model.set_num_updates(0)
    assert model.encoder(src, pad)["encoder_out"][0].requires_grad  # not frozen outside training


# ------------------------------------------------------------------------------------ 6. layer-wise lr decay


def test_layer_lr_scales():
    vit = VideoViT(img_size=32, num_frames=16, patch_size=16, tubelet_size=2, embed_dim=32, depth=3, num_heads=2,
                   cls_token=True)
    scales = encoder_layer_lr_scales(vit, 0.5)
    assert set(scales) == {n for n, _ in vit.named_parameters()}
    for name, s in scales.items():
        if name.startswith("blocks."):
            assert s == 0.5 ** (3 - int(name.split(".")[1])), name
        elif name.startswith("norm."):
            assert s == 1.0, name
        else:
            assert name.split(".")[0] in {"patch_embed", "pos_embed_spatial", "pos_embed_temporal", "cls_token",
                                          "pos_embed_class"}
            assert s == 0.5 ** 4, name
    assert set(encoder_layer_lr_scales(vit, 1.0).values()) == {1.0}


def test_optim_overrides_are_set_only_with_layer_decay_or_freezing(task):
    plain = build_slt(task, decoder_embed_dim=64)
    assert not any(hasattr(p, "optim_overrides") or hasattr(p, "param_group") for p in plain.parameters())
    model = build_slt(task, decoder_embed_dim=64, encoder_layer_decay=0.5)
    scales = encoder_layer_lr_scales(model.encoder.vit, 0.5)
    overrides = {n: p.optim_overrides for n, p in model.named_parameters() if hasattr(p, "optim_overrides")}
    assert overrides == {
        f"encoder.vit.{n}": {"optimizer": {"lr_scale": s}, ENCODER_MARK: True} for n, s in scales.items()
    }
    frozen = build_slt(task, decoder_embed_dim=64, freeze_encoder_updates=5)
    overrides = {n: p.optim_overrides for n, p in frozen.named_parameters() if hasattr(p, "optim_overrides")}
    assert overrides == {f"encoder.vit.{n}": {"optimizer": {"lr_scale": 1.0}, ENCODER_MARK: True} for n in scales}


def test_selective_weight_decay_puts_norms_biases_positions_and_tokens_in_the_no_decay_group(task):
    model = build_slt(task, decoder_embed_dim=64, selective_weight_decay=True, encoder_cls_token=True)
    groups = {n: getattr(p, "param_group", "default") for n, p in model.named_parameters()}
    no_decay = {n for n, g in groups.items() if g == NO_DECAY_GROUP}
    for name in ("encoder.vit.pos_embed_spatial", "encoder.vit.pos_embed_temporal", "encoder.vit.cls_token",
                 "encoder.vit.pos_embed_class", "encoder.vit.blocks.0.norm1.weight", "encoder.vit.blocks.0.attn.qkv.bias",
                 "encoder.vit.norm.bias", "encoder.proj.bias", "decoder.layers.0.fc1.bias"):
        assert name in no_decay, name
    for name in ("encoder.vit.blocks.0.attn.qkv.weight", "encoder.vit.patch_embed.weight", "encoder.proj.weight",
                 "decoder.embed_tokens.weight", "decoder.layers.0.fc1.weight"):
        assert groups[name] == "default", name


def mixed_precision_training(task, batch, composite: bool, **model_overrides):
    """The tiny model in bf16 with fairseq's FP16Optimizer (fp32 master weights, missing gradients
    zero-filled), as `common.bf16=true` trains it: (model, optimizer, one-update function)."""
    model = build_slt(task, encoder_drop_path=0.0, **model_overrides).to(torch.bfloat16)
    params = [p for p in model.parameters() if p.requires_grad]
    if composite:
        opt = optim.FP16Optimizer.build_optimizer(composite_cfg(fp16=False, bf16=True), params)
    else:
        cfg = composite_cfg(fp16=False, bf16=True)
        cfg.optimizer = OmegaConf.create({"_name": "adam", "weight_decay": 0.05, "lr": [1e-2], "tpu": False})
        opt = optim.FP16Optimizer.build_optimizer(cfg, params)
    crit = criterion(task)

    def update(update_num):
        model.train()
        opt.zero_grad()
        opt.set_lr(1e-2)  # no warm-up: updates large enough to show in bf16 weights
        task.train_step(batch, model, crit, opt, update_num)
        task.optimizer_step(opt, model, update_num)

    return model, opt, update


def test_a_frozen_encoder_does_not_change_under_bf16_until_it_thaws(synthetic_root, batch):
    """fairseq's fp16/bf16 optimizer gives the frozen ViT zero gradients, so a plain step would still apply weight
    decay (and Adam) to it; the task steps only the groups without the ViT while it is frozen. Checked on the
    fp32 master weights, where a small change is not lost to bf16 rounding."""
    task = load_task(synthetic_root)

    def masters(model, opt, module):
        ids = {id(p) for p in module.parameters()}
        return [m.detach().clone() for p, m in zip(opt.fp16_params, opt.fp32_params) if id(p) in ids]

    def same(a, b):
        return all(torch.equal(x, y) for x, y in zip(a, b))

    model, opt, update = mixed_precision_training(task, batch, composite=True, freeze_encoder_updates=2)
    vit0, dec0 = masters(model, opt, model.encoder.vit), masters(model, opt, model.decoder)
    for n in (0, 1):
        update(n)
        assert same(masters(model, opt, model.encoder.vit), vit0), n
    assert not same(masters(model, opt, model.decoder), dec0)
    update(2)  # thawed
    assert not same(masters(model, opt, model.encoder.vit), vit0)

    # the control: the same zero gradients stepped as a plain optimizer step change the frozen weights
    model, opt, update = mixed_precision_training(task, batch, composite=True, freeze_encoder_updates=2)
    vit0 = masters(model, opt, model.encoder.vit)
    opt.set_lr(1e-2)
    task.train_step(batch, model, criterion(task), opt, 0)
    opt.step()
    assert not same(masters(model, opt, model.encoder.vit), vit0)


def test_freezing_under_bf16_without_the_composite_optimizer_fails_at_the_first_step(synthetic_root, batch):
    task = load_task(synthetic_root)
    model, opt, update = mixed_precision_training(task, batch, composite=False, freeze_encoder_updates=2)
    with pytest.raises(ValueError, match=r"freeze_encoder_updates=2 under fp16/bf16.*optimizer\._name=composite"):
        update(0)


def test_plain_optimizer_with_layer_decay_fails_at_the_first_step(synthetic_root, batch):
    task = load_task(synthetic_root)  # fresh: the check runs once per task
    model = build_slt(task, encoder_layer_decay=0.5)
    with pytest.raises(ValueError, match=r"optimizer\._name=composite"):
        task.train_step(batch, model, criterion(task), adam(list(model.parameters())), 0)
    assert all(p.grad is None for p in model.parameters())  # before any work


@pytest.mark.parametrize("fp16", [
    False,
    True,
])
def test_composite_optimizer_passes_the_check(synthetic_root, batch, fp16):
    task = load_task(synthetic_root)
    model = build_slt(task, encoder_layer_decay=0.5)
    params = list(model.parameters())
    cfg = composite_cfg(fp16)
    opt = optim.FP16Optimizer.build_optimizer(cfg, params) if fp16 else optim.build_optimizer(cfg.optimizer, params)
    task.train_step(batch, model, criterion(task), opt, 0)
    assert all(p.grad is not None for p in model.encoder.vit.parameters())


def test_finetune_config_trains_with_per_layer_learning_rates(small_root, mae_ckpt, tmp_path):
    log = train_briefly(
        "finetune_base_pretrained", small_root, tmp_path / "ckpt", tmp_path, f"model.pretrained_encoder={mae_ckpt}",
        "model.preset=tiny", "common.fp16=false",
    )
    assert f"pretrained encoder from {mae_ckpt}" in log and "missing (left as initialised): none" in log
    lrs = sorted(float(x) for x in re.findall(r"Group : \S+:\{.*'lr': \[([0-9.e-]+)\]\}", log))
    base = 1e-4  # groups.default.lr_float; decay 0.75 over the tiny preset's 4 blocks
    # patch embedding and each block: a group with weight decay and one without (biases, norms, positions);
    # the final norm: no_decay only; the decoder: default and no_decay
    expected = sorted([base * 0.75 ** k for k in range(1, DEPTH + 2)] * 2 + [base] + [base, base])
    assert lrs == pytest.approx(expected), log[-3000:]
    assert '"train_num_updates": "1"' in log

