"""Alignment stages: flat start and realignment with a trained model, saved to an alignment dir.

An alignment directory holds ``ali.npz`` (:class:`Alignments`: pdf-id per frame), ``phones.npz``
(phone-start marks: phones.txt id on the first frame of each phone, 0 elsewhere), ``topology.json``
(the HMM topology the pdf-ids refer to), ``tree.json`` and ``states.npz`` (the monophone HMM state
of every frame) for senone alignments, ``failed.txt`` (utterances that could not be aligned) and, for
a SAT model's alignment, ``fmllr.npz`` (each speaker's transform, as Kaldi's ``align_fmllr.sh``
leaves ``trans.*``; ``adapt-features --transforms`` reuses them).
:func:`load_alignment_dir` and :func:`~hybrid_asr.hmm.alignment.load_hmm_states` read it back.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from hybrid_asr.align.flat_start import flat_start_alignment
from hybrid_asr.align.viterbi import align_dataset
from hybrid_asr.bundle import ModelBundle
from hybrid_asr.errors import AlignmentError, HybridAsrError, InputError
from hybrid_asr.features.augment import COPY_SUFFIX
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.graph.training import TrainingGraphCompiler
from hybrid_asr.hmm.alignment import (FRAME_SHIFT_FILE, Alignments, FrameAlignment, load_alignment_dir,
                                      load_hmm_states, monophone_marks, phone_agreement, read_frame_shift,
                                      upsample_alignment)
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.hmm.tree import DecisionTree
from hybrid_asr.lang.lang_dir import Lang
from hybrid_asr.lang.lexicon import SIL
from hybrid_asr.likelihoods import log_likelihoods
from hybrid_asr.stages.gmm import load_transforms, save_transforms, speaker_independent_dir
from hybrid_asr.stages.shards import Shard, local_jobs, remove_shard_dirs, run_local_shards, shard_dirs
from hybrid_asr.utils import write_text_atomic

log = logging.getLogger(__name__)

FMLLR_TRANSFORMS = "fmllr.npz"
"""File of an alignment directory of a SAT model: speaker -> fMLLR transform ``[D, D + 1]``."""


def _save(out: Path, alis: Dict, marks: Dict, topo: HmmTopology, failed,
          tree: Optional[DecisionTree] = None, frame_shift: Optional[float] = None,
          states: Optional[Dict] = None) -> None:
    if not alis:
        raise HybridAsrError(f"{out}: no utterance could be aligned")
    out.mkdir(parents=True, exist_ok=True)
    (out / "ali.npz").unlink(missing_ok=True)  # incomplete until the new ali.npz is written
    topo.save(out / "topology.json")
    if frame_shift is not None:
        write_text_atomic(out / FRAME_SHIFT_FILE, f"{frame_shift:g}\n")
    else:  # not known (converted from an older dir): no stale value from an earlier run
        (out / FRAME_SHIFT_FILE).unlink(missing_ok=True)
    if tree is not None:
        tree.save(out / "tree.json")
        if states is None:
            raise HybridAsrError(f"{out}: senone alignments need the HMM state of every frame")
        Alignments(dict(sorted(states.items()))).save(out / "states.npz")
    else:
        (out / "states.npz").unlink(missing_ok=True)
    write_text_atomic(out / "failed.txt", "".join(f"{u}\n" for u in sorted(failed)))
    Alignments(dict(sorted(marks.items()))).save(out / "phones.npz")
    Alignments(dict(sorted(alis.items()))).save(out / "ali.npz")  # last: its presence marks a complete directory
    frames = sum(len(a) for a in alis.values())
    log.info("aligned %d utterances (%d frames), %d failed -> %s", len(alis), frames, len(failed), out)


def flat_start(store: FeatureStore, lang: Lang, out_dir: Union[str, Path], num_states: int = 3,
               sil_states: Optional[int] = None, shard: Shard = Shard(), nj: int = 1) -> None:
    """Flat-start alignment of every utterance along SIL + first pronunciations + SIL.

    The quiet frames at the ends go to SIL and the rest is divided equally among the words'
    HMM states (:func:`flat_start_alignment`); transition probabilities are estimated from it.

    Args:
        store: training features (for the frame counts).
        lang: lang directory (phones, lexicon).
        out_dir: alignment directory to write.
        num_states: HMM states per phone.
        sil_states: states of SIL (default ``num_states``).
        shard: align only this shard's speakers (combine the shards with
            :func:`merge_alignment_dirs`, which estimates the transitions from all of them).
        nj: run ``nj`` local shard processes and merge them into ``out_dir``.
    """
    if nj > 1:
        dirs = shard_dirs(out_dir, nj)
        run_local_shards(_flat_start_job, [(str(store.path), str(lang.path), str(d), num_states, sil_states,
                                            Shard(i, nj)) for i, d in enumerate(dirs)], nj)
        merge_alignment_dirs(dirs, out_dir)
        remove_shard_dirs(out_dir)
        return
    topo = HmmTopology.create(lang.phones, [lang.phone_table[p] for p in lang.phones],
                              {SIL: sil_states or num_states}, num_states)
    alis, failed = {}, []
    prons = lang.lexicon.with_unk().pronunciations()
    for u in shard.select_groups(store.utterances, lambda u: u.speaker):
        feats = store.raw(u.id).numpy()
        energy = feats.mean(axis=1) if store.config.kind == "fbank" else feats[:, 0]
        try:
            alis[u.id] = flat_start_alignment(u.text, energy, prons, topo)
        except AlignmentError as e:
            log.warning("%s: %s", u.id, e)
            failed.append(u.id)
    topo.estimate_transitions(alis.values())
    _save(Path(out_dir), alis, monophone_marks(alis, topo), topo, failed,
          frame_shift=store.config.frame_shift_ms / 1000)


def _flat_start_job(feats_dir: str, lang_dir: str, out_dir: str, num_states: int, sil_states: Optional[int],
                    shard: Shard) -> None:
    flat_start(FeatureStore(feats_dir), Lang(lang_dir), out_dir, num_states, sil_states, shard)


def realign(store: FeatureStore, lang: Lang, model_dir: Union[str, Path], out_dir: Union[str, Path],
            batch_size: int = 16, shard: Shard = Shard(), nj: int = 1) -> None:
    """Viterbi-align every utterance with a trained model (acoustic scale 1, transition scale 1).

    A speaker-adapted (SAT) GMM model aligns as Kaldi's ``align_fmllr.sh``: its speaker-independent
    model aligns the transcripts first, every speaker's fMLLR transform is estimated from that
    alignment and re-estimated from the adapted model's alignment
    (``FmllrDecodeConfig.estimation_passes``), and the adapted model aligns again.

    Args:
        store: features of the utterances (the model's CMVN mode applied).
        lang: lang directory (L, words).
        model_dir: model bundle (acoustic model, priors, topology).
        out_dir: alignment directory to write.
        batch_size: utterances per k2 intersection.
        shard: align only this shard's speakers (a complete directory for their utterances;
            combine the shards with :func:`merge_alignment_dirs`).
        nj: run ``nj`` local shard processes and merge them into ``out_dir``.
    """
    if nj > 1:
        dirs = shard_dirs(out_dir, nj)
        run_local_shards(_realign_job, [(str(store.path), str(lang.path), str(model_dir), str(d), batch_size,
                                         Shard(i, nj)) for i, d in enumerate(dirs)], nj)
        merge_alignment_dirs(dirs, out_dir)
        remove_shard_dirs(out_dir)
        return
    bundle = ModelBundle.load(model_dir)
    bundle.check_lang(model_dir, lang.path, lang.phone_pairs)
    bundle.check_features(model_dir, store.path, store.config)
    compiler = TrainingGraphCompiler(lang, bundle.topology, bundle.make_h(hmm_states=True))

    utts = [(u.id, u.text) for u in shard.select_groups(store.utterances, lambda u: u.speaker)]
    models = {}
    si_dir = speaker_independent_dir(model_dir)
    if si_dir is None:
        (Path(out_dir) / FMLLR_TRANSFORMS).unlink(missing_ok=True)  # none from an earlier SAT run
    else:
        from hybrid_asr.stages.fmllr import adapted_bundle, reference_transforms

        transforms, _ = reference_transforms(bundle, ModelBundle.load(si_dir), lang, store,
                                             {u: t.split() for u, t in utts}, bundle.feature_config.cmvn)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "ali.npz").unlink(missing_ok=True)  # incomplete until the new ali.npz is written
        save_transforms(Path(out_dir) / FMLLR_TRANSFORMS, transforms)
        adapted = {spk: adapted_bundle(bundle, w).model for spk, w in transforms.items()}
        models = {u.id: adapted[u.speaker] for u in store.utterances if u.speaker in adapted}

    def score(utt):
        feats = store.normalized(utt, bundle.feature_config.cmvn, bundle.cmvn)
        return log_likelihoods(models.get(utt, bundle.model), feats, bundle.log_priors)

    done, failed = align_dataset(compiler, utts, score, batch_size)
    factor = bundle.model.subsampling_factor
    done = {u: upsample_alignment(a, factor, store.utterance(u).frames) for u, a in done.items()}
    alis = {u: a.pdfs for u, a in done.items()}
    states = {u: a.states for u, a in done.items()}
    topo = bundle.topology
    topo.estimate_transitions(states.values())
    _save(Path(out_dir), alis, {u: a.phone_marks for u, a in done.items()}, topo, failed, bundle.tree,
          store.config.frame_shift_ms / 1000, states if bundle.tree is not None else None)


def _realign_job(feats_dir: str, lang_dir: str, model_dir: str, out_dir: str, batch_size: int, shard: Shard) -> None:
    realign(FeatureStore(feats_dir), Lang(lang_dir), model_dir, out_dir, batch_size, shard)


def merge_alignment_dirs(shard_dirs: Sequence[Union[str, Path]], out_dir: Union[str, Path]) -> None:
    """Combine the alignment directories of the shards of one realignment into one.

    The result equals a single job's: the union of the alignments, HMM states and failures, and
    the transition probabilities re-estimated from all of them.

    Raises:
        InputError: a shard directory is incomplete.
        HybridAsrError: the shards come from different models (phone set, or tree: present in
            some only, or not the same tree).
    """
    alis, marks, states, failed = {}, {}, {}, []
    topo, tree = None, None
    for d in map(Path, shard_dirs):
        a, m, t = load_alignment_dir(d)
        tr = DecisionTree.load(d / "tree.json") if (d / "tree.json").is_file() else None
        if topo is None:
            topo, tree = t, tr
        elif t.phones != topo.phones or (tr is None) != (tree is None) or (
                tr is not None and tr.to_dict() != tree.to_dict()):
            raise HybridAsrError(f"{d}: alignments of another model than {shard_dirs[0]}")
        alis.update(a.items())
        marks.update(m.items())
        states.update(load_hmm_states(d).items())
        if (d / "failed.txt").is_file():
            failed += (d / "failed.txt").read_text().split()
    topo.estimate_transitions(states.values())
    transforms = {}  # a SAT model's alignment: every shard's speakers
    for f in (Path(d) / FMLLR_TRANSFORMS for d in shard_dirs):
        if f.is_file():
            transforms.update(load_transforms(f))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "ali.npz").unlink(missing_ok=True)  # incomplete until the new ali.npz is written
    (Path(out_dir) / FMLLR_TRANSFORMS).unlink(missing_ok=True)
    if transforms:
        save_transforms(Path(out_dir) / FMLLR_TRANSFORMS, transforms)
    _save(Path(out_dir), alis, marks, topo, failed, tree, read_frame_shift(shard_dirs[0]),
          states if tree is not None else None)


def copy_alignments(ali_dir: Union[str, Path], store: FeatureStore, out_dir: Union[str, Path],
                    suffix: str = COPY_SUFFIX, model_dir: Optional[Union[str, Path]] = None) -> None:
    """The alignment of a store of originals and their same-length augmented copies, each copy
    taking its original's frames' labels, so that the copies need no second alignment (Kaldi's
    ``steps/copy_ali_dir.sh`` for volume-, noise- or reverberation-perturbed copies, which change
    no frame's label; speed perturbation does, and is realigned).

    Utterance ``u`` of ``store`` takes the alignment of ``u`` in ``ali_dir`` or, when ``u`` ends
    with ``suffix`` (``compute-features --augment`` names its copies ``<id>_aug``, of speaker
    ``<speaker>_aug``), of ``u`` without it. An utterance whose original is not aligned there is
    listed in ``failed.txt`` (with a warning). A SAT model's alignment (``fmllr.npz``, e.g.
    ``align --model tri3``) keeps its speakers' transforms, and each new speaker of ``store``
    gets its own, estimated from its utterances' frames under the copied alignments, starting
    from the transform of the speaker it copies (``<speaker>`` of ``<speaker>_aug``; the
    identity if there is none) and composed over ``FmllrDecodeConfig.estimation_passes``
    estimates (:func:`~hybrid_asr.stages.fmllr.estimate_transform`); ``adapt-features
    --transforms`` then reads the result as any SAT alignment.

    Args:
        ali_dir: alignment directory of the originals (with ``states.npz`` for senones).
        store: features of the originals and copies (for a SAT alignment: the SAT model's kind).
        out_dir: the alignment directory to write.
        suffix: what a copy's id adds to its original's.
        model_dir: the SAT model that made ``ali_dir``; needed when ``ali_dir`` has transforms.

    Raises:
        InputError: a file of ``ali_dir`` is missing; a copy has another number of frames than its
            original's alignment (padding or speed changed its length: align it with the model);
            ``ali_dir`` has transforms and ``model_dir`` is missing, is not a SAT model, or has
            another tree; the store's features are not the model's.
        HybridAsrError: no utterance of ``store`` has an alignment in ``ali_dir``.
    """
    ali_dir, out = Path(ali_dir), Path(out_dir)
    src_alis, src_marks, topo = load_alignment_dir(ali_dir)
    src_states = load_hmm_states(ali_dir)
    tree = DecisionTree.load(ali_dir / "tree.json") if (ali_dir / "tree.json").is_file() else None
    alis, marks, states, failed = {}, {}, {}, []
    for u in store.utterances:
        orig = u.id if u.id in src_alis or not u.id.endswith(suffix) else u.id[:-len(suffix)]
        if orig not in src_alis:
            failed.append(u.id)
            continue
        if len(src_alis[orig]) != u.frames:
            raise InputError(store.path, f"{u.id} has {u.frames} frames, its original {orig} {len(src_alis[orig])} in "
                             f"{ali_dir}: the copies changed length (padding, speed); align them with the model")
        alis[u.id], marks[u.id], states[u.id] = src_alis[orig], src_marks[orig], src_states[orig]
    if failed:
        log.warning("%d of the %d utterances of %s have no alignment in %s (first: %s): listed in failed.txt",
                    len(failed), len(store.utterances), store.path, ali_dir, failed[0])
    transforms = {}
    if (ali_dir / FMLLR_TRANSFORMS).is_file():
        transforms = _copy_transforms(ali_dir, store, model_dir, suffix, alis, marks, states, tree)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ali.npz").unlink(missing_ok=True)  # incomplete until the new ali.npz is written
    (out / FMLLR_TRANSFORMS).unlink(missing_ok=True)
    if transforms:
        save_transforms(out / FMLLR_TRANSFORMS, transforms)
    _save(out, alis, marks, topo, failed, tree, read_frame_shift(ali_dir), states if tree is not None else None)


def _copy_transforms(ali_dir: Path, store: FeatureStore, model_dir, suffix: str, alis: Dict, marks: Dict,
                     states: Dict, tree: Optional[DecisionTree]) -> Dict[str, np.ndarray]:
    """:func:`copy_alignments`' transforms: those of ``ali_dir``, and one estimated for every
    other speaker of ``store`` from its frames under the copied alignments."""
    from hybrid_asr.stages.fmllr import FmllrDecodeConfig, estimate_transform

    if model_dir is None:
        raise InputError(ali_dir, "a SAT model's alignment (fmllr.npz): give that model (--model) to estimate "
                         "the copies' speakers' transforms")
    if speaker_independent_dir(model_dir) is None:
        raise InputError(model_dir, "not a speaker-adapted GMM model (train-gmm --sat)")
    bundle = ModelBundle.load(model_dir)
    if bundle.tree is None or tree is None or tree.to_dict() != bundle.tree.to_dict():
        raise InputError(ali_dir, f"not an alignment by {model_dir} (another tree)")
    bundle.check_features(model_dir, store.path, store.config)
    transforms = load_transforms(ali_dir / FMLLR_TRANSFORMS)
    config = FmllrDecodeConfig()
    cmvn = bundle.feature_config.cmvn
    by_speaker: Dict[str, List[str]] = {}
    for u in store.utterances:
        by_speaker.setdefault(u.speaker, []).append(u.id)
    new = sorted(set(by_speaker) - set(transforms))
    for spk in new:
        aligned = [(store.normalized(u, cmvn, bundle.cmvn), FrameAlignment(alis[u], marks[u], states[u]))
                   for u in by_speaker[spk] if u in alis]
        w = transforms.get(spk[:-len(suffix)]) if spk.endswith(suffix) else None
        for _ in range(config.estimation_passes if aligned else 0):
            w, _ = estimate_transform(bundle, aligned, config, w)
        if w is not None:
            transforms[spk] = w
    log.info("fMLLR transforms of %d new speakers of %s estimated on their copied alignments", len(new), store.path)
    return transforms


def convert_to_senones(ali_dir: Union[str, Path], tree_dir: Union[str, Path], out_dir: Union[str, Path],
                       shard: Shard = Shard(), nj: int = 1) -> None:
    """Turn a monophone alignment directory, or a senone one with its HMM states, into a senone
    alignment directory of another tree.

    Writes ``ali.npz`` (senone ids), the monophone ``topology.json`` (phones, transitions),
    ``states.npz`` and ``tree.json``; training on it gives a context-dependent model.

    Args:
        ali_dir: the alignments to convert.
        tree_dir: the tree (``tree.json``).
        out_dir: the senone alignment directory to write.
        shard: convert only utterances ``index, index + count, ...`` (alignment order) into a
            complete alignment directory of them (``merge-alignments`` combines the shards).
        nj: convert in up to ``nj`` local processes (at most one per
            :data:`~hybrid_asr.stages.shards.MIN_UTTERANCES_PER_LIGHT_JOB` utterances) and merge
            them into ``out_dir``.

    Raises:
        InputError: a file of ``ali_dir`` is missing (a senone directory without ``states.npz``).
    """
    from hybrid_asr.align.convert import to_senones

    if nj > 1:
        with np.load(Path(ali_dir) / "ali.npz") as archive:
            nj = local_jobs(nj, len(archive.files))
    if nj > 1:
        dirs = shard_dirs(out_dir, nj)
        run_local_shards(convert_to_senones, [(str(ali_dir), str(tree_dir), str(d), Shard(i, nj))
                                              for i, d in enumerate(dirs)], nj)
        merge_alignment_dirs(dirs, out_dir)
        remove_shard_dirs(out_dir)
        return
    tree = DecisionTree.load(Path(tree_dir) / "tree.json")
    _, marks, topo = load_alignment_dir(ali_dir)
    all_states = load_hmm_states(ali_dir)
    states = {u: all_states[u] for u in shard.select(list(all_states))}
    mine = {u: marks[u] for u in states}
    _save(Path(out_dir), to_senones(states, mine, topo, tree), mine, topo, [], tree, read_frame_shift(ali_dir),
          states)


def convert_topology(ali_dir: Union[str, Path], out_dir: Union[str, Path], num_states: int) -> HmmTopology:
    """Re-state an alignment directory (monophone or senones, with phone marks) in a topology of
    ``num_states`` states for every phone: a monophone alignment directory with the same phones
    and phone times (:func:`hybrid_asr.align.convert.to_topology`). With ``num_states=1`` this is
    a chain model's topology (one state per phone, crossed in one frame; Povey et al. 2016,
    section 2.3), whose tree ``build-tree --frame-subsampling-factor 3`` builds next.

    Utterances with a phone shorter than ``num_states`` frames are left out and listed in
    ``failed.txt``. The transition probabilities are estimated from the new alignments.

    Returns:
        The new topology.

    Raises:
        InputError: a file of ``ali_dir`` is missing or invalid.
        HybridAsrError: no utterance could be converted.
    """
    from hybrid_asr.align.convert import to_topology

    _, marks, topo = load_alignment_dir(ali_dir)
    new_topo = HmmTopology.create(topo.phones, topo.phone_ids, {}, default_states=num_states)
    alis, failed = {}, []
    for utt in marks:
        try:
            alis.update(to_topology({utt: marks[utt]}, topo, new_topo))
        except AlignmentError as e:
            log.warning("%s", e)
            failed.append(utt)
    new_topo.estimate_transitions(list(alis.values()))
    _save(Path(out_dir), alis, {u: marks[u] for u in alis}, new_topo, failed, None, read_frame_shift(ali_dir))
    return new_topo


@dataclass(frozen=True)
class AlignmentAgreement:
    """How one alignment directory agrees with a reference (:func:`compare_alignment_dirs`).

    Attributes:
        ali_dir: the compared directory.
        same_frames: frames whose phone is the reference's.
        frames: frames compared (utterances both have, with equal lengths).
        utterances: utterances compared.
        skipped: utterances of the reference that the directory lacks or has at another length.
    """

    ali_dir: str
    same_frames: int
    frames: int
    utterances: int
    skipped: int

    @property
    def percent(self) -> float:
        """Share of the compared frames with the reference's phone, in %."""
        return 100.0 * self.same_frames / max(self.frames, 1)


def compare_alignment_dirs(reference_dir: Union[str, Path],
                           ali_dirs: Sequence[Union[str, Path]]) -> List[AlignmentAgreement]:
    """Per-frame phone agreement of alignment directories with a reference one (monophone or
    senone alignments alike: their ``phones.npz`` phone marks are compared).

    Raises:
        InputError: a directory is incomplete, or its topology has other phones than the
            reference's (the marks' phone ids would mean other phones).
    """
    _, reference, topo = load_alignment_dir(reference_dir)
    out = []
    for d in ali_dirs:
        _, marks, other_topo = load_alignment_dir(d)
        if list(other_topo.phones) != list(topo.phones):
            raise InputError(Path(d) / "topology.json", f"other phones than {reference_dir}: cannot compare")
        same, frames, utts = phone_agreement(reference, marks)
        out.append(AlignmentAgreement(str(d), same, frames, utts, len(reference) - utts))
    return out
