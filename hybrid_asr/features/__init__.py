"""Front end: audio loading, Kaldi-compatible fbank/MFCC, CMVN, splicing and feature storage."""

from hybrid_asr.features.audio import load_audio
from hybrid_asr.features.cmvn import CmvnStats
from hybrid_asr.features.config import FeatureConfig
from hybrid_asr.features.extract import compute_features
from hybrid_asr.features.splice import splice
from hybrid_asr.features.storage import FeatureStore, compute_feature_store

__all__ = [
    "CmvnStats",
    "FeatureConfig",
    "FeatureStore",
    "compute_feature_store",
    "compute_features",
    "load_audio",
    "splice",
]
