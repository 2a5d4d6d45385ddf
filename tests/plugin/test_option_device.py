"""--omnicheck-device DEVICE: the torch device in-process models load on; the report says which one was used."""

from __future__ import annotations

import pytest
from option_runs import FAST


def _devices() -> list:
    import torch

    gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
    return ["cpu", pytest.param("cuda", marks=gpu)]


@pytest.mark.parametrize("device", _devices())
def test_model_runs_on_the_named_device(run_omnicheck, read_document, tiny_gemma, device):
    result = run_omnicheck(
        "--model", f"a={tiny_gemma}", "--omnicheck-probe", "speech_wer", "--omnicheck-limit", "1",
        "--omnicheck-device", device, *FAST,
    )
    assert result.ret == 0, result.stdout.str()
    document = read_document()
    (variant,) = document["variants"]
    (run,) = document["results"]
    assert run["status"] == "ok", run["reason"]
    if device == "cpu":
        assert variant["description"]["device"] == document["environment"]["device"] == "cpu"
    else:
        import torch

        assert variant["description"]["device"] == torch.cuda.get_device_name(0)
