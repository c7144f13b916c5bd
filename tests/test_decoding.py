"""Decoding helpers: frame-bounded batches, score padding, RTF accounting, input order."""

import pytest
import torch

from hybrid_asr.decoding import SearchConfig, decode_scores
from hybrid_asr.errors import ConfigError
from hybrid_asr.likelihoods import pad_scores
from hybrid_asr.decoding.dataset import frame_batches
from hybrid_asr.graph import GraphConfig, make_decoding_graph


def test_frame_batches_respect_the_budget_and_keep_order():
    lengths = [300, 500, 200, 900, 100, 2000]
    batches = list(frame_batches(lengths, 1000))
    assert [i for b in batches for i in b] == list(range(len(lengths)))
    for b in batches:
        assert sum(lengths[i] for i in b) <= 1000 or len(b) == 1  # an over-long item goes alone
    assert batches == [[0, 1, 2], [3, 4], [5]]


def test_pad_scores_scales_and_blocks_column_zero():
    a, b = torch.zeros(3, 4), torch.ones(2, 4)
    out = pad_scores([a, b], scale=0.5)
    assert out.shape == (2, 3, 5)
    assert torch.all(out[:, :, 0] == -1e4)  # label 0 is never a real pdf
    assert torch.all(out[1, :2, 1:] == 0.5) and torch.all(out[1, 2] == -1e4)


def test_decode_scores_returns_results_in_input_order(toy_lang, toy_topo):
    hlg = make_decoding_graph(toy_lang, toy_topo, None, GraphConfig(construction="compose"))

    def peaked(phones, frames_per_state):
        seq = [toy_topo.pdf_id(p, s) for p in phones for s in range(toy_topo.states_of(p))
               for _ in range(frames_per_state)]
        scores = torch.full((len(seq), toy_topo.num_pdfs), -20.0)
        scores[torch.arange(len(seq)), torch.tensor(seq)] = 0.0
        return scores

    short = peaked(["SIL", "A", "B", "SIL"], 1)   # AB, 10 frames
    long = peaked(["SIL", "B", "A", "SIL"], 3)    # BA, 30 frames: sorted first inside k2
    words = decode_scores(hlg, [short, long], SearchConfig(acoustic_scale=1.0))
    assert [[toy_lang.word_table[w] for w in ws] for ws in words] == [["AB"], ["BA"]]


def test_kaldi_faster_decoder_finds_the_same_words_as_k2(toy_lang, toy_topo):
    """The graph converted to OpenFst and searched by Kaldi's FasterDecoder gives the words of
    k2's search, utterance by utterance, on peaked and on random scores (wide beams)."""
    from test_h_cd import toy_tree

    from hybrid_asr.decoding.kaldi_search import KaldiSearch
    from hybrid_asr.graph import GraphConfig, make_decoding_graph

    graph = make_decoding_graph(toy_lang, toy_topo, toy_tree(), GraphConfig())
    config = SearchConfig(acoustic_scale=1.0, search_beam=30.0, output_beam=30.0)
    gen = torch.Generator().manual_seed(1)
    scores = [torch.randn(t, 13, generator=gen) * 2 for t in (6, 9, 12, 15, 20)]
    peaked = torch.full((12, 13), -20.0)
    peaked[torch.arange(12), torch.tensor([8, 9, 10, 6, 6, 7, 2, 3, 3, 8, 9, 10])] = 0.0  # "BA"
    scores.append(peaked)
    k2_words = decode_scores(graph, scores, config)
    kaldi_words = KaldiSearch(graph, config).decode(scores)
    assert kaldi_words == k2_words
    assert [toy_lang.word_table[w] for w in kaldi_words[-1]] == ["BA"]


def test_lm_scale_is_the_search_with_acoustic_scale_and_beams_divided_by_it(toy_lang, toy_topo):
    """Both backends: acoustic scale 1 with LM scale 4 and beam 24 gives the words of acoustic
    scale 0.25 with beam 6; the LM scale changes words (it is applied) and must be positive."""
    from test_h_cd import toy_tree

    from hybrid_asr.decoding.kaldi_search import KaldiSearch
    from hybrid_asr.decoding.search import Searcher
    from hybrid_asr.graph import GraphConfig, make_decoding_graph

    graph = make_decoding_graph(toy_lang, toy_topo, toy_tree(), GraphConfig())
    gen = torch.Generator().manual_seed(5)
    scores = [torch.randn(t, 13, generator=gen) * 4 for t in (8, 12, 16, 20, 24, 30)]
    searcher = Searcher(graph)
    for backend in ("k2", "kaldi"):
        scaled = SearchConfig(acoustic_scale=1.0, lm_scale=4.0, search_beam=24.0, output_beam=24.0, backend=backend)
        plain = SearchConfig(acoustic_scale=0.25, search_beam=6.0, output_beam=6.0, backend=backend)
        unscaled = SearchConfig(acoustic_scale=1.0, search_beam=24.0, output_beam=24.0, backend=backend)
        assert searcher(scores, scaled) == searcher(scores, plain)
        assert searcher(scores, scaled) != searcher(scores, unscaled)
    assert KaldiSearch(graph, SearchConfig(lm_scale=2.0)).config.acoustic_scale == pytest.approx(0.1)
    with pytest.raises(ValueError, match="lm_scale must be > 0"):
        SearchConfig(lm_scale=0.0)


def test_word_insertion_penalty_lowers_each_arc_by_its_words(toy_lang, toy_topo):
    """The penalized graph differs from the graph only in the scores of arcs that emit words, by
    the penalty once per word; the input graph is left as it was."""
    import k2

    from hybrid_asr.decoding import with_word_insertion_penalty

    graph = make_decoding_graph(toy_lang, toy_topo, None, GraphConfig())
    before = graph.scores.clone()
    out = with_word_insertion_penalty(graph, 0.75)
    aux = graph.aux_labels
    words_per_arc = torch.tensor([sum(1 for w in row if w > 0) for row in aux.tolist()], dtype=torch.float32)
    assert isinstance(aux, k2.RaggedTensor) and words_per_arc.sum() > 0
    assert torch.allclose(before - out.scores, 0.75 * words_per_arc)
    assert torch.equal(graph.scores, before) and torch.equal(out.labels, graph.labels)
    assert with_word_insertion_penalty(graph, 0.0) is graph


def test_word_insertion_penalty_trades_words_for_score_in_both_backends(toy_lang, toy_topo):
    """On random scores, a larger penalty never gives more words in all (the best path's score
    falls by the penalty per word), a large one fewer than a negative one, both backends agree at
    each penalty, and the LM scale divides the penalty as it divides the acoustic scale."""
    from test_h_cd import toy_tree

    from hybrid_asr.decoding.search import Searcher

    graph = make_decoding_graph(toy_lang, toy_topo, toy_tree(), GraphConfig())
    gen = torch.Generator().manual_seed(3)
    scores = [torch.randn(t, 13, generator=gen) * 3 for t in (12, 16, 20, 24, 30, 40)]
    searcher = Searcher(graph)
    totals = []
    for penalty in (-2.0, 0.0, 2.0, 8.0):
        found = [searcher(scores, SearchConfig(acoustic_scale=1.0, search_beam=40.0, output_beam=40.0,
                                               word_insertion_penalty=penalty, backend=b)) for b in ("k2", "kaldi")]
        assert found[0] == found[1]
        totals.append(sum(len(w) for w in found[0]))
    assert totals == sorted(totals, reverse=True) and totals[0] > totals[-1]
    scaled = SearchConfig(acoustic_scale=4.0, lm_scale=4.0, search_beam=160.0, output_beam=160.0,
                          word_insertion_penalty=32.0, backend="k2")
    plain = SearchConfig(acoustic_scale=1.0, search_beam=40.0, output_beam=40.0, word_insertion_penalty=8.0,
                         backend="k2")
    assert searcher(scores, scaled) == searcher(scores, plain)


def test_lattice_sweep_gives_each_settings_best_path(toy_lang, toy_topo):
    """One lattice rescored per setting gives the words of a separate search at every acoustic
    scale and penalty when the lattice beam holds every path; with a narrow lattice beam the
    middle setting (scale and penalty) still gets exactly the words of its own search."""
    from test_h_cd import toy_tree

    from hybrid_asr.decoding.search import Searcher

    graph = make_decoding_graph(toy_lang, toy_topo, toy_tree(), GraphConfig())
    gen = torch.Generator().manual_seed(5)
    scores = [torch.randn(t, 13, generator=gen) * 3 for t in (12, 16, 20, 24, 30, 40)]
    searcher = Searcher(graph)
    wide = [SearchConfig(acoustic_scale=a, search_beam=60.0, output_beam=60.0, word_insertion_penalty=p,
                         backend="k2", sweep="lattice") for p in (0.0, 3.0) for a in (0.25, 0.5, 1.0)]
    swept = searcher.sweep(scores, wide)
    separate = [searcher(scores, s) for s in wide]
    assert swept == separate
    assert len({tuple(map(tuple, w)) for w in separate}) > 1  # the settings do choose different words
    narrow = [SearchConfig(acoustic_scale=a, search_beam=20.0, output_beam=2.0, word_insertion_penalty=p, backend="k2")
              for a, p in ((0.5, 0.0), (1.0, 1.0), (2.0, 2.0))]
    assert searcher.sweep(scores, narrow)[1] == searcher(scores, narrow[1])  # the middle: its own search
    with pytest.raises(ConfigError, match="sweep must be search or lattice"):
        SearchConfig(sweep="grid")


def test_search_device_is_checked_and_never_stored(tmp_path):
    """``--device`` is a run's choice: bad values and CUDA without a GPU are one-line errors, and
    ``search_config.json`` never records it (a model saved on a GPU machine decodes on a CPU)."""
    import json

    from hybrid_asr.bundle import load_search_config, save_search_config

    with pytest.raises(ConfigError, match="device must be cpu or cuda, not 'tpu'"):
        SearchConfig(device="tpu")
    assert SearchConfig().torch_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device cuda was asked for, but torch sees no CUDA device"):
            SearchConfig(device="cuda").torch_device()
    save_search_config(tmp_path, SearchConfig(acoustic_scale=0.3, device="cuda"))
    assert "device" not in json.loads((tmp_path / "search_config.json").read_text())
    assert load_search_config(tmp_path) == SearchConfig(acoustic_scale=0.3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_k2_search_on_the_gpu_finds_the_cpu_words(toy_lang, toy_topo):
    """The Searcher with its graph on the GPU gives the CPU search's words, plain and swept."""
    from hybrid_asr.decoding.search import Searcher

    graph = make_decoding_graph(toy_lang, toy_topo, None, GraphConfig(construction="compose"))
    gen = torch.Generator().manual_seed(3)
    scores = [torch.randn(t, toy_topo.num_pdfs, generator=gen) * 3 for t in (8, 15, 30)]
    config = SearchConfig(acoustic_scale=1.0, backend="k2", word_insertion_penalty=0.5)
    sweep = [SearchConfig(acoustic_scale=a, backend="k2") for a in (0.5, 1.0, 2.0)]
    cpu, gpu = Searcher(graph), Searcher(graph, torch.device("cuda"))
    assert gpu(scores, config) == cpu(scores, config)
    assert gpu.sweep(scores, sweep) == cpu.sweep(scores, sweep)
