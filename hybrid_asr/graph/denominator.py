"""Denominator graphs of sequence-discriminative training.

- Lattice-free MMI (Povey et al. 2016, section 2.2): ``H o P``, the senone H (with self-loops,
  transition log-probabilities unscaled) composed with a phone n-gram acceptor P
  (:mod:`hybrid_asr.lang.phone_lm`), with optional leaky-HMM arcs (:func:`add_leaky_hmm`).
- MMI with a word-level denominator (Kingsbury 2009; Vesely et al. 2013): the model's decoding
  graph HCLG/HLG itself (``make-graph``), searched without a lattice by k2's dense intersection.

Labels are pdf-id + 1 (never 0), as in every graph k2's dense intersection reads.
"""

import math
from typing import Tuple

import k2
import numpy as np
import torch


def make_lfmmi_denominator(h: k2.Fsa, phone_lm: k2.Fsa) -> k2.Fsa:
    """``H o P``: every senone sequence of every phone sequence, scored by the HMM transitions and
    the phone LM.

    Args:
        h: senone H with self-loops (``labels`` pdf-id + 1, ``aux_labels`` phones.txt id where a
            phone is entered, 0 elsewhere), e.g. :meth:`hybrid_asr.bundle.ModelBundle.make_h`.
        phone_lm: acceptor over phones.txt ids (:meth:`hybrid_asr.lang.phone_lm.PhoneLm.to_fsa`).

    Returns:
        Connected acceptor over pdf-id + 1 (the phone labels dropped), arc-sorted; scores
        log-probabilities (base e).
    """
    composed = k2.compose(k2.arc_sort(h), k2.arc_sort(phone_lm), treat_epsilons_specially=True)
    return as_acceptor(k2.connect(composed))


def as_acceptor(graph: k2.Fsa) -> k2.Fsa:
    """The arcs and scores of ``graph`` alone (its input labels; output labels and other
    attributes dropped), as a new arc-sorted acceptor: the form a denominator needs."""
    out = k2.Fsa(graph.arcs.values()[:, :4].clone())
    out.scores = graph.scores.detach().clone()
    return k2.arc_sort(out)


def initial_probs(graph: k2.Fsa, iterations: int = 100) -> torch.Tensor:
    """Kaldi's leaky-HMM "initial probabilities": the state occupancy averaged over the first
    ``iterations`` frames of the graph run as a Markov chain from its start state (Kaldi's
    ``DenominatorGraph::SetInitialProbs``), normalized to sum to one.

    Args:
        graph: acceptor whose out-arc probabilities (``exp(score)``) sum to at most one per state.
        iterations: frames to average over.

    Returns:
        float64 ``[num_states]``, sums to one (the final state gets 0).
    """
    arcs = graph.arcs.values()[:, :3].long()
    emitting = graph.labels != -1
    src, dst = arcs[emitting, 0], arcs[emitting, 1]
    prob = graph.scores.detach()[emitting].double().exp()
    n = int(graph.shape[0])
    occ = torch.zeros(n, dtype=torch.float64)
    occ[0] = 1.0
    total = torch.zeros(n, dtype=torch.float64)
    for _ in range(iterations):
        nxt = torch.zeros(n, dtype=torch.float64)
        nxt.index_add_(0, dst, occ[src] * prob)
        s = nxt.sum()
        occ = nxt / s if s > 0 else nxt
        total += occ
    return total / total.sum()


def add_leaky_hmm(graph: k2.Fsa, coefficient: float, iterations: int = 100) -> k2.Fsa:
    """Add leaky-HMM transitions (Povey et al. 2016, section 2.6): after any frame, with
    probability ``coefficient`` the path may jump to any state ``u`` with probability
    ``initial_probs[u]``, so that a path need not explain the frames with the graph's own start
    and end (which matter for chunks cut out of utterances, and soften the denominator).

    k2's dense intersection has no epsilon arcs, so the jump goes through a hub state that
    consumes frames: every emitting arc ``s -> v`` is copied as ``s -> hub`` with its score plus
    ``log coefficient``, and every emitting arc ``u -> v`` as ``hub -> v`` with its score plus
    ``log initial_probs[u]``. A path through the hub is the leaky HMM's jump taken after the
    frame of its first arc; the hub's self-loops (one per label, the ``hub -> v`` arcs of that
    label summed) are a jump right after a jump. The graph grows to about three times its arcs.

    Args:
        graph: acceptor over pdf-id + 1 with a single final state (:func:`make_lfmmi_denominator`).
        coefficient: the leaky-HMM coefficient (Kaldi's ``--leaky-hmm-coefficient``, 0.1 by
            default in its chain recipes); 0 returns ``graph`` unchanged.
        iterations: see :func:`initial_probs`.

    Returns:
        Acceptor with one more state (the hub) before the final state, arc-sorted.
    """
    if coefficient <= 0:
        return graph
    pi = initial_probs(graph, iterations)
    arcs = graph.arcs.values()[:, :3].long()
    scores = graph.scores.detach().double()
    n = int(graph.shape[0])
    hub = n - 1  # the hub takes the final state's id; the final state moves to n
    src, dst, lab = arcs[:, 0], arcs[:, 1], arcs[:, 2]
    dst = torch.where(dst == hub, torch.full_like(dst, n), dst)
    emitting = lab != -1
    e_src, e_dst, e_lab, e_score = src[emitting], dst[emitting], lab[emitting], scores[emitting]
    log_pi = torch.log(pi.clamp(min=1e-300))
    useful = pi[e_src] > 1e-12
    from_hub = e_score[useful] + log_pi[e_src[useful]]
    # a jump right after a jump: hub -> hub, one arc per label (the copies merged by log-sum-exp)
    labels, inverse = torch.unique(e_lab[useful], return_inverse=True)
    top = np.full(len(labels), -np.inf)
    np.maximum.at(top, inverse.numpy(), from_hub.numpy())
    top = torch.from_numpy(top)
    hub_loop = top + torch.zeros_like(top).index_add_(0, inverse, (from_hub - top[inverse]).exp()).log()
    parts = [
        (src, dst, lab, scores),
        (e_src, torch.full_like(e_src, hub), e_lab, e_score + math.log(coefficient)),
        (torch.full_like(e_src[useful], hub), e_dst[useful], e_lab[useful], from_hub),
        (torch.full_like(labels, hub), torch.full_like(labels, hub), labels, hub_loop + math.log(coefficient)),
    ]
    s = torch.cat([p[0] for p in parts])
    d = torch.cat([p[1] for p in parts])
    lb = torch.cat([p[2] for p in parts])
    sc = torch.cat([p[3] for p in parts]).float()
    order = torch.sort(s, stable=True).indices
    arcs_out = torch.stack([s[order], d[order], lb[order], torch.zeros_like(s[order])], dim=1).to(torch.int32)
    out = k2.Fsa(arcs_out)
    out.scores = sc[order]
    return k2.arc_sort(out)


def graph_size(graph: k2.Fsa) -> Tuple[int, int]:
    """``(states, arcs)`` of a single FSA."""
    return int(graph.shape[0]), int(graph.num_arcs)


__all__ = ["add_leaky_hmm", "as_acceptor", "graph_size", "initial_probs", "make_lfmmi_denominator"]
