#!/usr/bin/env bash
# Sets up what is missing, then runs the demo site (embedded SQLite and MQTT
# broker, cameras replayed from testdata/ through an in-process RTSP server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec ./target/debug/lotsense demo "$@"
