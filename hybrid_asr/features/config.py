"""Typed configuration of the front end, saved as JSON next to features and models."""

from dataclasses import dataclass

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError
from hybrid_asr.utils import JsonDataclass

CMVN_MODES = ("utterance", "speaker", "global")
FEATURE_KINDS = ("fbank", "mfcc", "fmllr")
"""``fmllr`` features come from ``adapt-features`` (a SAT GMM's transforms), not from audio."""


@dataclass(frozen=True)
class FeatureConfig(JsonDataclass):
    """Front-end settings (Kaldi ``compute-fbank-feats`` / ``compute-mfcc-feats`` semantics).

    Attributes:
        kind: ``"fbank"`` (log mel filterbank), ``"mfcc"``, or ``"fmllr"``: speaker-adapted
            frames of a SAT GMM (its LDA+MLLT and every speaker's fMLLR transform applied to the
            source features, whose other settings are kept here), made by ``adapt-features``
            from a feature store, never from audio alone.
        sample_rate: rate in Hz the audio is resampled to before analysis.
        num_mel_bins: mel filters (fbank dimension; MFCC uses them before the DCT).
        num_ceps: cepstra kept for MFCC.
        deltas: append first and second order deltas (dimension x3).
        frame_length_ms: analysis window, milliseconds.
        frame_shift_ms: hop between frames, milliseconds (10 ms -> 100 frames per second).
        dither: standard deviation of the Gaussian noise added to every sample (int16 units)
            before analysis (Kaldi's default is 1.0); seeded, so features stay a function of
            the audio. 0 here: on AN4, 1.0 gave 12.29 / 9.44% test WER (monophone / TDNN)
            against 10.74 / 7.76% with 0 (docs/robustness.md); digital silence at decode time
            is handled by trimming (:mod:`hybrid_asr.features.trim`) instead.
        cmvn: how features are mean/variance normalized before the model: ``"utterance"``
            (statistics of the utterance itself), ``"speaker"`` (per-speaker statistics; new files
            decoded alone use the global training statistics) or ``"global"`` (training statistics).
        adapted_dim: kind ``"fmllr"``: the dimension of the adapted frames (0 otherwise).
        normalize_level: scale every piece of audio (a training segment, a decoded file or
            segment of one) before analysis so that its speech level (the 95th percentile of its
            10 ms frame energies) is ``level_dbfs``, by at most ``level_max_gain_db`` either
            way (:mod:`hybrid_asr.features.level`): the recording level leaves the features,
            which per-speaker or global CMVN and fMLLR need. False: the audio is analysed as
            recorded, as by every model and store made before this field existed
            (:meth:`from_dict`).
        level_dbfs: the speech level normalization scales to, dBFS: about the median speech
            level of AN4's clean recordings (measured on its test files by the session-19
            prototype: a level, not a WER; training and decoding use the same target, so its
            value hardly matters).
        level_max_gain_db: the most gain, dB, level normalization applies either way.
    """

    json_what = "feature config"

    kind: str = "fbank"
    sample_rate: int = bounded(16000, ge=1000, le=384000)
    num_mel_bins: int = bounded(40, ge=1)
    num_ceps: int = bounded(13, ge=1)
    deltas: bool = False
    frame_length_ms: float = bounded(25.0, gt=0)
    frame_shift_ms: float = bounded(10.0, gt=0)
    dither: float = bounded(0.0, ge=0)
    cmvn: str = "utterance"
    adapted_dim: int = bounded(0, ge=0)
    normalize_level: bool = True
    level_dbfs: float = bounded(-25.0, ge=-90, le=0)
    level_max_gain_db: float = bounded(40.0, ge=0)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.kind not in FEATURE_KINDS:
            raise ConfigError(f"feature kind must be one of {FEATURE_KINDS}, got {self.kind!r}")
        if (self.kind == "fmllr") != (self.adapted_dim > 0):
            raise ConfigError("adapted_dim is the dimension of 'fmllr' features and only of them")
        if self.cmvn not in CMVN_MODES:
            raise ConfigError(f"cmvn must be one of {CMVN_MODES}, got {self.cmvn!r}")

    @classmethod
    def from_dict(cls, fields: dict) -> "FeatureConfig":
        """A config as stored with features or a model. One written before level normalization
        existed has no ``normalize_level``: its audio was analysed as recorded (False), not
        at today's default level."""
        return cls(**{"normalize_level": False, **fields})

    @property
    def dim(self) -> int:
        """Feature dimension F of one frame, deltas included."""
        if self.kind == "fmllr":
            return self.adapted_dim
        base = self.num_mel_bins if self.kind == "fbank" else self.num_ceps
        return base * (3 if self.deltas else 1)

