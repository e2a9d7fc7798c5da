#!/bin/bash
# Interleaved A/B of wsgate's own CPU per round trip between two sets of
# flags: both proxies run side by side (pinned to BENCH_PROXY_CPU, load and
# echo to BENCH_LOAD_CPU), and each pair of runs measures A then B for the
# same seconds, so a drift of the shared machine hits both. Prints each
# side's µs of proxy CPU (user + system, /proc/PID/stat) per round trip and
# the median A/B ratio over the pairs, and each side's p99 latency (with
# BENCH_RATE: from the scheduled send). Run on demand; not part of make test
# except a one-pair smoke run (correctness of the script only).
#
# usage: tests/bench/ab.sh BUILD_DIR PAIRS SIZE CONNECTIONS SECONDS -- A-FLAGS... -- B-FLAGS...
#   e.g. tests/bench/ab.sh build 10 64 32 3 -- --threads 1 -- --threads 1 --tap-mode off
# BENCH_RATE=N: open loop at N messages/s over all sessions (default closed).
# BENCH_PROXY_CPU / BENCH_LOAD_CPU: taskset lists (default 1 / 0; "0,1" for
# both cores, as the workers2 section runs).
# BENCH_SCHEME=wss: TLS on the listener (a throwaway self-signed certificate).
# WSGATE / WSGATE_B: the binary for A / for B (default: B runs A's), to
# compare two builds with the same flags.
set -euo pipefail
[ $# -ge 7 ] || { sed -n 2,18p "$0" >&2; exit 2; }
build=$1 pairs=$2 size=$3 conns=$4 secs=$5
shift 5
[ "$1" = -- ] || { echo "ab.sh: expected -- before A's flags" >&2; exit 2; }
shift
a_flags=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do a_flags+=("$1"); shift; done
[ $# -gt 0 ] || { echo "ab.sh: expected -- before B's flags" >&2; exit 2; }
shift
b_flags=("$@")
wsgate=${WSGATE:-$build/bin/wsgate}
wsgate_b=${WSGATE_B:-$wsgate}
tool=${BENCH_TOOL:-$build/bin/wsgate-bench}
proxy_cpu=${BENCH_PROXY_CPU:-1} load_cpu=${BENCH_LOAD_CPU:-0}
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

taskset -c "$load_cpu" "$tool" echo --listen 127.0.0.1:0 --port-file "$work/echo.port" >/dev/null 2>&1 &
pids+=($!)
wait_file "$work/echo.port" $! || { echo "ab.sh: the echo upstream did not start" >&2; exit 3; }
echo_port=$(cat "$work/echo.port")

scheme=${BENCH_SCHEME:-ws}
tls_flags=() load_flags=()
case $scheme in
  ws) ;;
  wss)
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
      -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1
    tls_flags=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
    load_flags=(--insecure) ;;
  *) echo "ab.sh: BENCH_SCHEME must be ws or wss" >&2; exit 2 ;;
esac

start() {  # SIDE FLAGS...
  local side=$1 bin=$wsgate; shift
  [ "$side" = b ] && bin=$wsgate_b
  taskset -c "$proxy_cpu" "$bin" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
    --port-file "$work/$side.ports" --upstream "ws://127.0.0.1:$echo_port" --log-level warn \
    "${tls_flags[@]}" "$@" >"$work/$side.log" 2>&1 &
  pids+=($!)
  echo $! >"$work/$side.pid"
  wait_file "$work/$side.ports" $! ||
    { echo "ab.sh: wsgate ($side) did not start: $(tail -3 "$work/$side.log")" >&2; exit 3; }
}
start a "${a_flags[@]}"
start b "${b_flags[@]}"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
for pair in $(seq "$pairs"); do
  for side in a b; do
    pid=$(cat "$work/$side.pid")
    port=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['listen'])" "$work/$side.ports")
    taskset -c "$load_cpu" "$tool" load --url "$scheme://127.0.0.1:$port/ab" "${load_flags[@]}" --connections "$conns" \
      --size "$size" --duration "$secs" --warmup 0.5 --rate "${BENCH_RATE:-0}" >"$work/load.json" &
    load_pid=$!
    sleep 0.5
    c0=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
    sleep "$secs"
    c1=$(cpu_ticks "$pid"); t1=$(date +%s.%N)
    wait "$load_pid"
    python3 - "$work/load.json" "$side" "$pair" "$c0" "$c1" "$t0" "$t1" "$hz" >>"$work/results" <<'PY'
import json, sys
load = json.load(open(sys.argv[1]))
side, pair, c0, c1, t0, t1, hz = sys.argv[2], sys.argv[3], *map(float, sys.argv[4:])
rate = load["messages_per_sec"]
if load.get("errors") or rate <= 0:
    sys.exit(f"ab.sh: {side} pair {pair}: errors {load.get('errors')}, {rate} msg/s")
print(side, pair, rate, (c1 - c0) / hz * 1e6 / (rate * (t1 - t0)), load["latency_us"]["p99"])
PY
  done
done

python3 - "$work/results" <<'PY'
import statistics, sys
runs = {"a": [], "b": []}
for line in open(sys.argv[1]):
    side, _, rate, cpu, p99 = line.split()
    runs[side].append((float(rate), float(cpu), float(p99)))
for side in "ab":
    cpus = [c for _, c, _ in runs[side]]
    print(f"{side.upper()} µs/rt", " ".join(f"{c:.1f}" for c in cpus), f"median {statistics.median(cpus):.2f}",
          f"(msg/s median {statistics.median(r for r, _, _ in runs[side]):.0f})")
for side in "ab":
    p99s = [p for _, _, p in runs[side]]
    print(f"{side.upper()} p99 µs", " ".join(f"{p:.0f}" for p in p99s), f"median {statistics.median(p99s):.0f}")
ratios = [a[1] / b[1] for a, b in zip(runs["a"], runs["b"])]
print("A/B per pair", " ".join(f"{r:.2f}" for r in ratios), f"median {statistics.median(ratios):.3f}")
PY
