"""Decoding: search over HLG/HCLG (k2, or Kaldi's FasterDecoder on CPU), dataset and file decoding."""

from hybrid_asr.bundle import SearchConfig
from hybrid_asr.decoding.search import Searcher, decode_scores, with_word_insertion_penalty

__all__ = ["SearchConfig", "Searcher", "decode_scores", "with_word_insertion_penalty"]
