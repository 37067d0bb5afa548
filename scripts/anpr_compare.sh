#!/usr/bin/env bash
# Runs `lotsense eval anpr` and the Python reference (scripts/anpr_reference.py: the same
# PP-OCRv6 model files through the rapidocr 3.10.0 package on onnxruntime 1.31.1) over one
# labelled folder, one after the other, and prints a side-by-side table.
#
#   scripts/anpr_compare.sh --data DIR [--limit N] [--formats hr,br,us] [--out DIR]
#                           [--rapidocr-defaults] [--no-lotsense]
#
#   --data DIR            folder in the `lotsense eval anpr` layout (required)
#   --limit N             first N samples only (same order on both sides)
#   --formats LIST        also run lotsense's default pipeline with these plate-format presets
#                         (e.g. eu=hr+cz,br=br,us=us); the plain lotsense run (whole frame, every
#                         box read, no formats) is always made: it is the one comparable with the
#                         reference's simple plate rule
#   LOTSENSE_BIN=PATH     the lotsense binary (default target/release/lotsense, else debug)
#   --out DIR             where the JSON reports and per-frame outcomes go (default var/anpr-compare)
#   --rapidocr-defaults   also run the reference with RapidOCR's own detector input size
#                         (shorter side enlarged to 736) besides the matched one (longer side 960)
#   --no-lotsense         reuse the lotsense report already in --out (e.g. after a failed build)
#
# Idempotent: the reference venv (.deps/venv-ref) is created and filled only when missing
# or incomplete; wheels in .deps/wheels are used when present, else the package index.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[anpr-compare]\033[0m %s\n' "$*" >&2; }

DATA="" LIMIT="" FORMATS="" OUT="var/anpr-compare" DEFAULTS=0 RUN_LS=1
while (($#)); do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --limit) LIMIT="$2"; shift 2 ;;
    --formats) FORMATS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --rapidocr-defaults) DEFAULTS=1; shift ;;
    --no-lotsense) RUN_LS=0; shift ;;
    -h|--help) awk 'NR>1 && /^#/ {sub(/^# ?/, ""); print; next} NR>1 {exit}' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$DATA" ] || { echo "--data DIR is required (see --help)" >&2; exit 2; }
[ -d "$DATA" ] || { echo "$DATA is not a folder" >&2; exit 2; }
mkdir -p "$OUT"

# ---- reference environment
VENV=.deps/venv-ref
PY="$VENV/bin/python"
PINS=(rapidocr==3.10.0 onnxruntime==1.31.1)
if [ -x "$PY" ] && "$PY" - <<'EOF' 2>/dev/null
from importlib.metadata import version
import cv2, pyclipper, shapely, omegaconf  # noqa: F401
assert version("rapidocr") == "3.10.0" and version("onnxruntime") == "1.31.1"
EOF
then
  say "reference venv $VENV: present (rapidocr 3.10.0, onnxruntime 1.31.1)"
else
  say "creating reference venv $VENV and installing ${PINS[*]} (and their dependencies)"
  python3 -m venv "$VENV"
  FIND=(); [ -d .deps/wheels ] && FIND=(--find-links .deps/wheels)
  "$PY" -m pip install --quiet "${FIND[@]}" "${PINS[@]}"
fi
for m in models/ppocr/PP-OCRv6_det_small.onnx models/ppocr/PP-OCRv6_rec_small.onnx; do
  [ -f "$m" ] || { echo "$m is missing: run scripts/setup.sh (lotsense models fetch)" >&2; exit 1; }
done

LIM=(); [ -n "$LIMIT" ] && LIM=(--limit "$LIMIT")

# ---- timing helper: wall and CPU seconds of a whole run (model loading and JPEG decoding
# included) go to $OUT/NAME.time as "user sys real"; the command's own stderr stays visible.
exec 3>&2
timed() {  # name, command...
  local name="$1"; shift
  local TIMEFORMAT='%U %S %R'
  { time "$@" 2>&3 ; } 2> "$OUT/$name.time"
}

# ---- lotsense (plain: no plate formats, the like-for-like run; with --formats also a second run)
if [ -n "${LOTSENSE_BIN:-}" ]; then LS=$LOTSENSE_BIN; elif [ -x target/release/lotsense ]; then LS=target/release/lotsense; else LS=target/debug/lotsense; fi
REPORTS=()
run_ls() {  # name, extra args
  local name="$1"; shift
  say "lotsense ($name): $LS eval anpr --data $DATA ${LIM[*]} $* --json"
  local t0; t0=$(date +%s)
  timed "$name" "$LS" eval anpr --data "$DATA" "${LIM[@]}" "$@" --json --outcomes "$OUT/$name-outcomes.json" > "$OUT/$name.json"
  say "lotsense ($name) done in $(( $(date +%s) - t0 )) s"
}
if ((RUN_LS)); then
  [ -x "$LS" ] || { echo "no lotsense binary: cargo build --release --bin lotsense" >&2; exit 1; }
  # Matched with the reference: the whole frame, every plate-like box read.
  run_ls lotsense --full-frame --read-all
  # lotsense's default pipeline (proposals, surest box first) with the formats.
  [ -n "$FORMATS" ] && run_ls lotsense-formats --formats "$FORMATS"
else
  [ -s "$OUT/lotsense.json" ] || { echo "--no-lotsense but $OUT/lotsense.json is missing" >&2; exit 1; }
  say "lotsense: reusing the reports in $OUT/"
fi
REPORTS+=(lotsense "$OUT/lotsense.json")
[ -n "$FORMATS" ] && [ -s "$OUT/lotsense-formats.json" ] && REPORTS+=("lotsense +formats $FORMATS" "$OUT/lotsense-formats.json")

# ---- reference (after lotsense, never in parallel: both are timed)
run_ref() {  # name, extra args
  local name="$1"; shift
  say "reference ($name): $PY scripts/anpr_reference.py --data $DATA ${LIM[*]} $* --json"
  local t0; t0=$(date +%s)
  NO_PROGRESS=1 timed "$name" "$PY" scripts/anpr_reference.py --data "$DATA" "${LIM[@]}" "$@" --json \
    --outcomes "$OUT/$name-outcomes.json" > "$OUT/$name.json"
  say "reference ($name) done in $(( $(date +%s) - t0 )) s"
}
run_ref reference-max960
REPORTS+=("rapidocr max960" "$OUT/reference-max960.json")
if ((DEFAULTS)); then
  run_ref reference-rapidocr-defaults --rapidocr-defaults
  REPORTS+=("rapidocr min736" "$OUT/reference-rapidocr-defaults.json")
fi

# ---- side-by-side table
"$PY" - "${REPORTS[@]}" <<'EOF'
import json, os, sys
args = sys.argv[1:]
runs = [(args[i], json.load(open(args[i + 1]))) for i in range(0, len(args), 2)]
cpu = {}
for i in range(0, len(args), 2):
    t = args[i + 1][:-5] + ".time"
    if os.path.exists(t):
        u, s_, r = (float(x) for x in open(t).read().split()[:3])
        cpu[args[i]] = (u + s_, r)
groups = sorted({g for _, r in runs for g in r.get("by_group", {})}) + ["ALL"]
def pick(r, g):
    return r if g == "ALL" else r["by_group"].get(g)
def pct(v):
    return "-" if v is None else f"{v * 100:.1f}%"
cols = [("frames", lambda s: str(s["frames"])), ("det@0.5", lambda s: pct(s.get("detect_recall"))),
        ("exact", lambda s: pct(s["exact"])), ("exact_o0", lambda s: pct(s["exact_o0"])),
        ("cer", lambda s: f"{s['cer']:.3f}"), ("p50 ms", lambda s: f"{s['latency_ms']['p50']:.0f}"),
        ("p95 ms", lambda s: f"{s['latency_ms']['p95']:.0f}")]
head = ["group", "engine"] + [c for c, _ in cols]
rows = []
for g in groups:
    for name, r in runs:
        s = pick(r, g)
        if s:
            rows.append([g, name] + [f(s) for _, f in cols])
print("| " + " | ".join(head) + " |")
print("|" + "|".join(["---"] * 2 + ["---:"] * len(cols)) + "|")
for row in rows:
    print("| " + " | ".join(row) + " |")
print()
for name, r in runs:
    st = r.get("stages_ms", {})
    extra = ""
    if name in cpu:
        c, w = cpu[name]
        extra = f"; whole run {w:.0f} s wall, {c:.0f} s CPU = {c * 1000 / max(r['frames'], 1):.0f} ms CPU per frame (incl. loading, decoding)"
    print(f"{name}: median ms per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in st.items()) + extra)
EOF
say "reports and per-frame outcomes in $OUT/"
