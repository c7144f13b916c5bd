"""Acoustic model training: chunk examples read lazily from the feature store, one cross-entropy
engine for every architecture (CPU/CUDA, DDP under torchrun, exact resume), priors."""

from hybrid_asr.training.chunks import IGNORE, ChunkData, chunk_starts, epoch_order
from hybrid_asr.training.distributed import DistributedContext
from hybrid_asr.training.priors import estimate_log_priors
from hybrid_asr.training.trainer import (
    TrainConfig,
    average_state_dicts,
    evaluate,
    seed_everything,
    split_utterances,
    train_model,
)

__all__ = ["IGNORE", "ChunkData", "DistributedContext", "TrainConfig", "average_state_dicts", "chunk_starts",
           "epoch_order", "estimate_log_priors", "evaluate", "seed_everything", "split_utterances", "train_model"]
