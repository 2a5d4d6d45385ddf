"""Teacher forcing in-process (HFBackend.score_continuations) on real models of every family the backend runs:
the trained omni-small and a variant of it, a ModelOpt-emulated checkpoint, the Qwen2.5-Omni thinker, SmolLM2 and
Whisper base (short-form scored, long-form not available)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omnicheck.backends.hf import HFBackend
from omnicheck.compare.divergence import sample_divergence
from omnicheck.tokens import Continuation, NotScored, TokenScores
from omnicheck.types import AudioPart, GenerationSettings, ImagePart, Message, Sample, VideoPart

REPO = Path(__file__).resolve().parents[2]
OMNI = REPO / "fixtures" / "omni-small"
HELDOUT = OMNI / "heldout"


def omni_samples() -> list[Sample]:
    """Two held-out questions per modality, as the omni-small probes ask them, grouped by modality (the processor
    takes one kind of media per batch, as probes send them)."""
    speech = sorted((HELDOUT / "speech").rglob("*.wav"))[:2]
    return [
        Sample("text-0", (Message.user("Write one sentence about a red circle."),)),
        Sample("text-1", (Message.user("Name two shapes."),)),
        *[Sample(f"image-{i}", (Message.user(ImagePart(HELDOUT / f"image-00{i}.png"), "Describe the image."),))
          for i in range(2)],
        *[Sample(f"audio-{i}", (Message.user(AudioPart(path), "Transcribe the audio."),)) for i, path in enumerate(speech)],
        *[Sample(f"video-{i}", (Message.user(VideoPart(HELDOUT / f"video-00{i}.mp4", num_frames=8), "Describe the video."),))
          for i in range(2)],
    ]


def answered(backend: HFBackend, samples: list[Sample], max_new_tokens: int = 16) -> list[Continuation]:
    generations = backend.generate(samples, GenerationSettings(max_new_tokens=max_new_tokens, batch_size=2))
    return [Continuation(s, g.text) for s, g in zip(samples, generations)]


def scored(results) -> list[TokenScores]:
    for result in results:
        assert isinstance(result, TokenScores), getattr(result, "reason", result)
    return list(results)


def gathering(continuations: list[Continuation], scores: list[TokenScores]) -> list[Continuation]:
    return [Continuation(c.sample, c.text, gather=s.top_ids, token_ids=tuple(s.token_ids))
            for c, s in zip(continuations, scores)]


@pytest.fixture(scope="module")
def omni():
    backend = HFBackend(OMNI, name="omni-small", device="cpu")
    continuations = answered(backend, omni_samples())
    first = scored(backend.score_continuations(continuations, top_k=20, batch_size=2))
    yield backend, continuations, first
    backend.close()


def test_the_reference_scores_its_own_greedy_answers_as_its_top_token(omni):
    backend, continuations, first = omni
    for continuation, scores in zip(continuations, first):
        assert scores.positions == len(scores.token_ids) + 1  # every answer token, and the end
        assert len(scores.top_ids[0]) == 20
        top1 = [row[0] for row in scores.top_ids[:-1]]
        agree = np.mean([a == b for a, b in zip(top1, scores.token_ids)])
        assert agree >= 0.8, (continuation.sample.id, continuation.text, agree)
        assert all(lp <= 0 for lp in scores.token_logprobs)
        assert "".join(scores.tokens).strip() == continuation.text  # the answer's own tokens, decoded


def test_batch_size_moves_the_distributions_only_at_noise_level(omni):
    """The A/A floor: the same model unbatched against batched (right padding), over every modality."""
    backend, continuations, first = omni
    alone = scored(backend.score_continuations(gathering(continuations, first), top_k=20, batch_size=1))
    for c, reference, variant in zip(continuations, first, alone):
        divergence = sample_divergence(c.sample.id, reference, variant)
        assert divergence.kl_mean < 1e-3, (c.sample.id, divergence.kl_mean)


def test_rows_that_open_alike_run_the_opening_once_and_score_as_one_full_pass(omni, monkeypatch):
    """lm-eval's few-shot prompts share their examples: the shared opening's KV cache serves every row. Longer
    than omni-small's 1024-token sliding window, so the windowed layers' cache is crossed too."""
    import omnicheck.backends.hf_scoring as hf_scoring

    backend = omni[0]
    shots = "".join(f"Question: What is {a} plus {a + 3}?\nAnswer: {a} plus {a + 3} is {2 * a + 3}.\n\n" for a in range(40))
    asked = [("How many sides has a square?", "A square has four sides."),
             ("What is 2 plus 5?", "2 plus 5 is 7."),
             ("Name a colour.", "Red is a colour.")]
    continuations = [Continuation(Sample(f"q{i}", (Message.user(q),)), a, prompt=f"{shots}Question: {q}\nAnswer:")
                     for i, (q, a) in enumerate(asked)]
    openings = []
    shared_forward = hf_scoring._forward_after_shared_prefix
    monkeypatch.setattr(hf_scoring, "_forward_after_shared_prefix",
                        lambda b, inputs, shared, keep: openings.append(shared) or shared_forward(b, inputs, shared, keep))
    with monkeypatch.context() as m:
        m.setattr(hf_scoring, "SHARED_PREFIX_MIN", 10**9)
        full = scored(backend.score_continuations(continuations, top_k=20, batch_size=3))
    assert openings == []
    gathered = [Continuation(c.sample, c.text, prompt=c.prompt, gather=f.top_ids, token_ids=tuple(f.token_ids))
                for c, f in zip(continuations, full)]
    shared = scored(backend.score_continuations(gathered, top_k=20, batch_size=3))
    assert len(openings) == 1 and openings[0] > 1024, openings
    for c, reference, variant in zip(continuations, full, shared):
        assert variant.token_ids == reference.token_ids and variant.positions == reference.positions
        divergence = sample_divergence(c.sample.id, reference, variant)
        assert divergence.kl_mean < 1e-3, (c.sample.id, divergence.kl_mean)


def test_a_vision_projection_replaced_by_noise_diverges_on_image_and_video_only(omni, tmp_path):
    from omnicheck.demo import randomize_modules

    backend, continuations, first = omni
    broken = HFBackend(randomize_modules(OMNI, tmp_path / "vision-random", "model.embed_vision", seed=1), device="cpu")
    try:
        variant = scored(broken.score_continuations(gathering(continuations, first), top_k=20, batch_size=2))
    finally:
        broken.close()
    kl = {c.sample.id: sample_divergence(c.sample.id, r, v).kl_mean for c, r, v in zip(continuations, first, variant)}
    untouched = [k for k in kl if k.startswith(("text", "audio"))]  # never pass through the vision projection
    assert all(kl[k] == 0.0 for k in untouched), kl
    assert all(kl[k] > 0.3 for k in kl if k not in untouched), kl


def test_a_tokenizer_that_splits_the_answer_otherwise_is_not_available(omni):
    backend, continuations, first = omni
    wrong = Continuation(continuations[0].sample, continuations[0].text, token_ids=(1, 2, 3))
    (result,) = backend.score_continuations([wrong])
    assert isinstance(result, NotScored) and "splits the reference's answer" in result.reason


def test_modelopt_emulated_checkpoint_is_teacher_forced():
    reference = HFBackend(REPO / "fixtures" / "checkpoints" / "base-bf16", device="cpu")
    variant = HFBackend(REPO / "fixtures" / "checkpoints" / "mo-nvfp4", device="cpu")
    try:
        assert variant.card.format == "modelopt"
        sample = Sample("text", (Message.user("Name three colours."),))
        (continuation,) = answered(reference, [sample], 12)
        (ref,) = scored(reference.score_continuations([continuation]))
        asked = Continuation(sample, continuation.text, gather=ref.top_ids, token_ids=tuple(ref.token_ids))
        (var,) = scored(variant.score_continuations([asked]))
        divergence = sample_divergence("text", ref, var)
        assert 0.0 < divergence.kl_mean < 5.0  # quantized: not bit-identical, not garbage either
    finally:
        reference.close()
        variant.close()


def test_qwen_omni_thinker_is_teacher_forced_on_image_and_audio(tiny_qwen_omni, media):
    backend = HFBackend(tiny_qwen_omni, device="cpu")
    try:
        samples = [Sample("image", (Message.user(ImagePart(media["image"]), "What is it?"),)),
                   Sample("audio", (Message.user(AudioPart(media["audio"]), "What is it?"),))]
        results = scored(backend.score_continuations(answered(backend, samples, 6), batch_size=2))
        assert all(r.positions == len(r.token_ids) + 1 for r in results)
    finally:
        backend.close()


def test_smollm2_is_teacher_forced(smollm2):
    backend = HFBackend(smollm2, device="cpu")
    try:
        (continuation,) = answered(backend, [Sample("q", (Message.user("What is the capital of France?"),))], 12)
        (scores,) = scored(backend.score_continuations([continuation]))
        top1 = [row[0] for row in scores.top_ids[:-1]]
        assert np.mean([a == b for a, b in zip(top1, scores.token_ids)]) >= 0.8
    finally:
        backend.close()


def test_whisper_short_form_is_scored_and_long_form_is_not_available(whisper_base, tmp_path):
    import soundfile as sf

    from omnicheck.fixtures import fixture_dir

    backend = HFBackend(whisper_base, device="cpu")
    try:
        clip = fixture_dir("speech") / "9001" / "1" / "9001-1-0880.flac"
        short = Sample("short", (Message.user(AudioPart(clip), "Transcribe."),))
        (continuation,) = answered(backend, [short], 40)
        (scores,) = scored(backend.score_continuations([continuation]))
        top1 = [row[0] for row in scores.top_ids[:-1]]
        assert np.mean([a == b for a, b in zip(top1, scores.token_ids)]) >= 0.8
        audio, rate = sf.read(clip)
        long_clip = tmp_path / "long.wav"
        sf.write(long_clip, np.concatenate([audio] * (int(31 * rate / len(audio)) + 1)), rate)
        (result,) = backend.score_continuations([Continuation(Sample("long", (Message.user(AudioPart(long_clip)),)), "x")])
        assert isinstance(result, NotScored) and "long-form" in result.reason
    finally:
        backend.close()
