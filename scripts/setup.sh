#!/usr/bin/env bash
# Installs what lotsense needs on a Debian/Ubuntu machine, skipping what is
# already there: system packages (GStreamer and its plugins, OpenCV core/imgproc
# with clang and g++ for the opencv crate, Mosquitto client tools, python3-pip),
# then builds lotsense and fetches the ONNX Runtime library and the
# default models (checksums verified). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
t0=$(date +%s)

APT_PACKAGES=(
  pkg-config gcc libc6-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  mosquitto-clients python3 python3-pip
  # The `opencv` cargo feature (default; plate deskew): the OpenCV modules it binds,
  # clang (its binding generator loads libclang at run time, so libclang-dev's
  # 230 MB are not needed) and g++ for its C++ glue. These packages have no
  # opencv4.pc; .cargo/config.toml tells the build where they are.
  libopencv-core-dev libopencv-imgproc-dev clang g++
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# python3/pip may come from elsewhere (pyenv): accept a working one.
if command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then
  kept=()
  for p in "${missing[@]}"; do
    case "$p" in python3|python3-pip) ;; *) kept+=("$p") ;; esac
  done
  missing=("${kept[@]}")
fi
read -r -a missing <<< "${missing[*]:-}"
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  say "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "system packages: all present"
fi

if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  say "cargo not found: install Rust 1.94 or newer (https://rustup.rs), then run this again"; exit 1
fi

say "building lotsense ($(cargo --version))"
cargo build --quiet --bin lotsense

say "fetching ONNX Runtime and the default models (skipped when present and verified)"
./target/debug/lotsense models fetch

say "setup done in $(( $(date +%s) - t0 )) s"
