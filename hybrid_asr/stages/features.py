"""Compute the feature store of a manifest split (lhotse supervisions -> features), optionally
with speed-perturbed copies."""

from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import torch
from lhotse import Recording, SupervisionSegment

from hybrid_asr.data.manifests import read_split
from hybrid_asr.features.audio import load_recording
from hybrid_asr.features.augment import COPY_SUFFIX, AugmentConfig, augment_waveform
from hybrid_asr.features.config import FeatureConfig
from hybrid_asr.features.storage import (AudioLoader, StoreConfig, UtteranceAudio, compute_feature_store,
                                         merge_feature_stores)
from hybrid_asr.stages.shards import Shard, remove_shard_dirs, run_local_shards, shard_dirs


def lhotse_loader(recording: Recording, supervision: SupervisionSegment) -> AudioLoader:
    """An audio loader for a supervision's segment on the supervision's own channel(s)
    (``supervision.channel``: in a two-channel recording with one speaker per channel, each
    speaker's utterances are read from their channel only), through
    :func:`~hybrid_asr.features.audio.load_recording`: lhotse applies the recording's transforms
    (e.g. speed perturbation), then the same checks, warnings, downmix and resampling as
    ``decode``'s :func:`~hybrid_asr.features.audio.load_audio`."""

    def load(rate: int) -> torch.Tensor:
        return load_recording(recording, rate, supervision.start, supervision.duration, supervision.channel)

    return load


def augmented_loader(load: AudioLoader, config: AugmentConfig, key: str) -> AudioLoader:
    """``load`` followed by :func:`~hybrid_asr.features.augment.augment_waveform` (seeded by ``key``)."""
    return lambda rate: augment_waveform(load(rate), rate, config, key)


def split_segments(recordings, supervisions, speed_perturb: Sequence[float] = (),
                   augment: Optional[AugmentConfig] = None) -> List[UtteranceAudio]:
    """The utterances of a split as :func:`compute_feature_store` segments, speed-perturbed copies
    after the originals, augmented when ``augment`` is given (see :func:`compute_split_features`)."""
    segments = []
    factors = [f for f in speed_perturb if f != 1.0]
    for factor in [1.0] + factors:
        for sup in supervisions:
            rec = recordings[sup.recording_id]
            if factor == 1.0:
                segments.append(UtteranceAudio(sup.id, sup.speaker, sup.text, lhotse_loader(rec, sup)))
            else:
                psup = sup.perturb_speed(factor, rec.sampling_rate)
                load = lhotse_loader(rec.perturb_speed(factor), psup)
                if augment is not None:
                    load = augmented_loader(load, augment, psup.id)
                segments.append(UtteranceAudio(psup.id, f"{sup.speaker}_sp{factor}", sup.text, load))
    if augment is not None and not factors:
        for sup in supervisions:
            load = augmented_loader(lhotse_loader(recordings[sup.recording_id], sup), augment,
                                    sup.id + COPY_SUFFIX)
            segments.append(UtteranceAudio(sup.id + COPY_SUFFIX, sup.speaker + COPY_SUFFIX, sup.text, load))
    return segments


def compute_split_features(
    manifest_dir: Union[str, Path],
    split: str,
    config: FeatureConfig,
    out_dir: Union[str, Path],
    speed_perturb: Sequence[float] = (),
    shard: Shard = Shard(),
    nj: int = 1,
    augment: Optional[AugmentConfig] = None,
    store: StoreConfig = StoreConfig(),
) -> Tuple[int, List[str]]:
    """Features of every supervision of a split, stored with :func:`compute_feature_store`.

    Each supervision becomes one utterance, read from its own channel(s) (several are averaged;
    :func:`lhotse_loader`). With ``speed_perturb``
    factors (e.g. ``(0.9, 1.1)``), speed-perturbed copies are added (Ko et al. 2015, "Audio
    augmentation for speech recognition"): utterance ``<id>_sp<factor>`` of speaker
    ``<speaker>_sp<factor>`` (its own CMVN statistics), made by lhotse's ``perturb_speed``.
    With ``augment``, those copies are also augmented (:mod:`hybrid_asr.features.augment`:
    padding, noise, band-limiting, gain), or, without speed factors, one augmented copy
    ``<id>_aug`` of speaker ``<speaker>_aug`` is added; the config is saved as
    ``augment_config.json`` in the store.

    Args:
        manifest_dir: directory with ``recordings_<split>.jsonl.gz`` and ``supervisions_<split>.jsonl.gz``.
        split: split name.
        config: front-end settings.
        out_dir: store directory to write.
        speed_perturb: extra speed factors (1.0 is always included once, unperturbed).
        shard: compute only this shard's contiguous block of the utterances (e.g. one task of an
            array job); :func:`~hybrid_asr.features.storage.merge_feature_stores` joins the shards
            into the store one job would have written. Contiguous blocks, not round robin, so that
            the merged store keeps the utterance order.
        nj: compute ``nj`` blocks in parallel processes (``<out>/shards/<i>``), merge, remove them.
        augment: augmentation of the copies (None: none).
        store: storage precision of the frames.

    Returns:
        ``(utterances stored, failed utterance ids)``.

    Raises:
        InputError: the manifests are missing or malformed.
    """
    if augment is not None:  # before the store's index, which marks it complete
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        augment.save(Path(out_dir) / "augment_config.json")
    if nj > 1:
        dirs = shard_dirs(out_dir, nj)
        results = run_local_shards(_features_job, [(str(manifest_dir), split, config, str(d), tuple(speed_perturb),
                                                    Shard(i, nj), augment, store) for i, d in enumerate(dirs)], nj)
        stored = merge_feature_stores(dirs, out_dir)
        remove_shard_dirs(out_dir)
        return stored, [u for _, failed in results for u in failed]
    recordings, supervisions = read_split(Path(manifest_dir), split)
    segments = shard.block(split_segments(recordings, supervisions, speed_perturb, augment))
    return compute_feature_store(segments, config, out_dir, store)


def _features_job(manifest_dir: str, split: str, config: FeatureConfig, out_dir: str, speed_perturb, shard: Shard,
                  augment: Optional[AugmentConfig], store: StoreConfig):
    return compute_split_features(manifest_dir, split, config, out_dir, speed_perturb, shard, augment=augment,
                                  store=store)
