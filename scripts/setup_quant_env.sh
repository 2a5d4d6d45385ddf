#!/usr/bin/env bash
# Build the two fixture-making environments, kept apart from the runtime install because their pins conflict:
#   /work/venvs/llmcompressor : llmcompressor 0.14.0.1 (torch<=2.14.0, transformers<=5.17.0, compressed-tensors==0.19.0)
#   /work/venvs/modelopt      : nvidia-modelopt 0.47.0 without extras ([hf] would pin transformers<5.15, too old
#                               for gemma4_unified), beside transformers 5.17.0
# Both use the CPU build of torch 2.13.0. Usage: scripts/setup_quant_env.sh [llmcompressor|modelopt|all]
set -euo pipefail
ROOT="${OMNICHECK_VENVS:-/work/venvs}"
PY="${PYTHON:-python3.11}"
which="${1:-all}"

make_venv() {
  local dir="$1"
  if [ ! -x "$dir/bin/python" ]; then
    "$PY" -m venv "$dir"
  fi
  "$dir/bin/pip" install --quiet --upgrade pip
}

if [ "$which" = all ] || [ "$which" = llmcompressor ]; then
  dir="$ROOT/llmcompressor"
  make_venv "$dir"
  "$dir/bin/pip" install --quiet torch==2.13.0
  "$dir/bin/pip" install --quiet llmcompressor==0.14.0.1 transformers==5.17.0 compressed-tensors==0.19.0 \
    safetensors tokenizers
  "$dir/bin/python" -c "import llmcompressor, transformers, compressed_tensors, torch; \
print('llmcompressor', llmcompressor.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
fi

if [ "$which" = all ] || [ "$which" = modelopt ]; then
  dir="$ROOT/modelopt"
  make_venv "$dir"
  "$dir/bin/pip" install --quiet torch==2.13.0
  "$dir/bin/pip" install --quiet nvidia-modelopt==0.47.0 transformers==5.17.0 safetensors tokenizers accelerate requests
  "$dir/bin/python" -c "import modelopt, transformers, torch; \
print('modelopt', modelopt.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
fi
