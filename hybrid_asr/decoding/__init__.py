"""Decoding: scaled log-likelihoods and k2 search over HLG."""

from hybrid_asr.decoding.likelihoods import log_likelihoods, pad_scores
from hybrid_asr.decoding.search import SearchConfig, decode_scores

__all__ = ["SearchConfig", "decode_scores", "log_likelihoods", "pad_scores"]
