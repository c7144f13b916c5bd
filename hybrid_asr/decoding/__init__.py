"""Decoding: k2 search over HLG/HCLG, dataset and file decoding."""

from hybrid_asr.bundle import SearchConfig
from hybrid_asr.decoding.search import decode_scores

__all__ = ["SearchConfig", "decode_scores"]
