#!/usr/bin/env bash
# Keeps the tree as it should be: no large files committed outside bench/results (a profile or a model file
# slipped in), ruff (style, imports, complexity) and mypy. Part of the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=$((1024 * 1024))
large=()
while IFS= read -r -d '' file; do
  [[ $file == bench/results/* ]] && continue
  if [[ -f $file ]] && (( $(stat -c %s "$file") > limit )); then
    large+=("$file")
  fi
done < <(git ls-files -z 2>/dev/null)
if ((${#large[@]})); then
  echo "lint: tracked files over 1 MB outside bench/results (remove them, or add them to .gitignore):" >&2
  printf '  %s\n' "${large[@]}" >&2
  exit 1
fi
.venv/bin/ruff check src tests bench
.venv/bin/mypy
