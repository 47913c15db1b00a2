import pytest
import torch
from fairseq.sequence_generator import SequenceGenerator

from conftest import load_task
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


def test_encoder_output_is_fairseq_list_format(model, batch):
    out = model.encoder(**{k: v for k, v in batch["net_input"].items() if k != "prev_output_tokens"})
    (x,), (pad,) = out["encoder_out"], out["encoder_padding_mask"]
    b = batch["nsentences"]
    t_frames = batch["net_input"]["source"].shape[2]
    assert x.shape == (-(-t_frames // 2), b, 128)  # T x B x C, one step per 2-frame tubelet
    valid_frames = (~batch["net_input"]["padding_mask"]).sum(1)
    assert (~pad).sum(1).tolist() == [-(-int(n) // 2) for n in valid_frames]
    assert torch.all(x.transpose(0, 1)[pad] == 0)


@pytest.mark.parametrize("pooling", ["spatial", "none"])
def test_padding_does_not_change_a_clip_s_outputs(task, batch, pooling):
    model = build(task, encoder_pooling=pooling)
    net_input = batch["net_input"]
    with torch.no_grad():
        full, _ = model(**net_input)
        i = 0  # the shortest clip: padded in the batch
        n = int((~net_input["padding_mask"][i]).sum())
        assert n < net_input["source"].shape[2]
        alone, _ = model(net_input["source"][i : i + 1, :, :n], None, net_input["prev_output_tokens"][i : i + 1])
    n_tgt = int(batch["target_lengths"][i])
    assert torch.allclose(full[i, :n_tgt], alone[0, :n_tgt], atol=1e-4)


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
        enc = model.encoder(net_input["source"], net_input["padding_mask"])
        full, _ = model.decoder(prev, encoder_out=enc)
        state = {}
        steps = [model.decoder(prev[:, : t + 1], encoder_out=enc, incremental_state=state)[0] for t in range(prev.size(1))]
    real = prev.ne(model.decoder.padding_idx)  # padded positions attend differently, by design
    assert torch.allclose(torch.cat(steps, 1)[real], full[real], atol=1e-4)


def test_beam_search_gives_the_greedy_tokens_of_full_decoding(task, model, batch):
    gen = SequenceGenerator([model], task.target_dictionary, beam_size=1, max_len_b=12)
    with torch.no_grad():
        hyps = gen.generate([model], batch)
        enc = model.encoder(batch["net_input"]["source"], batch["net_input"]["padding_mask"])
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
