"""The far end hears the right prompt: the built-in test phone (a child process) records the call and
the recording is compared with the rendered prompt by normalised cross-correlation of the signals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.prompt import PromptRenderer, PromptSpec, TextSegment, make_voice

from .conftest import Calls, PhoneProcess, answered_text, chunk_matches, normalised_xcorr, peaks, read_wav

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    renderer = PromptRenderer(tmp_path_factory.mktemp("render"))
    texts = {"dentist": "Hello, this is dentist Adam Smith. Press 1 to confirm your appointment.",
             "garage": "Your car is ready for collection at the garage. Thank you."}
    return {name: renderer.render(PromptSpec((TextSegment(text),), make_voice("us", "female"))).path
            for name, text in texts.items()}


HEARD = 0.9
"""A 0.5 s chunk of the prompt against the phone's recording (G.711 on the way): 1.000 measured for
every voiced chunk of the speech prompt; chunks of another speech prompt reach 0.68 at most."""
NOT_HEARD = 0.5
"""A noise prompt that was not played against the same recording: 0.05 measured."""
NOISE_PEAK = 0.5
"""A 0.4 s chunk of the noise prompt where it was heard: ~1.0 measured (0.5 even when a frame slipped
inside the chunk); anywhere else ~0.02 (1/sqrt(3200) for unrelated noise)."""


def test_the_phone_hears_the_rendered_prompt(calls: Calls, phone: Callable[..., PhoneProcess],
                                            speech: dict[str, Path], tmp_path: Path) -> None:
    far = phone("--ring", "0.2", "--record", str(tmp_path / "rec"))
    report = calls.call(far.uri, speech["dentist"], response=False)
    assert report.outcome.code == 200 and report.flow is not None and report.flow.reason == "played"
    assert report.outcome.text == f"Voice call answered, duration {report.outcome.duration_s} seconds."
    (call,) = far.results(20)
    assert call["hung_up_by"] == "caller" and call["call_id"] == report.outcome.call_id
    heard = read_wav(Path(str(call["recording"])))
    right = chunk_matches(read_wav(speech["dentist"]), heard)
    wrong = chunk_matches(read_wav(speech["garage"]), heard)
    offsets = [offset for score, offset in right if score > HEARD]
    assert len(offsets) >= 0.8 * len(right) and len(right) >= 5, right
    # heard in the prompt's order, each chunk where the previous ones put it give or take the few
    # 20 ms frames a jitter buffer adds or drops under load (measured: up to 160 samples)
    assert max(offsets) - min(offsets) < 8000 // 4, offsets
    assert max(score for score, _ in wrong) < HEARD, wrong


def test_nine_replays_the_prompt_from_its_start(calls: Calls, phone: Callable[..., PhoneProcess],
                                                prompts: dict[str, Path], tmp_path: Path) -> None:
    far = phone("--ring", "0.2", "--record", str(tmp_path / "rec"), "--press", "91", "--wait", "2.0",
                "--gap", "3.5")
    report = calls.call(far.uri, prompts["main"], response=True)  # a 4 s prompt
    assert report.outcome.code == 200 and answered_text(report)[1] == "1"
    plays = [e for e in report.timeline if e.kind == "play"]
    assert [p.detail for p in plays] == ["main #1", "main #2"]
    (call,) = far.results(20)
    assert call["pressed"] == "91"
    heard = read_wav(Path(str(call["recording"])))
    played = read_wav(prompts["main"])
    # three 0.4 s chunks between 0.5 s and 1.7 s into the prompt: heard in full before the 9 (at 2 s)
    # and again after it. Not the very first samples: the phone starts recording when it sees the
    # answer, which may be a little after our first play. A chunk may miss a peak when the phone's
    # jitter buffer drops or repeats a frame inside it, hence "at least two of three".
    chunks = [played[int(8000 * t): int(8000 * (t + 0.4))] for t in (0.5, 0.9, 1.3)]
    found = [peaks(normalised_xcorr(chunk, heard), NOISE_PEAK, min_gap=8000 // 4) for chunk in chunks]
    assert all(len(starts) <= 2 for starts in found), found
    twice = [starts for starts in found if len(starts) == 2]
    assert len(twice) >= 2, found  # the far end heard the prompt start twice
    gap_heard = (twice[0][1] - twice[0][0]) / 8000
    assert abs(gap_heard - (plays[1].at_s - plays[0].at_s)) < 1.0
    later = played[8000 * 2: 8000 * 3]  # 2..3 s into the prompt: cut off by the 9 the first time
    assert len(peaks(normalised_xcorr(later, heard), NOISE_PEAK, min_gap=8000 // 4)) == 1
    assert float(normalised_xcorr(read_wav(prompts["other"])[:4000], heard).max()) < NOT_HEARD
