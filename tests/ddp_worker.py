"""Run by tests/test_training_engine.py, alone or under torchrun: train a tiny LSTM through the
production training stage, then save this rank's final weights as ``rank-<r>-weights.pt``.

Usage: ddp_worker.py FEATS_DIR ALI_DIR OUT_DIR
"""

import os
import sys
from pathlib import Path

import torch

from hybrid_asr.features import FeatureStore
from hybrid_asr.models import LstmConfig
from hybrid_asr.stages.train import train_stage
from hybrid_asr.training import TrainConfig

torch.set_num_threads(1)
feats, ali, out = sys.argv[1:4]
store = FeatureStore(feats)
model_config = LstmConfig(feat_dim=store.config.dim, num_pdfs=2, hidden_dim=16, proj_dim=8, num_layers=1,
                          left_context=4, dropout=0.0)
train_config = TrainConfig(epochs=2, batch_size=80, seed=3, valid_fraction=0.25)
bundle = train_stage(store, ali, out, model_config, train_config)
torch.save(bundle.model.state_dict(), Path(out) / f"rank-{os.environ.get('RANK', '0')}-weights.pt")
