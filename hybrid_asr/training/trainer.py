"""Frame cross-entropy training of the acoustic model: Adam, exponential LR decay, validation
frame accuracy per epoch, checkpoints, metrics and a plot."""

import json
import logging
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from tqdm import tqdm

from hybrid_asr.models.dnn import DnnAcousticModel
from hybrid_asr.training.frames import FrameData
from hybrid_asr.utils import JsonDataclass, atomic_path, write_text_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig(JsonDataclass):
    """Optimization settings, saved as ``train_config.json`` next to the model.

    Attributes:
        epochs: passes over the training frames.
        batch_size: frames per mini-batch.
        lr: initial Adam learning rate.
        final_lr: learning rate of the last epoch (exponential decay in between).
        weight_decay: L2 penalty (Adam's ``weight_decay``).
        label_smoothing: cross-entropy label smoothing.
        valid_fraction: fraction of utterances held out for validation frame accuracy.
        seed: seed of every random generator (model init, shuffling, held-out split).
    """

    json_what = "training config"

    epochs: int = 8
    batch_size: int = 256
    lr: float = 1e-3
    final_lr: float = 5e-5
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    valid_fraction: float = 0.05
    seed: int = 0



def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def split_utterances(utt_ids: List[str], valid_fraction: float, seed: int):
    """Deterministic held-out split by utterance: ``(train ids, valid ids)``.

    Speed-perturbed copies (``<id>_sp<factor>``) go to the same side as their original, so the
    validation frame accuracy is measured on utterances not seen in any form.
    """
    groups: Dict[str, List[str]] = {}
    for u in utt_ids:
        groups.setdefault(re.sub(r"_sp[0-9.]+$", "", u), []).append(u)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    n_valid = max(1, int(round(len(keys) * valid_fraction))) if valid_fraction > 0 and len(keys) > 1 else 0
    valid = sorted(u for k in keys[:n_valid] for u in groups[k])
    train = sorted(u for k in keys[n_valid:] for u in groups[k])
    return train, valid


@torch.no_grad()
def evaluate(model: DnnAcousticModel, data: FrameData, batch_size: int = 4096) -> Dict[str, float]:
    """Mean cross-entropy (nats per frame) and frame accuracy (%) of ``model`` on ``data``."""
    model.eval()
    loss, correct = 0.0, 0
    for x, y in data.batches(batch_size, shuffle=False):
        logp = model(x)
        loss += float(torch.nn.functional.nll_loss(logp, y, reduction="sum"))
        correct += int((logp.argmax(-1) == y).sum())
    return {"loss": loss / len(data), "frame_acc": 100.0 * correct / len(data)}


def train_model(
    model: DnnAcousticModel,
    train: FrameData,
    valid: Optional[FrameData],
    config: TrainConfig,
    out_dir: Union[str, Path],
) -> List[Dict[str, float]]:
    """Train ``model`` in place with frame cross-entropy on senone targets.

    Writes to ``out_dir``: ``checkpoints/epoch-<n>.pt`` (model + optimizer state, atomically),
    ``metrics.jsonl`` (one line per epoch: lr, train loss/accuracy, valid loss/accuracy, seconds)
    and ``metrics.png`` (loss and frame accuracy curves).

    Args:
        model: acoustic model, trained in place.
        train: training frames and targets.
        valid: held-out frames (or None).
        config: optimization settings.
        out_dir: experiment directory.

    Returns:
        The per-epoch metrics.
    """
    out = Path(out_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gamma = (config.final_lr / config.lr) ** (1.0 / max(1, config.epochs - 1))
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    history: List[Dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        start = time.time()
        total, correct, seen = 0.0, 0, 0
        n_batches = (len(train) + config.batch_size - 1) // config.batch_size
        bar = tqdm(train.batches(config.batch_size, True, gen), total=n_batches, desc=f"epoch {epoch}", unit="batch",
                   leave=False)
        for x, y in bar:
            logp = model(x)
            loss = loss_fn(logp, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * y.numel()
            correct += int((logp.argmax(-1) == y).sum())
            seen += y.numel()
        row = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], "train_loss": total / seen,
               "train_frame_acc": 100.0 * correct / seen}
        sched.step()
        if valid is not None and len(valid):
            v = evaluate(model, valid)
            row.update(valid_loss=v["loss"], valid_frame_acc=v["frame_acc"])
        row["seconds"] = time.time() - start
        history.append(row)
        log.info("epoch %d: %s", epoch, " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
        with atomic_path(out / "checkpoints" / f"epoch-{epoch}.pt") as tmp:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch}, tmp)
        write_text_atomic(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
        plot_metrics(history, out / "metrics.png")
    return history


def plot_metrics(history: List[Dict[str, float]], path: Union[str, Path]) -> None:
    """Plot loss and frame accuracy per epoch (train and validation) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, ax in (("loss", a), ("frame_acc", b)):
        ax.plot(epochs, [r[f"train_{key}"] for r in history], "o-", label="train")
        if f"valid_{key}" in history[0]:
            ax.plot(epochs, [r[f"valid_{key}"] for r in history], "o-", label="valid")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("cross-entropy (nats/frame)" if key == "loss" else "frame accuracy (%)")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
