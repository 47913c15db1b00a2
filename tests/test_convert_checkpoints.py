"""scripts/convert_video_mae_checkpoint.py: public VideoMAE / mae_st weights -> encoder files.

Each source is checked end to end: random weights in the source's own naming
are converted by the script, loaded into a VideoViT with
``load_pretrained_vit`` (what fine-tuning does), and the features must equal
the source model's on the same clip. References: transformers' VideoMAE
(both its naming and, renamed explicitly here, the authors' original one) and
a small mae_st forward written below (mae_st has no pip package).
"""

import argparse
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import run_script_captured
from ssvp_slt.convert import model_settings
from ssvp_plugin.models.pretrained_encoder import load_pretrained_vit
from ssvp_plugin.models.video_vit import VideoViT

SCRIPT = "convert_video_mae_checkpoint"
# tiny geometry: width 64, 2 blocks, 4 heads, 32 px crops of 16 px patches, 4 frames in tubelets of 2
DIM, DEPTH, HEADS, MLP, IMG, PATCH, FRAMES, TUBELET = 64, 2, 4, 256, 32, 16, 4, 2
TOL = 1e-4


def randomise_(module: nn.Module, seed: int):
    """Every parameter random at a scale where a wrong key map shows (q/v biases, LayerNorms included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.dim() >= 2 and p.shape[0] > 1:  # projections: unit-variance outputs, peaked attention
                p.copy_(noise * 1.5 / math.sqrt(p[0].numel()))
            elif name.endswith("weight") and p.dim() == 1:  # LayerNorm gains
                p.copy_(1 + 0.3 * noise)
            else:  # biases, tokens, position tables
                p.copy_(0.3 * noise)
    return module


def clip(seed=1, batch=2):
    return torch.randn(batch, 3, FRAMES, IMG, IMG, generator=torch.Generator().manual_seed(seed))


def load_converted(path):
    """A VideoViT built from the encoder file's geometry and initialised by load_pretrained_vit, in eval mode."""
    g = torch.load(path, weights_only=True)["geometry"]
    vit = VideoViT(
        img_size=g["img_size"], num_frames=g["num_frames"], patch_size=g["patch_size"], tubelet_size=g["tubelet_size"],
        embed_dim=g["embed_dim"], depth=g["depth"], num_heads=g["num_heads"], mlp_ratio=g["mlp_ratio"],
        pos_embed_type=g["pos_embed_type"], cls_token=g["cls_token"],
    )
    load_pretrained_vit(vit, path)
    return vit.eval(), g


def features(vit, x):
    with torch.no_grad():
        out, padding = vit(x)
    assert padding is None
    b, t, g, c = out.shape
    return out.reshape(b, t * g, c)


def max_diff(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


def convert(*argv):
    rc, text = run_script_captured(SCRIPT, *argv)
    assert rc == 0, text
    return text


# ----------------------------------------------------------------------------------------------- VideoMAE


def hf_config(transformers, **kw):
    cfg = transformers.VideoMAEConfig(
        image_size=IMG, patch_size=PATCH, num_frames=FRAMES, tubelet_size=TUBELET, hidden_size=DIM,
        num_hidden_layers=DEPTH, num_attention_heads=HEADS, intermediate_size=MLP, **kw,
    )
    cfg._attn_implementation = "eager"  # the textbook attention as reference
    return cfg


def hf_reference(model, x, mean_pooling):
    """transformers' last_hidden_state for (B, C, T, H, W) clips (it takes pixel_values as (B, T, C, H, W))."""
    with torch.no_grad():
        out = model(pixel_values=x.permute(0, 2, 1, 3, 4)).last_hidden_state
    # a mean-pooling VideoMAE has no final per-token norm; the converted encoder's identity-affine norm remains
    return F.layer_norm(out, out.shape[-1:], eps=1e-6) if mean_pooling else out


def expected_settings(path):
    return (
        f"model.encoder_pos_embed=joint model.encoder_cls_token=false model.encoder_embed_dim={DIM} "
        f"model.encoder_layers={DEPTH} model.encoder_attention_heads={HEADS} model.patch_size={PATCH} "
        f"model.tubelet_size={TUBELET} model.pretrained_encoder={path.resolve()}"
    )


@pytest.mark.parametrize("mean_pooling", [False, True], ids=["final_norm", "mean_pooling"])
def test_hf_videomae_model_features_match(tmp_path, mean_pooling):
    import transformers
    torch.manual_seed(0)
    model = randomise_(transformers.VideoMAEModel(hf_config(transformers, use_mean_pooling=mean_pooling)), seed=2).eval()
    model.save_pretrained(tmp_path / "hf")  # model.safetensors (q_bias / v_bias naming) + config.json
    out = tmp_path / "videomae.pt"

    text = convert("--input", tmp_path / "hf" / "model.safetensors", "--output", out)

    vit, g = load_converted(out)
    assert (g["pos_embed_type"], g["cls_token"], g["num_heads"], g["num_frames"], g["img_size"]) == ("joint", False, HEADS, FRAMES, IMG)
    x = clip()
    diff = max_diff(features(vit, x), hf_reference(model, x, mean_pooling))
    print(f"VideoMAE HF VideoMAEModel use_mean_pooling={mean_pooling}: max abs diff {diff:.2e}")
    assert diff <= TOL
    assert ("final norm: ABSENT" in text) == mean_pooling
    if mean_pooling:
        assert torch.equal(vit.norm.weight, torch.ones(DIM)) and torch.equal(vit.norm.bias, torch.zeros(DIM))
    assert "k bias filled with zeros" in text and "sinusoidal" in text and "eps is 1e-12" in text
    assert expected_settings(out) in text


def test_the_converter_states_the_normalisation_and_fine_tuning_checks_it(tmp_path, caplog):
    """VideoMAE normalises with ImageNet's mean/std (or its preprocessor_config.json), mae_st with 0.45/0.225:
    the converter says which to put in the data config, records it, and loading warns on a mismatch."""
    import logging

    import transformers
    torch.manual_seed(0)
    model = transformers.VideoMAEModel(hf_config(transformers, use_mean_pooling=False))
    model.save_pretrained(tmp_path / "hf")
    text = convert("--input", tmp_path / "hf" / "model.safetensors", "--output", tmp_path / "a.pt")
    assert "mean [0.485, 0.456, 0.406] / std [0.229, 0.224, 0.225] (VideoMAE's ImageNet mean/std)" in text
    assert "config.yaml:  mean: [0.485, 0.456, 0.406]  std: [0.229, 0.224, 0.225]" in text
    assert torch.load(tmp_path / "a.pt", weights_only=True)["normalisation"]["mean"] == [0.485, 0.456, 0.406]

    # a Hugging Face image processor's values win over the default
    (tmp_path / "hf" / "preprocessor_config.json").write_text('{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}')
    text = convert("--input", tmp_path / "hf" / "model.safetensors", "--output", tmp_path / "b.pt")
    assert "mean [0.5, 0.5, 0.5] / std [0.5, 0.5, 0.5]" in text and "preprocessor_config.json" in text

    g = torch.load(tmp_path / "a.pt", weights_only=True)["geometry"]
    vit = VideoViT(img_size=g["img_size"], num_frames=g["num_frames"], patch_size=g["patch_size"],
                   tubelet_size=g["tubelet_size"], embed_dim=g["embed_dim"], depth=g["depth"], num_heads=g["num_heads"],
                   mlp_ratio=g["mlp_ratio"], pos_embed_type="joint")
    with caplog.at_level(logging.WARNING):
        load_pretrained_vit(vit, tmp_path / "a.pt", [0.45] * 3, [0.225] * 3)  # this project's default data config
    assert "pretrained on frames normalised with mean [0.485, 0.456, 0.406]" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        load_pretrained_vit(vit, tmp_path / "a.pt", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    assert "normalised with" not in caplog.text


def test_hf_videomae_pretraining_state_dict_ignores_decoder(tmp_path):
    import transformers
    torch.manual_seed(0)
    cfg = hf_config(transformers, use_mean_pooling=False, decoder_hidden_size=32, decoder_num_hidden_layers=1,
                    decoder_num_attention_heads=2, decoder_intermediate_size=64)
    model = randomise_(transformers.VideoMAEForPreTraining(cfg), seed=3).eval()
    folder = tmp_path / "hf_pretrain"
    folder.mkdir()
    # the in-memory naming (videomae. prefix, query.bias / value.bias) as a pytorch_model.bin
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    cfg.to_json_file(folder / "config.json")
    n_decoder = sum(1 for k in model.state_dict() if not k.startswith("videomae."))
    out = tmp_path / "videomae_pretrain.pt"

    text = convert("--input", folder, "--output", out)  # a model directory

    vit, _ = load_converted(out)
    x = clip(seed=4)
    diff = max_diff(features(vit, x), hf_reference(model.videomae, x, mean_pooling=False))
    print(f"VideoMAE HF VideoMAEForPreTraining state dict: max abs diff {diff:.2e}")
    assert diff <= TOL
    assert f"ignored {n_decoder} non-encoder tensors" in text
    assert "encoder_to_decoder (1)" in text and "mask_token (1)" in text and "decoder (" in text


def original_naming(hf_state, prefix, final_norm):
    """transformers VideoMAEModel weights renamed, one by one, to the MCG-NJU/VideoMAE code's naming."""
    sd = {
        f"{prefix}patch_embed.proj.weight": hf_state["embeddings.patch_embeddings.projection.weight"],
        f"{prefix}patch_embed.proj.bias": hf_state["embeddings.patch_embeddings.projection.bias"],
    }
    for i in range(DEPTH):
        h, o = f"encoder.layer.{i}.", f"{prefix}blocks.{i}."
        att = h + "attention.attention."
        sd[o + "norm1.weight"] = hf_state[h + "layernorm_before.weight"]
        sd[o + "norm1.bias"] = hf_state[h + "layernorm_before.bias"]
        sd[o + "attn.qkv.weight"] = torch.cat([hf_state[att + "query.weight"], hf_state[att + "key.weight"], hf_state[att + "value.weight"]])
        sd[o + "attn.q_bias"] = hf_state[att + "query.bias"]
        sd[o + "attn.v_bias"] = hf_state[att + "value.bias"]
        sd[o + "attn.proj.weight"] = hf_state[h + "attention.output.dense.weight"]
        sd[o + "attn.proj.bias"] = hf_state[h + "attention.output.dense.bias"]
        sd[o + "norm2.weight"] = hf_state[h + "layernorm_after.weight"]
        sd[o + "norm2.bias"] = hf_state[h + "layernorm_after.bias"]
        sd[o + "mlp.fc1.weight"] = hf_state[h + "intermediate.dense.weight"]
        sd[o + "mlp.fc1.bias"] = hf_state[h + "intermediate.dense.bias"]
        sd[o + "mlp.fc2.weight"] = hf_state[h + "output.dense.weight"]
        sd[o + "mlp.fc2.bias"] = hf_state[h + "output.dense.bias"]
    if final_norm:
        sd[f"{prefix}norm.weight"] = hf_state["layernorm.weight"]
        sd[f"{prefix}norm.bias"] = hf_state["layernorm.bias"]
    return sd


@pytest.mark.parametrize("kind", ["pretraining", "finetuned"])
def test_original_videomae_naming_features_match(tmp_path, kind):
    import transformers
    torch.manual_seed(0)
    mean_pooling = kind == "finetuned"  # the authors' fine-tuned models pool: no final norm, an fc_norm instead
    model = randomise_(transformers.VideoMAEModel(hf_config(transformers, use_mean_pooling=mean_pooling)), seed=5).eval()
    g = torch.Generator().manual_seed(6)
    if kind == "pretraining":
        sd = original_naming(model.state_dict(), "encoder.", final_norm=True)
        sd.update({
            "decoder.blocks.0.norm1.weight": torch.randn(32, generator=g),
            "decoder.blocks.0.attn.qkv.weight": torch.randn(96, 32, generator=g),
            "decoder.norm.weight": torch.randn(32, generator=g),
            "decoder.head.weight": torch.randn(3 * TUBELET * PATCH ** 2, 32, generator=g),
            "encoder_to_decoder.weight": torch.randn(32, DIM, generator=g),
            "mask_token": torch.randn(1, 1, 32, generator=g),
        })
        ckpt = {"model": sd, "args": argparse.Namespace(model="pretrain_videomae_tiny", num_frames=FRAMES, input_size=IMG, tubelet_size=TUBELET)}
        flags = ["--num-heads", HEADS]  # frames and crop come from the saved args
        n_ignored = 6
    else:
        sd = original_naming(model.state_dict(), "", final_norm=False)
        sd.update({
            "fc_norm.weight": torch.randn(DIM, generator=g), "fc_norm.bias": torch.randn(DIM, generator=g),
            "head.weight": torch.randn(10, DIM, generator=g), "head.bias": torch.randn(10, generator=g),
        })
        ckpt = {"module": sd, "epoch": 7}
        flags = ["--num-heads", HEADS, "--num-frames", FRAMES, "--img-size", IMG]
        n_ignored = 4
    torch.save(ckpt, tmp_path / "checkpoint.pth")
    out = tmp_path / "videomae_original.pt"

    text = convert("--input", tmp_path / "checkpoint.pth", "--output", out, *flags)

    vit, geometry = load_converted(out)
    assert (geometry["num_frames"], geometry["img_size"]) == (FRAMES, IMG)
    x = clip(seed=7)
    diff = max_diff(features(vit, x), hf_reference(model, x, mean_pooling))
    print(f"VideoMAE original naming ({kind}): max abs diff {diff:.2e}")
    assert diff <= TOL
    assert f"ignored {n_ignored} non-encoder tensors" in text
    assert ("final norm: ABSENT" in text) == mean_pooling
    assert "concatenated q_bias, zeros" in text


# ----------------------------------------------------------------------------------------------- mae_st


class RefAttention(nn.Module):
    """mae_st attention: separate q, k, v projections."""

    def __init__(self, dim, heads, bias):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=bias) for _ in range(3))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape

        def split(t):
            return t.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        weights = (q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5).softmax(-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, n, c))


class RefMlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact GELU


class RefBlock(nn.Module):
    def __init__(self, dim, heads, bias):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn, self.mlp = RefAttention(dim, heads, bias), RefMlp(dim, 4 * dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class RefMaeSt(nn.Module):
    """mae_st's MaskedAutoencoderViT in its state-dict naming; forward = its encoder with nothing masked."""

    def __init__(self, cls_embed, sep_pos_embed, qkv_bias, dim=DIM, depth=DEPTH, heads=HEADS, dec=32):
        super().__init__()
        self.cls_embed, self.sep_pos_embed = cls_embed, sep_pos_embed
        self.t, self.n_spatial = FRAMES // TUBELET, (IMG // PATCH) ** 2
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(3, dim, (TUBELET, PATCH, PATCH), stride=(TUBELET, PATCH, PATCH))
        if cls_embed:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
            self.decoder_cls_token = nn.Parameter(torch.zeros(1, 1, dec))
        if sep_pos_embed:
            self.pos_embed_spatial = nn.Parameter(torch.zeros(1, self.n_spatial, dim))
            self.pos_embed_temporal = nn.Parameter(torch.zeros(1, self.t, dim))
            self.decoder_pos_embed_spatial = nn.Parameter(torch.zeros(1, self.n_spatial, dec))
            self.decoder_pos_embed_temporal = nn.Parameter(torch.zeros(1, self.t, dec))
            if cls_embed:
                self.pos_embed_class = nn.Parameter(torch.zeros(1, 1, dim))
                self.decoder_pos_embed_class = nn.Parameter(torch.zeros(1, 1, dec))
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, self.t * self.n_spatial + int(cls_embed), dim))
            self.decoder_pos_embed = nn.Parameter(torch.zeros(1, self.t * self.n_spatial + int(cls_embed), dec))
        self.blocks = nn.ModuleList(RefBlock(dim, heads, qkv_bias) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        # the MAE decoder, which the conversion drops
        self.decoder_embed = nn.Linear(dim, dec)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec))
        self.decoder_blocks = nn.ModuleList([RefBlock(dec, 2, qkv_bias)])
        self.decoder_norm = nn.LayerNorm(dec, eps=1e-6)
        self.decoder_pred = nn.Linear(dec, TUBELET * PATCH ** 2 * 3)

    def forward(self, x):
        x = torch.einsum("ncts->ntsc", self.patch_embed.proj(x).flatten(3))  # (N, T, H*W, C)
        n, t, s, c = x.shape
        x = x.reshape(n, t * s, c)
        if self.cls_embed:
            x = torch.cat([self.cls_token.expand(n, -1, -1), x], 1)
        if self.sep_pos_embed:
            pos = self.pos_embed_spatial.repeat(1, t, 1) + torch.repeat_interleave(self.pos_embed_temporal, s, dim=1)
            if self.cls_embed:
                pos = torch.cat([self.pos_embed_class, pos], 1)
        else:
            pos = self.pos_embed
        x = x + pos
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return x[:, 1:] if self.cls_embed else x


MAE_ST_CASES = {
    "cls_separable": (True, True, True),
    "separable": (False, True, True),
    "cls_joint": (True, False, True),
    "joint_no_qkv_bias": (False, False, False),
}


def save_mae_st(path, ref, cls_embed, sep_pos_embed, state=None):
    args = argparse.Namespace(model="mae_vit_tiny_patch16", num_frames=FRAMES, input_size=IMG, t_patch_size=TUBELET,
                              cls_embed=cls_embed, sep_pos_embed=sep_pos_embed)
    torch.save({"model": ref.state_dict() if state is None else state, "epoch": 3, "args": args}, path)
    return path


@pytest.mark.parametrize("case", list(MAE_ST_CASES))
def test_mae_st_features_match(tmp_path, case):
    cls_embed, sep_pos_embed, qkv_bias = MAE_ST_CASES[case]
    torch.manual_seed(0)
    ref = randomise_(RefMaeSt(cls_embed, sep_pos_embed, qkv_bias), seed=8).eval()
    src = save_mae_st(tmp_path / "mae_st.pth", ref, cls_embed, sep_pos_embed)  # args: safe-globals path
    out = tmp_path / "mae_st_encoder.pt"

    text = convert("--input", src, "--output", out, "--num-heads", HEADS)

    vit, g = load_converted(out)
    assert (g["pos_embed_type"], g["cls_token"]) == ("separable" if sep_pos_embed else "joint", cls_embed)
    assert (g["num_frames"], g["img_size"]) == (FRAMES, IMG)
    x = clip(seed=9)
    with torch.no_grad():
        expected = ref(x)
    diff = max_diff(features(vit, x), expected)
    print(f"mae_st {case}: max abs diff {diff:.2e}")
    assert diff <= TOL
    n_decoder = sum(1 for k in ref.state_dict() if k.startswith("decoder_") or k == "mask_token")
    assert f"ignored {n_decoder} non-encoder tensors" in text
    assert "fused separate attn.q / attn.k / attn.v" in text
    assert ("all qkv biases are zeros" in text) == (not qkv_bias)
    assert f"model.encoder_cls_token={'true' if cls_embed else 'false'}" in text
    assert f"model.encoder_pos_embed={'separable' if sep_pos_embed else 'joint'}" in text
    assert "mean [0.45, 0.45, 0.45] / std [0.225, 0.225, 0.225] (mae_st's mean/std)" in text


def test_mae_st_released_layout(tmp_path):
    """The released Kinetics files (PySlowFast): weights under 'model_state' with a 'pred_head'."""
    torch.manual_seed(0)
    ref = randomise_(RefMaeSt(True, True, True), seed=8).eval()
    state = dict(ref.state_dict())
    state["pred_head.transforms.0.weight"] = torch.randn(4, DIM)
    src = tmp_path / "mae_pretrain_vit_large_k400.pth"
    torch.save({"model_state": state, "epoch": 3}, src)
    out = tmp_path / "encoder.pt"

    text = convert("--input", src, "--output", out, "--num-heads", HEADS, "--num-frames", FRAMES, "--img-size", IMG)

    vit, _ = load_converted(out)
    x = clip(seed=9)
    with torch.no_grad():
        expected = ref(x)
    assert max_diff(features(vit, x), expected) <= TOL
    assert "PySlowFast prediction head" in text


# ----------------------------------------------------------------------------------------------- errors


class NotATensor:
    """A custom object in a checkpoint: torch.load(weights_only=True) must refuse it."""

    def __init__(self):
        self.payload = 42


def assert_fails(tmp_path, source, *expected, extra=()):
    rc, text = run_script_captured(SCRIPT, "--input", source, "--output", tmp_path / "out.pt", *extra)
    assert rc == 1, text
    assert len(text.strip().splitlines()) == 1, text  # one line, no traceback
    assert str(source) in text, text
    for part in expected:
        assert part in text, text
    assert not (tmp_path / "out.pt").exists()
    return text


def test_missing_input(tmp_path):
    assert_fails(tmp_path, tmp_path / "nope.pth", "not found")


@pytest.mark.parametrize("name", ["garbage.pth", "garbage.safetensors"])
def test_not_a_checkpoint(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"this is not a checkpoint\n" * 20)
    assert_fails(tmp_path, path, "not a readable")


def test_unknown_format(tmp_path):
    path = tmp_path / "random.pth"
    torch.save({"model": {"features.0.weight": torch.randn(4, 3), "classifier.bias": torch.randn(2)}}, path)
    assert_fails(tmp_path, path, "unknown checkpoint format")


def test_pickled_object_is_refused(tmp_path):
    ref = RefMaeSt(False, True, True)
    path = tmp_path / "unsafe.pth"
    torch.save({"model": ref.state_dict(), "extra": NotATensor()}, path)
    assert_fails(tmp_path, path, "weights_only=True")


def test_missing_block_weight_is_named(tmp_path):
    ref = RefMaeSt(False, True, True)
    state = ref.state_dict()
    del state["blocks.1.mlp.fc2.weight"]
    path = save_mae_st(tmp_path / "incomplete.pth", ref, False, True, state=state)
    assert_fails(tmp_path, path, "'blocks.1.mlp.fc2.weight'", extra=("--num-heads", HEADS))


def test_unmapped_tensor_is_named(tmp_path):
    ref = RefMaeSt(False, True, True)
    state = dict(ref.state_dict(), **{"blocks.0.attn.rel_pos_h": torch.randn(3, 16)})
    path = save_mae_st(tmp_path / "extra.pth", ref, False, True, state=state)
    assert_fails(tmp_path, path, "blocks.0.attn.rel_pos_h", extra=("--num-heads", HEADS))


def test_unknown_head_count_asks_for_flag(tmp_path):
    path = save_mae_st(tmp_path / "mae_st.pth", RefMaeSt(False, True, True), False, True)
    assert_fails(tmp_path, path, "--num-heads")


def test_geometry_flag_contradicting_weights(tmp_path):
    path = save_mae_st(tmp_path / "mae_st.pth", RefMaeSt(False, True, True), False, True)
    assert_fails(tmp_path, path, "--num-frames 8 contradicts", extra=("--num-heads", HEADS, "--num-frames", 8))


def test_settings_name_a_matching_preset(tmp_path):
    geometry = dict(embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0, patch_size=16, tubelet_size=2,
                    img_size=224, num_frames=16, pos_embed_type="joint", cls_token=False)
    settings = model_settings(geometry, tmp_path / "enc.pt")
    assert "model.preset=base" in settings and not any("encoder_embed_dim" in s for s in settings)
    settings = model_settings(dict(geometry, embed_dim=384, num_heads=6), tmp_path / "enc.pt")
    assert "model.encoder_embed_dim=384" in settings and not any("preset" in s for s in settings)
