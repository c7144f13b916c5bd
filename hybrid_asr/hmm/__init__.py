"""HMM topology: phone HMMs, pdf-ids (senones), transition probabilities."""

from hybrid_asr.hmm.topology import HmmTopology

__all__ = ["HmmTopology"]
