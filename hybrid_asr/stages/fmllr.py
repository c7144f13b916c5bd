"""Speaker-adapted decoding of a SAT GMM model: first pass, fMLLR per speaker, second pass.

As Kaldi's ``steps/decode_fmllr.sh``: the speaker-independent model of the SAT directory
(``si_model/``, same tree and graph) decodes every utterance; its transcripts are force-aligned
with that model; every speaker's fMLLR transform is estimated with the SAT GMMs from those frames
(silence weighted down); then each speaker's utterances are decoded again with the SAT GMMs on
its transformed frames. As ``decode_fmllr.sh`` does, the transform is estimated twice by default
(``FmllrDecodeConfig.estimation_passes``): the adapted decode's transcripts are realigned with the
adapted model and a second transform, estimated on the once-transformed frames, is composed with
the first before the final decode. The transform is folded into the model's own LDA+MLLT
transform, so every adapted pass is an ordinary decode with a speaker's copy of the model. Kaldi
estimates the transforms from lattice posteriors; we use the aligned best paths.

:func:`adapt_features` writes those adapted frames as a feature store (kind ``fmllr``), so that
neural models can be trained and evaluated on speaker-adapted inputs.
"""

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import k2
import numpy as np
import torch

from hybrid_asr.align.viterbi import align_dataset, viterbi_align
from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.bundle import ModelBundle, SearchConfig
from hybrid_asr.decoding.dataset import MAX_BATCH_FRAMES, DecodeTiming, decode_store
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.errors import ConfigError
from hybrid_asr.gmm.transforms import FMLLR_UPDATES, apply_affine, compose_affine, estimate_fmllr
from hybrid_asr.graph.training import TrainingGraphCompiler
from hybrid_asr.hmm.alignment import FrameAlignment
from hybrid_asr.lang.lang_dir import Lang
from hybrid_asr.likelihoods import log_likelihoods
from hybrid_asr.models.base import pad_context
from hybrid_asr.models.gmm import GmmAcousticModel
from hybrid_asr.training.gmm import silence_states
from hybrid_asr.utils import JsonDataclass, write_text_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FmllrDecodeConfig(JsonDataclass):
    """Settings of speaker-adapted decoding.

    Attributes:
        first_pass_acoustic_scale: acoustic scale of the speaker-independent pass (None: the
            model's stored search scale).
        align_acoustic_scale: acoustic scale of the forced alignment of the first-pass
            transcripts (GMM log-likelihoods; Kaldi aligns GMMs at 0.1).
        silence_weight: weight of silence frames in the fMLLR statistics (Kaldi's
            ``decode_fmllr.sh``: 0.01).
        estimation_passes: transform estimates per speaker: 1 from the speaker-independent
            pass only; each further one realigns the transcripts of an adapted decode (or the
            reference transcripts) with the adapted model and composes a new estimate on top
            (Kaldi's ``decode_fmllr.sh``: 2).
        min_count: a speaker (or a lone file) with fewer weighted frames keeps its transform
            (Kaldi's ``gmm-est-fmllr --fmllr-min-count``: 50).
        file_update: the transform of a lone file (``decode`` of a neural model on fMLLR
            features): one of ``FMLLR_UPDATES`` (:meth:`FmllrStats.estimate`); a
            speaker's is always full (Kaldi's default).
    """

    json_what = "fMLLR decoding config"

    first_pass_acoustic_scale: Optional[float] = bounded(None, gt=0)
    align_acoustic_scale: float = bounded(0.1, gt=0)
    silence_weight: float = bounded(0.01, ge=0, le=1)
    estimation_passes: int = bounded(2, ge=1, le=10)
    min_count: float = bounded(50.0, ge=0)
    file_update: str = "diag"

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.file_update not in FMLLR_UPDATES:
            raise ConfigError(f"file_update must be one of {', '.join(FMLLR_UPDATES)}, got {self.file_update!r}")


def speaker_transforms(
    bundle: ModelBundle,
    si_bundle: ModelBundle,
    lang: Lang,
    store: FeatureStore,
    hypotheses: Dict[str, List[str]],
    cmvn: str,
    config: FmllrDecodeConfig = FmllrDecodeConfig(),
    initial: Optional[Dict[str, np.ndarray]] = None,
) -> Tuple[Dict[str, np.ndarray], Dict[str, float]]:
    """Estimate every speaker's fMLLR transform from transcripts (one estimate; the passes of
    ``config.estimation_passes`` are :func:`reference_transforms` and :func:`decoded_transforms`).

    Args:
        bundle: the SAT model (LDA+MLLT GMM; the transforms act on its projected frames).
        si_bundle: its speaker-independent model (aligns the transcripts when there is no
            ``initial`` transform).
        lang: lang directory of the alignment graphs.
        store: the features.
        hypotheses: ``utt_id -> words`` (first-pass output or references; empty ones are left out).
        cmvn: the CMVN mode of the features.
        config: alignment scale, silence weight.
        initial: ``speaker -> float [D, D + 1]`` transforms of an earlier estimate: a speaker's
            transcripts are then aligned with the SAT model under its transform, and the new
            estimate, made on the transformed frames, is returned composed with it.

    Returns:
        ``(speaker -> float64 [D, D + 1] transform, speaker -> objective gain per frame of this
        estimate)``; a speaker without aligned frames keeps its initial transform (or the identity).
    """
    initial = initial or {}
    adapted = {spk: adapted_bundle(bundle, w).model for spk, w in initial.items()}
    compiler = TrainingGraphCompiler(lang, si_bundle.topology, si_bundle.make_h(hmm_states=True))
    utts = [(u, " ".join(w)) for u, w in hypotheses.items() if w]
    normalized = {u: store.normalized(u, cmvn, bundle.cmvn) for u, _ in utts}
    speakers = {u.id: u.speaker for u in store.utterances if u.id in hypotheses}

    def score(u: str) -> torch.Tensor:
        model = adapted.get(speakers[u], si_bundle.model if not initial else bundle.model)
        return log_likelihoods(model, normalized[u], si_bundle.log_priors) * config.align_acoustic_scale

    done, _ = align_dataset(compiler, utts, score)
    transforms, gains = {}, {}
    for spk in sorted(set(speakers.values())):
        mine = sorted(u for u, s in speakers.items() if s == spk and u in done)
        transforms[spk], gains[spk] = estimate_transform(bundle, [(normalized[u], done[u]) for u in mine], config,
                                                         initial.get(spk), adapted.get(spk))
    return transforms, gains


def estimate_transform(bundle: ModelBundle, aligned: Sequence[Tuple[torch.Tensor, FrameAlignment]],
                       config: FmllrDecodeConfig = FmllrDecodeConfig(), initial: Optional[np.ndarray] = None,
                       adapted: Optional[GmmAcousticModel] = None, update: str = "full") -> Tuple[np.ndarray, float]:
    """One estimate of a speaker's fMLLR transform from its aligned utterances (Gales 1998; the
    statistics of Kaldi's ``FmllrDiagGmmAccs`` from the best path, silence frames weighted by
    ``config.silence_weight``).

    Args:
        bundle: the SAT model.
        aligned: per utterance ``(normalized features float32 [T, F], its alignment with HMM
            states)``.
        config: silence weight, minimum count.
        initial: float64 ``[D, D + 1]`` transform of an earlier estimate (None: the identity);
            the statistics are then gathered on frames under it and the result is composed with it.
        adapted: ``bundle``'s model under ``initial`` (:func:`adapted_bundle`; made when None).
        update: which entries are estimated (:meth:`~hybrid_asr.gmm.transforms.FmllrStats.estimate`).

    Returns:
        ``(float64 [D, D + 1] transform, objective gain per frame)``: ``initial`` (or the
        identity) with gain 0 when the frames weigh less than ``config.min_count``.
    """
    if adapted is None:
        adapted = adapted_bundle(bundle, initial).model if initial is not None else bundle.model
    frames = []
    for x, ali in aligned:
        x = pad_context(x, adapted.left_context, adapted.right_context)
        with torch.no_grad():
            frames.append((adapted.gmm_features(x[None])[0], ali.pdfs, ali.states))
    w, gain = estimate_fmllr(bundle.model.gmms(), frames, silence_states(bundle.topology), config.silence_weight,
                             config.min_count, update)
    return (compose_affine(w, initial) if initial is not None else w), gain


def reference_transforms(bundle: ModelBundle, si_bundle: ModelBundle, lang: Lang, store: FeatureStore,
                         transcripts: Dict[str, List[str]], cmvn: str,
                         config: FmllrDecodeConfig = FmllrDecodeConfig()) -> Tuple[Dict[str, np.ndarray], Dict[str, float]]:
    """Every speaker's transform from known transcripts (Kaldi's ``align_fmllr.sh``): aligned with
    the speaker-independent model for the first estimate, with the adapted model for each further
    one (``config.estimation_passes``). Arguments and result as :func:`speaker_transforms`; the
    gains are summed over the estimates."""
    transforms, total = None, {}
    for _ in range(config.estimation_passes):
        transforms, gains = speaker_transforms(bundle, si_bundle, lang, store, transcripts, cmvn, config, transforms)
        total = {spk: total.get(spk, 0.0) + g for spk, g in gains.items()}
    return transforms, total


def decoded_transforms(
    bundle: ModelBundle,
    si_bundle: ModelBundle,
    lang: Lang,
    graph: k2.Fsa,
    words: k2.SymbolTable,
    store: FeatureStore,
    search: SearchConfig,
    cmvn: str,
    max_frames: int = MAX_BATCH_FRAMES,
    utt_ids: Optional[Sequence[str]] = None,
    config: FmllrDecodeConfig = FmllrDecodeConfig(),
) -> Tuple[Dict[str, np.ndarray], Dict[str, float], DecodeTiming]:
    """Every speaker's transform without transcripts (Kaldi's ``decode_fmllr.sh``): the
    speaker-independent model decodes the utterances for the first estimate; for each further
    one (``config.estimation_passes``) the SAT model decodes them again under the current
    transforms. Every decode uses ``search``.

    Returns:
        ``(speaker -> float64 [D, D + 1] transform, speaker -> objective gain per frame summed over
        the estimates, timing of the decodes)``.
    """
    utt_ids = list(utt_ids) if utt_ids is not None else [u.id for u in store.utterances]
    (first,), timing = decode_store(si_bundle, graph, store, [search], cmvn, max_frames, utt_ids)
    hyps = {u: [words.get(i) for i in ids] for u, ids in first.items()}
    transforms, total = None, {}
    for k in range(config.estimation_passes):
        if k > 0:
            (results,), t = decode_adapted(bundle, transforms, graph, store, [search], cmvn, max_frames, utt_ids)
            hyps = {u: [words.get(i) for i in ids] for u, ids in results.items()}
            timing.search_seconds[0] += t.search_seconds[0]
            timing.model_seconds += t.model_seconds
        transforms, gains = speaker_transforms(bundle, si_bundle, lang, store, hyps, cmvn, config, transforms)
        total = {spk: total.get(spk, 0.0) + g for spk, g in gains.items()}
    return transforms, total, timing


def decode_adapted(bundle: ModelBundle, transforms: Dict[str, np.ndarray], graph: k2.Fsa, store: FeatureStore,
                   searches: Sequence[SearchConfig], cmvn: str, max_frames: int,
                   utt_ids: Sequence[str]) -> Tuple[List[Dict[str, List[int]]], DecodeTiming]:
    """Decode every speaker's utterances with the SAT model under its transform (a speaker
    without one: the unadapted SAT model); results and timing as
    :func:`~hybrid_asr.decoding.dataset.decode_store`."""
    results: List[Dict[str, List[int]]] = [{} for _ in searches]
    timing = DecodeTiming(search_seconds=[0.0] * len(searches))
    speaker_of = {u.id: u.speaker for u in store.utterances}
    groups: Dict[Optional[str], List[str]] = {}
    for u in utt_ids:
        spk = speaker_of[u]
        groups.setdefault(spk if spk in transforms else None, []).append(u)
    for spk, mine in groups.items():
        model = bundle if spk is None else adapted_bundle(bundle, transforms[spk])
        part, t = decode_store(model, graph, store, searches, cmvn, max_frames, mine)
        for k in range(len(searches)):
            results[k].update(part[k])
            timing.search_seconds[k] += t.search_seconds[k]
        timing.model_seconds += t.model_seconds
        timing.audio_seconds += t.audio_seconds
    return results, timing


def adapted_bundle(bundle: ModelBundle, transform: np.ndarray) -> ModelBundle:
    """A copy of a SAT bundle whose feature transform is followed by a speaker's fMLLR
    ``transform`` (float ``[D, D + 1]``); the copy shares the model's Gaussians
    (:meth:`GmmAcousticModel.with_transform`)."""
    model: GmmAcousticModel = bundle.model
    adapted = model.with_transform(compose_affine(transform, model.transform.numpy()))
    return ModelBundle(adapted.eval(), bundle.feature_config, bundle.cmvn, bundle.log_priors, bundle.topology, bundle.tree)


def decode_store_fmllr(
    bundle: ModelBundle,
    si_bundle: ModelBundle,
    lang: Lang,
    graph: k2.Fsa,
    words: k2.SymbolTable,
    store: FeatureStore,
    searches: Sequence[SearchConfig],
    first_pass: SearchConfig,
    cmvn: Optional[str] = None,
    max_frames: int = MAX_BATCH_FRAMES,
    utt_ids: Optional[Sequence[str]] = None,
    config: FmllrDecodeConfig = FmllrDecodeConfig(),
) -> Tuple[List[Dict[str, List[int]]], DecodeTiming, dict]:
    """Two-pass speaker-adapted decoding (module docstring); arguments and results as
    :func:`~hybrid_asr.decoding.dataset.decode_store`, plus the SAT pieces, the search of the
    first pass (its acoustic scale replaced by ``config.first_pass_acoustic_scale`` if set) and a
    summary (first-pass scale, speakers, estimates, mean objective gain) for ``timing.json``."""
    cmvn = cmvn or bundle.feature_config.cmvn
    first = first_pass if config.first_pass_acoustic_scale is None else \
        replace(first_pass, acoustic_scale=config.first_pass_acoustic_scale)
    utt_ids = list(utt_ids) if utt_ids is not None else [u.id for u in store.utterances]
    transforms, gains, si_timing = decoded_transforms(bundle, si_bundle, lang, graph, words, store, first, cmvn,
                                                      max_frames, utt_ids, config)
    results, timing = decode_adapted(bundle, transforms, graph, store, searches, cmvn, max_frames, utt_ids)
    timing.model_seconds += si_timing.model_seconds
    log.info("fMLLR: %d speakers, %d estimates, objective gain %.3f per frame (mean)", len(gains),
             config.estimation_passes, float(np.mean(list(gains.values()))) if gains else 0.0)
    summary = {"first_pass_acoustic_scale": first.acoustic_scale, "speakers": len(transforms),
               "estimation_passes": config.estimation_passes,
               "mean_objective_gain": round(float(np.mean(list(gains.values()))), 4) if gains else 0.0,
               "first_pass_search_seconds": si_timing.search_seconds[0]}
    return results, timing, summary


def adapt_features(model_dir: Union[str, Path], lang_dir: Union[str, Path], feats_dir: Union[str, Path],
                   out_dir: Union[str, Path], transcripts: str = "first-pass",
                   config: FmllrDecodeConfig = FmllrDecodeConfig(),
                   transforms_from: Optional[Union[str, Path]] = None) -> FeatureStore:
    """Write the speaker-adapted frames of a SAT GMM as a feature store, for neural models on
    fMLLR features (Kaldi nnet1 and pytorch-kaldi's ``fmllr`` inputs).

    Every speaker's transform is estimated as for decoding: from the reference transcripts of
    the store (``transcripts="reference"``: training data only, as Kaldi's ``align_fmllr.sh``)
    or from the speaker-independent first pass (``"first-pass"``: what dev and test sets get,
    as ``decode_fmllr.sh``), or are read from an alignment directory of the same store made with
    this model (``transforms_from``: its ``fmllr.npz``, estimated from the reference transcripts,
    as Kaldi's ``make_fmllr_feats.sh --transform-dir``; no estimation here). Each utterance's frames
    are the model's LDA+MLLT frames under its speaker's transform.

    Args:
        model_dir: a SAT GMM model directory (with ``si_model/``; with a graph for first passes).
        lang_dir: lang directory of the alignment graphs.
        feats_dir: the store the SAT model reads (e.g. MFCC with speaker CMVN).
        out_dir: the new store: kind ``fmllr``, ``adapted_dim`` D, global CMVN, the source's
            other settings; beside it ``fmllr.npz`` (speaker -> ``[D, D + 1]``) and
            ``adapt_info.json``.
        transcripts: ``"reference"`` or ``"first-pass"``.
        config: first-pass scale, alignment scale, silence weight.
        transforms_from: an alignment directory of this store by ``model_dir`` (``align --model``)
            whose transforms are used instead of estimating them (``transcripts`` is then ignored).

    Returns:
        The new store.

    Raises:
        InputError: ``model_dir`` is not a SAT model, the store's features are not the model's, or
            ``transforms_from`` has no transforms, is another model's or another store's
            alignment, or lacks a speaker.
        ConfigError: ``transcripts`` is neither value.
    """
    from hybrid_asr.bundle import load_graph
    from hybrid_asr.errors import InputError
    from hybrid_asr.features.storage import write_feature_store
    from hybrid_asr.stages.gmm import save_transforms, speaker_independent_dir

    if transcripts not in ("reference", "first-pass"):
        raise ConfigError(f"transcripts must be 'reference' or 'first-pass', got {transcripts!r}")
    si_dir = speaker_independent_dir(model_dir)
    if si_dir is None:
        raise InputError(model_dir, "not a speaker-adapted GMM model (train-gmm --sat)")
    bundle, si_bundle = ModelBundle.load(model_dir), ModelBundle.load(si_dir)
    store = FeatureStore(feats_dir)
    bundle.check_features(model_dir, feats_dir, store.config)
    cmvn = bundle.feature_config.cmvn
    if transforms_from is not None:
        transforms, gains = _alignment_transforms(model_dir, bundle, store, Path(transforms_from)), {}
        transcripts = f"alignment {transforms_from}"
    elif transcripts == "reference":
        transforms, gains = reference_transforms(bundle, si_bundle, Lang(lang_dir), store,
                                                 {u.id: u.text.split() for u in store.utterances}, cmvn, config)
    else:
        graph, words, search = load_graph(model_dir, bundle)
        if config.first_pass_acoustic_scale is not None:
            search = replace(search, acoustic_scale=config.first_pass_acoustic_scale)
        transforms, gains, _ = decoded_transforms(bundle, si_bundle, Lang(lang_dir), graph, words, store, search, cmvn,
                                                  config=config)
    models = {spk: adapted_bundle(bundle, w).model for spk, w in transforms.items()}
    model = bundle.model
    out = Path(out_dir)

    def frames(u):
        def make() -> torch.Tensor:
            x = pad_context(store.normalized(u.id, cmvn, bundle.cmvn), model.left_context, model.right_context)
            with torch.no_grad():
                return models.get(u.speaker, model).gmm_features(x[None])[0]
        return make

    feature_config = replace(store.config, kind="fmllr", adapted_dim=model.config.gmm_dim, cmvn="global")
    write_feature_store([(u.id, u.speaker, u.text, frames(u)) for u in store.utterances], feature_config, out)
    save_transforms(out / "fmllr.npz", transforms)
    info = {"model": str(Path(model_dir).resolve()), "source": str(feats_dir), "transcripts": transcripts,
            "speakers": len(transforms),
            "mean_objective_gain": round(float(np.mean(list(gains.values()))), 4) if gains else None}
    write_text_atomic(out / "adapt_info.json", json.dumps(info, indent=2) + "\n")
    log.info("adapted %d speakers (%s) -> %s", len(transforms), "transforms of " + str(transforms_from)
             if transforms_from is not None else f"objective gain {info['mean_objective_gain']:.3f} per frame", out)
    return FeatureStore(out)


def _alignment_transforms(model_dir: Union[str, Path], bundle: ModelBundle, store: FeatureStore,
                          ali_dir: Path) -> Dict[str, np.ndarray]:
    """The transforms of an alignment directory (``fmllr.npz``), checked against the model (its
    tree and transform size) and the store (a transform for every speaker)."""
    from hybrid_asr.errors import InputError
    from hybrid_asr.hmm.tree import DecisionTree
    from hybrid_asr.stages.align import FMLLR_TRANSFORMS
    from hybrid_asr.stages.gmm import load_transforms

    if not (ali_dir / "ali.npz").is_file():
        raise InputError(ali_dir, "not a complete alignment directory (ali.npz missing)")
    transforms = load_transforms(ali_dir / FMLLR_TRANSFORMS)
    tree = ali_dir / "tree.json"
    if bundle.tree is None or not tree.is_file() or DecisionTree.load(tree).to_dict() != bundle.tree.to_dict():
        raise InputError(ali_dir, f"not an alignment by {model_dir} (another tree)")
    dim = bundle.model.config.gmm_dim
    if any(w.shape != (dim, dim + 1) for w in transforms.values()):
        raise InputError(ali_dir / FMLLR_TRANSFORMS, f"transforms are not {dim} x {dim + 1} ({model_dir}'s size)")
    from hybrid_asr.hmm.alignment import Alignments

    failed = (ali_dir / "failed.txt").read_text().split() if (ali_dir / "failed.txt").is_file() else []
    aligned = set(Alignments.load(ali_dir / "ali.npz")) | set(failed)
    others = [u.id for u in store.utterances if u.id not in aligned]
    if others:
        raise InputError(ali_dir, f"not an alignment of {store.path}: {len(others)} of its utterances are not in it "
                         f"(first: {others[0]})")
    missing = sorted({u.speaker for u in store.utterances} - set(transforms))
    if missing:
        raise InputError(ali_dir / FMLLR_TRANSFORMS, f"no transform for {len(missing)} speaker(s) of {store.path} "
                         f"(first: {missing[0]}): align that store with the SAT model")
    return transforms


FRONTEND_DIR = "fmllr_frontend"
"""Subdirectory of a neural model directory trained on fMLLR features: the SAT GMM (and its
``si_model/``) that adapts lone files (:class:`FmllrFrontend`)."""


class FmllrFrontend:
    """Speaker adaptation of a lone file for a neural model trained on fMLLR features (an
    ``adapt-features`` store): the file is its own speaker, as a Kaldi ``decode_fmllr.sh`` run
    with one utterance per speaker.

    The SAT GMM's speaker-independent model decodes the file on the neural model's graph (same
    tree) at ``config.first_pass_acoustic_scale``; the words are aligned and the transform
    estimated (:func:`estimate_transform`, of the form ``config.file_update``: a full 40 x 41
    transform wants more frames than a file of a few seconds gives); each further estimate
    (``config.estimation_passes``)
    decodes with the adapted SAT model and composes. A file whose first pass finds no words, or
    whose frames weigh less than ``config.min_count``, keeps the identity. The neural model then
    reads the SAT model's LDA+MLLT frames under the file's transform.

    Args:
        bundle: the SAT GMM.
        si_bundle: its speaker-independent model.
        config: settings; ``first_pass_acoustic_scale`` None: the SAT model's stored scale was
            unknown and the search's scale is used.
    """

    def __init__(self, bundle: ModelBundle, si_bundle: ModelBundle, config: FmllrDecodeConfig):
        self.bundle, self.si_bundle, self.config = bundle, si_bundle, config

    @staticmethod
    def save(sat_dir: Union[str, Path], out_dir: Union[str, Path],
             config: FmllrDecodeConfig = FmllrDecodeConfig()) -> Path:
        """Copy a SAT model (its bundle, ``si_model/`` and first-pass acoustic scale, read from its
        ``search_config.json`` when ``config`` gives none) into ``out_dir/fmllr_frontend``;
        ``fmllr_decode.json`` is written last and marks it complete.

        Raises:
            InputError: ``sat_dir`` is not a SAT model.
        """
        from hybrid_asr.bundle import load_search_config
        from hybrid_asr.errors import InputError
        from hybrid_asr.stages.gmm import SI_MODEL, speaker_independent_dir

        si_dir = speaker_independent_dir(sat_dir)
        if si_dir is None:
            raise InputError(sat_dir, "not a speaker-adapted GMM model (train-gmm --sat)")
        out = Path(out_dir) / FRONTEND_DIR
        out.mkdir(parents=True, exist_ok=True)
        (out / "fmllr_decode.json").unlink(missing_ok=True)
        ModelBundle.load(sat_dir).save(out)
        ModelBundle.load(si_dir).save(out / SI_MODEL)
        if config.first_pass_acoustic_scale is None and (Path(sat_dir) / "search_config.json").is_file():
            config = replace(config, first_pass_acoustic_scale=load_search_config(sat_dir).acoustic_scale)
        config.save(out / "fmllr_decode.json")
        return out

    @classmethod
    def load(cls, model_dir: Union[str, Path]) -> Optional["FmllrFrontend"]:
        """The frontend saved in a model directory, None when it has none (or an incomplete one)."""
        from hybrid_asr.stages.gmm import SI_MODEL

        d = Path(model_dir) / FRONTEND_DIR
        if not (d / "fmllr_decode.json").is_file():
            return None
        return cls(ModelBundle.load(d), ModelBundle.load(d / SI_MODEL), FmllrDecodeConfig.load(d / "fmllr_decode.json"))

    def transform(self, feats: torch.Tensor, first_pass, compiler: TrainingGraphCompiler) -> Tuple[np.ndarray, float, int]:
        """The file's transform.

        Args:
            feats: float32 ``[T, F]`` the SAT model's features, normalized.
            first_pass: ``(log-likelihoods [T, S], acoustic scale) -> words`` (the search on the
                graph the neural model decodes with).
            compiler: alignment graphs of the SAT topology with HMM states
                (``make_h(hmm_states=True)``) and the lang dir of that graph.

        Returns:
            ``(float64 [D, D + 1] transform, objective gain per frame summed over the estimates,
            estimates made)``.
        """
        dim = self.bundle.model.config.gmm_dim
        W, total, made = np.concatenate([np.eye(dim), np.zeros((dim, 1))], 1), 0.0, 0
        for _ in range(self.config.estimation_passes):
            # the first pass reads the SI model, each further one the SAT model under the estimate so far
            adapted = self.si_bundle.model if not made else adapted_bundle(self.bundle, W).model
            with torch.no_grad():
                scores = log_likelihoods(adapted, feats, self.si_bundle.log_priors)
            words = first_pass(scores, self.config.first_pass_acoustic_scale)
            if not words:
                break
            ali = viterbi_align(compiler, [" ".join(words)], [scores * self.config.align_acoustic_scale])[0]
            if not len(ali.pdfs):
                break
            W, gain = estimate_transform(self.bundle, [(feats, ali)], self.config, W if made else None,
                                         adapted if made else None, self.config.file_update)
            if gain == 0.0:  # fewer frames than config.min_count: W is unchanged
                break
            total, made = total + gain, made + 1
        return W, total, made

    def adapted_frames(self, feats: torch.Tensor, transform: np.ndarray) -> torch.Tensor:
        """float32 ``[T, D]``: the SAT model's LDA+MLLT frames of ``feats`` (``[T, F]``,
        normalized) under ``transform``: what ``adapt-features`` stores."""
        model = self.bundle.model
        x = pad_context(feats, model.left_context, model.right_context)
        with torch.no_grad():
            return apply_affine(transform, model.gmm_features(x[None])[0])


__all__ = ["FRONTEND_DIR", "FmllrDecodeConfig", "FmllrFrontend", "adapt_features", "adapted_bundle", "decode_adapted",
           "decode_store_fmllr", "decoded_transforms", "estimate_transform", "reference_transforms",
           "speaker_transforms"]
