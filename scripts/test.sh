#!/usr/bin/env bash
# Runs the test suite (unit tests with fakes, then integration tests on the real packaged models).
#   scripts/test.sh [pytest args]
# With no test collected pytest exits 5: that fails the run, unless the run was deliberately filtered
# (-k or -m), where matching nothing is a legitimate answer.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1   # tests never reach a model hub
export OMP_WAIT_POLICY=PASSIVE                     # llama.cpp's spinning threads starve the other tests
.venv/bin/python -m pytest --durations=15 "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
  filtered=0
  for arg in "$@"; do
    case "$arg" in -k|-m|-k?*|-m?*) filtered=1 ;; esac
  done
  if ((filtered)); then
    echo "no test matched the filter"
    rc=0
  else
    echo "error: no test was collected (a broken collection?); this is a failure" >&2
  fi
fi
exit $rc
