"""Every hydra config composes the way fairseq-hydra-train composes it, with the recipe's settings."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import ssvp_plugin  # noqa: F401  (registers task, model, criterion)
from fairseq.dataclass.initialize import add_defaults, hydra_init

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
PRETRAIN_CONFIGS = [c for c in CONFIGS if c.startswith("pretrain_")]
HIERA_PRETRAIN_CONFIGS = [c for c in PRETRAIN_CONFIGS if c.startswith("pretrain_mae_hiera_")]  # mae_hiera
VIT_PRETRAIN_CONFIGS = [c for c in PRETRAIN_CONFIGS if c not in HIERA_PRETRAIN_CONFIGS]  # mae_vit
TWO_STAGE_CONFIGS = [c for c in CONFIGS if c.startswith("two_stage_")]  # stored features -> text (sign_features)
LANDMARK_CONFIGS = [c for c in CONFIGS if c.startswith("landmarks_")]  # stored keypoints -> text (sign_features)
TRANSLATION_CONFIGS = [c for c in CONFIGS if c not in PRETRAIN_CONFIGS + TWO_STAGE_CONFIGS + LANDMARK_CONFIGS]
REQUIRED = ["task.data=/data", "common.user_dir=/plugin", "checkpoint.save_dir=/ckpt"]


def composed(name, overrides=()):
    hydra_init(name)  # as fairseq-hydra-train: the FairseqConfig schema under this config's name
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.1"):  # as fairseq-hydra-train
        cfg = compose(config_name=name, overrides=REQUIRED + list(overrides))
    add_defaults(cfg)  # merges the registered dataclasses: unknown keys fail here
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


def test_there_are_configs():
    assert {"quick_synthetic", "finetune_base", "finetune_large", "finetune_base_pretrained", "finetune_large_pretrained",
            "finetune_quick"} <= set(
        TRANSLATION_CONFIGS
    )
    assert {"pretrain_mae_tiny", "pretrain_mae_base", "pretrain_mae_large"} == set(VIT_PRETRAIN_CONFIGS)
    assert {"pretrain_mae_hiera_tiny", "pretrain_mae_hiera_base"} == set(HIERA_PRETRAIN_CONFIGS)


@pytest.mark.parametrize("name", TRANSLATION_CONFIGS)
def test_config_composes_with_the_plugin(name):
    cfg = composed(name)
    assert cfg.task._name == "how2sign_video" and cfg.task.data == "/data"
    assert cfg.model._name == "mae_vit_slt"
    assert cfg.criterion._name == "slt_label_smoothed_cross_entropy"
    assert cfg.checkpoint.best_checkpoint_metric == "bleu" and cfg.checkpoint.maximize_best_checkpoint_metric
    assert cfg.task.eval_bleu
    assert cfg.common.tensorboard_logdir.startswith("/ckpt")
    assert cfg.model.max_target_positions == 128
    assert cfg.optimization.clip_norm == 1.0


@pytest.mark.parametrize("name", VIT_PRETRAIN_CONFIGS)
def test_pretraining_configs_compose(name):
    cfg = composed(name)
    assert cfg.task._name == "unlabelled_video" and cfg.task.data == "/data"
    assert cfg.model._name == "mae_vit" and cfg.model.preset == name.split("_")[-1]
    assert cfg.model.mask_type == "tube" and cfg.model.norm_pix_loss
    assert cfg.model.mask_ratio == (0.75 if name.endswith("tiny") else 0.9)
    assert cfg.criterion._name == "mae_reconstruction"
    assert cfg.checkpoint.best_checkpoint_metric == "loss" and not cfg.checkpoint.maximize_best_checkpoint_metric


@pytest.mark.parametrize("name", HIERA_PRETRAIN_CONFIGS)
def test_hiera_pretraining_configs_compose(name):
    cfg = composed(name)
    assert cfg.task._name == "unlabelled_video" and cfg.criterion._name == "mae_reconstruction"
    assert cfg.model._name == "mae_hiera"
    assert cfg.checkpoint.best_checkpoint_metric == "loss" and not cfg.checkpoint.maximize_best_checkpoint_metric
    if name.endswith("tiny"):
        assert cfg.model.preset == "signhiera_tiny" and cfg.model.mask_ratio == 0.75
        assert cfg.model.decoder_depth <= 2 and cfg.model.decoder_embed_dim == 64
        assert not cfg.common.bf16 and not cfg.common.fp16
        return
    # SSVP-SLT's SignHiera MAE recipe
    m = cfg.model
    assert m.preset == "signhiera_base_128x224" and m.mask_ratio == 0.9 and m.drop_path == 0.2
    assert (m.decoder_embed_dim, m.decoder_depth, m.decoder_num_heads) == (512, 8, 8)
    assert cfg.optimization.lr == [8e-4] and cfg.optimizer.weight_decay == 0.05
    assert cfg.optimizer.adam_betas == "(0.9,0.95)" and cfg.common.bf16
    assert cfg.optimization.max_epoch == 400
    assert cfg.lr_scheduler.warmup_updates / cfg.optimization.max_update == pytest.approx(120 / 400, abs=1e-3)
    assert cfg.dataset.batch_size * cfg.optimization.update_freq[0] == 32
    assert cfg.dataset.max_tokens == cfg.dataset.batch_size * 128  # one 128-frame window per clip


@pytest.mark.parametrize("name,preset", [("finetune_base", "base"), ("finetune_large", "large")])
def test_finetune_configs_carry_the_recipe_defaults(name, preset):
    cfg = composed(name)
    assert cfg.model.preset == preset
    assert cfg.optimization.lr == [1e-4]
    default, no_decay = cfg.optimizer.groups.default, cfg.optimizer.groups.no_decay
    assert default.lr_float == no_decay.lr_float == 1e-4
    assert default.lr_scheduler == no_decay.lr_scheduler and default.lr_scheduler.warmup_updates == 500
    assert default.optimizer.weight_decay == 0.05 and no_decay.optimizer.weight_decay == 0.0
    assert cfg.model.selective_weight_decay and cfg.common.bf16 and cfg.common.fp16_no_flatten_grads
    assert cfg.criterion.label_smoothing == 0.1
    assert cfg.optimization.max_epoch == 30
    # the same effective batch in clips and encoder frames, in batches that fit one 80 GB GPU
    assert cfg.dataset.batch_size * cfg.optimization.update_freq[0] == 16
    assert cfg.dataset.max_tokens * cfg.optimization.update_freq[0] == 16 * 128
    assert cfg.dataset.max_tokens >= 128 * 6  # the longest clip: max_windows (6) windows of 128 frames
    assert cfg.model.encoder_activation_checkpointing == (preset == "large")
    assert json.loads(cfg.task.eval_bleu_args)["beam"] == 5


def test_quick_check_config_trains_base_on_a_subset_for_a_few_epochs():
    quick, full = composed("finetune_quick"), composed("finetune_base")
    assert quick.task.max_train_clips == 1000 and quick.optimization.max_epoch == 3
    assert quick.model == full.model and quick.dataset == full.dataset


def test_quick_config_uses_the_tiny_preset_and_accepts_overrides():
    cfg = composed("quick_synthetic", ["++model.encoder_layers=1", "optimization.max_update=7"])
    assert cfg.model.preset == "tiny" and cfg.model.encoder_layers == 1
    assert cfg.optimizer.groups.default.lr_scheduler.total_num_update == 7
    assert cfg.optimizer.groups.no_decay.lr_scheduler.total_num_update == 7


def test_unknown_key_is_rejected():
    with pytest.raises(Exception, match="no_such_option"):
        composed("quick_synthetic", ["+model.no_such_option=1"])


@pytest.mark.parametrize("size", ["base", "large"])
def test_pretrained_finetune_configs_match_the_plain_ones_but_for_the_encoder_start(size):
    plain, pre = composed(f"finetune_{size}"), composed(f"finetune_{size}_pretrained", ["model.pretrained_encoder=/enc.pt"])
    assert pre.model.pretrained_encoder == "/enc.pt" and pre.model.encoder_layer_decay == 0.75
    # layer decay needs the composite optimizer with one group per lr scale, and unflattened fp16 grads
    assert pre.optimizer._name == "composite" and pre.optimizer.dynamic_groups
    assert pre.lr_scheduler._name == "pass_through" and pre.common.fp16_no_flatten_grads
    assert pre.optimizer == plain.optimizer
    for section in ("dataset", "criterion", "task"):
        assert pre[section] == plain[section]


@pytest.mark.parametrize("name", TWO_STAGE_CONFIGS)
def test_two_stage_configs_compose(name):
    cfg = composed(name, ["task.features=/store"])
    assert cfg.task._name == "sign_features" and cfg.task.data == "/data" and cfg.task.features == "/store"
    assert cfg.model._name == "feature_slt" and cfg.model.max_target_positions == 128
    assert cfg.criterion._name == "slt_label_smoothed_cross_entropy"
    assert cfg.checkpoint.best_checkpoint_metric == "bleu" and cfg.checkpoint.maximize_best_checkpoint_metric
    assert cfg.task.eval_bleu and cfg.optimization.clip_norm == 1.0
    assert cfg.optimizer._name == "adam"  # fairseq's Adam decouples weight decay: AdamW


def test_two_stage_ssvp_config_is_ssvp_slts_fairseq_setting():
    cfg = composed("two_stage_ssvp")
    assert TWO_STAGE_CONFIGS == ["two_stage_quick", "two_stage_ssvp"]
    assert cfg.model.preset == "ssvp_slt_fairseq" and cfg.task.features is None  # default: <data>/features
    assert cfg.optimization.lr == [1e-3] and cfg.optimizer.weight_decay == 0.1
    assert cfg.dataset.batch_size == 32 and cfg.dataset.max_tokens >= 32 * 6 * 64  # 32 clips of 6 windows x 64 steps
    assert cfg.criterion.label_smoothing == 0.2
    assert json.loads(cfg.task.eval_bleu_args)["beam"] == 5
    assert composed("two_stage_quick").model.preset == "tiny"


@pytest.mark.parametrize("name", LANDMARK_CONFIGS)
def test_landmark_configs_are_the_two_stage_recipe_on_keypoints(name):
    assert LANDMARK_CONFIGS == ["landmarks_base", "landmarks_quick"]
    cfg = composed(name)
    twin = composed({"landmarks_base": "two_stage_ssvp", "landmarks_quick": "two_stage_quick"}[name])
    assert cfg.task._name == "sign_features" and cfg.task.features is None  # the keypoint store: <data>/features
    assert cfg.model._name == "feature_slt" and cfg.model.preset == ("landmarks_base" if name == "landmarks_base" else "tiny")
    # normalisation and augmentation live in the store's config.yaml, so the recipe is the two-stage one
    for section in ("optimizer", "lr_scheduler", "optimization", "criterion", "checkpoint", "task"):
        assert cfg[section] == twin[section], section
    assert cfg.dataset.max_tokens >= 1024  # the longest clip the model takes (max_source_positions) fits a batch


def test_signhiera_config_is_finetune_base_pretrained_with_signhiera():
    hiera = composed("finetune_signhiera_base", ["model.pretrained_encoder=/dm_70h_ub_signhiera.pth"])
    vit = composed("finetune_base_pretrained", ["model.pretrained_encoder=/enc.pt"])
    assert hiera.model.preset == "signhiera_base_128x224" and hiera.model.encoder_arch == "hiera"
    assert hiera.model.pretrained_encoder == "/dm_70h_ub_signhiera.pth"
    assert hiera.model.encoder_activation_checkpointing and hiera.common.bf16
    assert hiera.model.encoder_layer_decay == 0.85  # 24 blocks
    assert hiera.optimizer == vit.optimizer and hiera.optimization == vit.optimization
    for section in ("dataset", "criterion", "task"):
        assert hiera[section] == vit[section]
