"""The probe registry: names map to modules, imported only when a probe runs."""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING

from omnicheck.errors import UsageError

if TYPE_CHECKING:
    from omnicheck.probes.base import Probe

# name -> (module, class, modality). The modality is here so the plugin can mark tests without imports.
PROBES: dict[str, tuple[str, str, str]] = {
    "gsm8k": ("omnicheck.probes.gsm8k", "GSM8K", "text"),
    "ifeval": ("omnicheck.probes.ifeval", "IFEval", "text"),
    "image_caption": ("omnicheck.probes.image_caption", "ImageCaption", "image"),
    "speech_wer": ("omnicheck.probes.speech_wer", "SpeechWER", "audio"),
    "video_describe": ("omnicheck.probes.video_describe", "VideoDescribe", "video"),
}


TIERS = ("smoke", "full")  # a probe's few samples that show it runs, or its whole set


def check_name(name: str) -> str:
    if name not in PROBES:
        close = difflib.get_close_matches(name, PROBES, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose from {', '.join(PROBES)}"
        raise UsageError(f"unknown probe {name!r}", hint)
    return name


def modality_of(name: str) -> str:
    return PROBES[check_name(name)][2]


def load_probe(name: str, data=None) -> "Probe":
    module, cls, _ = PROBES[check_name(name)]
    return getattr(importlib.import_module(module), cls)(data)
