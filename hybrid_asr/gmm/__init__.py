"""GMM-HMM acoustic models (Kaldi's ``gmm-*`` stages): diagonal-covariance GMMs per pdf-id."""

from hybrid_asr.gmm.diag_gmm import DiagGmmSet, GmmConfig

__all__ = ["DiagGmmSet", "GmmConfig"]
