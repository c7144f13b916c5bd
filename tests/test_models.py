"""The acoustic-model interface: every architecture's declared context and subsampling match what
its forward pass does, frame for frame; configs round-trip with their type; chunked scoring."""

import json
from dataclasses import replace

import pytest
import torch

from hybrid_asr.errors import InputError
from hybrid_asr.likelihoods import log_posteriors
from hybrid_asr.models import (
    CldnnConfig,
    DnnConfig,
    LstmConfig,
    TdnnConfig,
    TdnnLstmConfig,
    create_model,
    load_model_config,
    pad_context,
)

F, S = 12, 7

CONFIGS = {
    "dnn": DnnConfig(F, S, left_context=3, right_context=2, hidden_dim=16, num_layers=2),
    "tdnn": TdnnConfig(F, S, kernels=(3, 3, 3), dilations=(1, 2, 3), hidden_dim=16),
    "tdnnf-sub3": TdnnConfig(F, S, kernels=(3, 3, 3), dilations=(1, 1, 3), hidden_dim=16, bottleneck_dim=8,
                             subsampling_factor=3),
    "lstm": LstmConfig(F, S, hidden_dim=16, proj_dim=8, num_layers=2, left_context=6),
    "blstm": LstmConfig(F, S, hidden_dim=16, proj_dim=8, num_layers=2, bidirectional=True, left_context=5,
                        right_context=4),
    "cldnn": CldnnConfig(F, S, conv_channels=4, conv_freq=4, conv_time=3, pool_freq=2, linear_dim=8, lstm_dim=8,
                         proj_dim=4, dnn_dim=8, left_context=4, right_context=2),
    "tdnn_lstm": TdnnLstmConfig(F, S, kernels=(3, 3, 3), dilations=(1, 1, 3), lstm_after=(1, 3), hidden_dim=8,
                                lstm_dim=8, proj_dim=4, lstm_delay=3, left_context=4, right_context=2),
    "tdnn_lstm-sub3": TdnnLstmConfig(F, S, kernels=(3, 3, 3), dilations=(1, 1, 3), lstm_after=(1, 3), hidden_dim=8,
                                     lstm_dim=8, proj_dim=4, lstm_delay=3, left_context=4, subsampling_factor=3),
}


def _model(name):
    torch.manual_seed(0)
    return create_model(CONFIGS[name]).eval()


def _run(model, x):
    with torch.no_grad():
        return model(x.unsqueeze(0), torch.tensor([x.shape[0]]))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_output_length_and_log_softmax(name):
    model = _model(name)
    for t in (1, 5, 10):
        x = torch.randn(model.left_context + t + model.right_context, F)
        out, lengths = _run(model, x)
        assert out.shape == (1, -(-t // model.subsampling_factor), S)
        assert lengths.tolist() == [out.shape[1]]
        assert torch.allclose(out.exp().sum(-1), torch.ones(out.shape[:2]), atol=1e-5)


@pytest.mark.parametrize("name", ["dnn", "tdnn", "tdnnf-sub3"])
def test_feed_forward_output_sees_exactly_its_declared_window(name):
    """Output j must change when input frame j*f or j*f + l + r changes, and not when any frame
    outside [j*f, j*f + l + r] does."""
    model = _model(name)
    l, r, f = model.left_context, model.right_context, model.subsampling_factor
    t = 4 * f + 1
    x = torch.randn(l + t + r, F)
    base, _ = _run(model, x)
    j = 2
    lo, hi = j * f, j * f + l + r
    for frame in range(x.shape[0]):
        y = x.clone()
        y[frame] += 5.0
        out, _ = _run(model, y)
        changed = not torch.allclose(out[0, j], base[0, j], atol=1e-6)
        assert changed == (lo <= frame <= hi), f"frame {frame}, window [{lo}, {hi}]"


@pytest.mark.parametrize("name", ["lstm", "cldnn", "tdnn_lstm", "tdnn_lstm-sub3"])
def test_unidirectional_outputs_never_see_past_their_right_context(name):
    """Output j depends on input frame j*f + l + r and on nothing after it."""
    model = _model(name)
    l, r, f = model.left_context, model.right_context, model.subsampling_factor
    x = torch.randn(l + 8 * f + r, F)
    base, _ = _run(model, x)
    j = 3
    edge = j * f + l + r
    y = x.clone()
    y[edge + 1 :] += 5.0  # everything after output j's right edge
    out, _ = _run(model, y)
    assert torch.allclose(out[0, : j + 1], base[0, : j + 1], atol=1e-6)
    y = x.clone()
    y[edge] += 5.0  # the right edge itself
    assert not torch.equal(_run(model, y)[0][0, j], base[0, j])


def test_tdnn_lstm_recurrence_spans_its_delay():
    """With lstm_delay 3 and no TDNN context, output j depends on input frames j, j-3, j-6, ...
    (through the LSTM) and on no other earlier frame."""
    torch.manual_seed(0)
    model = create_model(TdnnLstmConfig(F, S, kernels=(1,), dilations=(1,), lstm_after=(1,), hidden_dim=8,
                                        lstm_dim=8, proj_dim=4, lstm_delay=3, left_context=0)).eval()
    x = torch.randn(12, F)
    base, _ = _run(model, x)
    j = 10
    for frame in range(j + 1):
        y = x.clone()
        y[frame] += 5.0
        changed = not torch.allclose(_run(model, y)[0][0, j], base[0, j], atol=1e-6)
        assert changed == ((j - frame) % 3 == 0), f"frame {frame}"


def test_subsampled_tdnn_lstm_equals_full_rate_model_at_every_third_frame():
    """At f = 3 the upper layers run on every third frame with dilations and delays divided by 3:
    the outputs are the full-rate model's (same weights, delay 3, dilation 3) at frames 0, 3, 6..."""
    sub = _model("tdnn_lstm-sub3")
    full = create_model(replace(CONFIGS["tdnn_lstm-sub3"], subsampling_factor=1)).eval()
    full.load_state_dict(sub.state_dict())
    x = torch.randn(sub.left_context + 10 + sub.right_context, F)
    out_sub, _ = _run(sub, x)
    out_full, _ = _run(full, x)
    assert out_sub.shape[1] == 4
    assert torch.allclose(out_sub[0], out_full[0, ::3], atol=1e-5)


def test_blstm_looks_ahead():
    model = _model("blstm")
    x = torch.randn(model.left_context + 8 + model.right_context, F)
    base, _ = _run(model, x)
    y = x.clone()
    y[-1] += 5.0
    assert not torch.allclose(_run(model, y)[0][0, 0], base[0, 0], atol=1e-6)


def test_padded_batch_equals_one_by_one_for_blstm():
    """Packed sequences: a short utterance in a batch with a long one scores as it does alone."""
    model = _model("blstm")
    ctx = model.left_context + model.right_context
    a, b = torch.randn(ctx + 9, F), torch.randn(ctx + 4, F)
    batch = torch.zeros(2, a.shape[0], F)
    batch[0], batch[1, : b.shape[0]] = a, b
    with torch.no_grad():
        out, lengths = model(batch, torch.tensor([a.shape[0], b.shape[0]]))
    assert lengths.tolist() == [9, 4]
    assert torch.allclose(out[1, :4], _run(model, b)[0][0], atol=1e-5)


@pytest.mark.parametrize("name", ["dnn", "tdnn", "tdnnf-sub3"])
def test_chunked_scoring_equals_whole_utterance_for_feed_forward_models(name):
    model = _model(name)
    feats = torch.randn(23, F)
    whole = log_posteriors(model, feats, chunk_frames=0)
    assert whole.shape == (model.output_frames(23), S)
    assert torch.allclose(log_posteriors(model, feats, chunk_frames=2), whole, atol=1e-5)


def test_chunked_lstm_scoring_matches_the_chunk_windows():
    """Chunk k of a chunked LSTM decode is the model run on exactly that chunk's window."""
    model = _model("lstm")
    feats = torch.randn(13, F)
    chunked = log_posteriors(model, feats, chunk_frames=5)
    padded = pad_context(feats, model.left_context, model.right_context)
    second = _run(model, padded[5 : 5 + 5 + model.left_context + model.right_context])[0][0]
    assert chunked.shape == (13, S)
    assert torch.allclose(chunked[5:10], second, atol=1e-6)


def test_pad_context_repeats_edge_frames():
    x = torch.arange(6.0).reshape(3, 2)
    y = pad_context(x, 2, 1)
    assert y[:, 0].tolist() == [0, 0, 0, 2, 4, 4]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_roundtrip_picks_the_class(name, tmp_path):
    cfg = CONFIGS[name]
    cfg.save(tmp_path / "model_config.json")
    assert json.loads((tmp_path / "model_config.json").read_text())["type"] == cfg.type
    back = load_model_config(tmp_path / "model_config.json")
    assert back == cfg and type(create_model(back)) is type(create_model(cfg))


def test_config_without_type_is_a_dnn_and_unknown_type_is_one_line(tmp_path):
    path = tmp_path / "model_config.json"
    path.write_text(json.dumps({"feat_dim": 4, "num_pdfs": 3, "left_context": 1, "right_context": 1}))
    assert isinstance(load_model_config(path), DnnConfig)
    path.write_text(json.dumps({"type": "transformer", "feat_dim": 4, "num_pdfs": 3}))
    with pytest.raises(InputError, match="unknown model type 'transformer'"):
        load_model_config(path)
    path.write_text(json.dumps({"type": "tdnn", "feat_dim": 4, "num_pdfs": 3, "kernels": [2]}))
    with pytest.raises(InputError, match="model_config.json: not a valid tdnn model config"):
        load_model_config(path)


def test_tdnnf_constraint_makes_the_factor_semi_orthogonal():
    torch.manual_seed(0)
    model = create_model(TdnnConfig(F, S, kernels=(3, 3), dilations=(1, 1), hidden_dim=16, bottleneck_dim=6))
    layer = model.layers[1]
    w = layer.factor1.weight
    with torch.no_grad():
        w.mul_(3.0)
    def deviation():
        m = w.reshape(w.shape[0], -1)
        p = m @ m.t()
        scale = p.trace() / p.shape[0]
        return float((p / scale - torch.eye(p.shape[0])).abs().max())
    before = deviation()
    for _ in range(30):
        layer.constrain()
    assert deviation() < 0.05 < before


@pytest.mark.parametrize("bottleneck", [0, 8])
def test_subsampled_tdnn_computes_the_full_rate_outputs_at_every_third_frame(bottleneck):
    """Layers with dilations 3 run on every third frame (dilation 1 there): the outputs are the
    full-rate model's at frames 0, 3, 6, ... (same weights, eval mode)."""
    from hybrid_asr.models.tdnn import first_subsampled_layer

    assert first_subsampled_layer((1, 1, 1, 3, 3, 3), 3) == 3
    assert first_subsampled_layer((1, 3, 1, 3), 3) == 3
    assert first_subsampled_layer((1, 1, 2), 3) == 2  # no multiple: the last layer alone is strided
    assert first_subsampled_layer((1, 1, 2), 1) == 2
    kw = dict(kernels=(3, 3, 3, 3, 3), dilations=(1, 1, 3, 3, 6), hidden_dim=16, bottleneck_dim=bottleneck)
    torch.manual_seed(0)
    sub = create_model(TdnnConfig(F, S, subsampling_factor=3, **kw)).eval()
    full = create_model(TdnnConfig(F, S, subsampling_factor=1, **kw)).eval()
    full.load_state_dict(sub.state_dict())
    for t in (1, 7, 30):
        x = torch.randn(sub.left_context + t + sub.right_context, F)
        got, n = _run(sub, x)
        want, _ = _run(full, x)
        assert n.tolist() == [-(-t // 3)]
        assert torch.allclose(got[0], want[0, ::3], atol=1e-5)
