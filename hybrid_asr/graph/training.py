"""Per-utterance training graphs (H o L o transcript) for forced alignment."""

from typing import List, Optional, Sequence

import k2

from hybrid_asr.graph.h import make_h
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.lang.lang_dir import Lang


class TrainingGraphCompiler:
    """Compile transcripts into graphs whose paths are all HMM state sequences of the text.

    For a transcript ``w1 .. wn`` the graph is ``H o L o W``, W the linear acceptor of the words:
    every pronunciation variant and the optional silences of L are alternatives, transition and
    silence probabilities are arc scores. Built with ``k2.intersect`` (L^-1 with W), ``k2.invert``,
    ``k2.remove_epsilon`` and ``k2.compose`` (with H), following the recipe of Mohri et al. 2002
    applied per utterance.

    Args:
        lang: lang directory (for L and words.txt); out-of-vocabulary words map to ``<UNK>``.
        topo: HMM topology (for H).
        h: the H to use instead of the monophone one, e.g. the context-dependent
            :func:`hybrid_asr.graph.h_cd.make_h_cd` (labels are then senone + 1). Rendered with
            ``hmm_states=True``, the graphs carry the HMM state of every arc too.
    """

    def __init__(self, lang: Lang, topo: HmmTopology, h: Optional[k2.Fsa] = None):
        self.lang = lang
        self.H = make_h(topo, hmm_states=True) if h is None else k2.arc_sort(h)
        self.L_inv = k2.arc_sort(lang.L.invert())

    def compile(self, texts: Sequence[str]) -> k2.Fsa:
        """Training graphs of a batch of transcripts.

        Args:
            texts: one transcript per utterance, words separated by spaces.

        Returns:
            FsaVec ``[utt][state][arc]``: ``labels`` = pdf-id + 1 (never 0), attribute ``phones``
            = phones.txt id on the first frame of every phone, 0 elsewhere, and H's
            ``hmm_states`` where H has it.
        """
        word_ids: List[List[int]] = [self.lang.word_ids(t.split()) for t in texts]
        words = k2.add_epsilon_self_loops(k2.linear_fsa(word_ids))
        lw = k2.intersect(self.L_inv, words, treat_epsilons_specially=False)  # labels words, aux phones
        phones = k2.Fsa(lw.arcs)
        phones.labels = lw.aux_labels.clone()  # acceptor over phones (0 = epsilon)
        phones = k2.arc_sort(k2.connect(k2.remove_epsilon(phones)))
        graphs = k2.compose(self.H, phones, treat_epsilons_specially=True)
        graphs.rename_tensor_attribute_("aux_labels", "phones")  # b is an acceptor: matched labels
        return k2.connect(graphs)
