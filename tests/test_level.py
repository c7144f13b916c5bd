"""Level normalization before the features (hybrid_asr.features.level, FeatureConfig.normalize_level)."""

import json

import numpy as np
import pytest
import torch

from hybrid_asr.errors import ConfigError
from hybrid_asr.features import FeatureConfig, FeatureStore, compute_features
from hybrid_asr.features.level import frame_energies_db, normalize_level, speech_level_dbfs

RATE = 16000


def _speech_like(seconds=2.0, seed=0):
    """Bursts of noise (syllables, 150 ms on / 100 ms off at -20 dBFS) between 0.5 s of silence at
    -70 dBFS: a piece that is half speech."""
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * RATE)
    x = torch.randn(n, generator=g) * 32768 * 10 ** (-70 / 20)
    on = (torch.arange(n) % int(0.25 * RATE)) < int(0.15 * RATE)
    middle = (torch.arange(n) >= RATE // 2) & (torch.arange(n) < n - RATE // 2)
    return torch.where(on & middle, torch.randn(n, generator=g) * 32768 * 10 ** (-20 / 20), x)


def test_speech_level_is_the_level_of_the_loud_frames_whatever_surrounds_them():
    wave = _speech_like()
    assert speech_level_dbfs(wave, RATE) == pytest.approx(-20.0, abs=0.5)
    padded = torch.cat([torch.zeros(RATE), wave, torch.zeros(RATE)])  # a third is speech now
    assert speech_level_dbfs(padded, RATE) == pytest.approx(-20.0, abs=0.5)
    assert speech_level_dbfs(wave * 10 ** (-40 / 20), RATE) == pytest.approx(-60.0, abs=0.5)
    assert speech_level_dbfs(torch.zeros(RATE), RATE) == pytest.approx(-90.3, abs=0.1)
    assert speech_level_dbfs(torch.zeros(10), RATE) == pytest.approx(-90.3, abs=0.1)  # shorter than a frame


def test_normalize_level_reaches_the_target_and_caps_the_gain():
    wave = _speech_like()
    for gain in (-40.0, -10.0, 0.0, 6.0):
        out, applied = normalize_level(wave * 10 ** (gain / 20), RATE, -25.0, 40.0)
        assert applied == pytest.approx(-5.0 - gain, abs=0.5)
        assert speech_level_dbfs(out, RATE) == pytest.approx(-25.0, abs=0.05)
        assert out.dtype == torch.float32
    silence = torch.zeros(RATE)
    out, applied = normalize_level(silence, RATE, -25.0, 40.0)
    assert applied == 40.0 and torch.equal(out, silence)  # raised by the cap only, and zeros stay zeros
    _, applied = normalize_level(wave * 10 ** (-60 / 20), RATE, -25.0, 30.0)
    assert applied == 30.0
    assert np.allclose(frame_energies_db(torch.zeros(RATE), RATE), -90.309, atol=1e-3)


def _quantized(wave):
    return wave.round().clamp(-32768, 32767)


def test_features_do_not_depend_on_the_recording_level_when_normalized():
    wave = _quantized(_speech_like())
    quiet = _quantized(wave * 10 ** (-30 / 20))  # a 30 dB quieter recording of the same sound, in 16 bits
    for kind in ("fbank", "mfcc"):
        on = FeatureConfig(kind=kind)
        off = FeatureConfig(kind=kind, normalize_level=False)
        assert on.normalize_level and on.level_dbfs == -25.0  # on by default
        # the energy terms move by 30 dB without it, hardly at all with it (only rounding differs)
        loud_off, quiet_off = compute_features(wave, off), compute_features(quiet, off)
        loud_on, quiet_on = compute_features(wave, on), compute_features(quiet, on)
        # 25 ms frames wholly inside the bursts between 0.5 and 1.5 s (burst k spans 250k to 250k + 150 ms)
        burst = [i for k in range(2, 6) for i in range(25 * k, 25 * k + 13)]
        shift_off = (loud_off[burst] - quiet_off[burst]).mean(0).abs().max().item()
        shift_on = (loud_on[burst] - quiet_on[burst]).mean(0).abs().max().item()
        assert shift_off > 5.0 and shift_on < 0.02 * shift_off, (kind, shift_off, shift_on)
    # a piece already at the target level is analysed exactly as recorded
    at_target, _ = normalize_level(wave, RATE, -25.0, 40.0)
    assert torch.allclose(compute_features(at_target, FeatureConfig(normalize_level=False)),
                          compute_features(wave, FeatureConfig()))


def test_configs_stored_before_level_normalization_keep_analysing_audio_as_recorded(tmp_path):
    stored = {k: v for k, v in FeatureConfig(kind="mfcc").__dict__.items() if k != "normalize_level"}
    (tmp_path / "feature_config.json").write_text(json.dumps(stored))
    assert FeatureConfig.load(tmp_path / "feature_config.json").normalize_level is False
    assert FeatureConfig.from_dict(stored).normalize_level is False
    FeatureConfig(level_dbfs=-12.0).save(tmp_path / "new.json")
    assert FeatureConfig.load(tmp_path / "new.json").level_dbfs == -12.0
    assert FeatureConfig.load(tmp_path / "new.json").normalize_level
    FeatureConfig(normalize_level=False).save(tmp_path / "off.json")
    assert FeatureConfig.load(tmp_path / "off.json").normalize_level is False
    with pytest.raises(ConfigError, match="level_dbfs"):
        FeatureConfig(level_dbfs=3.0)
    with pytest.raises(ConfigError, match="level_max_gain_db"):
        FeatureConfig(level_max_gain_db=-1.0)


def test_a_feature_store_written_before_level_normalization_reads_as_unnormalized(tmp_path):
    from hybrid_asr.features import compute_feature_store

    wave = _quantized(_speech_like())
    segments = [("u1", "s1", "ONE", lambda rate: wave)]
    compute_feature_store(segments, FeatureConfig(normalize_level=False), tmp_path / "store")
    assert FeatureStore(tmp_path / "store").config.normalize_level is False
    index = json.loads((tmp_path / "store" / "index.json").read_text())
    del index["config"]["normalize_level"]  # as written before the field existed
    (tmp_path / "store" / "index.json").write_text(json.dumps(index))
    store = FeatureStore(tmp_path / "store")
    assert store.config.normalize_level is False
    assert torch.allclose(store.raw("u1"), compute_features(wave, FeatureConfig(normalize_level=False)))
