"""gemma4_unified as it is served: the trained omni-small (fixtures/omni-small) and its quantized variants under the
real vLLM CPU server, all four modalities, judged end to end in one report.

vLLM 0.32 reads vision_config.num_soft_tokens, which transformers 5.23 does not write: the checkpoint as saved is
refused for exactly the reason `omnicheck inspect` names, and every server here runs a copy fixed as that lint says
(omnicheck.formats.serving.vllm_ready_config).

One session judges them all against the served omni-small: the same weights in-process (transformers: the A/A
across engines, flagged as a cross-engine comparison), FP8_DYNAMIC (serves on every CPU), W8A8 and W4A16 (their
kernels depend on the CPU and the dtype: served and judged, or one ERROR line with the server's own reason) and the
committed llmcompressor NVFP4A16 (no FP4 kernel on a CPU: refused at start-up, one line with vLLM's reason). At most
two servers are up at once (the one being judged and the next one starting); each port is chosen before the session
starts, so the session is told every URL up front.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from vllm_server import free_port

from omnicheck.demo import REPO_FIXTURES, panel_data
from omnicheck.errors import BackendError
from omnicheck.formats.serving import VLLM_NEEDS, vllm_ready_config
from omnicheck.variants import Variant

OMNI_SMALL = REPO_FIXTURES / "omni-small"
PROBES = ["image_caption", "speech_wer", "video_describe", "gsm8k"]
LIMIT = 3  # samples per probe: this checks that everything runs and is flagged, not that a variant is good
MAX_NEW_TOKENS = 16
JUDGED = {"PASS", "DEGRADED", "BROKEN", "INCONCLUSIVE"}
# name -> (checkpoint, does this CPU decide?): True where the kernel depends on the CPU (and dtype), so either outcome
# (judged in this order: FP8 last, after the ones that may fail)
SERVED_VARIANTS = {"w8a8": ("omni-w8a8", True), "w4a16": ("omni-w4a16", True),
                   "nvfp4a16": (REPO_FIXTURES / "omni-panel" / "nvfp4a16", False), "fp8": ("omni-fp8_dynamic", False)}


@pytest.fixture(scope="module")
def vllm_ready(tmp_path_factory):
    """folder -> a copy whose config.json carries what vLLM reads (the lint's fix); the weights are linked."""
    root = tmp_path_factory.mktemp("vllm-ready")

    def copy(folder: Path) -> Path:
        out = root / folder.name
        shutil.copytree(folder, out, ignore=shutil.ignore_patterns("heldout", "probe-data", "*.safetensors"))
        for weights in folder.glob("*.safetensors"):
            (out / weights.name).symlink_to(weights)
        (out / "config.json").write_text(json.dumps(vllm_ready_config(folder), indent=1))
        return out

    return copy


def test_vllm_refuses_omni_small_as_saved_for_the_reason_the_lint_names(serve):
    [need] = VLLM_NEEDS
    with pytest.raises(BackendError) as err, serve(OMNI_SMALL, expect_failure=True):
        pass
    message = str(err.value)
    assert message.startswith("vLLM refused to serve omni-small (")
    assert "\n" not in message
    assert message.split("): ", 1)[1].startswith(need.symptom + " -- fix: `omnicheck inspect --vllm VERSION`")


@pytest.fixture(scope="module")
def served_run(serve, tiny_model, vllm_ready, tmp_path_factory):
    """One session over every variant. The reference's server serves the reference's probes and is stopped; then
    each variant's server is started while the variant before it is judged, so at most two are up at once.

    Returns (session, document, refusals): refusals maps a variant whose server would not start to the launcher's
    line, which the session was given as that variant's reason.
    """
    from omnicheck.config import Settings
    from omnicheck.session import RunConfig, Session

    ports = {name: free_port() for name in ["bf16", *SERVED_VARIANTS]}
    variants = [Variant("bf16", f"http://127.0.0.1:{ports['bf16']}/v1", is_reference=True),
                Variant("bf16-in-process", str(OMNI_SMALL)),
                *(Variant(name, f"http://127.0.0.1:{ports[name]}/v1") for name in SERVED_VARIANTS)]
    report_dir = tmp_path_factory.mktemp("gemma4-served-report")
    session = Session(RunConfig(variants=variants, probes=PROBES, tier="full", data=panel_data(), limit=LIMIT,
                                max_new_tokens=MAX_NEW_TOKENS, report_dir=report_dir, cache_dir=report_dir / "cache",
                                settings=Settings(counterfactual=False)))  # half the generations; not tested here

    def start(name: str):
        """The variant's server, or the launcher's BackendError when vLLM will not serve it."""
        checkpoint, cpu_decides = SERVED_VARIANTS[name]
        folder = checkpoint if isinstance(checkpoint, Path) else tiny_model(checkpoint)
        try:
            # a CPU-dependent scheme's first request is omnicheck's own, as against a server someone else runs
            return serve(vllm_ready(folder), port=ports[name], dev_mode=True, expect_failure=True,
                         check_first_answer=not cpu_decides)
        except BackendError as err:
            return err

    refusals: dict[str, str] = {}
    names = list(SERVED_VARIANTS)
    try:
        with serve(vllm_ready(OMNI_SMALL), port=ports["bf16"], dev_mode=True):
            for probe in PROBES:
                session.verdict("bf16", probe)
            session.release()
        with ThreadPoolExecutor(max_workers=1) as starter:
            next_server = starter.submit(start, names[0])
            for probe in PROBES:  # in-process: needs no server
                session.verdict("bf16-in-process", probe)
            session.release()
            for index, name in enumerate(names):
                server = next_server.result()
                if index + 1 < len(names):
                    next_server = starter.submit(start, names[index + 1])
                if isinstance(server, BackendError):
                    refusals[name] = str(server)
                    session.mark_unavailable(name, str(server))
                try:
                    for probe in PROBES:
                        session.verdict(name, probe)
                finally:
                    session.release()
                    if not isinstance(server, BackendError):
                        server.stop()
        session.write_reports()
    finally:
        session.close()
    return session, session.document(), refusals


def test_the_served_reference_takes_all_four_modalities(served_run):
    session, document, _ = served_run
    reference = next(v for v in document["variants"] if v["name"] == "bf16")
    assert reference["modalities"] == ["audio", "image", "text", "video"]
    assert reference["engine"]["label"] == "vLLM 0.32.0 (served)"
    assert reference["execution_path"]["weights"] == "as served; quantization: none (reported by server /server_info)"
    for probe in PROBES:
        result = session.results[("bf16", probe)]
        assert result.status == "ok", result.reason
        assert len(result.samples) == LIMIT and any(s.output for s in result.samples)


def test_fp8_is_served_judged_and_its_quantization_named_by_the_server(served_run):
    session, document, refusals = served_run
    assert "fp8" not in refusals
    fp8 = next(v for v in document["variants"] if v["name"] == "fp8")
    assert fp8["execution_path"]["weights"] == \
        "as served; quantization: compressed-tensors (reported by server /server_info)"
    for probe in PROBES:
        verdict = session.verdicts[("fp8", probe)]
        assert verdict.status in JUDGED, verdict.message
        assert verdict.details["engines"] == {"reference": "vLLM 0.32.0 (served)", "variant": "vLLM 0.32.0 (served)",
                                              "cross_engine": False}
        assert "compared across engines" not in verdict.message


@pytest.mark.parametrize("name", ["w8a8", "w4a16"])
def test_cpu_dependent_schemes_are_judged_or_fail_alone_with_the_servers_reason(served_run, name, record_property):
    session, _, refusals = served_run
    outcome = {session.results[(name, p)].status for p in PROBES}
    record_property("outcome", "refused at start" if name in refusals else sorted(outcome))
    verdicts = [session.verdicts[(name, p)] for p in PROBES]
    if name in refusals:  # the server stopped before answering: the launcher's line, vLLM's root cause in it
        assert all(v.status == "ERROR" and refusals[name] in v.message for v in verdicts)
    elif outcome == {"ok"}:  # this CPU has the kernel for this dtype
        assert all(v.status in JUDGED for v in verdicts), [v.message for v in verdicts]
    else:  # the engine died on omnicheck's first request: the server's own answer, in one line, on every probe
        for verdict in verdicts:
            assert verdict.status == "ERROR" and "\n" not in verdict.message
            assert "HTTP 500" in verdict.message and "EngineCore" in verdict.message, verdict.message


def test_nvfp4_is_refused_in_one_line_and_the_others_still_run(served_run):
    session, document, refusals = served_run
    line = refusals["nvfp4a16"]
    assert line.startswith("vLLM refused to serve nvfp4a16 (") and "\n" not in line
    assert "fp4" in line.split("): ", 1)[1].lower()
    assert next(v for v in document["variants"] if v["name"] == "nvfp4a16")["error"] == line
    for probe in PROBES:
        assert session.verdicts[("nvfp4a16", probe)].status == "ERROR"
        assert session.verdicts[("fp8", probe)].status in JUDGED


def test_the_same_weights_in_process_are_flagged_as_a_comparison_across_engines(served_run):
    session, document, _ = served_run
    for probe in PROBES:
        verdict = session.verdicts[("bf16-in-process", probe)]
        assert verdict.details["engines"]["cross_engine"] is True
        assert verdict.details["engines"]["variant"].startswith("transformers ")
        assert "compared across engines: the reference bf16 ran on vLLM 0.32.0 (served), this variant on " \
               "transformers" in verdict.message
        assert "fix: run the reference in-process too: --model bf16=" in verdict.message
    engines = document["engines"]
    assert engines["cross_engine"] == ["bf16-in-process"]
    # the served copy links the same safetensors: omnicheck sees the reference's own weights on another engine
    assert engines["same_weights_as_reference"] == ["bf16-in-process"]
    alone = engines["engine_alone"]["bf16-in-process"]
    assert sorted(alone) == sorted(PROBES)
    for probe, figures in alone.items():
        agreement = session.verdicts[("bf16-in-process", probe)].details.get("agreement", {})
        assert figures["identical_share"] == agreement.get("identical_share")


def test_one_report_holds_every_variant_and_marks_the_cross_engine_row(served_run):
    from omnicheck.report.terminal import matrix_lines

    session, document, _ = served_run
    assert [v["name"] for v in document["variants"]] == ["bf16", "bf16-in-process", *SERVED_VARIANTS]
    lines = matrix_lines(document)
    row = next(line for line in lines if line.startswith("bf16-in-process "))
    assert all(cell.endswith("*") for cell in row.split()[1:])
    assert not any(line.startswith("fp8 ") and "*" in line for line in lines)
    assert any("the engine alone (bf16-in-process: the reference's weights on another engine): image_caption" in line
               for line in lines)
    html = (Path(session.run.report_dir) / "report.html").read_text()
    assert "compared across engines *" in html and 'id="engine-notes"' in html
    assert "vLLM 0.32.0 (served)" in html
