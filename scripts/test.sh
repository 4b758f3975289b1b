#!/usr/bin/env bash
# Runs the whole test suite (unit tests with fakes, then integration tests on the real packaged models).
#   scripts/test.sh [pytest args]
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1   # tests never reach a model hub
export OMP_WAIT_POLICY=PASSIVE                     # llama.cpp's spinning threads starve the other tests
.venv/bin/python -m pytest --durations=15 "$@"
rc=$?
# pytest exits 5 when it collected no test (e.g. a -k filter matching nothing): not a failure of plait.
[[ $rc -eq 5 ]] && { echo "no tests were collected"; rc=0; }
exit $rc
