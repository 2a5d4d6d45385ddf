"""How the transformers backend decodes and batches: static cache against eager, longest-first batches given back in
order, batches from memory, out-of-memory halving, lm-eval's batch, the counterfactual's opening.

The model parts run the real tiny gemma4_unified on the CPU. Out-of-memory and the GPU memory arithmetic cannot
happen on this machine: those tests feed run_batched a function that raises torch's real OutOfMemoryError above a
batch size (a stand-in for a GPU that is full), and batch_for_memory plain numbers. benchmarks/bench_12b.py runs
the real thing on a GPU (BENCHMARKS.md).
"""

from __future__ import annotations

import pytest
import torch

from omnicheck.backends import decoding
from omnicheck.backends.decoding import BatchRecord, batch_for_memory, plan_decoding, run_batched
from omnicheck.backends.hf import HFBackend
from omnicheck.errors import BackendError, ModelLoadError, UsageError
from omnicheck.types import GenerationSettings, Message, Sample


@pytest.fixture(scope="module")
def gemma(tiny_gemma):
    backend = HFBackend(tiny_gemma, name="ref")
    yield backend
    backend.close()


def _texts(gemma, samples, settings):
    return [g.text for g in gemma.generate(samples, settings)]


def test_on_a_cpu_decoding_stays_eager_and_says_why(gemma, monkeypatch):
    assert gemma.decoder.plan.mode == decoding.EAGER
    assert "not on a CUDA GPU" in gemma.describe()["decoding"]["reason"]
    monkeypatch.setenv(decoding.DECODING_ENV, "eager")
    assert plan_decoding(gemma.generator, "cuda").reason == "OMNICHECK_DECODING=eager"
    monkeypatch.setenv(decoding.DECODING_ENV, "fast")
    with pytest.raises(UsageError, match="is not a decoding choice"):
        plan_decoding(gemma.generator, "cpu")


def test_a_family_that_does_not_compile_stays_eager(gemma):
    class NotCompilable(torch.nn.Module):
        _can_compile_fullgraph = False

    plan = plan_decoding(NotCompilable(), "cuda")
    assert plan.mode == decoding.EAGER and "does not declare a compilable forward" in plan.reason
    assert plan_decoding(gemma.generator, "cuda", speech_seq2seq=True).mode == decoding.EAGER
    assert plan_decoding(gemma.generator, "cuda").mode == decoding.COMPILED


def test_static_cache_gives_the_eager_greedy_outputs(gemma, modality_samples, monkeypatch):
    """float32 on the CPU: the static cache's attention over its padded length changes nothing (in bf16 on a GPU
    rows can part; bench_12b.py counts them)."""
    settings = GenerationSettings(max_new_tokens=8, batch_size=1)  # one modality per batch: the processor's rule
    eager = _texts(gemma, modality_samples, settings)
    monkeypatch.setattr(gemma.decoder, "plan", decoding.DecodingPlan(decoding.STATIC, "test"))
    assert gemma.decoder.plan.generate_kwargs(10, 8) == {"cache_implementation": "static", "max_cache_len": 256}
    assert _texts(gemma, modality_samples, settings) == eager


def test_batches_go_longest_first_and_results_come_back_in_order(gemma):
    questions = ["Hi?", "What is the capital of the country that lies north of Spain and south of Belgium?",
                 "Two plus two?", "Name three animals that live in the sea and eat fish.", "Why?"]
    samples = [Sample(str(i), (Message.user(q),)) for i, q in enumerate(questions)]
    alone = [_texts(gemma, [s], GenerationSettings(max_new_tokens=6, batch_size=1))[0] for s in samples]
    gemma.take_decoding()
    assert _texts(gemma, samples, GenerationSettings(max_new_tokens=6, batch_size=2)) == alone
    taken = gemma.take_decoding()
    assert taken["mode"] == decoding.EAGER
    assert taken["calls"] == [{"size": 2, "source": "given", "rows": 5, "decoding": "eager"}]
    assert decoding.longest_first(samples, decoding.length_key)[:2] == [1, 3]
    assert gemma.take_decoding()["calls"] == []  # taken once


def test_out_of_memory_halves_the_batch_and_keeps_every_result():
    def run(batch):
        if len(batch) > 2:  # a GPU that holds two rows at a time
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
                                         "of 139.81 GiB of which 1.50 GiB is free.")
        return [item * 10 for item in batch]

    record = BatchRecord(size=8, source="memory")
    items = [3, 1, 4, 1, 5, 9, 2]
    assert run_batched(items, run, 8, record, key=lambda x: x, label="w4a4") == [x * 10 for x in items]
    assert record.size == 2 and len(record.halvings) == 2
    assert record.halvings[0] == "batch 8 out of memory (needed 2.00 GiB more, 1.50 GiB free of 139.81 GiB): retried at 4"


def test_out_of_memory_at_batch_one_is_one_line():
    def run(batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 512.00 MiB.")

    with pytest.raises(BackendError) as err:
        run_batched([1, 2], run, 2, BatchRecord(size=2, source="given"), key=lambda x: x, label="w4a4 (gemma4_unified)")
    message = str(err.value)
    assert message.startswith("w4a4 (gemma4_unified) ran out of GPU memory at batch size 1 (needed 512.00 MiB more)")
    assert "fix:" in message and "\n" not in message


def test_other_errors_are_not_retried():
    calls = []

    def run(batch):
        calls.append(len(batch))
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        run_batched([1, 2, 3], run, 4, BatchRecord(size=4, source="given"), key=lambda x: x, label="x")
    assert calls == [3]


def test_a_compiled_batch_is_padded_to_one_shape():
    seen = []

    def run(batch):
        seen.append(list(batch))
        return batch

    record = BatchRecord(size=4, source="memory")
    assert run_batched([5, 6, 7, 8, 9], run, 4, record, key=lambda x: x, label="x", pad=True) == [5, 6, 7, 8, 9]
    assert seen == [[9, 8, 7, 6], [5, 5, 5, 5]] and record.padded_rows == 3


def test_batch_for_memory_takes_the_largest_power_of_two_that_fits():
    gib, mib = 2**30, 2**20
    assert batch_for_memory(10 * gib, 100 * mib, rows=1000) == 64  # 0.8 * 10 GiB / 100 MiB = 81.9
    assert batch_for_memory(10 * gib, 100 * mib, rows=5) == 8  # no more than the rows need
    assert batch_for_memory(200 * gib, 10 * mib, rows=10_000) == decoding.MAX_BATCH
    assert batch_for_memory(10 * mib, 100 * mib, rows=50) == 1  # not even one row: 1, and out-of-memory halts it


def test_on_a_cpu_the_batch_asked_for_is_kept(gemma):
    record = gemma.decoder.batch_size(GenerationSettings(batch_size=3, batch_from_memory=True), 10, lambda rows: None)
    assert (record.size, record.source) == (3, "given")


def test_a_short_call_runs_eager_when_compiling_would_not_pay(gemma, monkeypatch):
    plan = decoding.DecodingPlan(decoding.COMPILED, "test", min_steps=100)
    monkeypatch.setattr(gemma.decoder, "plan", plan)
    record = BatchRecord(size=4, source="given")
    assert gemma.decoder.begin_call(record, rows=8, new_tokens=16) is False  # 2 batches x 16 steps
    assert record.decoding.startswith("eager: 32 decode steps, fewer than the 100")
    assert gemma.decoder.begin_call(BatchRecord(size=4, source="given"), rows=32, new_tokens=16) is True


def test_lm_eval_takes_the_probes_batch(gemma):
    lm = gemma.lm_eval_model(GenerationSettings(batch_size=3))
    assert lm.model is gemma.generator and gemma.lm_eval_model() is lm
    assert lm.omnicheck_settings.batch_size == 8  # no settings: lm-eval's old fixed 8
    gemma.lm_eval_model(GenerationSettings(batch_size=3))
    gemma.take_decoding()

    class Request:
        def __init__(self, text):
            self.args = (text, {"until": ["\n\n"], "max_gen_toks": 4, "do_sample": False})

    outputs = lm.generate_until([Request(f"Question {i}: what is {i} plus {i}?") for i in range(5)], disable_tqdm=True)
    assert len(outputs) == 5 and lm.batch_size == 3
    assert gemma.take_decoding()["calls"] == [{"size": 3, "source": "given", "rows": 5, "decoding": "eager"}]


def test_out_of_memory_at_load_is_one_line(tiny_gemma, monkeypatch):
    def full(self, model_class, dtype):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of "
                                     "139.81 GiB of which 3.00 GiB is free.")

    monkeypatch.setattr(HFBackend, "_from_pretrained", full)
    with pytest.raises(ModelLoadError) as err:
        HFBackend(tiny_gemma, name="big")
    message = str(err.value)
    assert message.startswith("big (gemma4_unified) does not fit in GPU memory (its weights take")
    assert "needed 20.00 GiB more, 3.00 GiB free of 139.81 GiB" in message and "the other variants still run" in message
    assert "\n" not in message
