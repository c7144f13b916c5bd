"""Viterbi training of a monophone GMM-HMM: EM on frame alignments, realignment, mix-up.

The procedure of Kaldi's ``steps/train_mono.sh`` (Povey et al. 2011): from a flat-start alignment,
one Gaussian per pdf-id (the global mean and variance), then ``num_iters`` iterations of the
maximum-likelihood update on the current alignment, with a Viterbi realignment with the current
model before the iterations listed in ``realign_iters``, and the number of Gaussians raised
linearly over the first ``max_iter_inc`` iterations to ``total_gauss`` (split by occupancy). The
self-loop probabilities are re-estimated from every new alignment. Young et al., *The HTK Book*,
ch. 8 (Viterbi training, mixture splitting).
"""

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from hybrid_asr.align.viterbi import align_dataset
from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError
from hybrid_asr.gmm.diag_gmm import DiagGmmSet, GmmConfig
from hybrid_asr.graph.training import TrainingGraphCompiler
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.lang.lang_dir import Lang
from hybrid_asr.utils import JsonDataclass, write_text_atomic

log = logging.getLogger(__name__)

#: Kaldi train_mono.sh's realignment iterations.
KALDI_MONO_REALIGN_ITERS = "1,2,3,4,5,6,7,8,9,10,12,14,16,18,20,23,26,29,32,35,38"


@dataclass(frozen=True)
class GmmTrainConfig(JsonDataclass):
    """Settings of monophone GMM training (Kaldi ``train_mono.sh``'s defaults).

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
    batch_size: int = bounded(32, ge=1)
    seed: int = 0

    def __post_init__(self) -> None:
        check_bounds(self)
        self.realign_set()

    def realign_set(self) -> frozenset:
        """The iterations of :attr:`realign_iters` as integers.

        Raises:
            ConfigError: not a comma-separated list of positive integers.
        """
        try:
            iters = frozenset(int(i) for i in self.realign_iters.split(",") if i.strip())
        except ValueError:
            raise ConfigError(f"realign_iters must be comma-separated integers, got {self.realign_iters!r}") from None
        if any(i < 1 for i in iters):
            raise ConfigError(f"realign_iters must be positive (iteration 0 trains on the flat start), got "
                              f"{self.realign_iters!r}")
        return iters


def gaussian_schedule(num_pdfs: int, config: GmmTrainConfig) -> List[int]:
    """Gaussians to mix up to after each iteration ``0..num_iters-1``: ``num_pdfs`` after
    iterations 0 and 1, then ``(total_gauss - num_pdfs) // max_iter_inc`` more per iteration until
    iteration ``max_iter_inc + 1`` (Kaldi's ``numgauss += incgauss`` after each ``iter <=
    max_iter_inc``)."""
    inc = max(0, config.total_gauss - num_pdfs) // config.max_iter_inc
    return [num_pdfs + inc * max(0, min(it - 1, config.max_iter_inc)) for it in range(config.num_iters)]


def train_mono_gmm(
    utts: Sequence[Tuple[str, str, torch.Tensor]],
    alignments: Dict[str, np.ndarray],
    lang: Lang,
    topo: HmmTopology,
    config: GmmTrainConfig = GmmTrainConfig(),
    gmm_config: GmmConfig = GmmConfig(),
    on_iteration: Optional[Callable[[Dict[str, float]], None]] = None,
) -> Tuple[DiagGmmSet, Dict[str, np.ndarray], List[Dict[str, float]]]:
    """Train the monophone GMMs from a flat-start alignment.

    Args:
        utts: ``(utt_id, transcript, features)`` per training utterance, features float32
            ``[T, D]`` as the model will see them (CMVN applied).
        alignments: the flat start, ``utt_id -> int32 [T]`` pdf-ids of ``topo`` (utterances
            without one are not trained on).
        lang: lang directory (lexicon, L) of the training graphs.
        topo: the HMM topology; its self-loop probabilities are re-estimated in place.
        config: iterations, realignment, Gaussians.
        gmm_config: floors of the ML update and the mix-up.
        on_iteration: called with each iteration's record (e.g. to write progress).

    Returns:
        ``(GMMs, the last alignment, one record per iteration)``; a record holds ``iter``,
        ``gauss``, ``log_like`` (average log-likelihood per frame under the model before the
        update, log base e), ``frames`` and ``aligned`` / ``failed`` utterances of a realignment.

    Raises:
        ConfigError: no utterance has an alignment.
    """
    feats = {u: x for u, _, x in utts}
    texts = [(u, t) for u, t, _ in utts]
    alignments = {u: a for u, a in alignments.items() if u in feats}
    if not alignments:
        raise ConfigError("no training utterance has a flat-start alignment")
    ids = sorted(alignments)
    all_feats = torch.cat([feats[u] for u in ids]).float()
    gmms = DiagGmmSet.single_gaussians(topo.num_pdfs, all_feats)
    schedule = gaussian_schedule(topo.num_pdfs, config)
    realign = config.realign_set()
    rng = np.random.default_rng(config.seed)
    history: List[Dict[str, float]] = []
    for it in range(config.num_iters):
        start = time.time()
        record: Dict[str, float] = {"iter": it}
        if it in realign:
            compiler = TrainingGraphCompiler(lang, topo)
            done, failed = align_dataset(
                compiler, texts, lambda u: gmms.log_likelihoods(feats[u]) * config.align_acoustic_scale,
                config.batch_size)
            alignments = {u: a.pdfs for u, a in done.items()}
            topo.estimate_transitions(alignments.values())
            ids = sorted(alignments)
            all_feats = torch.cat([feats[u] for u in ids]).float()
            record.update(aligned=len(done), failed=len(failed))
        pdfs = torch.from_numpy(np.concatenate([alignments[u] for u in ids]).astype(np.int64))
        update = gmm_config if it else replace(gmm_config, min_gaussian_occupancy=config.first_min_occupancy)
        log_like, occupancy = gmms.ml_update(all_feats, pdfs, update)
        gmms.mix_up(schedule[it], occupancy, rng, gmm_config)
        record.update(gauss=int(gmms.num_gauss.sum()), log_like=round(log_like, 4), frames=int(len(pdfs)),
                      seconds=round(time.time() - start, 2))
        log.info("iteration %d: %s", it, ", ".join(f"{k} {v}" for k, v in record.items() if k != "iter"))
        history.append(record)
        if on_iteration is not None:
            on_iteration(record)
    return gmms, alignments, history


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


__all__ = ["GmmTrainConfig", "KALDI_MONO_REALIGN_ITERS", "gaussian_schedule", "train_mono_gmm", "write_history"]
