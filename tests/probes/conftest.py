"""Fixtures the probe tests share."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tiny_backend(tiny_gemma):
    """The tiny random gemma4_unified loaded in-process, once per test module."""
    from omnicheck.backends.hf import HFBackend

    backend = HFBackend(tiny_gemma, name="tiny", device="cpu")
    yield backend
    backend.close()
