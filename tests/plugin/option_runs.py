"""What the option tests share: the probe registry split by modality, and the arguments that keep a run short."""

from __future__ import annotations

from omnicheck.probes import PROBES, modality_of

MEDIA_PROBES = [name for name in PROBES if modality_of(name) != "text"]
# short generations, no blank-media rerun (half a media probe's time) and a fixed INCONCLUSIVE policy: a run then
# checks its option, not the machine's defaults
FAST = ("--omnicheck-max-new-tokens", "4", "--omnicheck-no-counterfactual", "--omnicheck-inconclusive", "skip")
