"""Front end: framing, resampling/downmix, CMVN, splicing, feature store."""

import json
import math

import numpy as np
import pytest
import torch
import torchaudio

from hybrid_asr.errors import InputError
from hybrid_asr.features import (
    CmvnStats,
    FeatureConfig,
    FeatureStore,
    compute_feature_store,
    compute_features,
    load_audio,
    splice,
)
from hybrid_asr.features.extract import num_frames


def _tone(seconds, rate, freq=440.0, channels=1):
    t = torch.arange(int(seconds * rate)) / rate
    wave = 0.3 * torch.sin(2 * torch.pi * freq * t)
    return wave.repeat(channels, 1)


def test_fbank_frames_and_dim():
    cfg = FeatureConfig()
    feats = compute_features(_tone(1.0, 16000)[0] * 32768, cfg)
    assert feats.shape == (98, 40)  # 1 + (16000 - 400) // 160
    assert feats.dtype == torch.float32
    assert num_frames(16000, cfg) == 98


def test_mfcc_with_deltas_dim():
    cfg = FeatureConfig(kind="mfcc", num_mel_bins=23, num_ceps=13, deltas=True)
    feats = compute_features(_tone(0.5, 16000)[0] * 32768, cfg)
    assert feats.shape[1] == cfg.dim == 39


def test_too_short_audio_raises():
    with pytest.raises(ValueError, match="too short"):
        compute_features(torch.zeros(100), FeatureConfig())


def test_load_audio_downmixes_and_resamples(tmp_path):
    path = tmp_path / "stereo44k.wav"
    wave = _tone(1.0, 44100, channels=2)
    wave[1] *= 0.0  # right channel silent: the mono mix is half the left channel
    torchaudio.save(str(path), wave, 44100)
    mono = load_audio(path, 16000)
    assert mono.shape == (16000,)
    assert float(mono.abs().max()) == pytest.approx(0.15 * 32768, rel=0.02)


def test_load_audio_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.wav: audio file does not exist"):
        load_audio(tmp_path / "missing.wav", 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav file at all")
    with pytest.raises(InputError, match="bad.wav: unsupported format or not audio"):
        load_audio(bad, 16000)


def test_splice_shape_and_edges():
    feats = torch.arange(12, dtype=torch.float32).reshape(4, 3)  # rows 0..3
    out = splice(feats, 2, 1)
    assert out.shape == (4, 4 * 3)
    # row 0: frames -2,-1 clamp to 0, then 0, 1
    assert out[0].tolist() == feats[[0, 0, 0, 1]].reshape(-1).tolist()
    # last row: frames 1, 2, 3, 4 -> 4 clamps to 3
    assert out[3].tolist() == feats[[1, 2, 3, 3]].reshape(-1).tolist()


def test_cmvn_normalizes_and_merges():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(50, 4, generator=gen) * 3 + 7
    b = torch.randn(30, 4, generator=gen) * 2 - 1
    stats = CmvnStats.from_features(a)
    norm = stats.apply(a)
    assert torch.allclose(norm.mean(0), torch.zeros(4), atol=1e-4)
    assert torch.allclose(norm.std(0, unbiased=False), torch.ones(4), atol=1e-3)
    merged = CmvnStats.merge([CmvnStats.from_features(a), CmvnStats.from_features(b)])
    whole = CmvnStats.from_features(torch.cat([a, b]))
    assert merged.count == whole.count == 80
    np.testing.assert_allclose(merged.sum, whole.sum, rtol=1e-10)
    np.testing.assert_allclose(merged.sumsq, whole.sumsq, rtol=1e-10)
    back = CmvnStats.from_dict(json.loads(json.dumps(merged.to_dict())))
    np.testing.assert_allclose(back.sum, merged.sum)


def test_feature_store_roundtrip_and_bad_file(tmp_path):
    rate = 8000
    good1, good2, bad = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "bad.wav"
    torchaudio.save(str(good1), _tone(0.5, rate), rate)
    torchaudio.save(str(good2), _tone(0.3, rate, freq=880), rate)
    bad.write_bytes(b"garbage")
    cfg = FeatureConfig(sample_rate=rate, num_mel_bins=23)
    def loader(path):
        return lambda rate: load_audio(path, rate)

    segments = [("u1", "s1", "ONE", loader(good1)), ("u2", "s1", "TWO", loader(bad)), ("u3", "s2", "THREE", loader(good2))]
    stored, failed = compute_feature_store(segments, cfg, tmp_path / "store")
    assert stored == 2 and failed == ["u2"]
    assert "u2" in (tmp_path / "store" / "failed.txt").read_text()
    store = FeatureStore(tmp_path / "store")
    assert [u.id for u in store.utterances] == ["u1", "u3"]
    expected = compute_features(load_audio(good2, rate), cfg)
    assert torch.allclose(store.raw("u3"), expected)
    assert store.utterance("u3").offset == store.utterance("u1").frames
    # default (utterance) CMVN and a single-utterance speaker both give zero mean
    assert store.config.cmvn == "utterance"
    assert torch.allclose(store.normalized("u3").mean(0), torch.zeros(23), atol=1e-3)
    assert torch.allclose(store.normalized("u3", "speaker"), store.normalized("u3"), atol=1e-4)
    assert store.global_cmvn.count == store.num_frames
    both = torch.cat([store.raw("u1"), store.raw("u3")])
    assert torch.allclose(store.normalized("u3", "global"), CmvnStats.from_features(both).apply(store.raw("u3")),
                          atol=1e-4)
    other = CmvnStats.from_features(store.raw("u1"))
    assert torch.allclose(store.normalized("u3", "global", other), other.apply(store.raw("u3")))


def test_speaker_cmvn_pools_the_speakers_utterances(tmp_path):
    rate = 8000
    segments = [(f"u{i}", "spk", "X", (lambda r, f=f: _tone(0.4, rate, freq=f)[0] * 32768))
                for i, f in enumerate((300, 1200))]
    compute_feature_store(segments, FeatureConfig(sample_rate=rate, num_mel_bins=23, cmvn="speaker"), tmp_path)
    store = FeatureStore(tmp_path)
    assert store.config.cmvn == "speaker"
    pooled = torch.cat([store.normalized("u0"), store.normalized("u1")])
    assert torch.allclose(pooled.mean(0), torch.zeros(23), atol=1e-3)
    assert not torch.allclose(store.normalized("u0").mean(0), torch.zeros(23), atol=1e-2)


def test_feature_store_requires_index(tmp_path):
    with pytest.raises(InputError, match="not a feature store"):
        FeatureStore(tmp_path)


def _speech_like(seconds=1.0, rate=16000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate)) / rate
    tones = sum(torch.sin(2 * math.pi * f * t + k) for k, f in enumerate((180.0, 700.0, 1300.0, 2400.0)))
    return (2000 * tones + 50 * torch.randn(t.numel(), generator=gen)).float()


def _band_energy(x, rate, lo, hi):
    spec = torch.fft.rfft(x.double()).abs() ** 2
    freqs = torch.fft.rfftfreq(x.numel(), 1 / rate)
    return float(spec[(freqs >= lo) & (freqs < hi)].sum())


def test_augmentation_is_seeded_per_utterance_and_each_step_does_what_it_says():
    from hybrid_asr.features.augment import FULL_SCALE, AugmentConfig, augment_waveform

    rate, wave = 16000, _speech_like()
    default = AugmentConfig()
    assert torch.equal(augment_waveform(wave, rate, default, "u1"), augment_waveform(wave, rate, default, "u1"))
    copies = [augment_waveform(wave, rate, AugmentConfig(noise_prob=1.0), f"u{i}") for i in range(4)]
    assert all(not torch.equal(copies[0], c) for c in copies[1:])  # other utterance, other noise
    off = dict(pad_prob=0.0, noise_prob=0.0, bandlimit_prob=0.0, gain_prob=0.0)
    assert torch.equal(augment_waveform(wave, rate, AugmentConfig(**off), "u1"), wave)
    # additive noise at exactly 10 dB SNR
    noisy = augment_waveform(wave, rate, AugmentConfig(**{**off, "noise_prob": 1.0, "snr_min_db": 10.0,
                                                          "snr_max_db": 10.0}), "u1")
    snr = 10 * math.log10(float(wave.double().pow(2).mean() / (noisy - wave).double().pow(2).mean()))
    assert snr == pytest.approx(10.0, abs=0.3)
    # band-limiting to 8 kHz sampling removes what lies above 4 kHz, keeps what lies below
    high = wave + 2000 * torch.sin(2 * math.pi * 6000.0 * torch.arange(wave.numel()) / rate)
    narrow = augment_waveform(high, rate, AugmentConfig(**{**off, "bandlimit_prob": 1.0}), "u1")
    assert narrow.numel() == high.numel()
    assert _band_energy(narrow, rate, 4200, 8000) < 1e-3 * _band_energy(high, rate, 4200, 8000)
    assert _band_energy(narrow, rate, 100, 3500) == pytest.approx(_band_energy(high, rate, 100, 3500), rel=0.05)
    # gain, clipped at full scale
    louder = augment_waveform(wave, rate, AugmentConfig(**{**off, "gain_prob": 1.0, "gain_min_db": 6.0,
                                                           "gain_max_db": 6.0}), "u1")
    assert float(louder.abs().max()) <= FULL_SCALE and torch.allclose(louder, wave * 10 ** 0.3, atol=0.5)
    clipped = augment_waveform(wave * 4, rate, AugmentConfig(**{**off, "gain_prob": 1.0, "gain_min_db": 6.0,
                                                                "gain_max_db": 6.0}), "u1")
    assert float(clipped.max()) == FULL_SCALE - 1 and float(clipped.min()) == -FULL_SCALE
    # padding with digital silence: 0.5 s at each end, the speech untouched in between
    pad = AugmentConfig(**{**off, "pad_prob": 1.0, "pad_zero_prob": 1.0, "pad_min_seconds": 0.5,
                           "pad_max_seconds": 0.5})
    padded = augment_waveform(wave, rate, pad, "u1")
    assert padded.numel() == wave.numel() + 2 * 8000
    assert torch.all(padded[:8000] == 0) and torch.all(padded[-8000:] == 0) and torch.equal(padded[8000:-8000], wave)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        AugmentConfig(noise_prob=1.5)
    with pytest.raises(ValueError, match="must not exceed"):
        AugmentConfig(snr_min_db=30.0, snr_max_db=10.0)


def test_gain_requantize_rounds_a_lowered_copy_to_16_bits_with_dither():
    from hybrid_asr.features.augment import AugmentConfig, augment_waveform

    rate, wave = 16000, _speech_like()
    off = dict(pad_prob=0.0, noise_prob=0.0, bandlimit_prob=0.0, gain_prob=1.0, gain_min_db=-40.0, gain_max_db=-40.0)
    plain = augment_waveform(wave, rate, AugmentConfig(**off), "u1")
    quiet = augment_waveform(wave, rate, AugmentConfig(**off, gain_requantize=True), "u1")
    assert not torch.equal(plain, torch.round(plain))  # without: a float copy, 100x smaller
    assert torch.equal(quiet, torch.round(quiet))  # with: integer samples, as a 16-bit file holds
    err = (quiet.double() - plain.double())
    assert err.abs().max() <= 1.5 and 0.2 < float(err.pow(2).mean()) < 0.5  # TPDF dither of +-1 LSB, then rounding
    louder = dict(off, gain_min_db=6.0, gain_max_db=6.0)
    assert torch.equal(augment_waveform(wave, rate, AugmentConfig(**louder, gain_requantize=True), "u1"),
                       augment_waveform(wave, rate, AugmentConfig(**louder), "u1"))  # only lowered copies


def test_per_utterance_cmvn_is_stored_at_extraction_and_used_without_reading_frames(tmp_path, monkeypatch):
    """utt_cmvn.npy holds each utterance's statistics (equal to those of its frames as read
    back), merged stores carry them (also from a shard written without them), and ChunkData's
    start-up reads no frames; a damaged file is a one-line InputError."""
    from hybrid_asr.features.storage import UTT_CMVN_FILE, merge_feature_stores
    from hybrid_asr.training.chunks import ChunkData

    rate = 8000
    for k, freqs in enumerate(((300, 1200), (700,))):
        segments = [(f"s{k}u{i}", f"spk{k}", "X", (lambda r, f=f: _tone(0.4 + 0.1 * i, rate, freq=f)[0] * 32768))
                    for i, f in enumerate(freqs)]
        compute_feature_store(segments, FeatureConfig(sample_rate=rate, num_mel_bins=23), tmp_path / f"f{k}")
    (tmp_path / "f1" / UTT_CMVN_FILE).unlink()  # a store from before the file existed
    merge_feature_stores([tmp_path / "f0", tmp_path / "f1"], tmp_path / "merged")
    for name in ("f0", "f1", "merged"):
        store = FeatureStore(tmp_path / name)
        for u in store.utterances:
            got, want = store.utterance_cmvn(u.id), CmvnStats.from_features(store.raw(u.id))
            assert got.count == want.count == u.frames
            assert np.array_equal(got.sum, want.sum) and np.array_equal(got.sumsq, want.sumsq)
    assert np.load(tmp_path / "merged" / UTT_CMVN_FILE).shape == (3, 1 + 2 * 23)

    store = FeatureStore(tmp_path / "merged")
    alis = {u.id: np.zeros(u.frames, dtype=np.int64) for u in store.utterances}
    want = ChunkData(store, alis, list(alis), 2, 2, 8).batch([0, 1, 2])[0]

    def no_reads(*args):
        raise AssertionError("frames read at start-up")

    store = FeatureStore(tmp_path / "merged")
    monkeypatch.setattr(store, "read_into", no_reads)
    data = ChunkData(store, alis, list(alis), 2, 2, 8)
    monkeypatch.undo()
    assert torch.equal(data.batch([0, 1, 2])[0], want)

    np.save(tmp_path / "merged" / UTT_CMVN_FILE, np.zeros((2, 3)))
    with pytest.raises(InputError, match=r"utt_cmvn.npy: expected float64 \[3, 47\]"):
        FeatureStore(tmp_path / "merged").utterance_cmvn("s0u0")


def test_float16_store_reads_back_as_float32_and_merges_only_with_its_kind(tmp_path):
    """A float16 store is half the size, reads back as float32 within float16 rounding of the
    float32 store's frames, keeps the statistics of its rounded frames, merges with float16
    shards and refuses float32 ones."""
    from hybrid_asr.features.storage import StoreConfig, merge_feature_stores
    from hybrid_asr.errors import ConfigError

    rate = 8000
    segments = [(f"u{i}", "spk", "X", (lambda r, f=f: _tone(0.5, rate, freq=f)[0] * 32768)) for i, f in
                enumerate((300, 1200))]
    cfg = FeatureConfig(sample_rate=rate, num_mel_bins=23)
    compute_feature_store(segments, cfg, tmp_path / "f32")
    compute_feature_store(segments, cfg, tmp_path / "f16", StoreConfig("float16"))
    full, half = FeatureStore(tmp_path / "f32"), FeatureStore(tmp_path / "f16")
    assert half.dtype == np.float16 and full.dtype == np.float32
    header = 128
    assert (tmp_path / "f16" / "feats.npy").stat().st_size - header == ((tmp_path / "f32" / "feats.npy").stat().st_size
                                                                       - header) // 2
    for u in ("u0", "u1"):
        x = half.raw(u)
        assert x.dtype == torch.float32
        assert torch.equal(x, full.raw(u).half().float())  # exactly the float32 frames rounded
        stats = half.utterance_cmvn(u)
        assert np.array_equal(stats.sum, CmvnStats.from_features(x).sum)
    compute_feature_store(segments[:1], cfg, tmp_path / "a", StoreConfig("float16"))
    compute_feature_store(segments[1:], cfg, tmp_path / "b", StoreConfig("float16"))
    merge_feature_stores([tmp_path / "a", tmp_path / "b"], tmp_path / "ab")
    merged = FeatureStore(tmp_path / "ab")
    assert merged.dtype == np.float16 and torch.equal(merged.raw("u1"), half.raw("u1"))
    with pytest.raises(InputError, match="stores its frames as float32"):
        merge_feature_stores([tmp_path / "a", tmp_path / "f32"], tmp_path / "bad")
    with pytest.raises(ConfigError, match="dtype must be one of float32, float16"):
        StoreConfig("bfloat16")
