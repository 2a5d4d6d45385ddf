"""Engines: what each variant ran on, the cross-engine flag on a verdict, and the document's engines block.

The real thing (omni-small in-process against the same weights served by vLLM) is in
tests/served/test_gemma4_unified.py; here the plain-data functions, on verdicts made by the real gate.
"""

from __future__ import annotations

from omnicheck.engines import (
    Engine,
    cross_engine_note,
    engine_lines,
    engines_block,
    flag_cross_engine,
    in_process_engine,
    served_engine,
)
from omnicheck.gate import judge
from omnicheck.types import Metric, ProbeResult, SampleResult

VLLM = Engine("vLLM", "0.32.0", served=True)
HF = Engine("transformers", "5.23.0", served=False)


def result(variant: str, outputs: list[str]) -> ProbeResult:
    samples = [SampleResult(f"s{i}", "Describe it.", [], text, None, {"similarity": 1.0 if text == "a cat" else 0.5})
               for i, text in enumerate(outputs)]
    return ProbeResult(variant, "image_caption", "image", "ok",
                       [Metric("similarity", True, "continuous")], samples=samples)


def test_labels_say_engine_version_and_where_it_ran():
    assert VLLM.label == "vLLM 0.32.0 (served)"
    assert HF.label == "transformers 5.23.0 (in-process)"
    assert served_engine("sglang", None).label == "SGLang (version not reported) (served)"
    assert served_engine("someone", "1.2").name == "an OpenAI-compatible server"
    assert Engine.from_json(VLLM.to_json()) == VLLM
    assert Engine.from_json(None) is None


def test_in_process_engine_is_the_installed_transformers():
    import transformers

    assert in_process_engine() == Engine("transformers", transformers.__version__, served=False)


def test_same_engine_is_no_note_and_another_version_is_one():
    assert cross_engine_note("bf16", VLLM, VLLM) is None
    note = cross_engine_note("bf16", Engine("vLLM", "0.31.0", True), VLLM)
    assert note.startswith("compared across engines: the reference bf16 ran on vLLM 0.31.0 (served), this variant "
                           "on vLLM 0.32.0 (served)")
    assert note.endswith("-- fix: serve the reference's weights on vLLM 0.32.0 too and pass "
                         "--model bf16=http://HOST:PORT/v1")
    assert cross_engine_note("bf16", VLLM, HF).endswith("fix: run the reference in-process too: "
                                                        "--model bf16=/path/to/its/checkpoint")


def test_a_cross_engine_verdict_keeps_its_status_and_says_so():
    reference = result("bf16", ["a cat"] * 12)
    variant = result("w4a16", ["a cat"] * 10 + ["a dog"] * 2)
    plain, flagged = judge(reference, variant), judge(reference, variant)
    flag_cross_engine(flagged, "bf16", HF.to_json(), VLLM.to_json())
    assert flagged.status == plain.status
    assert flagged.message.startswith(plain.message + " -- compared across engines: the reference bf16 ran on "
                                      "transformers 5.23.0 (in-process)")
    assert flagged.findings[-1] == cross_engine_note("bf16", HF, VLLM)
    assert flagged.details["engines"] == {"reference": HF.label, "variant": VLLM.label, "cross_engine": True}
    same = judge(reference, variant)
    flag_cross_engine(same, "bf16", VLLM.to_json(), VLLM.to_json())
    assert same.message == plain.message and same.details["engines"]["cross_engine"] is False
    unknown = judge(reference, variant)
    flag_cross_engine(unknown, "bf16", None, VLLM.to_json())  # a variant that never loaded: nothing to say
    assert "engines" not in unknown.details


def document(variants: list[tuple[str, Engine | None, str | None]], verdicts: list) -> dict:
    rows = [{"name": name, "engine": engine.to_json() if engine else None, "weights": weights}
            for name, engine, weights in variants]
    return {"variants": rows, "verdicts": [v.to_json() for v in verdicts],
            "engines": engines_block(rows, [v.to_json() for v in verdicts], variants[0][0])}


def test_engines_block_finds_the_a_a_across_engines_and_puts_the_variants_beside_it():
    reference = result("bf16", ["a cat"] * 12)
    aa = judge(reference, result("bf16-hf", ["a cat"] * 3 + ["a dog"] * 9))
    fp8 = judge(reference, result("fp8-hf", ["a cat"] * 6 + ["a dog"] * 6))
    doc = document([("bf16", VLLM, "w0"), ("bf16-hf", HF, "w0"), ("fp8-hf", HF, "w1"), ("fp8", VLLM, "w1")],
                   [aa, fp8])
    block = doc["engines"]
    assert block["cross_engine"] == ["bf16-hf", "fp8-hf"]
    assert block["same_weights_as_reference"] == ["bf16-hf"]
    assert block["engine_alone"]["bf16-hf"]["image_caption"]["identical_share"] == 0.25
    assert block["variant_figures"]["fp8-hf"]["image_caption"]["identical_share"] == 0.5
    assert block["by_engine"] == {VLLM.label: ["bf16", "fp8"], HF.label: ["bf16-hf", "fp8-hf"]}
    lines = engine_lines(block)
    assert lines[0] == ("engines: the reference bf16 ran on vLLM 0.32.0 (served); bf16-hf, fp8-hf on transformers "
                        "5.23.0 (in-process): compared across engines (* in the matrix) -- fix: run the reference "
                        "in-process too: --model bf16=/path/to/its/checkpoint")
    assert lines[1].startswith("the engine alone (bf16-hf: the reference's weights on another engine): "
                               "image_caption 25% identical outputs of 12 (similarity ")
    assert lines[2].startswith("fp8-hf against the reference: image_caption 50% identical outputs of 12")


def test_one_engine_for_all_is_no_block_text_and_no_marks():
    from omnicheck.report.terminal import matrix_lines

    reference = result("bf16", ["a cat"] * 12)
    doc = document([("bf16", HF, "w0"), ("w4a16", HF, "w1")], [judge(reference, result("w4a16", ["a cat"] * 12))])
    doc["matrix"] = {"w4a16": {"image": "PASS"}}
    assert doc["engines"]["cross_engine"] == [] and engine_lines(doc["engines"]) == []
    assert not any("*" in line or "engines:" in line for line in matrix_lines(doc))
    doc = document([("bf16", HF, "w0"), ("w4a16", VLLM, "w1")], [judge(reference, result("w4a16", ["a cat"] * 12))])
    doc["matrix"] = {"w4a16": {"image": "PASS"}}
    lines = matrix_lines(doc)
    assert next(line for line in lines if line.startswith("w4a16")).split()[2] == "PASS*"
    assert any(line.startswith("  engines: the reference bf16 ran on transformers") for line in lines)
    assert not any("the engine alone (" in line for line in lines)  # no A/A in this run: nothing to put beside
    assert lines[-1].startswith("  how much of a difference the engine alone makes is not measured in this run")


def test_unrecorded_engines_are_not_called_a_cross_engine_comparison():
    doc = document([("bf16", None, None), ("w4a16", VLLM, None)], [])
    assert doc["engines"]["cross_engine"] == [] and doc["engines"]["reference_engine"] is None
