"""espeak-ng through the espeakng-loader wheel: both languages and genders, rate, pitch, threads."""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
import pytest

from tts.base import GENDERS, LANGUAGES, Gender, Language, Voice
from tts.errors import InvalidTTSSetting, UnsupportedVoice
from tts.espeak import SAMPLE_RATE, EspeakEngine
from tts.normalize import normalize
from tts.settings import TTSSettings

pytestmark = pytest.mark.integration

SENTENCES: dict[Language, str] = {
    "us": "Hello, this is your dentist. Press one to confirm your appointment tomorrow at 9am.",
    "es": "Hola, le habla su dentista. Oprima uno para confirmar su cita de mañana a las 9am.",
}


def median_f0(pcm: npt.NDArray[np.int16], rate: int) -> float:
    """Median fundamental frequency of voiced 40 ms frames, by autocorrelation (60-500 Hz)."""
    x = pcm.astype(np.float64) / 32768
    size, hop = int(0.04 * rate), int(0.01 * rate)
    low, high = rate // 500, rate // 60
    estimates = []
    for start in range(0, len(x) - size, hop):
        frame = x[start : start + size]
        if np.sqrt(np.mean(frame**2)) < 0.02:
            continue
        frame = frame - frame.mean()
        ac = np.correlate(frame, frame, "full")[size - 1 :]
        lag = low + int(np.argmax(ac[low:high]))
        if ac[lag] > 0.3 * ac[0]:
            estimates.append(rate / lag)
    return float(np.median(estimates)) if estimates else 0.0


def rms_dbfs(pcm: npt.NDArray[np.int16]) -> float:
    return float(20 * np.log10(np.sqrt(np.mean((pcm.astype(np.float64) / 32768) ** 2)) + 1e-12))


@pytest.fixture(scope="module")
def engine() -> EspeakEngine:
    return EspeakEngine(TTSSettings())


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("gender", GENDERS)
def test_speech_is_audible_and_of_plausible_length(
    engine: EspeakEngine, language: Language, gender: Gender
) -> None:
    text = normalize(SENTENCES[language], language)
    speech = engine.synthesize(text, Voice(language, gender))
    assert speech.rate == SAMPLE_RATE and speech.pcm.dtype == np.int16
    words = len(text.split())
    assert words / 160 * 60 * 0.6 < speech.seconds < words / 160 * 60 * 1.8  # 160 wpm, +-
    assert rms_dbfs(speech.pcm) > -30


@pytest.mark.parametrize("language", LANGUAGES)
def test_female_voice_is_clearly_higher_than_male(engine: EspeakEngine, language: Language) -> None:
    text = SENTENCES[language]
    male = median_f0(engine.synthesize(text, Voice(language, "male")).pcm, SAMPLE_RATE)
    female = median_f0(engine.synthesize(text, Voice(language, "female")).pcm, SAMPLE_RATE)
    assert 80 < male < 160 and 160 < female < 280
    assert female > 1.5 * male


def test_rate_setting_changes_duration() -> None:
    text = SENTENCES["us"]
    slow = EspeakEngine(TTSSettings(rate_wpm=120)).synthesize(text, Voice())
    fast = EspeakEngine(TTSSettings(rate_wpm=240)).synthesize(text, Voice())
    assert fast.seconds < 0.7 * slow.seconds


def test_pitch_setting_changes_f0() -> None:
    text = SENTENCES["us"]
    low = EspeakEngine(TTSSettings(pitch=20)).synthesize(text, Voice(gender="male"))
    high = EspeakEngine(TTSSettings(pitch=80)).synthesize(text, Voice(gender="male"))
    assert median_f0(high.pcm, SAMPLE_RATE) > 1.15 * median_f0(low.pcm, SAMPLE_RATE)


def test_cache_key_tracks_voice_rate_and_pitch(engine: EspeakEngine) -> None:
    keys = {engine.cache_key(Voice(lang, gender)) for lang in LANGUAGES for gender in GENDERS}
    assert len(keys) == 4
    assert EspeakEngine(TTSSettings(rate_wpm=200)).cache_key(Voice()) != engine.cache_key(Voice())
    assert EspeakEngine(TTSSettings(pitch=60)).cache_key(Voice()) != engine.cache_key(Voice())
    assert engine.version in engine.cache_key(Voice())


def test_concurrent_threads_get_the_same_audio_as_one_thread(engine: EspeakEngine) -> None:
    # espeak-ng is not bit-exact from one call to the next (a few samples differ in length), so the
    # check is that no thread got another's audio: texts of clearly different lengths, lengths kept.
    texts = [("press one now. " * (i + 1)).strip() for i in range(6)]
    expected = [engine.synthesize(t, Voice("us", "female")).pcm for t in texts]
    results: dict[int, npt.NDArray[np.int16]] = {}

    def run(i: int) -> None:
        results[i] = engine.synthesize(texts[i], Voice("us", "female")).pcm

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, pcm in enumerate(expected):
        assert abs(len(results[i]) - len(pcm)) < 0.01 * len(pcm)


def test_settings_out_of_range_are_refused() -> None:
    with pytest.raises(InvalidTTSSetting):
        EspeakEngine(TTSSettings(rate_wpm=20))
    with pytest.raises(InvalidTTSSetting):
        EspeakEngine(TTSSettings(pitch=120))


def test_unknown_voice_override_is_unsupported() -> None:
    engine = EspeakEngine(TTSSettings(voices={"us-female": "xx-nonexistent"}))
    with pytest.raises(UnsupportedVoice):
        engine.synthesize("hello", Voice())
