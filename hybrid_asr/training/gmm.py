"""Viterbi training of a GMM-HMM: EM on frame alignments, realignment, mix-up.

The procedure of Kaldi's ``steps/train_mono.sh`` and ``steps/train_deltas.sh`` (Povey et al.
2011): from an alignment (a flat start for monophones; a monophone alignment mapped through a
decision tree for triphones), one Gaussian per pdf-id, then ``num_iters`` iterations of the
maximum-likelihood update on the current alignment, with a Viterbi realignment with the current
model before the iterations listed in ``realign_iters``, and the number of Gaussians raised
linearly over the first ``max_iter_inc`` iterations to ``total_gauss`` (split by occupancy). The
self-loop probabilities (per monophone HMM state, shared by all contexts) are re-estimated from
every new alignment. Young et al.,
*The HTK Book*, ch. 8 (Viterbi training, mixture splitting) and ch. 10 (tied-state triphones).
"""

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from hybrid_asr.align.convert import to_senones
from hybrid_asr.align.viterbi import align_dataset
from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError
from hybrid_asr.gmm.diag_gmm import DiagGmmSet, GmmConfig
from hybrid_asr.gmm.transforms import LdaStats, MlltStats, apply_affine, compose_affine, estimate_fmllr
from hybrid_asr.graph.h_cd import cd_hmm_graph
from hybrid_asr.graph.training import TrainingGraphCompiler
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.hmm.tree import DecisionTree, TreeConfig, tree_from_alignments
from hybrid_asr.lang.lang_dir import Lang
from hybrid_asr.lang.lexicon import SIL, SPN
from hybrid_asr.models.base import pad_context
from hybrid_asr.utils import JsonDataclass, write_text_atomic

log = logging.getLogger(__name__)

#: Kaldi train_mono.sh's realignment iterations.
KALDI_MONO_REALIGN_ITERS = "1,2,3,4,5,6,7,8,9,10,12,14,16,18,20,23,26,29,32,35,38"
#: Kaldi train_deltas.sh's realignment iterations.
KALDI_TRI_REALIGN_ITERS = "10,20,30"


def _iteration_set(text: str, name: str, first: int) -> frozenset:
    try:
        iters = frozenset(int(i) for i in text.split(",") if i.strip())
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated integers, got {text!r}") from None
    if any(i < first for i in iters):
        raise ConfigError(f"{name} must be at least {first}, got {text!r}")
    return iters


@dataclass(frozen=True)
class GmmTrainConfig(JsonDataclass):
    """Settings of monophone GMM training (Kaldi ``train_mono.sh``'s defaults;
    :class:`TriGmmTrainConfig` and :class:`LdaMlltTrainConfig` hold the triphone ones).

    Attributes:
        num_iters: EM iterations.
        max_iter_inc: the Gaussian count grows over iterations 1..max_iter_inc.
        total_gauss: Gaussians in all pdfs together at the end.
        realign_iters: comma-separated iterations that start with a realignment (those past
            ``num_iters`` never come).
        align_acoustic_scale: scale of the GMM log-likelihoods in realignment (the transition
            log-probabilities keep scale 1; Kaldi's ``gmm-align-compiled --acoustic-scale``).
        first_min_occupancy: ``min_gaussian_occupancy`` of the first update (iteration 0 on the
            flat start; Kaldi passes 3 there).
        mllt_iters: comma-separated iterations that start with an MLLT update of the feature
            transform (after the realignment, if both); empty for systems without one.
        fmllr_iters: comma-separated iterations that start with a re-estimation of every
            speaker's fMLLR transform (speaker-adaptive training); empty for other systems.
        silence_weight: weight of silence frames in the MLLT and fMLLR statistics (Kaldi: 0).
        batch_size: utterances per k2 alignment call.
        seed: seed of the mix-up perturbation.
    """

    json_what = "GMM training config"

    num_iters: int = bounded(40, ge=1)
    max_iter_inc: int = bounded(30, ge=1)
    total_gauss: int = bounded(1000, ge=1)
    realign_iters: str = KALDI_MONO_REALIGN_ITERS
    align_acoustic_scale: float = bounded(0.1, gt=0)
    first_min_occupancy: float = bounded(3.0, ge=0)
    mllt_iters: str = ""
    fmllr_iters: str = ""
    silence_weight: float = bounded(0.0, ge=0, le=1)
    batch_size: int = bounded(32, ge=1)
    seed: int = 0

    def __post_init__(self) -> None:
        check_bounds(self)
        self.realign_set()
        self.mllt_set()
        if self.fmllr_set() and self.mllt_set():
            raise ConfigError("one system updates either MLLT or fMLLR transforms, not both")

    def realign_set(self) -> frozenset:
        """The iterations of :attr:`realign_iters` as integers.

        Raises:
            ConfigError: not a comma-separated list of positive integers.
        """
        return _iteration_set(self.realign_iters, "realign_iters (iteration 0 trains on the first alignment)", 1)

    def mllt_set(self) -> frozenset:
        """The iterations of :attr:`mllt_iters` as integers.

        Raises:
            ConfigError: not a comma-separated list of positive integers.
        """
        return _iteration_set(self.mllt_iters, "mllt_iters", 1)

    def fmllr_set(self) -> frozenset:
        """The iterations of :attr:`fmllr_iters` as integers.

        Raises:
            ConfigError: not a comma-separated list of positive integers.
        """
        return _iteration_set(self.fmllr_iters, "fmllr_iters", 1)


@dataclass(frozen=True)
class TriGmmTrainConfig(GmmTrainConfig):
    """Settings of triphone GMM training on a decision tree: the fields of
    :class:`GmmTrainConfig` with Kaldi ``train_deltas.sh``'s defaults (35 iterations, Gaussians
    grown over 25 of them, realignment before iterations 10, 20 and 30) and the Gaussian total of
    Kaldi's AN4 recipe (9000; its trees have 1800 leaves). The first update starts from one
    Gaussian per senone, as ``gmm-init-model`` does from the tree statistics, so it keeps the
    ordinary occupancy floor."""

    json_what = "triphone GMM training config"

    num_iters: int = bounded(35, ge=1)
    max_iter_inc: int = bounded(25, ge=1)
    total_gauss: int = bounded(9000, ge=1)
    realign_iters: str = KALDI_TRI_REALIGN_ITERS
    first_min_occupancy: float = bounded(10.0, ge=0)


@dataclass(frozen=True)
class LdaMlltTrainConfig(TriGmmTrainConfig):
    """Settings of an LDA+MLLT triphone system (Kaldi ``train_lda_mllt.sh``): the fields of
    :class:`TriGmmTrainConfig`, MLLT updates before iterations 2, 4, 6 and 12, and

    Attributes:
        splice_context: frames spliced on each side before LDA (Kaldi: 3, so 7 x 13 = 91
            dimensions from MFCC without deltas).
        lda_dim: dimensions kept by LDA (Kaldi: 40).
    """

    json_what = "LDA+MLLT GMM training config"

    mllt_iters: str = "2,4,6,12"
    splice_context: int = bounded(3, ge=0)
    lda_dim: int = bounded(40, ge=1)


@dataclass(frozen=True)
class SatTrainConfig(TriGmmTrainConfig):
    """Settings of speaker-adaptive training on LDA+MLLT features (Kaldi ``train_sat.sh``): the
    fields of :class:`TriGmmTrainConfig` and fMLLR re-estimated before iterations 2, 4, 6 and 12.

    Attributes:
        si_iters: EM iterations of the speaker-independent model that shares the SAT model's
            tree (Kaldi's ``final.alimdl``, for the first decoding pass), on unadapted features
            and the last alignment.
    """

    json_what = "SAT GMM training config"

    fmllr_iters: str = "2,4,6,12"
    si_iters: int = bounded(2, ge=1)


def gaussian_schedule(num_pdfs: int, config: GmmTrainConfig) -> List[int]:
    """Gaussians to mix up to after each iteration ``0..num_iters-1``: ``num_pdfs`` after
    iterations 0 and 1, then ``(total_gauss - num_pdfs) // max_iter_inc`` more per iteration until
    iteration ``max_iter_inc + 1`` (Kaldi's ``numgauss += incgauss`` after each ``iter <=
    max_iter_inc``)."""
    inc = max(0, config.total_gauss - num_pdfs) // config.max_iter_inc
    return [num_pdfs + inc * max(0, min(it - 1, config.max_iter_inc)) for it in range(config.num_iters)]


@dataclass
class GmmTrainResult:
    """What GMM training gives.

    Attributes:
        gmms: the mixtures (in the final feature space).
        alignments: the last alignment, ``utt_id -> int32 [T]`` pdf-ids.
        states: its monophone HMM state of every frame (None where never known).
        history: one record per iteration: ``iter``, ``gauss``, ``log_like`` (average
            log-likelihood per frame under the model before the update, log base e), ``frames``,
            ``aligned`` / ``failed`` utterances of a realignment, ``mllt_gain`` (objective gain
            per frame of an MLLT update).
        mllt: float64 ``[D, D]`` product of the MLLT updates (the features the GMMs read are
            ``mllt @ x`` of the input ``x``), None without MLLT iterations.
        fmllr: per speaker the float64 ``[D, D + 1]`` fMLLR transform of its input frames, None
            without speaker-adaptive training.
    """

    gmms: DiagGmmSet
    alignments: Dict[str, np.ndarray]
    states: Optional[Dict[str, np.ndarray]]
    history: List[Dict[str, float]]
    mllt: Optional[np.ndarray] = None
    fmllr: Optional[Dict[str, np.ndarray]] = None


def silence_states(topo: HmmTopology) -> np.ndarray:
    """The topology's pdf-ids (HMM states) of the silence and noise phones, int64."""
    return np.array([s for p in (SIL, SPN) if p in topo.phones for s in range(*topo.pdf_range(p))], dtype=np.int64)


def train_gmm(
    utts: Sequence[Tuple[str, str, torch.Tensor]],
    alignments: Dict[str, np.ndarray],
    lang: Lang,
    topo: HmmTopology,
    config: GmmTrainConfig = GmmTrainConfig(),
    gmm_config: GmmConfig = GmmConfig(),
    on_iteration: Optional[Callable[[Dict[str, float]], None]] = None,
    tree: Optional[DecisionTree] = None,
    states: Optional[Dict[str, np.ndarray]] = None,
    speakers: Optional[Dict[str, str]] = None,
    fmllr: Optional[Dict[str, np.ndarray]] = None,
) -> GmmTrainResult:
    """Train monophone GMMs from a flat-start alignment, or triphone GMMs (one per senone of
    ``tree``) from a senone alignment.

    Args:
        utts: ``(utt_id, transcript, features)`` per training utterance, features float32
            ``[T, D]`` as the model will see them (CMVN applied; spliced and projected for LDA).
        alignments: the first alignment, ``utt_id -> int32 [T]`` pdf-ids of ``topo`` (monophone)
            or senones of ``tree`` (utterances without one are not trained on).
        lang: lang directory (lexicon, L) of the training graphs.
        topo: the HMM topology; its self-loop probabilities are re-estimated in place from every
            realignment.
        config: iterations, realignment, Gaussians, MLLT.
        gmm_config: floors of the ML update and the mix-up.
        on_iteration: called with each iteration's record (e.g. to write progress).
        tree: the decision tree of a triphone system (realignment through the context-dependent
            H of :func:`~hybrid_asr.graph.h_cd.cd_hmm_graph`); None for monophones.
        states: monophone HMM states of ``alignments`` (for a tree; monophone alignments are
            their own). MLLT and fMLLR weigh silence frames down, found by these.
        speakers: ``utt_id -> speaker`` (needed with ``fmllr_iters``).
        fmllr: initial per-speaker transforms of the features (speaker-adaptive training; None:
            the identity).

    Returns:
        :class:`GmmTrainResult`.

    Raises:
        ConfigError: no utterance has an alignment, MLLT or fMLLR iterations without
            ``states``, or fMLLR iterations without ``speakers``.
    """
    base = {u: x.float() for u, _, x in utts}
    fmllr_iters = config.fmllr_set()
    if fmllr_iters and speakers is None:
        raise ConfigError("fMLLR iterations need the speaker of every utterance")
    fmllr = dict(fmllr or {})
    feats = {u: apply_affine(fmllr[speakers[u]], x) if speakers and speakers[u] in fmllr else x for u, x in base.items()}
    texts = [(u, t) for u, t, _ in utts]
    alignments = {u: a for u, a in alignments.items() if u in feats}
    if not alignments:
        raise ConfigError("no training utterance has an alignment")
    if tree is None:
        states = alignments
    mllt_iters = config.mllt_set()
    if (mllt_iters or fmllr_iters) and states is None:
        raise ConfigError("MLLT and fMLLR need the HMM states of the alignment (to leave silence out)")
    silence = torch.from_numpy(silence_states(topo))
    ids = sorted(alignments)
    num_pdfs = topo.num_pdfs if tree is None else tree.num_pdfs
    gmms = DiagGmmSet.single_gaussians(num_pdfs, torch.cat([feats[u] for u in ids]))
    schedule = gaussian_schedule(num_pdfs, config)
    hmm_graph = None if tree is None else cd_hmm_graph(topo, tree)
    realign = config.realign_set()
    rng = np.random.default_rng(config.seed)
    mllt: Optional[np.ndarray] = None
    history: List[Dict[str, float]] = []
    for it in range(config.num_iters):
        start = time.time()
        record: Dict[str, float] = {"iter": it}
        if it in realign:
            h = None if hmm_graph is None else hmm_graph.with_self_loops(topo, hmm_states=True)
            score = gmms.scorer()
            done, failed = align_dataset(TrainingGraphCompiler(lang, topo, h), texts,
                                         lambda u: score(feats[u]) * config.align_acoustic_scale, config.batch_size)
            alignments = {u: a.pdfs for u, a in done.items()}
            states = {u: a.states for u, a in done.items()}
            topo.estimate_transitions(states.values())
            ids = sorted(alignments)
            record.update(aligned=len(done), failed=len(failed))
        if it in fmllr_iters:
            gains = []
            for spk in sorted({speakers[u] for u in ids}):
                mine = [u for u in ids if speakers[u] == spk]
                W, gain = estimate_fmllr(gmms, [(feats[u], alignments[u], states[u]) for u in mine], silence.numpy(),
                                         config.silence_weight)
                fmllr[spk] = W if spk not in fmllr else compose_affine(W, fmllr[spk])
                feats.update({u: apply_affine(fmllr[spk], base[u]) for u in mine})
                gains.append(gain)
            record["fmllr_gain"] = round(float(np.mean(gains)), 4)
        all_feats = torch.cat([feats[u] for u in ids])
        pdfs = torch.from_numpy(np.concatenate([alignments[u] for u in ids]).astype(np.int64))
        if it in mllt_iters:
            is_silence = torch.isin(torch.from_numpy(np.concatenate([states[u] for u in ids]).astype(np.int64)), silence)
            stats = MlltStats.zeros(gmms.dim)
            stats.accumulate(gmms, all_feats, pdfs, torch.where(is_silence, config.silence_weight, 1.0).double())
            A = stats.estimate()
            record["mllt_gain"] = round((stats.objective(A) - stats.objective(np.eye(gmms.dim))) / stats.beta, 4)
            A_t = torch.from_numpy(A).float()
            feats = {u: x @ A_t.T for u, x in feats.items()}
            base = feats
            all_feats = all_feats @ A_t.T
            gmms.transform_means(A)
            mllt = A if mllt is None else A @ mllt
        update = gmm_config if it else replace(gmm_config, min_gaussian_occupancy=config.first_min_occupancy)
        log_like, occupancy = gmms.ml_update(all_feats, pdfs, update)
        gmms.mix_up(schedule[it], occupancy, rng, gmm_config)
        record.update(gauss=int(gmms.num_gauss.sum()), log_like=round(log_like, 4), frames=int(len(pdfs)),
                      seconds=round(time.time() - start, 2))
        log.info("iteration %d: %s", it, ", ".join(f"{k} {v}" for k, v in record.items() if k != "iter"))
        history.append(record)
        if on_iteration is not None:
            on_iteration(record)
    return GmmTrainResult(gmms, alignments, None if states is None else dict(states), history, mllt,
                          fmllr if (fmllr or fmllr_iters) else None)


def splice_frames(feats: torch.Tensor, context: int) -> torch.Tensor:
    """``[T, F]`` -> ``[T, (2c + 1) F]``: every frame with ``context`` neighbours on each side,
    the first and last frame repeated at the edges (as the acoustic models' context padding,
    :func:`~hybrid_asr.models.base.pad_context`, and Kaldi's ``splice-feats``)."""
    padded = pad_context(feats, context, context)
    return padded.unfold(0, 2 * context + 1, 1).transpose(1, 2).reshape(feats.shape[0], -1)


def train_lda_mllt_gmm(
    utts: Sequence[Tuple[str, str, torch.Tensor]],
    alignments: Dict[str, np.ndarray],
    states: Dict[str, np.ndarray],
    marks: Dict[str, np.ndarray],
    lang: Lang,
    topo: HmmTopology,
    config: LdaMlltTrainConfig = LdaMlltTrainConfig(),
    gmm_config: GmmConfig = GmmConfig(),
    tree_config: TreeConfig = TreeConfig(),
    on_iteration: Optional[Callable[[Dict[str, float]], None]] = None,
) -> Tuple[GmmTrainResult, np.ndarray, DecisionTree]:
    """Train an LDA+MLLT triphone system from the alignment of an earlier one (Kaldi
    ``train_lda_mllt.sh``).

    Splice +-``splice_context`` frames; estimate LDA to ``lda_dim`` dimensions with the
    alignment's pdf-ids as classes (silence frames left out); build a new tree on the projected
    frames from the alignment's HMM states; map the alignment onto its senones; then
    :func:`train_gmm` with MLLT updates at ``mllt_iters``.

    Args:
        utts: ``(utt_id, transcript, features)``, features float32 ``[T, F]`` with CMVN
            (Kaldi: 13 MFCCs without deltas).
        alignments: ``utt_id -> int32 [T]`` pdf-ids of the earlier system (the LDA classes).
        states: their monophone HMM states.
        marks: their phone-start marks.
        lang: lang directory of the training graphs.
        topo: the monophone topology (transitions re-estimated in place).
        config: iterations, Gaussians, splicing, LDA dimension, MLLT iterations.
        gmm_config: floors of the update and the mix-up.
        tree_config: the new tree's leaves and thresholds.
        on_iteration: called with each iteration's record.

    Returns:
        ``(training result, feature transform float64 [lda_dim, (2c + 1) F + 1], tree)``: the
        GMMs read ``transform @ [spliced frame; 1]``.

    Raises:
        ConfigError: no utterance has an alignment, or ``lda_dim`` exceeds the spliced dimension.
    """
    c = config.splice_context
    aligned = sorted(u for u, _, _ in utts if u in alignments and u in states)
    if not aligned:
        raise ConfigError("no training utterance has an alignment")
    feats = {u: x for u, _, x in utts}
    silence = silence_states(topo)
    num_classes = 1 + max(int(alignments[u].max()) for u in aligned)
    lda = LdaStats.zeros(num_classes, (2 * c + 1) * next(iter(feats.values())).shape[1])
    for u in aligned:
        speech = torch.from_numpy(~np.isin(states[u], silence)).double()
        lda.accumulate(splice_frames(feats[u], c), torch.from_numpy(alignments[u].astype(np.int64)), speech)
    try:
        lda_matrix = lda.estimate(config.lda_dim)
    except ValueError as e:
        raise ConfigError(f"LDA: {e}") from None
    proj, offset = torch.from_numpy(lda_matrix[:, :-1]).float(), torch.from_numpy(lda_matrix[:, -1]).float()
    projected = {u: splice_frames(x, c) @ proj.T + offset for u, x in feats.items()}
    tree, contexts, _ = tree_from_alignments({u: states[u] for u in aligned}, marks,
                                             lambda u: projected[u].numpy(), topo, tree_config, (SIL, SPN))
    log.info("LDA to %d dimensions; tree of %d leaves, %d senones from %d contexts", config.lda_dim,
             len(tree.leaf_pdf), tree.num_pdfs, contexts)
    senones = to_senones({u: states[u] for u in aligned}, marks, topo, tree)
    result = train_gmm([(u, t, projected[u]) for u, t, _ in utts], senones, lang, topo, config, gmm_config,
                       on_iteration, tree, {u: states[u] for u in aligned})
    transform = lda_matrix if result.mllt is None else result.mllt @ lda_matrix
    return result, transform, tree


def train_sat_gmm(
    utts: Sequence[Tuple[str, str, torch.Tensor]],
    speakers: Dict[str, str],
    alignments: Dict[str, np.ndarray],
    states: Dict[str, np.ndarray],
    marks: Dict[str, np.ndarray],
    lang: Lang,
    topo: HmmTopology,
    si_gmms: DiagGmmSet,
    config: SatTrainConfig = SatTrainConfig(),
    gmm_config: GmmConfig = GmmConfig(),
    tree_config: TreeConfig = TreeConfig(),
    on_iteration: Optional[Callable[[Dict[str, float]], None]] = None,
) -> Tuple[GmmTrainResult, DiagGmmSet, DecisionTree]:
    """Speaker-adaptive training (Anastasakos et al. 1996, "A compact model for speaker-adaptive
    training"; Gales 1998 for fMLLR; Kaldi ``train_sat.sh``) from an LDA+MLLT system.

    Every speaker's fMLLR transform is first estimated with the earlier system's GMMs on its
    alignment (silence weighted by ``silence_weight``); a new tree is built on the adapted
    frames; :func:`train_gmm` trains the GMMs on them, re-estimating the transforms at
    ``fmllr_iters``; last, a speaker-independent copy of the GMMs (same tree) is re-estimated on
    the unadapted frames for ``si_iters`` EM iterations, for first decoding passes.

    Args:
        utts: ``(utt_id, transcript, features)``: the earlier system's (speaker-independent)
            features, float32 ``[T, D]`` (LDA+MLLT applied).
        speakers: ``utt_id -> speaker``.
        alignments: ``utt_id -> int32 [T]`` senones of the earlier system.
        states: their monophone HMM states.
        marks: their phone-start marks.
        lang: lang directory of the training graphs.
        topo: the monophone topology (transitions re-estimated in place).
        si_gmms: the earlier system's GMMs (for the first transforms).
        config: iterations, Gaussians, fMLLR iterations, silence weight.
        gmm_config: floors of the update and the mix-up.
        tree_config: the new tree's leaves and thresholds.
        on_iteration: called with each iteration's record.

    Returns:
        ``(training result with the per-speaker transforms, speaker-independent GMMs, tree)``.

    Raises:
        ConfigError: no utterance has an alignment, or one has no speaker.
    """
    aligned = sorted(u for u, _, _ in utts if u in alignments and u in states)
    if not aligned:
        raise ConfigError("no training utterance has an alignment")
    missing = [u for u, _, _ in utts if u not in speakers]
    if missing:
        raise ConfigError(f"{len(missing)} utterances have no speaker (e.g. {missing[0]})")
    feats = {u: x.float() for u, _, x in utts}
    silence = silence_states(topo)
    fmllr: Dict[str, np.ndarray] = {}
    gains = []
    for spk in sorted({speakers[u] for u in aligned}):
        mine = [u for u in aligned if speakers[u] == spk]
        fmllr[spk], gain = estimate_fmllr(si_gmms, [(feats[u], alignments[u], states[u]) for u in mine], silence,
                                          config.silence_weight)
        gains.append(gain)
    log.info("first fMLLR transforms of %d speakers: objective gain %.3f per frame", len(fmllr), float(np.mean(gains)))
    adapted = {u: apply_affine(fmllr[speakers[u]], feats[u]) if speakers[u] in fmllr else feats[u] for u in feats}
    tree, contexts, _ = tree_from_alignments({u: states[u] for u in aligned}, marks,
                                             lambda u: adapted[u].numpy(), topo, tree_config, (SIL, SPN))
    log.info("SAT tree of %d leaves, %d senones from %d contexts", len(tree.leaf_pdf), tree.num_pdfs, contexts)
    senones = to_senones({u: states[u] for u in aligned}, marks, topo, tree)
    result = train_gmm(utts, senones, lang, topo, config, gmm_config, on_iteration, tree,
                       {u: states[u] for u in aligned}, speakers, fmllr)
    si = DiagGmmSet(result.gmms.num_gauss.copy(), result.gmms.weights.copy(), result.gmms.means.copy(),
                    result.gmms.variances.copy())
    ids = sorted(result.alignments)
    si_feats = torch.cat([feats[u] for u in ids])
    pdfs = torch.from_numpy(np.concatenate([result.alignments[u] for u in ids]).astype(np.int64))
    for _ in range(config.si_iters):
        log_like, _ = si.ml_update(si_feats, pdfs, gmm_config)
        log.info("speaker-independent model: log-likelihood per frame %.4f before the update", log_like)
    return result, si, tree


def write_history(history: List[Dict[str, float]], out_dir: Union[str, Path]) -> None:
    """``metrics.jsonl`` (one record per iteration) and ``metrics.png`` (log-likelihood per frame
    and Gaussians against the iteration) in ``out_dir``."""
    out = Path(out_dir)
    write_text_atomic(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    its = [r["iter"] for r in history]
    a.plot(its, [r["log_like"] for r in history], "o-", ms=3)
    a.set(xlabel="iteration", ylabel="log-likelihood per frame", title="before each update")
    for r in history:
        if "aligned" in r:
            a.axvline(r["iter"], color="0.85", lw=0.8, zorder=0)
    b.plot(its, [r["gauss"] for r in history], "o-", ms=3)
    b.set(xlabel="iteration", ylabel="Gaussians")
    fig.tight_layout()
    tmp = out / "metrics.tmp.png"
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(out / "metrics.png")


__all__ = ["GmmTrainConfig", "GmmTrainResult", "KALDI_MONO_REALIGN_ITERS", "KALDI_TRI_REALIGN_ITERS",
           "LdaMlltTrainConfig", "SatTrainConfig", "TriGmmTrainConfig", "gaussian_schedule", "silence_states", "splice_frames", "train_gmm", "train_lda_mllt_gmm", "train_sat_gmm",
           "write_history"]
