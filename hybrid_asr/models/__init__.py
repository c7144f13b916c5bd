"""Acoustic models: spliced features -> senone log-posteriors."""

from hybrid_asr.models.dnn import DnnAcousticModel, DnnConfig

__all__ = ["DnnAcousticModel", "DnnConfig"]
