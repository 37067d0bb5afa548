#!/usr/bin/env bash
# Sets up what is missing, then runs the whole test suite. Tests use the real
# PostgreSQL at 127.0.0.1:5432 (database `test`) and Mosquitto at
# 127.0.0.1:1883 when they run (LOTSENSE_TEST_PG=<admin URL> and
# LOTSENSE_TEST_MOSQUITTO=<host:port> point them elsewhere); without them those
# tests say so loudly and are skipped (counted as skipped below, not as
# passed), except under CI=true, where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
t0=$(date +%s)
mkdir -p target
# A test skipped for a missing service returns early (libtest counts it as
# passed) and leaves a file here named after the test, holding the reason.
skips="$PWD/target/test-skips"
rm -rf "$skips"
mkdir -p "$skips"
export LOTSENSE_TEST_SKIP_DIR="$skips"
# The integration tests are one binary (tests/it) whose tests mostly wait on
# sockets, databases, cameras and child processes: they run on more threads
# than there are cores.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-8}"
status=0
cargo test --no-fail-fast "$@" 2>&1 | tee target/test.log || status=$?
passed=$(grep -Eo '[0-9]+ passed' target/test.log | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test.log | awk '{s+=$1} END {print s+0}')
ignored=$(grep -Eo '[0-9]+ ignored' target/test.log | awk '{s+=$1} END {print s+0}')
missing=0
echo
for f in "$skips"/*; do
  [ -e "$f" ] || continue
  name=$(basename "$f")
  # A test that failed after leaving its marker is counted as failed only.
  grep -qxF -- "---- $name stdout ----" target/test.log && continue
  missing=$((missing + 1))
  echo "skipped: $name: $(cat "$f")"
done
echo "test suite finished in $(( $(date +%s) - t0 )) s"
echo "tests: $((passed - missing)) passed, ${failed} failed, $((ignored + missing)) skipped"
exit $status
