"""Decision-tree statistics, questions and tree building (first step of context-dependent senones)."""

import itertools
import math

import numpy as np
import pytest

from hybrid_asr.hmm.alignment import monophone_marks
from hybrid_asr.errors import InputError
from hybrid_asr.hmm import HmmTopology
from hybrid_asr.hmm.questions import cluster_phones, read_phone_classes
from hybrid_asr.hmm.tree import DecisionTree, TreeConfig, best_split, build_tree
from hybrid_asr.hmm.tree_stats import BOUNDARY, GaussStats, accumulate_tree_stats

RNG = np.random.default_rng(0)


def _direct_ll(x):
    var = np.maximum(x.var(axis=0), 1e-3)
    return -0.5 * x.shape[0] * np.sum(np.log(2 * math.pi * var) + 1.0)


def test_log_likelihood_and_split_gain_agree_with_direct_computation():
    frames = {("B", "A", "X", 0): RNG.normal(0, 1, (50, 3)), ("C", "A", "X", 0): RNG.normal(0.2, 1, (40, 3)),
              ("D", "A", "X", 0): RNG.normal(3, 0.5, (60, 3))}
    stats = {k: GaussStats.of(v) for k, v in frames.items()}
    for k, v in frames.items():
        assert stats[k].log_likelihood() == pytest.approx(_direct_ll(v), rel=1e-9)
    # the tree builder's own search (pooled statistics, "no" side by subtraction), one question
    gain, pos, values = best_split(list(stats), stats, [frozenset({"B", "C"})], 1, 3, min_count=60)
    yes = np.concatenate([frames[("B", "A", "X", 0)], frames[("C", "A", "X", 0)]])
    no = frames[("D", "A", "X", 0)]
    direct = _direct_ll(yes) + _direct_ll(no) - _direct_ll(np.concatenate([yes, no]))
    assert (pos, values) == ("L", frozenset({"B", "C"}))
    assert gain == pytest.approx(direct, rel=1e-9) and gain > 0
    # 90 frames answer yes and 60 no: a minimum of 61 frames per side forbids the split
    assert best_split(list(stats), stats, [frozenset({"B", "C"})], 1, 3, min_count=61) is None


def _synthetic_stats():
    """Phone A: its left context decides the distribution ({B, C} vs {D, E}); right is noise."""
    stats = {}
    for left, right, state in itertools.product("BCDE", "BCDE", range(3)):
        mean = (0.0 if left in "BC" else 4.0) + state
        stats[(left, "A", right, state)] = GaussStats.of(RNG.normal(mean, 1.0, (40, 2)))
    for state in range(3):
        stats[(BOUNDARY, "SIL", "A", state)] = GaussStats.of(RNG.normal(-3, 1.0, (80, 2)))
    return stats


NUM_STATES = {"SIL": 3, "A": 3, "B": 3, "C": 3, "D": 3, "E": 3}
QUESTIONS = [frozenset("BC"), frozenset("DE"), frozenset("BD"), frozenset("CE")]


def test_tree_splits_on_the_informative_context():
    tree = build_tree(_synthetic_stats(), QUESTIONS, NUM_STATES, TreeConfig(num_leaves=40, min_count=100, min_gain=5.0))
    assert tree.pdf_id("B", "A", "D", 0) == tree.pdf_id("C", "A", "E", 0)
    assert tree.pdf_id("B", "A", "D", 0) != tree.pdf_id("D", "A", "D", 0)
    assert tree.pdf_id("B", "A", "D", 0) != tree.pdf_id("B", "A", "D", 1)  # states differ too
    # context-independent silence: one senone per state whatever the context
    assert tree.pdf_id("A", "SIL", "B", 1) == tree.pdf_id(BOUNDARY, "SIL", BOUNDARY, 1)
    assert len({tree.pdf_id("x", "SIL", "y", s) for s in range(3)}) == 3
    assert tree.num_pdfs <= len(tree.leaf_pdf)


def test_unseen_triphones_reach_a_leaf_and_save_load_maps_identically(tmp_path):
    tree = build_tree(_synthetic_stats(), QUESTIONS, NUM_STATES, TreeConfig(num_leaves=20, min_count=100, min_gain=5.0))
    pdf = tree.pdf_id("Q", "A", "Z", 2)  # contexts never seen
    assert 0 <= pdf < tree.num_pdfs
    assert 0 <= tree.pdf_id("A", "E", "B", 0) < tree.num_pdfs  # a phone never seen as centre
    tree.save(tmp_path / "tree.json")
    back = DecisionTree.load(tmp_path / "tree.json")
    contexts = list("ABCDE") + [BOUNDARY, "SIL"]
    for left, phone, right in itertools.product(contexts, NUM_STATES, contexts):
        for s in range(3):
            assert back.pdf_id(left, phone, right, s) == tree.pdf_id(left, phone, right, s)
    assert "L in {" in tree.format()
    with pytest.raises(InputError):
        DecisionTree.load(tmp_path / "missing.json")


def test_leaf_budget_is_respected():
    config = TreeConfig(num_leaves=18, min_count=10, min_gain=0.0, merge=False)
    tree = build_tree(_synthetic_stats(), QUESTIONS, NUM_STATES, config)
    assert len(tree.leaf_pdf) == 18 and tree.num_pdfs == 18


def test_cluster_phones_finds_the_two_groups():
    stats = {p: GaussStats.of(RNG.normal(m, 0.3, (100, 2))) for p, m in
             {"P1": 0.0, "P2": 0.1, "P3": 5.0, "P4": 5.1}.items()}
    qs = cluster_phones(stats, ["P1", "P2", "P3", "P4", "UNSEEN"])
    assert frozenset({"P1", "P2"}) in qs and frozenset({"P3", "P4"}) in qs
    assert all("UNSEEN" not in q for q in qs)


def test_read_phone_classes(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("# comment\nvowel: AA IY XX\n\nnasal: M N  # trailing\n")
    assert read_phone_classes(path, ["AA", "IY", "M", "N"]) == [frozenset({"AA", "IY"}), frozenset({"M", "N"})]
    path.write_text("vowel AA IY\n")
    with pytest.raises(InputError, match="classes.txt:1"):
        read_phone_classes(path, ["AA"])


def test_shipped_arpabet_classes_parse():
    from pathlib import Path

    qs = read_phone_classes(Path(__file__).resolve().parents[1] / "lexicon/arpabet_classes.txt", ["AA", "B", "M"])
    assert frozenset({"B"}) in qs and frozenset({"AA"}) in qs


def test_accumulate_tree_stats_uses_neighbouring_phones():
    topo = HmmTopology(["SIL", "A", "B"], [1, 2, 3], [1, 2, 2])
    sil, a0, a1, b0, b1 = 0, 1, 2, 3, 4
    ali = np.array([sil, sil, a0, a1, a1, b0, b1, sil])
    feats = np.arange(16, dtype=np.float64).reshape(8, 2)
    stats = accumulate_tree_stats({"u": ali}, monophone_marks({"u": ali}, topo), lambda u: feats, topo)
    assert set(stats) == {(BOUNDARY, "SIL", "A", 0), ("SIL", "A", "B", 0), ("SIL", "A", "B", 1),
                          ("A", "B", "SIL", 0), ("A", "B", "SIL", 1), ("B", "SIL", BOUNDARY, 0)}
    s = stats[("SIL", "A", "B", 1)]
    assert s.count == 2 and s.sum.tolist() == (feats[3] + feats[4]).tolist()


def test_merge_joins_leaves_within_a_phone_only():
    stats = _synthetic_stats()
    tree = build_tree(stats, QUESTIONS, NUM_STATES, TreeConfig(num_leaves=18, min_count=10, min_gain=0.0,
                                                               merge_threshold=1e12))
    a_pdfs = {tree.pdf_id(left, "A", right, s) for left, right, s in itertools.product("BCDE", "BCDE", range(3))}
    assert len(a_pdfs) == 1  # everything of A merged: the loss is below the huge threshold
    sil_pdfs = {tree.pdf_id(BOUNDARY, "SIL", "A", s) for s in range(3)}
    assert len(sil_pdfs) == 3 and not sil_pdfs & a_pdfs  # silence keeps its states, no cross-phone merge
    unmerged = build_tree(stats, QUESTIONS, NUM_STATES, TreeConfig(num_leaves=18, min_count=10, min_gain=0.0,
                                                                   merge=False))
    assert len({unmerged.pdf_id(left, "A", right, s)
                for left, right, s in itertools.product("BCDE", "BCDE", range(3))}) > 1


def test_cheapest_merges_equal_rescanning_every_pair():
    """The heap of pair losses merges in the same order as rescanning all pairs after every
    merge (the definition), on random groups with several clusters, and stops at the threshold."""
    from hybrid_asr.hmm.tree import _cheapest_merges

    rng = np.random.default_rng(3)
    centres = rng.normal(0, 3, (4, 5))
    groups = {k: GaussStats.of(rng.normal(centres[k % 4], 1.0, (int(rng.integers(20, 60)), 5))) for k in range(14)}
    threshold = 60.0
    expected, brute = [], dict(groups)
    while len(brute) > 1:
        loss, a, b = min((brute[a].log_likelihood() + brute[b].log_likelihood()
                          - (brute[a] + brute[b]).log_likelihood(), a, b)
                         for a, b in itertools.combinations(sorted(brute), 2))
        if loss >= threshold:
            break
        brute[a] = brute[a] + brute.pop(b)
        expected.append((a, b))
    assert 4 <= len(expected) < 13  # some merges happen, not all
    assert _cheapest_merges(dict(groups), threshold) == expected
