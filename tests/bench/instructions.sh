#!/usr/bin/env bash
# User-space instructions per round trip in wsgate, counted by callgrind.
#
#   tests/bench/instructions.sh BUILD_DIR [ws|wss] [SIZE] [CONNECTIONS]
#
# Throughput on this shared VM swings +-40 % between rounds; an instruction
# count does not. It measures only what runs in user space (wsgate, Asio,
# OpenSSL, libc), not the kernel, so it shows the cost of our own code paths
# exactly and says nothing about syscalls (count those with perf stat).
#
# wsgate runs under callgrind with --threads 1 against a wsgate-bench echo
# upstream; a closed-loop load runs for WARMUP s, then the counters are
# zeroed and it runs DURATION s more. Result: Ir / round trips measured.
#
#   WSGATE=path/to/wsgate   binary to measure (default BUILD_DIR/bin/wsgate)
#   BASELINE=path/to/wsgate also measure this one, in the same run, and print the ratio
#   DURATION=4 WARMUP=1     seconds
#   EXTRA_ARGS="..."        more wsgate flags (e.g. --tap-mode off)
set -euo pipefail

build=${1:-build}
scheme=${2:-ws}
size=${3:-64}
connections=${4:-8}
duration=${DURATION:-4}
warmup=${WARMUP:-1}
tool=$build/bin/wsgate-bench
repo=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3

command -v valgrind >/dev/null || { echo "instructions: valgrind is not installed" >&2; exit 2; }
[ -x "$tool" ] || { echo "instructions: $tool not found (build with -DWSGATE_BENCH=ON)" >&2; exit 2; }

# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

"$tool" echo --listen 127.0.0.1:0 --port-file "$work/echo.port" >"$work/echo.log" 2>&1 &
pids+=($!)
wait_file "$work/echo.port" "${pids[-1]}" || { echo "instructions: echo did not start" >&2; exit 3; }
echo_port=$(cat "$work/echo.port")

tls=()
ca=()
if [ "$scheme" = wss ]; then
  cert_dir=$work/cert
  "$repo/deploy/dev-cert.sh" "$cert_dir" >/dev/null
  tls=(--tls-cert "$cert_dir/server.crt" --tls-key "$cert_dir/server.key")
  ca=(--ca "$cert_dir/ca.crt")
fi

measure() {  # BINARY -> prints instructions per round trip
  local bin=$1 out=$work/cg.out ports=$work/wsgate.ports
  rm -f "$out"* "$ports"
  # shellcheck disable=SC2086
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --listen 127.0.0.1:0 \
    --admin 127.0.0.1:0 --port-file "$ports" --upstream "ws://127.0.0.1:$echo_port" \
    --threads 1 --log-level warn "${tls[@]}" ${EXTRA_ARGS:-} >"$work/wsgate.log" 2>&1 &
  local vpid=$!
  wait_file "$ports" "$vpid" || { echo "instructions: wsgate did not start: $(tail -3 "$work/wsgate.log")" >&2; exit 3; }
  local port
  port=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['listen'])" "$ports")
  "$tool" load --url "$scheme://127.0.0.1:$port/bench" "${ca[@]}" --connections "$connections" \
    --size "$size" --duration "$duration" --warmup "$warmup" >"$work/load.json" &
  local lpid=$!
  sleep "$warmup"
  callgrind_control -z "$vpid" >/dev/null 2>&1
  wait "$lpid"
  kill -INT "$vpid"
  wait "$vpid" || true
  "$py" - "$work/load.json" "$out" <<'PY'
import json, re, sys
load = json.load(open(sys.argv[1]))
total = 0
for line in open(sys.argv[2]):
    m = re.match(r"(summary|totals): (\d+)", line)
    if m:
        total = int(m.group(2))
if load["errors"] or not load["messages"]:
    sys.exit(f"instructions: load failed: {load.get('error_samples')}")
print(f"{total / load['messages']:.0f} {load['messages']}")
PY
}

binary=${WSGATE:-$build/bin/wsgate}
read -r ir n < <(measure "$binary")
echo "wsgate $scheme ${size} B x $connections: $ir instructions per round trip ($n round trips, $binary)"
if [ -n "${BASELINE:-}" ]; then
  read -r base_ir base_n < <(measure "$BASELINE")
  echo "baseline $scheme ${size} B x $connections: $base_ir instructions per round trip ($base_n round trips, $BASELINE)"
  "$py" -c "import sys; print(f'ratio {int(sys.argv[1]) / int(sys.argv[2]):.3f} (measured / baseline)')" "$ir" "$base_ir"
fi
