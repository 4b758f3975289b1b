#!/usr/bin/env bash
# Runs the whole test suite (unit tests with fakes, then integration tests on the real packaged models).
#   scripts/test.sh [pytest args]
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1   # tests never reach a model hub
export OMP_WAIT_POLICY=PASSIVE                     # llama.cpp's spinning threads starve the other tests
# The whole suite (no arguments) starts with the lint checks, so CI fails on them too.
if [[ $# -eq 0 ]]; then
  scripts/lint.sh || exit 1
fi
.venv/bin/python -m pytest --durations=15 "$@"
rc=$?
# pytest exits 5 when it collected no test: a failure of the whole suite (a broken collection), but not of a
# run filtered on purpose (a -k that matches nothing here).
[[ $rc -eq 5 && $# -gt 0 ]] && { echo "no tests were collected"; rc=0; }
exit $rc
