"""PromptRenderer with the real espeak-ng engine and real audio files; URLs come from an in-memory fetcher."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from audio import TELEPHONY_RATE
from audio.errors import AudioTooLarge, AudioTooLong, CorruptAudio, EmptyAudio, UnsupportedFormat
from audio.settings import AssembleSettings, DecodeLimits
from audio.wav import read_wav
from ivr.errors import NotAudio
from ivr.fetch import Fetched, sniff_audio
from ivr.prompt import AudioSegment, PromptRenderer, PromptSpec, TextSegment, UrlSegment, spec_from_vtts
from tts.base import Speech, Voice
from tts.errors import InvalidText
from tts.render import render_speech
from tts.settings import TTSSettings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "audio"
GAPS = AssembleSettings(gap_ms=400, lead_ms=0, tail_ms=200)


class MemoryFetcher:
    """URL -> bytes, counting fetches (the real fetcher has its own tests against a real server)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.calls: list[str] = []

    def fetch(self, url: str) -> Fetched:
        self.calls.append(url)
        data = self.files[url]
        sniff_audio(data[:12])
        return Fetched(data=data, content_type="audio/mpeg", final_url=url)


@pytest.fixture
def spoken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Texts that reached the TTS layer during the test."""
    calls: list[str] = []

    def counting(text: str, voice: Voice, settings: TTSSettings, cache: object) -> Speech:
        calls.append(text)
        return render_speech(text, voice, settings, cache)  # type: ignore[arg-type]

    monkeypatch.setattr("ivr.prompt.render_speech", counting)
    return calls


def renderer(
    tmp_path: Path, fetcher: MemoryFetcher | None = None, decode_limits: DecodeLimits | None = None
) -> PromptRenderer:
    return PromptRenderer(
        tmp_path / "cache",
        fetcher=fetcher or MemoryFetcher({}),
        assemble_settings=GAPS,
        decode_limits=decode_limits,
    )


def test_text_prompt_is_telephony_wav(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[3] / "samples" / "prompts" / "dentist_us.txt").read_text()
    result = renderer(tmp_path).render(PromptSpec((TextSegment(text),)))
    pcm, rate = read_wav(result.path)
    with wave.open(str(result.path)) as header:
        assert (header.getnchannels(), header.getsampwidth(), header.getframerate()) == (1, 2, 8000)
    assert rate == TELEPHONY_RATE
    assert result.duration_s == pytest.approx(len(pcm) / 8000)
    assert 5.0 < result.duration_s < 20.0
    assert result.path == tmp_path / "cache" / "prompts" / result.sha256[:2] / f"{result.sha256[2:]}.wav"
    assert not result.cached
    assert np.abs(pcm.astype(np.int32)).max() > 3000  # speech, not silence


def test_second_render_is_a_cache_hit_without_tts(tmp_path: Path, spoken: list[str]) -> None:
    spec = PromptSpec(
        (TextSegment("Press 1 to confirm."), TextSegment("Press 2 to cancel.")), Voice("us", "male")
    )
    first = renderer(tmp_path).render(spec)
    assert spoken == ["Press 1 to confirm.", "Press 2 to cancel."]
    inode = first.path.stat().st_ino
    second = renderer(tmp_path).render(spec)
    assert second.cached
    assert spoken == ["Press 1 to confirm.", "Press 2 to cancel."]
    assert (second.path, second.sha256, second.duration_s) == (first.path, first.sha256, first.duration_s)
    assert second.path.stat().st_ino == inode  # not written again (its time is touched: the LRU order)
    assert len(list((tmp_path / "cache" / "prompts").rglob("*.wav"))) == 1


def test_segments_reuse_the_tts_cache_in_new_prompts(tmp_path: Path, spoken: list[str]) -> None:
    render = renderer(tmp_path)
    render.render(PromptSpec((TextSegment("Good morning."),)))
    entries = sorted((tmp_path / "cache" / "tts").rglob("*"))
    again = render.render(PromptSpec((TextSegment("Good morning."), TextSegment("Good morning."))))
    assert not again.cached
    assert sorted((tmp_path / "cache" / "tts").rglob("*")) == entries


def test_voice_changes_the_prompt(tmp_path: Path) -> None:
    render = renderer(tmp_path)
    female = render.render(PromptSpec((TextSegment("Hola"),), Voice("es", "female")))
    male = render.render(PromptSpec((TextSegment("Hola"),), Voice("es", "male")))
    assert female.sha256 != male.sha256


def test_mixed_file_text_url_in_order(tmp_path: Path) -> None:
    mp3 = (FIXTURES / "tone.mp3").read_bytes()
    fetcher = MemoryFetcher({"https://media.example/tone.mp3": mp3})
    spec = PromptSpec(
        (
            AudioSegment(path=FIXTURES / "sine_s16_44100_stereo.wav"),
            TextSegment("and now"),
            UrlSegment("https://media.example/tone.mp3"),
        )
    )
    result = renderer(tmp_path, fetcher).render(spec)
    pcm, _ = read_wav(result.path)
    tone = int(0.25 * 8000)
    gap = 400 * 8
    # The file's tone opens the prompt and the URL's tone closes it (before the 200 ms tail).
    assert _tone_at(pcm[: tone - 100], 1000.0)
    assert _tone_at(pcm[-(200 * 8 + tone - 100) : -(200 * 8 + 100)], 1000.0)
    assert not _tone_at(pcm[tone + 200 : tone + gap - 200], 1000.0)
    assert fetcher.calls == ["https://media.example/tone.mp3"]


def _tone_at(pcm: np.ndarray, hz: float) -> bool:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    freqs = np.fft.rfftfreq(len(pcm), 1 / 8000)
    return bool(spectrum.max() > 1e4 and abs(freqs[int(spectrum.argmax())] - hz) < 30)


def test_each_url_fetched_once_per_render(tmp_path: Path) -> None:
    url = "http://media.example/a.mp3"
    fetcher = MemoryFetcher({url: (FIXTURES / "tone.mp3").read_bytes()})
    spec = spec_from_vtts([url, "between", url])
    render = renderer(tmp_path, fetcher)
    assert not render.render(spec).cached
    assert fetcher.calls == [url]
    assert render.render(spec).cached
    assert fetcher.calls == [url, url]


def test_changed_url_content_renders_anew(tmp_path: Path) -> None:
    url = "http://media.example/a"
    fetcher = MemoryFetcher({url: (FIXTURES / "tone.mp3").read_bytes()})
    render = renderer(tmp_path, fetcher)
    first = render.render(PromptSpec((UrlSegment(url),)))
    fetcher.files[url] = (FIXTURES / "tone.ogg").read_bytes()
    second = render.render(PromptSpec((UrlSegment(url),)))
    assert first.sha256 != second.sha256
    assert not second.cached


def test_upload_bytes_and_same_file_by_path_share_a_prompt(tmp_path: Path) -> None:
    path = FIXTURES / "tone.flac"
    render = renderer(tmp_path)
    by_path = render.render(PromptSpec((AudioSegment(path=path),)))
    by_bytes = render.render(PromptSpec((AudioSegment(data=path.read_bytes(), name="upload.flac"),)))
    assert by_bytes.cached
    assert by_bytes.sha256 == by_path.sha256


@pytest.mark.parametrize(
    ("name", "error", "code"),
    [
        ("empty.wav", EmptyAudio, 514),
        ("truncated.mp3", CorruptAudio, 500),
        ("lying_format.wav", CorruptAudio, 500),
        ("inconsistent_fmt.wav", CorruptAudio, 500),
        ("random.bin", UnsupportedFormat, 500),
    ],
)
def test_bad_audio_errors_keep_their_codes(
    tmp_path: Path, name: str, error: type[Exception], code: int
) -> None:
    spec = PromptSpec((TextSegment("Hello"), AudioSegment(path=FIXTURES / name)))
    with pytest.raises(error) as info:
        renderer(tmp_path).render(spec)
    assert info.value.code == code  # type: ignore[attr-defined]
    assert not list((tmp_path / "cache" / "prompts").rglob("*.wav"))


def test_one_hour_file_is_too_long(tmp_path: Path) -> None:
    import soundfile

    hour = tmp_path / "hour.flac"
    soundfile.write(hour, np.zeros(8000 * 3600, dtype=np.int16), 8000, format="FLAC")
    with pytest.raises(AudioTooLong, match="3600"):
        renderer(tmp_path).render(PromptSpec((AudioSegment(path=hour),)))


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    render = renderer(tmp_path, decode_limits=DecodeLimits(max_bytes=1000))
    with pytest.raises(AudioTooLarge):
        render.render(PromptSpec((AudioSegment(path=FIXTURES / "sine_s16_44100_stereo.wav"),)))


def test_missing_file_is_514(tmp_path: Path) -> None:
    with pytest.raises(EmptyAudio, match="cannot read") as info:
        renderer(tmp_path).render(PromptSpec((AudioSegment(path=tmp_path / "nope.wav"),)))
    assert info.value.code == 514


def test_invalid_text_refused_before_fetching(tmp_path: Path) -> None:
    fetcher = MemoryFetcher({"http://a/b.mp3": (FIXTURES / "tone.mp3").read_bytes()})
    spec = PromptSpec((UrlSegment("http://a/b.mp3"), TextSegment("x" * 3000)))
    with pytest.raises(InvalidText) as info:
        renderer(tmp_path, fetcher).render(spec)
    assert info.value.code == 511
    assert fetcher.calls == []


def test_fetch_errors_propagate(tmp_path: Path) -> None:
    fetcher = MemoryFetcher({"http://a/page": b"<!DOCTYPE html><html></html>"})
    with pytest.raises(NotAudio):
        renderer(tmp_path, fetcher).render(PromptSpec((UrlSegment("http://a/page"),)))


def test_corrupt_cached_prompt_is_rendered_again(tmp_path: Path) -> None:
    render = renderer(tmp_path)
    spec = PromptSpec((TextSegment("Thank you."),))
    first = render.render(spec)
    first.path.write_bytes(b"RIFF garbage")
    again = render.render(spec)
    assert not again.cached
    assert again.duration_s == first.duration_s
