"""k2 graphs: H (HMM), training graphs per utterance, the decoding graph (HLG or HCLG)."""

from hybrid_asr.graph.decoding_graph import GraphConfig, add_self_loops, make_decoding_graph, make_lg, make_lg_openfst
from hybrid_asr.graph.h import HmmGraph, HmmLabels, make_h, monophone_hmm_graph
from hybrid_asr.graph.training import TrainingGraphCompiler

__all__ = ["GraphConfig", "HmmGraph", "HmmLabels", "TrainingGraphCompiler", "add_self_loops", "make_decoding_graph",
           "make_h", "make_lg", "make_lg_openfst", "monophone_hmm_graph"]
