"""Compute the feature store of a manifest split (lhotse supervisions -> features)."""

from pathlib import Path
from typing import List, Tuple, Union

from hybrid_asr.data.manifests import read_split
from hybrid_asr.features.config import FeatureConfig
from hybrid_asr.features.storage import compute_feature_store


def compute_split_features(
    manifest_dir: Union[str, Path], split: str, config: FeatureConfig, out_dir: Union[str, Path]
) -> Tuple[int, List[str]]:
    """Features of every supervision of a split, stored with :func:`compute_feature_store`.

    Each supervision becomes one utterance (its segment of the recording's first source file,
    all channels downmixed).

    Args:
        manifest_dir: directory with ``recordings_<split>.jsonl.gz`` and ``supervisions_<split>.jsonl.gz``.
        split: split name.
        config: front-end settings.
        out_dir: store directory to write.

    Returns:
        ``(utterances stored, failed utterance ids)``.

    Raises:
        InputError: the manifests are missing or malformed.
    """
    recordings, supervisions = read_split(Path(manifest_dir), split)
    segments = []
    for sup in supervisions:
        rec = recordings[sup.recording_id]
        path = Path(rec.sources[0].source)
        segments.append((sup.id, sup.speaker, sup.text, path, float(sup.start), float(sup.duration)))
    return compute_feature_store(segments, config, out_dir)
