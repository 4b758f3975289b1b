#!/usr/bin/env bash
# Runs the test suite (unit tests with fakes, then integration tests on the real packaged models).
#   scripts/test.sh [pytest args]
# The whole suite (no test paths, no -k/-m filter; options such as --fail-on-skip allowed) starts with the
# lint checks, so CI fails on them too. With no test collected pytest exits 5: that fails the run, unless
# the run was deliberately filtered (-k or -m), where matching nothing is a legitimate answer.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1   # tests never reach a model hub
export OMP_WAIT_POLICY=PASSIVE                     # llama.cpp's spinning threads starve the other tests
whole=1 filtered=0 value=0
for arg in "$@"; do
  if ((value)); then value=0; continue; fi         # the value of an option given as two words
  case "$arg" in
    -k|-m) filtered=1 whole=0 value=1 ;;
    -k?*|-m?*) filtered=1 whole=0 ;;
    -p|-o|-W|-c|--deselect|--ignore|--rootdir|--timeout|--maxfail|--durations) value=1 ;;
    -*) ;;
    *) whole=0 ;;                                  # a test file or folder
  esac
done
if ((whole)); then
  scripts/lint.sh || exit 1
fi
.venv/bin/python -m pytest --durations=15 "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
  if ((filtered)); then
    echo "no test matched the filter"
    rc=0
  else
    echo "error: no test was collected (a broken collection?); this is a failure" >&2
  fi
fi
exit $rc
