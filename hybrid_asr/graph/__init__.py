"""k2 graphs: H (HMM), training graphs per utterance, the decoding graph HLG."""

from hybrid_asr.graph.decoding_graph import make_hlg
from hybrid_asr.graph.h import make_h
from hybrid_asr.graph.training import TrainingGraphCompiler

__all__ = ["TrainingGraphCompiler", "make_h", "make_hlg"]
