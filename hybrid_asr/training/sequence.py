"""Sequence-discriminative training with k2: lattice-free MMI and MMI, from a cross-entropy model.

The MMI objective of an utterance with features X and transcript W (Bahl et al. 1986; Povey 2003,
chapter 4; Kingsbury 2009 for DNNs) is

    F = log p(X | num) - log p(X | den)
      = log sum_{paths of the numerator}   exp(kappa * acoustic + graph score)
      - log sum_{paths of the denominator} exp(kappa * acoustic + graph score)

with the acoustic score of a frame the model's pseudo log-likelihood ``log p(s|x) - log p(s)``
(:mod:`hybrid_asr.likelihoods`) and kappa the acoustic scale. Both sums are forward scores in the
log semiring of k2's dense intersection (``intersect_dense`` for the numerator,
``intersect_dense_pruned`` or ``intersect_dense`` for the denominator), and autograd through
them gives kappa (numerator occupancy - denominator occupancy) per frame and senone. The
numerator is ``H o L o W`` of the transcript (optional silence and pronunciation variants
included; :class:`hybrid_asr.graph.training.TrainingGraphCompiler`), the denominator either

- ``lfmmi``: the senone H composed with a phone n-gram of the training alignments, with leaky-HMM
  arcs (Povey et al. 2016; :mod:`hybrid_asr.graph.denominator`), kappa 1; or
- ``mmi``: the model's decoding graph (HCLG/HLG with the word LM), kappa the model's decoding
  acoustic scale: MMI as Vesely et al. 2013 ran it from a CE DNN, without the lattice.

Regularization as Kaldi's chain training (Povey et al. 2016, section 2.7): frame cross-entropy
against the alignment (weight ``xent_regularize``; Kaldi uses a separate output layer, here the
one output is shared, which is also Su et al. 2013's "frame smoothing") and an l2 penalty on the
output (``0.5 * l2_regularize * ||y||^2`` per frame, ``y`` the log-posteriors centred over the
senones, i.e. the logits up to a constant).

Only fine-tuning of a trained CE model is implemented: the model keeps its senones, topology,
frame rate and priors. Since the MMI objective is invariant to a per-frame constant, training on
``log_softmax(z) - log p(s)`` trains the logits ``z`` with a fixed bias: the priors stay part of
the model's scores at decoding time, as for the CE model.
"""

import logging
import math
from dataclasses import dataclass
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import k2
import numpy as np
import torch

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.graph.training import TrainingGraphCompiler
from hybrid_asr.models.base import AcousticModel, pad_context
from hybrid_asr.training.chunks import IGNORE, utterance_cmvn
from hybrid_asr.utils import JsonDataclass

log = logging.getLogger(__name__)

CRITERIA = ("lfmmi", "mmi")

#: Score of graph label 0 (column 0 of the dense scores), never read by our epsilon-free graphs.
_NO_LABEL = -1e4


@dataclass(frozen=True)
class SequenceConfig(JsonDataclass):
    """Sequence-training settings, saved as ``sequence_config.json`` next to the model.

    Attributes:
        criterion: ``"lfmmi"`` (phone-LM denominator) or ``"mmi"`` (the word-level decoding
            graph as denominator).
        acoustic_scale: kappa; 0 means 1.0 for ``lfmmi`` (chain models are trained and decoded at
            1.0) and the model's decoding acoustic scale (``search_config.json``) for ``mmi``.
        phone_lm_order: n of the ``lfmmi`` denominator phone LM. Kaldi uses 4 (with a trigram
            kept whole and 2000 extra states); 2 is the default here because our triphone H has
            the left context built in, so a bigram den graph is H's own size (AN4: 206k arcs)
            while a trigram has 786k and a 4-gram 1.5-3.1M, too many for the CPU (measured in
            docs/sequence.md).
        phone_lm_extra_states: with ``phone_lm_order`` 4 or more, histories longer than two
            phones kept besides all shorter ones (the most frequent first; Kaldi: 2000, with
            ``--no-prune-ngram-order 3``).
        leaky_hmm: leaky-HMM coefficient; ``lfmmi`` only. Kaldi's chain default is 0.1, for
            its training on chunks cut out of utterances; we train on whole utterances, and
            the leak's hub state keeps every state of the pruned denominator search active
            (AN4: 27x slower, benchmarks/sequence_training.py), so it is off by default.
        xent_regularize: weight of the frame cross-entropy term (Kaldi's chain default 0.1).
        l2_regularize: l2 on the output (Kaldi's chain recipes: 5e-5).
        den_pruned: search the denominator with ``intersect_dense_pruned`` (beams below) instead
            of the exact ``intersect_dense``, which is about 8x slower on the CPU (AN4).
        den_search_beam, den_output_beam, den_max_active: beams of the denominator (log-e units)
            and its cap on active states per frame.
        num_output_beam: output beam of the (exact) numerator intersection.
        num_tolerance: -1: the numerator is the transcript's graph, every alignment of it; >= 0:
            its paths are also held to the training alignment, each frame's senone within this
            many input frames of where the alignment has it (:func:`alignment_mask`; Kaldi's
            chain numerator lattices use 5 frames each side).
    """

    json_what = "sequence-training config"

    criterion: str = "lfmmi"
    acoustic_scale: float = bounded(0.0, ge=0)
    phone_lm_order: int = bounded(2, ge=1)
    phone_lm_extra_states: int = bounded(0, ge=0)
    leaky_hmm: float = bounded(0.0, ge=0, lt=1)
    xent_regularize: float = bounded(0.1, ge=0)
    l2_regularize: float = bounded(5e-5, ge=0)
    den_pruned: bool = True
    den_search_beam: float = bounded(15.0, gt=0)
    den_output_beam: float = bounded(8.0, gt=0)
    den_max_active: int = bounded(10000, ge=1)
    num_output_beam: float = bounded(20.0, gt=0)
    num_tolerance: int = bounded(-1, ge=-1)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.criterion not in CRITERIA:
            raise ConfigError(f"criterion must be one of {CRITERIA}, got {self.criterion!r}")


def dense_scores(scores: torch.Tensor, lengths: torch.Tensor) -> k2.DenseFsaVec:
    """k2's view of a batch of frame scores (differentiable).

    Args:
        scores: float32 ``[N, T, S]`` scaled acoustic scores per senone, sequences sorted by
            length, longest first (k2's ``intersect_dense`` needs that order).
        lengths: int ``[N]`` frames per sequence.

    Returns:
        DenseFsaVec whose label ``s + 1`` reads ``scores[..., s]`` (label 0 reads a constant
        :data:`_NO_LABEL`).
    """
    n, t, _ = scores.shape
    padded = torch.cat([torch.full((n, t, 1), _NO_LABEL, dtype=scores.dtype, device=scores.device), scores], dim=-1)
    seg = torch.stack([torch.arange(n, dtype=torch.int32), torch.zeros(n, dtype=torch.int32),
                       lengths.to(torch.int32).cpu()], dim=1)
    return k2.DenseFsaVec(padded, seg)


def alignment_mask(pdfs: np.ndarray, num_pdfs: int, subsampling: int = 1, tolerance: int = 0) -> torch.Tensor:
    """Which senones the numerator may put on each output frame, from an alignment: output frame
    ``j`` (input frame ``j * f``) may take every pdf the alignment has within ``tolerance`` input
    frames of it (the time constraint of Kaldi's chain numerator, Povey et al. 2016, section 2.4,
    applied to the transcript graph instead of a lattice).

    Args:
        pdfs: int ``[T]`` pdf-id per input frame.
        num_pdfs: S.
        subsampling: f, the model's frame subsampling factor.
        tolerance: input frames each side.

    Returns:
        bool ``[ceil(T / f), S]``.
    """
    pdfs = np.asarray(pdfs, dtype=np.int64)
    t = len(pdfs)
    out_frames = -(-t // subsampling)
    mask = torch.zeros(out_frames, num_pdfs, dtype=torch.bool)
    centre = np.arange(out_frames) * subsampling
    for shift in range(-tolerance, tolerance + 1):
        frame = np.clip(centre + shift, 0, t - 1)
        mask[torch.arange(out_frames), torch.from_numpy(pdfs[frame])] = True
    return mask


def numerator_scores(num_graphs: k2.Fsa, dense: k2.DenseFsaVec, output_beam: float) -> torch.Tensor:
    """Log-semiring forward scores of the numerator graphs (one per sequence, in order).

    Returns:
        float64 ``[N]``; ``-inf`` where the transcript cannot fill the frames.
    """
    lats = k2.intersect_dense(num_graphs, dense, output_beam)
    return lats.get_tot_scores(log_semiring=True, use_double_scores=True)


def denominator_scores(den_graph: k2.Fsa, dense: k2.DenseFsaVec, config: SequenceConfig) -> torch.Tensor:
    """Log-semiring forward scores of one denominator graph against every sequence.

    Returns:
        float64 ``[N]``.
    """
    n = dense.dim0()
    den_vec = den_graph if len(den_graph.shape) == 3 else k2.create_fsa_vec([den_graph])
    if config.den_pruned:
        lats = k2.intersect_dense_pruned(den_vec, dense, config.den_search_beam, config.den_output_beam,
                                         min_active_states=30, max_active_states=config.den_max_active)
    else:
        lats = k2.intersect_dense(k2.index_fsa(den_vec, torch.zeros(n, dtype=torch.int32)), dense,
                                  config.den_output_beam)
    return lats.get_tot_scores(log_semiring=True, use_double_scores=True)


def mmi_objective(scores: torch.Tensor, lengths: torch.Tensor, num_graphs: k2.Fsa, den_graph: k2.Fsa,
                  config: SequenceConfig, num_mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence MMI objective ``log p(X|num) - log p(X|den)`` (log base e).

    Sequences whose numerator or denominator has no path within the frames (a transcript too
    long for the audio, or a denominator search pruned away) are left out: their objective is
    returned as NaN and they get no gradient (the intersections are redone without them, so that
    k2's backward never sees an infinite total).

    Args:
        scores: float32 ``[N, T, S]`` scaled acoustic scores (``kappa * (log p(s|x) - log p(s))``),
            sorted by length, longest first.
        lengths: int64 ``[N]`` valid frames.
        num_graphs: FsaVec of N numerator graphs (labels pdf-id + 1).
        den_graph: the denominator (a single FSA, labels pdf-id + 1).
        config: beams and pruning.
        num_mask: bool ``[N, T, S]``: the senones the numerator may use per frame
            (:func:`alignment_mask`); None: all.

    Returns:
        ``(objective [N] float64 (NaN where left out), ok [N] bool)``.
    """
    def totals(sel: torch.Tensor):
        idx = torch.nonzero(sel).squeeze(1)
        dense = dense_scores(scores[idx.to(scores.device)], lengths[idx])
        num_dense = dense if num_mask is None else dense_scores(
            scores[idx.to(scores.device)].masked_fill(~num_mask[idx].to(scores.device), -math.inf), lengths[idx])
        nums = k2.index_fsa(num_graphs, idx.to(torch.int32).to(num_graphs.device)) if len(idx) < len(sel) else num_graphs
        return numerator_scores(nums, num_dense, config.num_output_beam), denominator_scores(den_graph, dense, config)

    num, den = totals(torch.ones(scores.shape[0], dtype=torch.bool))
    ok = (torch.isfinite(num) & torch.isfinite(den)).cpu()
    if ok.all():
        return num - den, ok
    out = torch.full((scores.shape[0],), math.nan, dtype=torch.float64, device=scores.device)
    if not ok.any():
        return out, ok
    num, den = totals(ok)  # again without the failed sequences, whose backward would give NaN
    return out.index_put((torch.nonzero(ok).squeeze(1).to(out.device),), (num - den).to(out.device)), ok


class UtteranceData:
    """Whole utterances in minibatches of similar length, for sequence training.

    Every item is one minibatch: utterances sorted by length and cut into groups of at most
    ``max_frames`` output frames (a longer utterance is a group of its own), so a shuffled
    epoch (:func:`hybrid_asr.training.chunks.epoch_order` over the items) mixes lengths
    between steps, not within one. Features are read from the store per batch and normalized
    in the store's CMVN mode (:func:`hybrid_asr.training.chunks.utterance_cmvn`), as in
    :class:`hybrid_asr.training.chunks.ChunkData`.

    Args:
        store: feature store.
        alignments: ``utt_id -> int [T]`` pdf-ids (the cross-entropy targets).
        utt_ids: utterances to use (those without alignment or features are left out).
        left, right, subsampling: the model's context and frame subsampling factor.
        max_frames: output frames per minibatch.

    Raises:
        ValueError: nothing to train on, or an alignment's length differs from its features'.
    """

    prebatched = True

    def __init__(self, store: FeatureStore, alignments: Mapping[str, np.ndarray], utt_ids: Sequence[str],
                 left: int, right: int, subsampling: int, max_frames: int):
        self.store = store
        self.left, self.right, self.f = left, right, subsampling
        utts = [store.utterance(u) for u in utt_ids if u in alignments and u in store]
        if not utts:
            raise ValueError("no aligned utterances to train on")
        mode = store.config.cmvn
        self.utts = utts
        self.targets: List[np.ndarray] = []
        self.alignments: List[np.ndarray] = []
        self.stats: List[Tuple[torch.Tensor, torch.Tensor]] = []
        for u in utts:
            ali = np.asarray(alignments[u.id], dtype=np.int64)
            if len(ali) != u.frames:
                raise ValueError(f"{u.id}: alignment has {len(ali)} frames, features {u.frames}")
            self.targets.append(ali[::subsampling])
            self.alignments.append(ali)
            self.stats.append(utterance_cmvn(store, u, mode))
        out_frames = [len(t) for t in self.targets]
        order = sorted(range(len(utts)), key=lambda i: (out_frames[i], utts[i].id))
        self.groups: List[List[int]] = []
        group, total = [], 0
        for i in order:
            if group and total + out_frames[i] > max_frames:
                self.groups.append(group)
                group, total = [], 0
            group.append(i)
            total += out_frames[i]
        if group:
            self.groups.append(group)
        self.num_frames = int(sum(out_frames))

    def __len__(self) -> int:
        """Number of minibatches."""
        return len(self.groups)

    def batch(self, group: int):
        """Minibatch ``group``, utterances longest first.

        Returns:
            ``(x [B, l + T_max + r, F] float32, input lengths [B] int64, targets [B, T'_max] int64
            (IGNORE past each end), transcripts [B], alignments [B] (int64 ``[T]`` pdf-ids at the
            input frame rate))``.
        """
        members = sorted(self.groups[group], key=lambda i: (-self.utts[i].frames, self.utts[i].id))
        feats = []
        for i in members:
            u = self.utts[i]
            raw = np.empty((u.frames, self.store.config.dim), dtype=np.float32)
            self.store.read_into(raw, u.offset)
            mean, inv_std = self.stats[i]
            feats.append(pad_context((torch.from_numpy(raw) - mean) * inv_std, self.left, self.right))
        lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.int64)
        x = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
        for b, f in enumerate(feats):
            x[b, : f.shape[0]] = f
        t_max = max(len(self.targets[i]) for i in members)
        y = torch.full((len(members), t_max), IGNORE, dtype=torch.int64)
        for b, i in enumerate(members):
            y[b, : len(self.targets[i])] = torch.from_numpy(self.targets[i])
        return x, lengths, y, [self.utts[i].text for i in members], [self.alignments[i] for i in members]

    def batch_keys(self, per_batch: int = 1, order: Optional[torch.Tensor] = None, skip: int = 0) -> List[int]:
        """The minibatches of ``order`` (default: all in order) from item ``skip`` on
        (``per_batch`` must be 1: every item is a minibatch)."""
        order = torch.arange(len(self)) if order is None else order
        return [int(order[i]) for i in range(skip, len(order))]

    def batches(self, per_batch: int = 1, order: Optional[torch.Tensor] = None, skip: int = 0) -> Iterator:
        """Yield :meth:`batch` for each of :meth:`batch_keys`."""
        for key in self.batch_keys(per_batch, order, skip):
            yield self.batch(key)


class MmiObjective:
    """The MMI / LF-MMI training objective for :func:`hybrid_asr.training.trainer.train_model`.

    Args:
        compiler: numerator graphs from transcripts (built with the model's H).
        den_graph: the denominator graph.
        log_priors: float32 ``[S]`` log p(s) of the CE model.
        acoustic_scale: kappa.
        config: regularization and beams.
    """

    def __init__(self, compiler: TrainingGraphCompiler, den_graph: k2.Fsa, log_priors: torch.Tensor,
                 acoustic_scale: float, config: SequenceConfig):
        self.compiler, self.den_graph = compiler, den_graph
        self.log_priors, self.kappa, self.config = log_priors.float(), acoustic_scale, config
        self.skipped = 0
        self._den_on: Dict[str, k2.Fsa] = {}

    def _den(self, device: torch.device) -> k2.Fsa:
        key = str(device)
        if key not in self._den_on:
            self._den_on[key] = self.den_graph.to(device)
        return self._den_on[key]

    def _forward(self, net, batch, device):
        x, lengths, y, texts, alis = batch
        logp, out_len = net(x.to(device), lengths.to(device))
        logp = logp.float()
        out_len = out_len.cpu()
        scores = self.kappa * (logp - self.log_priors.to(logp.device))
        mask = None
        if self.config.num_tolerance >= 0:
            f = getattr(net, "module", net).subsampling_factor
            mask = torch.zeros(scores.shape, dtype=torch.bool)
            for b, ali in enumerate(alis):
                m = alignment_mask(ali, scores.shape[-1], f, self.config.num_tolerance)
                mask[b, : m.shape[0]] = m
        obj, ok = mmi_objective(scores, out_len, self.compiler.compile(texts).to(scores.device),
                                self._den(scores.device), self.config, mask)
        return logp, out_len, y.to(logp.device), obj, ok

    def _loss(self, logp, out_len, y, obj, ok):
        c = self.config
        mask = y != IGNORE
        frames = int(mask.sum())
        mmi = obj[ok.to(obj.device)].sum() if ok.any() else logp.sum() * 0.0
        loss = -mmi.float() / max(int(out_len[ok].sum()), 1)
        if c.xent_regularize > 0:
            nll = torch.nn.functional.nll_loss(logp.reshape(-1, logp.shape[-1]), y.reshape(-1), ignore_index=IGNORE)
            loss = loss + c.xent_regularize * nll
        if c.l2_regularize > 0:
            centred = logp - logp.mean(-1, keepdim=True)
            loss = loss + 0.5 * c.l2_regularize * (centred.pow(2).sum(-1) * mask).sum() / mask.sum().clamp(min=1)
        correct = int(((logp.detach().argmax(-1) == y) & mask).sum())
        return loss, {"loss": -float(mmi.detach()), "correct": correct, "frames": frames,
                      "skipped": int((~ok).sum())}

    def __call__(self, net, batch, device):
        """Loss (negated MMI objective per frame plus regularizers) and the batch's sums (``loss``:
        negated objective, nats; ``correct`` frames by argmax against the alignment)."""
        loss, stats = self._loss(*self._forward(net, batch, device))
        self.skipped += stats["skipped"]
        return loss, stats

    @torch.no_grad()
    def evaluate(self, model: AcousticModel, data: UtteranceData, device: str = "cpu",
                 order: Optional[torch.Tensor] = None) -> Dict[str, float]:
        """Negated MMI objective per frame (``loss``) and frame accuracy (%) on held-out data (its
        minibatches ``order`` only, when given), and the number of ``frames`` they cover."""
        model.eval()
        total, correct, frames = 0.0, 0, 0
        for batch in data.batches(order=order):
            _, stats = self._loss(*self._forward(model, batch, torch.device(device)))
            total, correct, frames = total + stats["loss"], correct + stats["correct"], frames + stats["frames"]
        return {"loss": total / max(frames, 1), "frame_acc": 100.0 * correct / max(frames, 1), "frames": frames}


__all__ = ["CRITERIA", "MmiObjective", "alignment_mask", "SequenceConfig", "UtteranceData", "dense_scores", "denominator_scores",
           "mmi_objective", "numerator_scores"]
