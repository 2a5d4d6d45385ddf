"""An interrupted probe run resumes without redoing finished samples: the real transformers backend on the tiny
gemma4_unified, stopped (Ctrl-C) after its first batch, then run again on the same journal."""

from __future__ import annotations

import pytest

from omnicheck.probes import load_probe
from omnicheck.resume import Journal, Resumable
from omnicheck.types import GenerationSettings

SETTINGS = GenerationSettings(max_new_tokens=4, batch_size=2)


@pytest.mark.slow
def test_a_stopped_run_resumes_where_it_stopped(tiny_backend, tmp_path):
    samples = load_probe("image_caption").load_samples("full")[:6]
    straight = [g.text for g in tiny_backend.generate(samples, SETTINGS)]
    journal = Journal(tmp_path / "journal")

    def stop_after_first_batch(done: int, total: int) -> None:
        if done >= 2:
            raise KeyboardInterrupt

    tiny_backend.on_batch = stop_after_first_batch
    try:
        with pytest.raises(KeyboardInterrupt):
            Resumable(tiny_backend, journal).generate(samples, SETTINGS)
    finally:
        tiny_backend.on_batch = None
    assert len(journal.load()) == 2  # the first batch was written before the stop

    seen: list[tuple[int, int]] = []
    tiny_backend.on_batch = lambda done, total: seen.append((done, total))
    try:
        again = Resumable(tiny_backend, journal)
        texts = [g.text for g in again.generate(samples, SETTINGS)]
    finally:
        tiny_backend.on_batch = None
    assert again.resumed == 2 and texts == straight  # two from the journal, four generated, same greedy outputs
    assert seen == [(4, 6), (6, 6)]  # progress counts the whole set
    journal.clear()
    assert journal.load() == {}
