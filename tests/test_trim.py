"""The decode-time trimmer keeps the speech at any recording level and removes what is around it:
digital silence of any length, and steady noise louder than the recording's own background."""

import numpy as np
import pytest
import soundfile
import torch
from conftest import AN4, corpus_mark

from hybrid_asr.features.level import frame_energies_db
from hybrid_asr.features.trim import TrimConfig, speech_bounds

pytestmark = corpus_mark(AN4)

# "RUBOUT G M E F THREE NINE": the file the quiet-speech case used; weak F and TH sounds
WAV = AN4 / "wav" / "an4test_clstk" / "fcaw" / "an406-fcaw-b.wav"
RATE = 16000


def _int16(x: np.ndarray, gain_db: float = 0.0, seed: int = 0) -> torch.Tensor:
    """``x`` (float in [-1, 1]) at ``gain_db``, written to 16 bits as ``sox vol`` writes it (TPDF dither)."""
    rng = np.random.default_rng(seed)
    y = x * 10 ** (gain_db / 20) * 32768
    if gain_db < 0:
        y = y + rng.uniform(-0.5, 0.5, len(y)) + rng.uniform(-0.5, 0.5, len(y))
    return torch.from_numpy(np.clip(np.round(y), -32768, 32767)).float()


@pytest.fixture(scope="module")
def speech():
    x, rate = soundfile.read(str(WAV), dtype="float64")
    assert rate == RATE
    return x


def _speech_span(x: np.ndarray):
    """Where the recording is more than 20 dB above its own background (clearly speech), seconds."""
    e = frame_energies_db(torch.from_numpy(x * 32768).float(), RATE)
    loud = np.nonzero(e > np.percentile(e, 10) + 20)[0]
    return loud[0] / 100, (loud[-1] + 1) / 100


@pytest.mark.parametrize("gain_db", [0, -20, -30, -40])
def test_quiet_speech_is_kept_whole(speech, gain_db):
    """At -30 and -40 dB the background is dither and the weak sounds a few LSB: the trimmed piece
    still holds every frame of clear speech the loud recording has, with the same margin."""
    first, end = _speech_span(speech)
    bounds = speech_bounds(_int16(speech, gain_db), RATE)
    loud = speech_bounds(_int16(speech), RATE)
    assert bounds is not None
    assert bounds[0] / RATE <= first and bounds[1] / RATE >= end
    assert abs(bounds[0] - loud[0]) <= 0.15 * RATE and abs(bounds[1] - loud[1]) <= 0.15 * RATE


@pytest.mark.parametrize("seconds", [2, 30])
def test_digital_silence_around_speech_is_removed(speech, seconds):
    zeros = np.zeros(seconds * RATE)
    padded = speech_bounds(_int16(np.concatenate([zeros, speech, zeros])), RATE)
    alone = speech_bounds(_int16(speech), RATE)
    assert padded == (alone[0] + len(zeros), alone[1] + len(zeros))


def test_steady_noise_louder_than_the_background_is_removed(speech):
    """2 s of -50 dBFS white noise on each side (AN4's own background is about -67 dBFS): cut back to
    the speech plus at most the margin and the recording's own lead-in and tail."""
    rng = np.random.default_rng(1)
    n = 2 * RATE
    noisy = np.concatenate([rng.normal(0, 10 ** (-50 / 20), n), speech, rng.normal(0, 10 ** (-50 / 20), n)])
    first, end = speech_bounds(_int16(noisy), RATE)
    assert n - 0.2 * RATE <= first <= n + 0.3 * RATE
    assert n + len(speech) - 0.3 * RATE <= end <= n + len(speech) + 0.2 * RATE


def test_no_speech_gives_none():
    rng = np.random.default_rng(2)
    assert speech_bounds(torch.zeros(3 * RATE), RATE) is None  # digital silence
    lsb = torch.from_numpy(rng.integers(-1, 2, 3 * RATE)).float()
    assert speech_bounds(lsb, RATE) is None  # +-1 LSB
    assert speech_bounds(torch.from_numpy(rng.normal(0, 100, 3 * RATE)).float(), RATE) is None  # steady noise


def test_trim_config_bounds():
    with pytest.raises(ValueError, match="^min_loud_frames \\(11\\) must not exceed window_frames \\(10\\)$"):
        TrimConfig(min_loud_frames=11)
    with pytest.raises(ValueError, match="^margin_seconds must be in \\[0, 10\\], got -1$"):
        TrimConfig(margin_seconds=-1)


def test_lsb_padding_is_dropped_but_a_quiet_recordings_own_dither_is_kept(speech):
    """+-1 LSB noise around a recording whose pauses are far louder is foreign padding, cut like
    digital silence; the same level as a -40 dB recording's own background stays in its margin."""
    rng = np.random.default_rng(3)
    lsb = rng.integers(-1, 2, 3 * RATE) / 32768.0
    padded = speech_bounds(_int16(np.concatenate([lsb, speech, lsb])), RATE)
    alone = speech_bounds(_int16(speech), RATE)
    assert padded == (alone[0] + len(lsb), alone[1] + len(lsb))
    quiet = _int16(speech, -40)
    first, _ = speech_bounds(quiet, RATE)
    energy = frame_energies_db(quiet, RATE)
    assert first > 0 and energy[first // 160] < -85  # the lead-in was cut to a margin of dither, kept
