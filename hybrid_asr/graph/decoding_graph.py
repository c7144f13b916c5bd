"""The decoding graph HLG = H o det(L o G), built with k2."""

import logging
import time
from typing import Optional

import k2

from hybrid_asr.graph.h import make_h
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.lang.lang_dir import Lang

log = logging.getLogger(__name__)


def make_hlg(lang: Lang, topo: HmmTopology, transition_scale: float = 1.0, h: Optional[k2.Fsa] = None) -> k2.Fsa:
    """Compose H, L and G into the decoding graph.

    Steps (Mohri, Pereira & Riley 2002, section 4; as in Kaldi's mkgraph.sh but with k2):
    ``LG = det(connect(L_disambig o G))``; disambiguation symbols (phones >= ``#0`` and the word
    ``#0``) are replaced by epsilon and removed with ``k2.remove_epsilon``, so LG is
    epsilon-free on the phone side; then ``HLG = connect(H o LG)``. HLG is not determinized on
    the pdf level (H is not functional there) and k2 has no minimization; the graph is small.

    Args:
        lang: lang directory (L_disambig, G, symbol tables).
        topo: HMM topology (for H).
        transition_scale: scale of H's transition log-probabilities (see :func:`make_h`).
        h: an H to use instead of the monophone one (e.g. the context-dependent
            :func:`hybrid_asr.graph.h_cd.make_h_cd`, built with its own transition scale).

    Returns:
        k2 Fsa, ``labels`` = pdf-id + 1 (never 0), ``aux_labels`` (ragged) = word ids, attribute
        ``phones``; arc-sorted, scores = log transition probs + log LM probs + log silence probs.
    """
    start = time.time()
    L = k2.arc_sort(lang.L_disambig)
    G = k2.arc_sort(lang.G)
    LG = k2.connect(k2.compose(L, G))
    LG = k2.connect(k2.determinize(LG)).clone()  # clone: determinize may return its input object
    labels = LG.labels.clone()
    labels[labels >= lang.first_phone_disambig] = 0
    LG.labels = labels
    aux = LG.aux_labels.clone()
    aux.values[aux.values >= lang.first_word_disambig] = 0
    LG.aux_labels = aux
    LG = k2.connect(k2.remove_epsilon(LG))
    LG.aux_labels = LG.aux_labels.remove_values_eq(0)
    LG = k2.arc_sort(LG)
    H = make_h(topo, transition_scale) if h is None else h
    HLG = k2.arc_sort(k2.connect(k2.compose(H, LG, inner_labels="phones")))
    if HLG.num_arcs == 0:
        raise RuntimeError("HLG is empty: L, G and the topology share no path")
    assert int((HLG.labels == 0).sum()) == 0, "HLG must be epsilon-free on the input side"
    log.info("HLG: %d states, %d arcs (LG %d states, %d arcs), built in %.1f s",
             HLG.shape[0], HLG.num_arcs, LG.shape[0], LG.num_arcs, time.time() - start)
    return HLG
