import pytest
import torch
from fairseq.sequence_generator import SequenceGenerator

from conftest import load_task
from ssvp_plugin.models.frame_input import sinusoidal_positions
from ssvp_plugin.models.mae_vit_slt import PRESETS, MaeVitSltConfig, MaeVitSltModel
from ssvp_plugin.models.video_vit import VideoViT


@pytest.fixture(scope="module")
def task(synthetic_root):
    t = load_task(synthetic_root)
    t.load_dataset("test")
    return t


def build(task, **overrides):
    torch.manual_seed(0)
    cfg = MaeVitSltConfig(preset="tiny", max_target_positions=128, **overrides)
    return MaeVitSltModel.build_model(cfg, task).eval()


@pytest.fixture(scope="module")
def model(task):
    return build(task)


@pytest.fixture(scope="module")
def batch(task):
    ds = task.datasets["test"]
    order = sorted(range(len(ds)), key=lambda i: ds.sizes[i])
    return ds.collater([ds[order[0]], ds[order[-1]], ds[order[1]]])


def encoder_input(batch):
    return {k: v for k, v in batch["net_input"].items() if k != "prev_output_tokens"}


def test_batch_holds_a_long_clip_in_several_windows_and_a_short_one_in_one(task, batch):
    starts = batch["net_input"]["window_starts"]
    n_windows = (starts >= 0).sum(1).tolist()
    assert n_windows[0] == 1 and n_windows[1] > 1, n_windows  # the fixture's shortest and longest clips
    assert batch["net_input"]["source"].dtype == torch.uint8


def test_encoder_output_is_fairseq_list_format(model, task, batch):
    out = model.encoder(**encoder_input(batch))
    (x,), (pad,) = out["encoder_out"], out["encoder_padding_mask"]
    b, n = batch["nsentences"], task.data_cfg.num_frames
    starts = batch["net_input"]["window_starts"]
    steps = -(-n // 2)  # one step per 2-frame tubelet
    assert x.shape == (starts.shape[1] * steps, b, 128)  # T x B x C: each clip's windows, concatenated
    valid_frames = (~batch["net_input"]["padding_mask"]).sum(1)
    for i in range(b):
        k = int((starts[i] >= 0).sum())
        expected = steps * k if k > 1 else -(-int(valid_frames[i]) // 2)
        assert int((~pad[i]).sum()) == expected and not pad[i, :expected].any()  # padding only at the end
    assert torch.all(x.transpose(0, 1)[pad] == 0)


def test_windowed_encoding_equals_encoding_each_window_alone(model, task, batch):
    """Each window goes through the ViT on its own; the decoder sees the windows' features in time order,
    each step carrying the sinusoidal encoding of its time in the clip."""
    i, n = 1, task.data_cfg.num_frames  # the longest clip
    starts = batch["net_input"]["window_starts"][i]
    starts = starts[starts >= 0]
    src = batch["net_input"]["source"][i : i + 1]
    with torch.no_grad():
        together = model.encoder(src, None, starts.unsqueeze(0))["encoder_out"][0][:, 0]
        steps = -(-n // 2)
        for k, s in enumerate(starts.tolist()):
            alone = model.encoder(src[:, s : s + n], None)["encoder_out"][0][:, 0]  # window k as a clip of its own
            shift = sinusoidal_positions(s / 2 + torch.arange(steps), 128) - sinusoidal_positions(torch.arange(steps).float(), 128)
            assert torch.allclose(together[k * steps : (k + 1) * steps], alone + shift, atol=1e-4), k


def test_generation_length_limits_count_frames_not_channels(task, model, batch):
    """fairseq's SequenceGenerator reads the source length as source.size(1): frames, so --max-len-a scales with
    the clip (a (B, C, T, H, W) input would give 3 and refuse this min_len)."""
    gen = SequenceGenerator([model], task.target_dictionary, beam_size=1, max_len_a=1.0, max_len_b=0, min_len=10)
    with torch.no_grad():
        hyps = gen.generate([model], batch)
    assert all(len(h[0]["tokens"]) >= 10 for h in hyps)


@pytest.mark.parametrize("pooling", ["spatial", "none"])
def test_padding_does_not_change_a_clip_s_outputs(task, batch, pooling):
    model = build(task, encoder_pooling=pooling)
    net_input = batch["net_input"]
    with torch.no_grad():
        full, _ = model(**net_input)
        i = 0  # the shortest clip: padded in the batch
        n = int((~net_input["padding_mask"][i]).sum())
        assert n < net_input["source"].shape[1]
        alone, _ = model(net_input["source"][i : i + 1, :n], None, net_input["prev_output_tokens"][i : i + 1])
    n_tgt = int(batch["target_lengths"][i])
    assert torch.allclose(full[i, :n_tgt], alone[0, :n_tgt], atol=1e-4)


def test_frames_are_normalised_on_the_model_s_device_in_its_dtype(task):
    model = build(task)
    frames = torch.randint(0, 256, (2, 4, 32, 32, 3), dtype=torch.uint8)
    x = model.encoder.frames(frames)
    c = task.data_cfg
    assert x.shape == (2, 3, 4, 32, 32) and x.dtype == torch.float32
    assert torch.isclose(x[1, 2, 3, 4, 5], (frames[1, 3, 4, 5, 2].float() / 255 - c.mean[2]) / c.std[2], atol=1e-5)
    assert model.to(torch.bfloat16).encoder.frames(frames).dtype == torch.bfloat16
    assert "encoder.frames.scale" not in model.state_dict()  # the data config, not the checkpoint, defines them


def test_reorder_encoder_out_follows_new_order(model, batch):
    net_input = {k: v for k, v in batch["net_input"].items() if k != "prev_output_tokens"}
    out = model.encoder(**net_input)
    order = torch.tensor([2, 2, 0])
    re = model.encoder.reorder_encoder_out(out, order)
    assert torch.equal(re["encoder_out"][0], out["encoder_out"][0][:, order])
    assert torch.equal(re["encoder_padding_mask"][0], out["encoder_padding_mask"][0][order])


def test_incremental_decoding_matches_full_decoding(model, batch):
    net_input = batch["net_input"]
    prev = net_input["prev_output_tokens"]
    with torch.no_grad():
        enc = model.encoder(**encoder_input(batch))
        full, _ = model.decoder(prev, encoder_out=enc)
        state = {}
        steps = [model.decoder(prev[:, : t + 1], encoder_out=enc, incremental_state=state)[0] for t in range(prev.size(1))]
    real = prev.ne(model.decoder.padding_idx)  # padded positions attend differently, by design
    assert torch.allclose(torch.cat(steps, 1)[real], full[real], atol=1e-4)


def test_beam_search_gives_the_greedy_tokens_of_full_decoding(task, model, batch):
    gen = SequenceGenerator([model], task.target_dictionary, beam_size=1, max_len_b=12)
    with torch.no_grad():
        hyps = gen.generate([model], batch)
        enc = model.encoder(**encoder_input(batch))
        eos = task.target_dictionary.eos()
        for i, h in enumerate(hyps):
            tokens = [eos]
            single = model.encoder.reorder_encoder_out(enc, torch.tensor([i]))
            while len(tokens) <= 12:
                logits, _ = model.decoder(torch.tensor([tokens]), encoder_out=single)
                logits[0, -1, task.target_dictionary.pad()] = -float("inf")
                if len(tokens) == 1:
                    logits[0, -1, eos] = -float("inf")  # the generator's min_len=1
                nxt = int(logits[0, -1].argmax())
                if nxt == eos:
                    break
                tokens.append(nxt)
            assert h[0]["tokens"].tolist()[:-1] == tokens[1:]


def test_position_embeddings_interpolate_for_other_sizes(model):
    with torch.no_grad():
        feats, _ = model.encoder.vit(torch.randn(1, 3, 8, 48, 48))  # larger crop than built for (32)
        assert feats.shape == (1, 4, 9, 128)
        long_clip = model.encoder.vit.temporal_size * 2 + 2
        feats, _ = model.encoder.vit(torch.randn(1, 3, long_clip * 2, 32, 32))
        assert feats.shape[1] == long_clip


def test_explicit_sizes_override_the_preset(task):
    model = build(task, encoder_layers=1, decoder_layers=1)
    assert len(model.encoder.vit.blocks) == 1 and len(model.decoder.layers) == 1
    assert model.encoder.vit.embed_dim == PRESETS["tiny"]["encoder_embed_dim"]


@pytest.mark.parametrize("preset,millions", [("base", 86), ("large", 303)])
def test_encoder_presets_have_vit_sizes(preset, millions):
    p = PRESETS[preset]
    with torch.device("meta"):
        vit = VideoViT(
            img_size=224, num_frames=16, patch_size=16, tubelet_size=2, embed_dim=p["encoder_embed_dim"],
            depth=p["encoder_layers"], num_heads=p["encoder_attention_heads"],
        )
    n = sum(q.numel() for q in vit.parameters()) / 1e6
    assert abs(n - millions) / millions < 0.03, n
