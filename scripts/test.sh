#!/usr/bin/env bash
# Sets up what is missing, then runs the whole test suite. Tests use the real
# PostgreSQL at 127.0.0.1:5432 (database `test`) and Mosquitto at
# 127.0.0.1:1883 when they run; without them those tests say so loudly and are
# skipped, except under CI=true, where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
t0=$(date +%s)
status=0
cargo test --no-fail-fast "$@" 2>&1 | tee target/test.log || status=$?
passed=$(grep -Eo '[0-9]+ passed' target/test.log | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test.log | awk '{s+=$1} END {print s+0}')
ignored=$(grep -Eo '[0-9]+ ignored' target/test.log | awk '{s+=$1} END {print s+0}')
echo
echo "test suite finished in $(( $(date +%s) - t0 )) s"
echo "tests: ${passed} passed, ${failed} failed, ${ignored} skipped"
exit $status
