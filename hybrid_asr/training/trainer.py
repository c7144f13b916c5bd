"""The training engine: frame cross-entropy for every acoustic model, on chunks read lazily from
the feature store, on CPU or CUDA, in one process or data-parallel under ``torchrun``; the same
loop runs sequence training with another objective (:mod:`hybrid_asr.training.sequence`).

Per run it writes into the experiment directory:

- ``checkpoints/epoch-<n>.pt`` after every epoch and ``checkpoints/step-<n>.pt`` every
  ``checkpoint_every`` optimizer steps (the two newest step checkpoints are kept), each with the
  model, optimizer, learning-rate schedule, AMP scaler, sampler position (epoch, batch), running
  epoch sums and the torch RNG state, so that ``resume`` continues exactly where the newest one
  was written, after any kill; ``checkpoints/latest`` names the newest (written last);
- ``metrics.jsonl`` (one line per epoch: learning rate, train/valid loss and frame accuracy,
  frames per second, seconds, batches skipped for a non-finite loss or gradient) and
  ``metrics.png`` (loss, frame accuracy and learning rate);
- ``training.json``: parameters, frames, seconds and which weights became the final model
  (the last epoch's, the best by held-out frame accuracy, or the average of the last k epochs').

A batch whose loss or gradient is NaN or infinite changes nothing: its update is skipped (all
ranks together), with a warning, and counted in the epoch's ``skipped_batches``. Past
``TrainConfig.max_nonfinite_batches`` such batches in a row, or with a non-finite held-out loss,
weight or buffer at the end of an epoch, training stops with
:class:`~hybrid_asr.errors.TrainingDivergedError` (the model is not written).

Every file is written atomically. Checkpoints hold only tensors and plain containers
(:func:`hybrid_asr.utils.save_state`), so they load with ``torch.load(weights_only=True)``.
"""

import contextlib
import json
import logging
import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError, HybridAsrError, InputError, TrainingDivergedError
from hybrid_asr.features.augment import original_utterance_id
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.models.base import AcousticModel
from hybrid_asr.training.chunks import IGNORE, ChunkData, epoch_order
from hybrid_asr.training.distributed import DistributedContext
from hybrid_asr.training.loader import epoch_batches
from hybrid_asr.training.spec_augment import SpecAugmentConfig, spec_augment
from hybrid_asr.utils import (JsonDataclass, atomic_path, describe_nonfinite, load_state, nonfinite_tensors, progress,
                              save_state, state_tensors, write_text_atomic)

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("exponential", "plateau")
FINAL_MODELS = ("last", "best", "average")
#: Warnings per epoch about batches skipped for a non-finite loss or gradient (then only the count).
_NONFINITE_WARNINGS = 10


@dataclass(frozen=True)
class TrainConfig(JsonDataclass):
    """Optimization settings, saved as ``train_config.json`` next to the model.

    Attributes:
        epochs: passes over the training chunks.
        batch_size: output frames per optimizer step, all ranks together (chunks per step =
            ``max(1, batch_size // chunk_frames)``).
        chunk_frames: output frames per training chunk; 0 takes the model's
            ``default_chunk_frames`` (DNN 1, TDNN 8, LSTM/CLDNN 20).
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"`` (with ``momentum``).
        lr: initial learning rate.
        final_lr: ``exponential``: learning rate of the last epoch (geometric decay per epoch);
            ``plateau``: the floor of the reductions.
        momentum: SGD momentum.
        weight_decay: L2 penalty (decoupled for AdamW).
        scheduler: ``"exponential"`` decay per epoch, or ``"plateau"``: multiply by
            ``plateau_factor`` after an epoch whose held-out loss did not improve.
        plateau_factor: see ``scheduler``.
        warmup_steps: linear warm-up of the learning rate over this many steps (0: none).
        grad_clip: clip the gradient norm to this value (0: no clipping).
        max_nonfinite_batches: a batch whose loss or gradient norm is NaN or infinite is skipped
            (no optimizer step, on every rank; a warning, and the epoch's ``skipped_batches``
            count); when this many batches *in a row* were skipped, training stops with
            :class:`~hybrid_asr.errors.TrainingDivergedError` (a diverged model makes every
            batch non-finite, while a rare bad batch only costs its update). Must be >= 1. With
            ``amp``, infinite gradients are left to the loss scaler (they are how it finds its
            scale), so only the loss is checked.
        label_smoothing: cross-entropy label smoothing.
        spec_freq_masks, spec_freq_width, spec_time_masks, spec_time_width: SpecAugment masking
            of the frame cross-entropy batches (:class:`SpecAugmentConfig`: bands per example and
            their largest width in bins / input frames; 0: off).
        valid_fraction: fraction of utterances held out for validation frame accuracy.
        valid_max_seconds: at most this much audio held out (seconds; at 1,000 hours 5% would be
            50 hours evaluated every epoch); under torchrun the ranks share its evaluation.
        num_workers: processes that read and build training batches ahead of the optimizer
            (:func:`hybrid_asr.training.loader.epoch_batches`; 0: in the training process). The
            weights do not depend on it.
        shuffle_block_chunks: 0 (default): each epoch takes the chunks in a random permutation
            (one random read each). B > 0: blocks of B consecutive chunks of the store in a
            random order, shuffled within windows of ``shuffle_window_chunks`` chunks (default
            4 B), so that reading is nearly sequential (:func:`~hybrid_asr.training.chunks.epoch_order`):
            for stores far larger than the page cache, or on network disks.
        shuffle_window_chunks: see ``shuffle_block_chunks``; 0: 4 x ``shuffle_block_chunks``.
        dropout_schedule: the dropout probability of every dropout layer over training, Kaldi's
            ``--trainer.dropout-schedule`` syntax: comma-separated values at evenly spaced points
            of training, or ``value@fraction`` at given points (the first at 0, the last at 1),
            linear in between; e.g. ``0,0@0.2,0.5@0.5,0`` (Kaldi's TDNN-F recipes: none for the
            first fifth, rising to 0.5 at half-way, back to 0 at the end). Empty: the
            architecture's fixed dropout. Training progress counts batches of all epochs.
        seed: seed of every random generator (model init, chunk order, dropout, held-out split).
        checkpoint_every: also checkpoint every N optimizer steps (0: once per epoch).
        final_model: ``"last"`` epoch, ``"best"`` epoch by held-out frame accuracy, or
            ``"average"`` of the last ``average_last`` epochs' weights.
        average_last: k for ``final_model="average"``.
        device: ``"cpu"`` or ``"cuda"`` (under torchrun each rank takes its ``LOCAL_RANK`` GPU).
        amp: mixed precision (float16 autocast and loss scaling) on CUDA; ignored on the CPU.
    """

    json_what = "training config"

    epochs: int = bounded(8, ge=1)
    batch_size: int = bounded(256, ge=1)
    chunk_frames: int = bounded(0, ge=0)
    optimizer: str = "adam"
    lr: float = bounded(1e-3, gt=0)
    final_lr: float = bounded(5e-5, gt=0)
    momentum: float = bounded(0.9, ge=0, lt=1)
    weight_decay: float = bounded(0.0, ge=0)
    scheduler: str = "exponential"
    plateau_factor: float = bounded(0.5, gt=0, le=1)
    warmup_steps: int = bounded(0, ge=0)
    grad_clip: float = bounded(0.0, ge=0)
    max_nonfinite_batches: int = bounded(10, ge=1)
    label_smoothing: float = bounded(0.0, ge=0, lt=1)
    spec_freq_masks: int = bounded(0, ge=0)
    spec_freq_width: int = bounded(0, ge=0)
    spec_time_masks: int = bounded(0, ge=0)
    spec_time_width: int = bounded(0, ge=0)
    valid_fraction: float = bounded(0.05, ge=0, lt=1)
    valid_max_seconds: float = bounded(3600.0, gt=0)
    num_workers: int = bounded(0, ge=0)
    shuffle_block_chunks: int = bounded(0, ge=0)
    shuffle_window_chunks: int = bounded(0, ge=0)
    dropout_schedule: str = ""
    seed: int = bounded(0, ge=0)
    checkpoint_every: int = bounded(0, ge=0)
    final_model: str = "last"
    average_last: int = bounded(2, ge=1)
    device: str = "cpu"
    amp: bool = False

    def __post_init__(self) -> None:
        check_bounds(self)
        for name, value, allowed in (("optimizer", self.optimizer, OPTIMIZERS),
                                     ("scheduler", self.scheduler, SCHEDULERS),
                                     ("final_model", self.final_model, FINAL_MODELS),
                                     ("device", self.device, ("cpu", "cuda"))):
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")
        if self.dropout_schedule:
            parse_dropout_schedule(self.dropout_schedule)

    @property
    def spec_augment(self) -> SpecAugmentConfig:
        """The SpecAugment masks of the frame cross-entropy batches."""
        return SpecAugmentConfig(self.spec_freq_masks, self.spec_freq_width, self.spec_time_masks,
                                 self.spec_time_width)


def parse_dropout_schedule(schedule: str) -> List[Tuple[float, float]]:
    """``(fraction of training, dropout probability)`` points of a Kaldi-style dropout schedule
    (:attr:`TrainConfig.dropout_schedule`), in order from fraction 0 to 1.

    Raises:
        ConfigError: not of the form ``p[@f],p[@f],...`` with probabilities in [0, 1) and
            fractions rising from 0 to 1.
    """
    items = schedule.split(",")
    points = []
    try:
        for i, item in enumerate(items):
            value, _, at = item.partition("@")
            default = i / (len(items) - 1) if len(items) > 1 else 0.0
            points.append((float(at) if at else default, float(value)))
    except ValueError:
        raise ConfigError(f"dropout schedule {schedule!r}: not comma-separated probability[@fraction] items") from None
    fractions = [f for f, _ in points]
    if len(points) > 1 and (fractions[0] != 0 or fractions[-1] != 1 or fractions != sorted(fractions)):
        raise ConfigError(f"dropout schedule {schedule!r}: fractions must rise from 0 to 1")
    if any(not 0 <= p < 1 for _, p in points):
        raise ConfigError(f"dropout schedule {schedule!r}: probabilities must be in [0, 1)")
    return points


def dropout_at(points: List[Tuple[float, float]], fraction: float) -> float:
    """The dropout probability of a parsed schedule at ``fraction`` (0..1) of training."""
    if len(points) == 1:
        return points[0][1]
    for (f0, p0), (f1, p1) in zip(points, points[1:]):
        if fraction <= f1:
            return p0 if f1 == f0 else p0 + (p1 - p0) * (fraction - f0) / (f1 - f0)
    return points[-1][1]


def set_dropout(model: torch.nn.Module, probability: float) -> None:
    """Set the probability of every ``torch.nn.Dropout`` layer of ``model``."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = probability


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def split_utterances(utt_ids: List[str], valid_fraction: float, seed: int,
                     seconds: Optional[Mapping[str, float]] = None, max_valid_seconds: float = math.inf):
    """Deterministic held-out split by utterance: ``(train ids, valid ids)``.

    Training copies (speed-perturbed ``<id>_sp<factor>``, augmented ``<id>_aug``:
    :func:`~hybrid_asr.features.augment.original_utterance_id`) go to the same side as their
    original, so the validation frame accuracy is measured on utterances not seen in any form.

    Args:
        utt_ids: the utterances.
        valid_fraction: share of the utterances (with their copies) held out.
        seed: seed of the shuffle that picks them.
        seconds: duration of each utterance (seconds), needed for ``max_valid_seconds``.
        max_valid_seconds: hold out fewer utterances when they would last longer than this
            (at least one is held out whenever ``valid_fraction`` asks for any).
    """
    groups: Dict[str, List[str]] = {}
    for u in utt_ids:
        groups.setdefault(original_utterance_id(u), []).append(u)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    n_valid = max(1, int(round(len(keys) * valid_fraction))) if valid_fraction > 0 and len(keys) > 1 else 0
    if seconds is not None and n_valid > 1:
        held = 0.0
        for i, k in enumerate(keys[:n_valid]):
            held += sum(seconds[u] for u in groups[k])
            if held > max_valid_seconds:
                n_valid = max(1, i)
                break
    valid = sorted(u for k in keys[:n_valid] for u in groups[k])
    train = sorted(u for k in keys[n_valid:] for u in groups[k])
    return train, valid


def utterance_seconds(store: FeatureStore) -> Dict[str, float]:
    """Duration of each utterance of ``store`` in seconds (its frames times the frame shift)."""
    shift = store.config.frame_shift_ms / 1000.0
    return {u.id: u.frames * shift for u in store.utterances}


def chunks_per_batch(config: TrainConfig, chunk_frames: int, world_size: int = 1) -> int:
    """Chunks per optimizer step on one rank: ``batch_size // chunk_frames`` split over ranks.

    Raises:
        HybridAsrError: the global batch does not divide evenly among the ranks.
    """
    total = max(1, config.batch_size // chunk_frames)
    if total % world_size:
        raise HybridAsrError(f"--batch-size {config.batch_size} is {total} chunks of {chunk_frames} frames, which do "
                             f"not divide among {world_size} ranks")
    return total // world_size


def _frame_stats(logp: torch.Tensor, y: torch.Tensor):
    """(summed NLL, correct, labelled frames) of ``[B, C, S]`` log-posteriors vs ``[B, C]`` targets."""
    mask = y != IGNORE
    flat_logp, flat_y = logp.reshape(-1, logp.shape[-1]), y.reshape(-1)
    nll = torch.nn.functional.nll_loss(flat_logp.float(), flat_y, ignore_index=IGNORE, reduction="sum")
    correct = ((logp.argmax(-1) == y) & mask).sum()
    return float(nll), int(correct), int(mask.sum())


@torch.no_grad()
def evaluate(model: AcousticModel, data: ChunkData, chunks: int = 256, device: str = "cpu",
             order: Optional[torch.Tensor] = None) -> Dict[str, float]:
    """Mean cross-entropy (nats per labelled frame) and frame accuracy (%) of ``model`` on ``data``
    (on its chunks ``order`` only when given, e.g. one rank's share), and the number of labelled
    frames they are the mean of (``frames``)."""
    model.eval()
    loss, correct, seen = 0.0, 0, 0
    for x, y in data.batches(chunks, order):
        x, y = x.to(device), y.to(device)
        logp, _ = model(x, torch.full((x.shape[0],), x.shape[1], dtype=torch.int64))
        nll, c, n = _frame_stats(logp, y)
        loss, correct, seen = loss + nll, correct + c, seen + n
    return {"loss": loss / max(seen, 1), "frame_acc": 100.0 * correct / max(seen, 1), "frames": seen}


class FrameCrossEntropy:
    """The training objective of :func:`train_model` by default: frame cross-entropy of
    ``[B, C, S]`` log-posteriors against ``[B, C]`` senone targets (:class:`ChunkData` batches).

    An objective is called with ``(net, batch, device)`` and returns the loss to minimize (a
    scalar tensor) and the batch's sums ``{"loss": nats, "correct": frames, "frames": labelled
    frames}``; ``evaluate(model, data, device, order)`` gives ``{"loss", "frame_acc"}`` per frame on
    held-out data (its items ``order``, default all) and the ``frames`` they were measured on. :class:`hybrid_asr.training.sequence.MmiObjective` is the other one.

    Args:
        label_smoothing: cross-entropy label smoothing.
        augment: SpecAugment masks applied to each training batch (never to held-out data).
    """

    def __init__(self, label_smoothing: float = 0.0, augment: Optional[SpecAugmentConfig] = None):
        self.loss_fn = torch.nn.CrossEntropyLoss(ignore_index=IGNORE, label_smoothing=label_smoothing)
        self.augment = augment or SpecAugmentConfig()

    def __call__(self, net: torch.nn.Module, batch, device: torch.device):
        x, y = batch
        x = spec_augment(x, self.augment)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logp, _ = net(x, torch.full((x.shape[0],), x.shape[1], dtype=torch.int64))
        loss = self.loss_fn(logp.float().reshape(-1, logp.shape[-1]), y.reshape(-1))
        nll, correct, frames = _frame_stats(logp.detach(), y)
        return loss, {"loss": nll, "correct": correct, "frames": frames}

    def evaluate(self, model: AcousticModel, data: ChunkData, device: str = "cpu",
                 order: Optional[torch.Tensor] = None) -> Dict[str, float]:
        return evaluate(model, data, device=device, order=order)


class LrSchedule:
    """Learning rate per step: linear warm-up, then exponential decay per epoch or reductions on
    plateau (see :class:`TrainConfig`). Its state (plateau factor, best held-out loss) is saved in
    checkpoints."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.factor = 1.0
        self.best = math.inf

    def lr(self, epoch: int, step: int) -> float:
        """Learning rate of optimizer step ``step`` (from 1) in ``epoch`` (from 1)."""
        c = self.config
        if c.scheduler == "exponential":
            gamma = (c.final_lr / c.lr) ** (1.0 / max(1, c.epochs - 1))
            base = c.lr * gamma ** (epoch - 1)
        else:
            base = max(c.lr * self.factor, c.final_lr)
        warm = min(1.0, step / c.warmup_steps) if c.warmup_steps > 0 else 1.0
        return base * warm

    def end_epoch(self, valid_loss: Optional[float]) -> None:
        """Plateau: reduce the rate if the held-out loss did not improve."""
        if self.config.scheduler != "plateau" or valid_loss is None:
            return
        if valid_loss < self.best:
            self.best = valid_loss
        else:
            self.factor *= self.config.plateau_factor

    def state_dict(self) -> Dict[str, float]:
        return {"factor": self.factor, "best": self.best}

    def load_state_dict(self, state: Dict[str, float]) -> None:
        self.factor, self.best = float(state["factor"]), float(state["best"])


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named by ``config.optimizer``."""
    params = model.parameters()
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def _grad_norm(model: torch.nn.Module) -> torch.Tensor:
    """2-norm of all gradients of ``model``'s parameters (0-d tensor; NaN or inf when a gradient
    holds NaN or inf, or the norm overflows float32)."""
    norms = [p.grad.detach().norm(2.0) for p in model.parameters() if p.grad is not None]
    return torch.stack(norms).norm(2.0) if norms else torch.zeros(())


def _nonfinite_problem(loss: torch.Tensor, stats: Dict[str, float], grad_norm: Optional[torch.Tensor]) -> str:
    """What is not finite about a training batch ("" when nothing): its loss, its summed loss
    statistic, or the norm of its gradients (None: not checked)."""
    if not bool(torch.isfinite(loss.detach()).all()):
        return f"the loss is {float(loss.detach().sum())}"
    if not math.isfinite(stats["loss"]):
        return f"the loss sum is {stats['loss']}"
    if grad_norm is not None and not math.isfinite(float(grad_norm)):
        return f"the gradient norm is {float(grad_norm)}"
    return ""


def _on_any_rank(dist: DistributedContext, problem: str, elsewhere: str) -> str:
    """One decision for all ranks: this rank's ``problem`` ("" for none), or, when only other
    ranks found one, ``elsewhere`` with their number (one all-reduce under DDP)."""
    if dist.world_size > 1:
        others = int(dist.all_reduce_sum([1.0 if problem else 0.0])[0])
        if others and not problem:
            return f"{elsewhere} on {others} other rank(s)"
    return problem


def train_model(
    model: AcousticModel,
    train: ChunkData,
    valid: Optional[ChunkData],
    config: TrainConfig,
    out_dir: Union[str, Path],
    resume: bool = False,
    dist: Optional[DistributedContext] = None,
    objective=None,
) -> List[Dict[str, float]]:
    """Train ``model`` in place, with frame cross-entropy on senone targets unless ``objective``
    says otherwise.

    Args:
        model: acoustic model (on the CPU; moved to ``config.device`` here).
        train: training chunks (built with the model's context and ``config``'s chunk size).
        valid: held-out chunks (or None).
        config: optimization settings.
        out_dir: experiment directory (see the module docstring for what is written).
        resume: continue from ``checkpoints/latest`` if it exists (a fresh start otherwise).
        dist: the process group when run under ``torchrun`` (rank 0 writes the files).
        objective: the loss (see :class:`FrameCrossEntropy`, the default with the config's label
            smoothing and SpecAugment masks). With data whose items are whole minibatches (``train.prebatched``, e.g.
            :class:`hybrid_asr.training.sequence.UtteranceData`) every step takes one item.

    Returns:
        The per-epoch metrics (with resumed epochs).

    Raises:
        InputError: the checkpoint to resume from is unreadable or from another model.
        TrainingDivergedError: ``config.max_nonfinite_batches`` batches in a row had a NaN or
            infinite loss or gradient, or the held-out loss or a weight or buffer (e.g. BatchNorm
            statistics) is not finite at the end of an epoch (names ``out_dir`` and what was not
            finite); the epoch's checkpoint is not written.
    """
    dist = dist or DistributedContext()
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    if dist.is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    device = dist.device(config.device)
    model.to(device)
    net = dist.wrap(model)
    opt = make_optimizer(model, config)
    schedule = LrSchedule(config)
    use_amp = config.amp and device.type == "cuda"
    # torch >= 2.3 has torch.amp.GradScaler (torch.cuda.amp's is deprecated there); 1.13 only the CUDA one
    scaler = (torch.amp.GradScaler("cuda", enabled=use_amp) if hasattr(torch.amp, "GradScaler")
              else torch.cuda.amp.GradScaler(enabled=use_amp))
    objective = objective or FrameCrossEntropy(config.label_smoothing, config.spec_augment)
    cpb = 1 if getattr(train, "prebatched", False) else chunks_per_batch(config, train.chunk, dist.world_size)
    history: List[Dict[str, float]] = []
    epoch, skip, step = 1, 0, 0
    nonfinite_in_a_row = 0  # batches skipped in a row for a non-finite loss or gradient (across epochs)
    sums = {"loss": 0.0, "correct": 0, "frames": 0, "seconds": 0.0, "skipped": 0}
    if resume and (ckpt_dir / "latest").is_file():
        state = load_checkpoint(ckpt_dir / (ckpt_dir / "latest").read_text().strip())
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise InputError(ckpt_dir, f"checkpoint does not match this model: {str(e).splitlines()[0]}") from None
        schedule.load_state_dict(state["schedule"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:  # dropout on the GPU draws from it
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        history = list(state["history"])
        epoch, skip, step = int(state["epoch"]), int(state["batch"]), int(state["step"])
        sums = {"skipped": 0, **state["sums"]}
        nonfinite_in_a_row = int(state.get("nonfinite_in_a_row", 0))
        if state["epoch_done"]:
            epoch, skip = epoch + 1, 0
            sums = {"loss": 0.0, "correct": 0, "frames": 0, "seconds": 0.0, "skipped": 0}
        log.info("resuming at epoch %d, batch %d (step %d)", epoch, skip, step)

    def save(name: str, batch: int, epoch_done: bool) -> None:
        if not dist.is_main:
            return
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "schedule": schedule.state_dict(),
                 "scaler": scaler.state_dict(), "rng": torch.get_rng_state(),
                 "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None, "history": history,
                 "epoch": epoch, "batch": batch, "step": step, "sums": dict(sums), "epoch_done": epoch_done,
                 "nonfinite_in_a_row": nonfinite_in_a_row}
        save_state(state, ckpt_dir / name)
        write_text_atomic(ckpt_dir / "latest", name + "\n")
        if name.startswith("step-"):
            steps = sorted(ckpt_dir.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
            for old in steps[:-2]:
                old.unlink()

    dropout_points = parse_dropout_schedule(config.dropout_schedule) if config.dropout_schedule else []
    if dropout_points and not any(isinstance(m, torch.nn.Dropout) for m in model.modules()):
        raise ConfigError(f"{out}: a dropout schedule was given, but the model has no dropout layers (give it a "
                          "dropout above 0)")
    while epoch <= config.epochs:
        order = epoch_order(len(train), config.seed, epoch, dist.rank, dist.world_size, config.shuffle_block_chunks,
                            config.shuffle_window_chunks)
        n_batches = math.ceil(len(order) / cpb)
        net.train()
        start = time.time()
        batches = epoch_batches(train, cpb, order, skip, config.num_workers, pin_memory=device.type == "cuda")
        bar = progress(batches, total=n_batches, initial=skip, desc=f"epoch {epoch}",
                   unit="batch", leave=False, disable=not (dist.is_main and sys.stderr.isatty()))
        for batch_index, batch in enumerate(bar, start=skip):
            step += 1
            for group in opt.param_groups:
                group["lr"] = schedule.lr(epoch, step)
            if dropout_points:
                set_dropout(model, dropout_at(dropout_points, (epoch - 1 + batch_index / n_batches) / config.epochs))
            with torch.autocast(device_type="cuda", dtype=torch.float16) if use_amp else contextlib.nullcontext():
                loss, stats = objective(net, batch, device)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()  # on every rank, even for a bad batch: DDP's all-reduce needs them all
            grad_norm = None
            if config.grad_clip > 0:
                scaler.unscale_(opt)
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            elif not use_amp:
                grad_norm = _grad_norm(model)
            # under AMP an infinite gradient is the scaler's business (it skips the step itself)
            problem = _on_any_rank(dist, _nonfinite_problem(loss, stats, None if use_amp else grad_norm),
                                   "the loss or gradient is not finite")  # no rank steps while another skips
            if problem:
                nonfinite_in_a_row += 1
                sums["skipped"] += 1
                if use_amp:
                    scaler.update(scaler.get_scale())  # forget this batch's unscale_, keep the scale
                where = f"epoch {epoch}, batch {batch_index + 1}/{n_batches}"
                if nonfinite_in_a_row >= config.max_nonfinite_batches:
                    raise TrainingDivergedError(
                        f"{out}: training diverged: {nonfinite_in_a_row} batches in a row had a NaN or infinite "
                        f"loss or gradient (last: {where}, {problem}); lower --lr or set --grad-clip")
                if sums["skipped"] <= _NONFINITE_WARNINGS:
                    log.warning("%s: %s; its update is skipped (%d in a row, training stops at %d)%s", where,
                                problem, nonfinite_in_a_row, config.max_nonfinite_batches,
                                "; no more warnings this epoch" if sums["skipped"] == _NONFINITE_WARNINGS else "")
            else:
                nonfinite_in_a_row = 0
                scaler.step(opt)
                scaler.update()
                model.after_optimizer_step(step)
                for key in ("loss", "correct", "frames"):
                    sums[key] += stats[key]
            if bar.n % 10 == 0 and not bar.disable:
                elapsed = sums["seconds"] + time.time() - start
                bar.set_postfix(loss=f"{sums['loss'] / max(sums['frames'], 1):.3f}",
                                acc=f"{100 * sums['correct'] / max(sums['frames'], 1):.1f}",
                                fps=f"{sums['frames'] * dist.world_size / max(elapsed, 1e-9):.0f}")
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                sums["seconds"] += time.time() - start
                start = time.time()
                save(f"step-{step}.pt", batch_index + 1, False)
        sums["seconds"] += time.time() - start
        totals = dist.all_reduce_sum([sums["loss"], sums["correct"], sums["frames"]])
        row = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], "train_loss": totals[0] / max(totals[2], 1),
               "train_frame_acc": 100.0 * totals[1] / max(totals[2], 1),
               "frames_per_second": totals[2] / max(sums["seconds"], 1e-9),
               "skipped_batches": sums["skipped"]}  # the same on every rank
        if valid is not None and len(valid):
            # each rank evaluates every world_size-th held-out item; the sums are combined
            mine = torch.arange(dist.rank, len(valid), dist.world_size)
            v = objective.evaluate(model, valid, device=str(device), order=mine)
            loss, correct, frames = dist.all_reduce_sum([v["loss"] * v["frames"], v["frame_acc"] * v["frames"],
                                                         v["frames"]])
            row.update(valid_loss=loss / max(frames, 1), valid_frame_acc=correct / max(frames, 1))
        row["seconds"] = sums["seconds"]
        log.info("epoch %d: %s", epoch, " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
        problem = ""
        if not math.isfinite(row.get("valid_loss", 0.0)):
            problem = f"the held-out loss of epoch {epoch} is {row['valid_loss']}"
        else:
            bad = nonfinite_tensors(state_tensors(model))  # e.g. BatchNorm statistics, with finite losses
            if bad:
                problem = f"after epoch {epoch}, {describe_nonfinite(bad)}"
        problem = _on_any_rank(dist, problem, f"after epoch {epoch}, the held-out loss or a weight is not finite")
        if problem:
            raise TrainingDivergedError(f"{out}: training diverged: {problem}; lower --lr or set --grad-clip")
        schedule.end_epoch(row.get("valid_loss"))
        history.append(row)
        skip = 0
        sums = {"loss": 0.0, "correct": 0, "frames": 0, "seconds": 0.0, "skipped": 0}
        save(f"epoch-{epoch}.pt", n_batches, True)
        if dist.is_main:
            write_text_atomic(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
            plot_metrics(history, out / "metrics.png")
        epoch += 1
    dist.barrier()  # every epoch checkpoint is on disk before any rank reads them
    choice = select_final_weights(model, history, config, ckpt_dir)
    if dist.is_main:
        info = {"parameters": model.num_parameters(), "train_frames": train.num_frames,
                "valid_frames": valid.num_frames if valid is not None else 0, "chunk_frames": getattr(train, "chunk", 0),
                "chunks_per_batch": cpb * dist.world_size, "world_size": dist.world_size,
                "seconds": sum(r["seconds"] for r in history), "final_model": choice, "config": asdict(config)}
        write_text_atomic(out / "training.json", json.dumps(info, indent=2) + "\n")
    model.to("cpu")
    return history


def load_checkpoint(path: Union[str, Path]) -> dict:
    """Read a checkpoint written by :func:`train_model` (:func:`~hybrid_asr.utils.load_state`:
    tensors and plain containers only, never code).

    Raises:
        InputError: missing or not such a checkpoint.
    """
    return load_state(path)


def average_state_dicts(states: Sequence[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Element-wise mean of model state dicts (floating tensors; integer buffers such as
    BatchNorm's batch counters are taken from the last). Checkpoint averaging as in icefall and
    Kaldi's ``nnet3-average``."""
    out = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            out[key] = sum(s[key].double() for s in states).div(len(states)).to(last.dtype)
        else:
            out[key] = last.clone()
    return out


def select_final_weights(model: AcousticModel, history: List[Dict[str, float]], config: TrainConfig,
                         ckpt_dir: Path) -> str:
    """Load the weights ``config.final_model`` asks for into ``model``; returns what was chosen."""
    if config.final_model == "last" or not history:
        return f"epoch {history[-1]['epoch'] if history else 0} (last)"
    if config.final_model == "best":
        if "valid_frame_acc" not in history[0]:
            return f"epoch {history[-1]['epoch']} (last: no held-out data to pick the best)"
        best = max(history, key=lambda r: r["valid_frame_acc"])["epoch"]
        model.load_state_dict(load_checkpoint(ckpt_dir / f"epoch-{best}.pt")["model"])
        return f"epoch {best} (best held-out frame accuracy)"
    epochs = [r["epoch"] for r in history][-config.average_last :]
    model.load_state_dict(average_state_dicts([load_checkpoint(ckpt_dir / f"epoch-{e}.pt")["model"]
                                               for e in epochs]))
    return "average of epochs " + ",".join(str(e) for e in epochs)


def plot_metrics(history: List[Dict[str, float]], path: Union[str, Path]) -> None:
    """Plot loss, frame accuracy (train and validation) and learning rate per epoch to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(12, 3.5))
    for key, ax in (("loss", a), ("frame_acc", b)):
        ax.plot(epochs, [r[f"train_{key}"] for r in history], "o-", label="train")
        if f"valid_{key}" in history[0]:
            ax.plot(epochs, [r[f"valid_{key}"] for r in history], "o-", label="valid")
        ax.set_ylabel("cross-entropy (nats/frame)" if key == "loss" else "frame accuracy (%)")
        ax.legend()
    c.plot(epochs, [r["lr"] for r in history], "o-")
    c.set_ylabel("learning rate (last step)")
    c.set_yscale("log")
    for ax in (a, b, c):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
