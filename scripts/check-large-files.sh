#!/usr/bin/env bash
# Refuses a tracked file over 5 MB (a committed executable, a generated
# model): every clone downloads it forever. Run by `make test`, so CI and
# the before-stop check fail on one.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=$((5 * 1024 * 1024))
bad=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  size=$(stat -c %s "$f")
  if [ "$size" -gt "$limit" ]; then
    echo "check-large-files: $f is $size bytes (over 5 MB); remove it from git and ignore it" >&2
    bad=1
  fi
done < <(git ls-files -z)
exit $bad
