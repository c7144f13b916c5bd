"""CPU search with Kaldi's FasterDecoder (PyPI ``kaldi-decoder``) on our decoding graph.

The k2 graph is converted once to an OpenFst ``StdVectorFst``
(:func:`hybrid_asr.graph.openfst.to_openfst`), or the copy ``make-graph`` stored is read
(:func:`hybrid_asr.bundle.load_openfst`).
``kaldi_decoder.DecodableCtc`` reads column ``label - 1`` of the scaled log-likelihood matrix for
graph label ``label`` (= pdf-id + 1), so the same scores and graph give the same search problem
as :func:`hybrid_asr.decoding.search.decode_scores`.
"""

from typing import List, Sequence

import k2
import numpy as np
import torch

from hybrid_asr.bundle import SearchConfig
from hybrid_asr.graph.openfst import to_openfst


class KaldiSearch:
    """Kaldi's FasterDecoder over one graph (convert once, decode many utterances).

    Args:
        graph: the k2 decoding graph of a model directory.
        config: ``search_beam`` is FasterDecoder's beam, ``max_active_states`` and
            ``min_active_states`` its max/min active tokens, ``acoustic_scale`` scales the scores.
        fst: ``graph`` already in OpenFst form (``to_openfst(graph)``, e.g. read from the model
            directory); default: converted here.

    Raises:
        ImportError: ``kaldi-decoder`` is not installed (``pip install kaldi-decoder``).
    """

    def __init__(self, graph: k2.Fsa, config: SearchConfig, fst=None):
        import kaldi_decoder

        self.fst = fst if fst is not None else to_openfst(graph)
        self._decoder = kaldi_decoder.FasterDecoder(self.fst, kaldi_decoder.FasterDecoderOptions())
        self.set_config(config)

    def set_config(self, config: SearchConfig) -> None:
        """Use other search settings (same graph; the LM scale folded into the acoustic scale and
        beam, :meth:`SearchConfig.normalized`)."""
        import kaldi_decoder

        config = config.normalized()
        self.config = config
        self._decoder.set_options(kaldi_decoder.FasterDecoderOptions(
            beam=config.search_beam, max_active=config.max_active_states, min_active=config.min_active_states))

    def decode(self, scores: Sequence[torch.Tensor]) -> List[List[int]]:
        """Best-path word ids of each utterance (``[T_i, S]`` float32 unscaled log-likelihoods);
        an empty list where no path reached a final state."""
        import kaldi_decoder
        import kaldifst

        out: List[List[int]] = []
        for s in scores:
            decodable = kaldi_decoder.DecodableCtc((s * self.config.acoustic_scale).numpy().astype(np.float32))
            self._decoder.decode(decodable)
            ok, lattice = self._decoder.get_best_path()
            if not ok:
                out.append([])
                continue
            _, _, words, _ = kaldifst.get_linear_symbol_sequence(lattice)
            out.append([int(w) for w in words if w > 0])
        return out
