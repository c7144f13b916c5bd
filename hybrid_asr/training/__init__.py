"""Acoustic model training: frame batches, cross-entropy loop, priors."""

from hybrid_asr.training.frames import FrameData
from hybrid_asr.training.priors import estimate_log_priors
from hybrid_asr.training.trainer import TrainConfig, evaluate, seed_everything, split_utterances, train_model

__all__ = ["FrameData", "TrainConfig", "estimate_log_priors", "evaluate", "seed_everything", "split_utterances",
           "train_model"]
