#!/usr/bin/env bash
# Side-by-side benchmark: direct, wsgate, nginx (1 worker) and HAProxy
# (1 thread), all relaying to the same wsgate-bench echo upstream. wsgate
# runs its shipped default (--threads auto): pinned to one core it starts
# one worker, matching the peers.
#
#   tests/bench/compare.sh BUILD_DIR        (`make bench` runs it on build/)
#
# The proxy under test runs on core 1 (taskset -c 1); load generator and echo
# upstream share core 0. Rounds are interleaved: every round runs every target
# once per matrix cell, in a rotated order, so drift hits all targets alike.
# Raw JSON goes to BUILD_DIR/bench-results/<timestamp>/, the markdown table
# to stdout (and report.md beside the JSON).
#
# Reported: throughput (round trips/s, MB/s, p99) per cell with per-round
# ratios wsgate / best(nginx, HAProxy); proxy CPU per round trip; TLS
# handshakes/s; RSS per idle session. Sections beyond those (functions
# section_* near the end, each bounded and selected by BENCH_SECTIONS):
#   openloop  every target at one fixed offered rate (open loop, below
#             saturation): p50/p99/p999 from the scheduled send time, achieved
#             against offered, proxy CPU per round trip (and the tap's cost at
#             that load, wsgate vs wsgate-tapoff)
#   workers2  proxy, load and echo all on cores BENCH_WORKERS2_CPUS (0,1): each
#             proxy at 2 workers (wsgate's default there, nginx
#             worker_processes 2, HAProxy nbthread 2) and at 1 (wsgate-1w =
#             --threads 1, nginx-1w, haproxy-1w), one fixed offered rate, proxy
#             CPU per round trip; the load tool shares the cores with the proxy
#   fdlimit   9,000 warm-idle sessions held through each proxy under the
#             run's fd limit (20,000): all held?, RSS, the proxy's fd limit
#             and open descriptors
#
# CPU figures. On a small VM the load core (generator + echo) is usually the
# bottleneck (~100 % busy while the proxy core idles part of the time), so
# round trips/s then measures the load core's speed, not the proxy's. Every
# throughput cell therefore also records, beside the load tool's figures:
#   proxy_cpu_us_per_msg  user+system CPU of the proxy (utime+stime from
#                         /proc/PID/stat; nginx: master + worker, HAProxy and
#                         wsgate: the one process serving the scheme) per
#                         round trip, in µs; null for direct
#   load_cpu_share        CPU of the load tool and echoes (every running
#                         wsgate-bench) over the cores of BENCH_LOAD_CPU
#   proxy_cpu_share       CPU of the proxy over the cores of BENCH_PROXY_CPU
#   load_core_busy,       the same cores' busy fractions from /proc/stat,
#   proxy_core_busy       kept for comparison: tick-sampled, so they are
#                         wrong under light load on some kernels (this one)
#   cpu_sample            the raw sample: pids, seconds, CPU s, steal, checks
# All come from one sampling interval inside the load phase; see
# tests/bench/cpu_sample.py for how it lines up with the load tool's window.
# report.py prints a proxy-CPU table (lower is better) and flags cells where
# the load tool and echo used >= 95 % of the load core.
#
# Environment knobs:
#   BENCH_QUICK=1         1 round, 3 s per cell, 1 s warm-up, memory at 5000 only
#                         (fdlimit still holds its 9,000: that is the cell)
#   BENCH_ROUNDS=3        rounds of the throughput matrix
#   BENCH_DURATION=8      measured seconds per cell
#   BENCH_WARMUP=2        unmeasured seconds before each cell
#   BENCH_TARGETS="direct wsgate wsgate-tapoff nginx haproxy"
#   BENCH_SECTIONS="throughput connect memory openloop workers2 fdlimit"
#   BENCH_CELLS="64x32 1024x32 16384x8 262144x2"   (SIZExCONNECTIONS)
#   BENCH_SCHEMES="ws wss"
#   BENCH_HOLD="5000"     idle sessions held for the memory section (9,000: fdlimit)
#   BENCH_HOLD_WARM=64    bytes each held session echoes once before idling (0: cold)
#   BENCH_OPENLOOP_RATE=10000 BENCH_OPENLOOP_CELLS="64x32"   (msg/s over all sessions)
#   BENCH_WORKERS2_RATE=10000 BENCH_WORKERS2_CELLS="64x32" BENCH_WORKERS2_CPUS=0,1
#   BENCH_WORKERS2_TARGETS="wsgate wsgate-1w nginx nginx-1w haproxy haproxy-1w"
#   BENCH_FDLIMIT_SESSIONS=9000 BENCH_FDLIMIT=20000
#   BENCH_FDLIMIT_TARGETS="wsgate nginx haproxy"
#   BENCH_CONNECT_DURATION=5 BENCH_CONNECT_CONCURRENCY=16
#   BENCH_TOOL=path/to/wsgate-bench   WSGATE=path/to/wsgate
#   NGINX=/usr/sbin/nginx HAPROXY=/usr/sbin/haproxy
#   BENCH_PROXY_CPU=1 BENCH_LOAD_CPU=0
set -euo pipefail

build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  rounds=${BENCH_ROUNDS:-1}; duration=${BENCH_DURATION:-3}; warmup=${BENCH_WARMUP:-1}
  holds=${BENCH_HOLD:-5000}
else
  rounds=${BENCH_ROUNDS:-3}; duration=${BENCH_DURATION:-8}; warmup=${BENCH_WARMUP:-2}
  holds=${BENCH_HOLD:-5000}
fi
sections=${BENCH_SECTIONS:-throughput connect memory openloop workers2 fdlimit}
hold_warm=${BENCH_HOLD_WARM:-64}
# 10,000 msg/s: under half the closed-loop 64 B x 32 rate of the slowest peer
# on the 2-core reference machine (23k round trips/s, bound by the load core),
# so neither the load core nor any proxy saturates; report.py flags a run
# whose achieved rate falls short of the offered one.
openloop_rate=${BENCH_OPENLOOP_RATE:-10000}
openloop_cells=${BENCH_OPENLOOP_CELLS:-64x32}
workers2_rate=${BENCH_WORKERS2_RATE:-10000}
workers2_cells=${BENCH_WORKERS2_CELLS:-64x32}
workers2_cpus=${BENCH_WORKERS2_CPUS:-0,1}
workers2_targets=${BENCH_WORKERS2_TARGETS:-wsgate wsgate-1w nginx nginx-1w haproxy haproxy-1w}
fdlimit_sessions=${BENCH_FDLIMIT_SESSIONS:-9000}
fdlimit=${BENCH_FDLIMIT:-20000}
fdlimit_targets=${BENCH_FDLIMIT_TARGETS:-wsgate nginx haproxy}
cells=${BENCH_CELLS:-64x32 1024x32 16384x8 262144x2}
schemes=${BENCH_SCHEMES:-ws wss}
connect_duration=${BENCH_CONNECT_DURATION:-5}
connect_concurrency=${BENCH_CONNECT_CONCURRENCY:-16}
proxy_cpu=${BENCH_PROXY_CPU:-1}
load_cpu=${BENCH_LOAD_CPU:-0}
nginx_bin=${NGINX:-/usr/sbin/nginx}
haproxy_bin=${HAPROXY:-/usr/sbin/haproxy}

log() { echo "compare: $*" >&2; }

# --- tools -------------------------------------------------------------------
tool=${BENCH_TOOL:-}
if [ -z "$tool" ]; then
  for candidate in "$build/bin/wsgate-bench" "$repo/build-bench/bin/wsgate-bench"; do
    if [ -x "$candidate" ]; then tool=$candidate; break; fi
  done
fi
if [ -z "$tool" ] || [ ! -x "$tool" ]; then
  log "wsgate-bench not found in $build/bin (configure with -DWSGATE_BENCH=ON and build the"
  log "wsgate-bench target, or set BENCH_TOOL)"
  exit 2
fi
wsgate_bin=${WSGATE:-$build/bin/wsgate}

default_targets="direct wsgate wsgate-tapoff nginx haproxy"
have_target() {  # NAME: its binary is there (logs the skip otherwise)
  case $1 in
    wsgate|wsgate-*)
      if [ ! -x "$wsgate_bin" ]; then
        log "$1: SKIPPED — $wsgate_bin not found (build the proxy first)"; return 1
      fi ;;
    nginx|nginx-1w) [ -x "$nginx_bin" ] || { log "$1: SKIPPED — $nginx_bin not found"; return 1; } ;;
    haproxy|haproxy-1w) [ -x "$haproxy_bin" ] || { log "$1: SKIPPED — $haproxy_bin not found"; return 1; } ;;
  esac
}
targets=()
for t in ${BENCH_TARGETS:-$default_targets}; do
  if have_target "$t"; then targets+=("$t"); fi
done

if [ "$(nproc)" -lt 2 ]; then
  log "fewer than 2 CPUs: pinning proxy and load to the same core"
  proxy_cpu=0
fi

ulimit -n "$fdlimit" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
log "fd limit $(ulimit -n)"

"$repo/deploy/dev-cert.sh" "$build/dev-cert" >&2
cert=$(cd "$build/dev-cert" && pwd)/server.crt
key=$(cd "$build/dev-cert" && pwd)/server.key
ca=$(cd "$build/dev-cert" && pwd)/ca.crt

out="$build/bench-results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d /tmp/wsgate-bench.XXXXXX)
cat "$cert" "$key" > "$work/haproxy.pem"

# What the figures depend on: CPU count, load from other processes, versions.
meta() {  # PHASE
  "$py" - "$out/meta-$1.json" "$1" "$rounds" "$duration" "$warmup" <<PY
import json, os, platform, subprocess, sys
def run(*cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except Exception:
        return None
json.dump({"phase": sys.argv[2], "loadavg": open("/proc/loadavg").read().split()[:3],
           "nproc": os.cpu_count(), "kernel": platform.release(),
           "rounds": int(sys.argv[3]), "duration_s": float(sys.argv[4]), "warmup_s": float(sys.argv[5]),
           "nginx": run("$nginx_bin", "-v"), "haproxy": run("$haproxy_bin", "-v"),
           "openssl": run("openssl", "version"),
           "git": run("git", "-C", "$repo", "describe", "--always", "--dirty")},
          open(sys.argv[1], "w"))
PY
}
meta start
read -r load1 _ < /proc/loadavg
if awk -v l="$load1" 'BEGIN { exit !(l > 1.0) }'; then
  log "WARNING: load average $load1 before the run: other processes compete for the cores"
fi
chmod 600 "$work/haproxy.pem"

# --- process bookkeeping --------------------------------------------------------
pids=()
stop_pid() {  # PID: SIGTERM, up to 5 s, then SIGKILL; forgotten afterwards
  local pid=$1 i p keep=()
  for p in "${pids[@]}"; do if [ "$p" != "$pid" ]; then keep+=("$p"); fi; done
  pids=("${keep[@]}")
  if kill -TERM "$pid" 2>/dev/null; then
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  rm -rf "$work"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=tests/bench/peers.sh
. "$here/peers.sh"
alive() {  # PID: running (a crashed child stays a zombie until waited for)
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}
wait_port() {  # PORT PID: until something accepts on PORT (10 s), or PID dies
  local port=$1 pid=$2 i
  for i in $(seq 200); do
    alive "$pid" || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}
rss_kib() {  # PID: VmRSS of the process plus its children (nginx: master + worker)
  local total=0 p v
  for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# --- echo upstreams (core 0) -------------------------------------------------------
start_echo() {  # NAME [echo flags...]; sets echo_port
  local name=$1; shift
  taskset -c "$load_cpu" "$tool" echo --listen 127.0.0.1:0 --port-file "$work/$name.port" "$@" \
    2>>"$work/$name.log" &
  local pid=$!
  pids+=("$pid")
  local i
  for i in $(seq 200); do [ -s "$work/$name.port" ] && break; sleep 0.05; done
  [ -s "$work/$name.port" ] || { log "echo $name did not start: $(cat "$work/$name.log")"; exit 3; }
  echo_port=$(cat "$work/$name.port")
  last_pid=$pid
}
start_echo echo-ws; echo_ws_port=$echo_port
start_echo echo-wss --tls-cert "$cert" --tls-key "$key"; echo_wss_port=$echo_port

# --- targets ----------------------------------------------------------------
# start_target NAME: starts it (if a proxy) and sets target_pid, ws_url, wss_url.
# target_pid is empty for direct. nginx and haproxy run peer_workers workers
# (worker_processes, nbthread); their -1w names and wsgate-1w run one. wsgate
# runs --threads auto: one worker per CPU of its taskset.
peer_workers=1
start_target() {
  local name=$1 ws_port wss_port
  local nw=$peer_workers
  case $name in *-1w) nw=1 ;; esac
  target_pid=""
  case $name in
    direct)
      ws_url="ws://127.0.0.1:$echo_ws_port/bench"
      wss_url="wss://127.0.0.1:$echo_wss_port/bench"
      return 0 ;;
    nginx|nginx-1w)
      # A directory per name: nginx and nginx-1w may run side by side.
      local dir=$work/$name
      ws_port=$(free_port); wss_port=$(free_port)
      nginx_conf "$dir" "$echo_ws_port" "$ws_port" "$wss_port" "$cert" "$key" "$nw"
      taskset -c "$proxy_cpu" "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" 2>>"$work/$name.log" &
      target_pid=$! ;;
    haproxy|haproxy-1w)
      ws_port=$(free_port); wss_port=$(free_port)
      haproxy_cfg "$work/$name.cfg" "$echo_ws_port" "$ws_port" "$wss_port" "$work/haproxy.pem" "$nw"
      taskset -c "$proxy_cpu" "$haproxy_bin" -db -f "$work/$name.cfg" >>"$work/$name.log" 2>&1 &
      target_pid=$! ;;
    wsgate|wsgate-*)
      # wsgate has one listener per process: a ws one and a wss one. The ws
      # one's admin port is kept: wsgate_workers says how many workers ran.
      local tap=enforce threads=auto admin_port run=("$wsgate_bin")
      [ "$name" = wsgate-tapoff ] && tap=off
      [ "$name" = wsgate-1w ] && threads=1
      # Allocator variants (docs/performance.md "Memory after bursts"), as
      # extra BENCH_TARGETS: wsgate-notrim (--memory-trim-interval 0) and
      # wsgate-jemalloc (LD_PRELOAD=$BENCH_JEMALLOC, decay $BENCH_MALLOC_CONF).
      case $name in
        wsgate-notrim) run+=(--memory-trim-interval 0) ;;
        wsgate-jemalloc) run=(env "LD_PRELOAD=${BENCH_JEMALLOC:-libjemalloc.so.2}"
          "MALLOC_CONF=${BENCH_MALLOC_CONF:-background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000}"
          "$wsgate_bin" --memory-trim-interval 0) ;;
      esac
      ws_port=$(free_port); wss_port=$(free_port); admin_port=$(free_port)
      echo "$admin_port" > "$work/admin.$name"
      taskset -c "$proxy_cpu" "${run[@]}" --listen "127.0.0.1:$ws_port" \
        --admin "127.0.0.1:$admin_port" --upstream "ws://127.0.0.1:$echo_ws_port" \
        --threads "$threads" --tap-mode "$tap" --log-level warn >>"$work/$name.log" 2>&1 &
      target_pid=$!
      pids+=("$target_pid")
      wait_port "$ws_port" "$target_pid" || { log "$name (ws) did not start: $(tail -3 "$work/$name.log")"; return 1; }
      taskset -c "$proxy_cpu" "${run[@]}" --listen "127.0.0.1:$wss_port" \
        --admin "127.0.0.1:$(free_port)" --upstream "ws://127.0.0.1:$echo_ws_port" \
        --tls-cert "$cert" --tls-key "$key" \
        --threads "$threads" --tap-mode "$tap" --log-level warn >>"$work/$name-tls.log" 2>&1 &
      target_pid2=$!
      pids+=("$target_pid2")
      wait_port "$wss_port" "$target_pid2" || { log "$name (wss) did not start: $(tail -3 "$work/$name-tls.log")"; return 1; }
      ws_url="ws://127.0.0.1:$ws_port/bench"
      wss_url="wss://127.0.0.1:$wss_port/bench"
      return 0 ;;
  esac
  pids+=("$target_pid")
  wait_port "$ws_port" "$target_pid" && wait_port "$wss_port" "$target_pid" || {
    log "$name did not start: $(tail -3 "$work/$name.log" 2>/dev/null)"; return 1; }
  ws_url="ws://127.0.0.1:$ws_port/bench"
  wss_url="wss://127.0.0.1:$wss_port/bench"
}
stop_target() {
  if [ -n "${target_pid:-}" ]; then stop_pid "$target_pid"; fi
  if [ -n "${target_pid2:-}" ]; then stop_pid "$target_pid2"; fi
  target_pid=""; target_pid2=""
}
url_for() {  # TARGET SCHEME
  local u
  u=$(cat "$work/url.$1.$2" 2>/dev/null) || return 1
  echo "$u"
}
pid_for() {  # TARGET SCHEME: the process whose RSS is the target's
  cat "$work/pid.$1.$2" 2>/dev/null
}
bench() {  # OUTFILE args...: run wsgate-bench on the load core; JSON line to OUTFILE
  local file=$1; shift
  local rc=0
  taskset -c "$load_cpu" "$tool" "$@" > "$file.tmp" 2>>"$work/bench-client.log" || rc=$?
  head -n 1 "$file.tmp" > "$file"; rm -f "$file.tmp"
  [ -s "$file" ] || echo "{\"failed\": true, \"exit\": $rc}" > "$file"
  return 0
}

# --- proxy CPU and core busy per throughput cell ---------------------------------
# tests/bench/cpu_sample.py samples /proc inside the load phase and merges the
# figures into the cell's JSON (its docstring says how the interval lines up
# with the load tool's window).
clk_tck=$(getconf CLK_TCK)
proxy_procs() {  # PID...: the PIDs and their children (nginx: master + worker)
  local p
  for p in "$@"; do echo "$p"; ps -o pid= --ppid "$p" 2>/dev/null || true; done
}
sampled_bench() {  # OUTFILE TARGET SCHEME args...: bench + CPU sample, merged into OUTFILE
  local file=$1 t=$2 scheme=$3; shift 3
  local procs=() t0 t1 spid
  [ "$t" = direct ] || mapfile -t procs < <(proxy_procs $(pid_for "$t" "$scheme"))
  t0=$(date +%s.%N)
  # On the load core, like the load tool: keeps the proxy core clean. It
  # starts (python start-up) during the warm-up and only reads /proc after.
  taskset -c "$load_cpu" "$py" "$here/cpu_sample.py" sample "$work/cpu.sample" "$t0" "$warmup" \
    "$duration" "$clk_tck" "$load_cpu" "$proxy_cpu" "$tool" ${procs[@]+"${procs[@]}"} 2>>"$work/cpu_sample.log" &
  spid=$!
  pids+=("$spid")
  bench "$file" "$@"
  t1=$(date +%s.%N)
  stop_pid "$spid"  # normally already done; a sample cut short is reported as missing
  "$py" "$here/cpu_sample.py" merge "$file" "$work/cpu.sample" "$t1" 2>>"$work/cpu_sample.log" || true
  rm -f "$work/cpu.sample"
}

# Proxies for the throughput and connect sections: started once, kept running.
available=()
start_all() {  # TARGET...
  local t
  available=()
  for t in "$@"; do
    target_pid2=""
    if start_target "$t"; then
      echo "$ws_url" > "$work/url.$t.ws"; echo "$wss_url" > "$work/url.$t.wss"
      echo "${target_pid2:-$target_pid}" > "$work/pid.$t.wss"; echo "$target_pid" > "$work/pid.$t.ws"
      available+=("$t")
    else
      log "$t: SKIPPED (did not start)"
      stop_target
    fi
  done
}
stop_all() {
  local t p
  for t in "${available[@]}"; do
    for p in $(pid_for "$t" ws) $(pid_for "$t" wss); do stop_pid "$p"; done
  done
}

client_tls_flags=(--ca "$ca")

# --- throughput ----------------------------------------------------------------
if [[ " $sections " == *" throughput "* ]] || [[ " $sections " == *" connect "* ]]; then
  start_all "${targets[@]}"
  log "targets: ${available[*]}"
fi

if [[ " $sections " == *" throughput "* ]]; then
  for round in $(seq "$rounds"); do
    # rotate the order of targets each round
    n=${#available[@]}
    order=()
    for i in $(seq 0 $((n - 1))); do order+=("${available[$(((i + round - 1) % n))]}"); done
    for cell in $cells; do
      size=${cell%x*}; conns=${cell#*x}
      for scheme in $schemes; do
        for t in "${order[@]}"; do
          url=$(url_for "$t" "$scheme")
          file="$out/tput-$t-$scheme-$size-$conns-r$round.json"
          log "round $round/$rounds  $scheme ${size}B x $conns  $t"
          flags=(); [ "$scheme" = wss ] && flags=("${client_tls_flags[@]}")
          sampled_bench "$file" "$t" "$scheme" load --url "$url" "${flags[@]}" --connections "$conns" \
            --size "$size" --inflight 1 --duration "$duration" --warmup "$warmup"
        done
      done
    done
  done
fi

# --- TLS handshakes per second ---------------------------------------------------
if [[ " $sections " == *" connect "* ]]; then
  for t in "${available[@]}"; do
    log "connect wss $t"
    bench "$out/connect-$t-wss.json" connect --url "$(url_for "$t" wss)" "${client_tls_flags[@]}" \
      --duration "$connect_duration" --concurrency "$connect_concurrency"
  done
fi

if [[ " $sections " == *" throughput "* ]] || [[ " $sections " == *" connect "* ]]; then
  stop_all
fi

# start_hold URL SCHEME COUNT: the hold tool opening COUNT warm-idle sessions,
# its report in $holdfile; returns once it reported (or died), with the proxy
# given 2 s to settle (deferred frees, lazy buffers). Sets hpid and holdfile.
start_hold() {
  local url=$1 scheme=$2 count=$3 flags=() i
  [ "$scheme" = wss ] && flags=("${client_tls_flags[@]}")
  holdfile=$work/hold.out
  : > "$holdfile"
  taskset -c "$load_cpu" "$tool" hold --url "$url" "${flags[@]}" --connections "$count" \
    --hold 600 --concurrency 64 --timeout 30 --warm "$hold_warm" > "$holdfile" 2>>"$work/bench-client.log" &
  hpid=$!
  pids+=("$hpid")
  for i in $(seq 1800); do [ -s "$holdfile" ] && break; kill -0 "$hpid" 2>/dev/null || break; sleep 0.1; done
  sleep 2
}

# --- memory: RSS holding N idle sessions -----------------------------------------------
if [[ " $sections " == *" memory "* ]]; then
  for count in $holds; do
    for scheme in $schemes; do
      for t in "${targets[@]}"; do
        target_pid2=""
        if [ "$t" = direct ]; then
          # The echo upstream itself (Beast + Asio, no proxy): a fresh one.
          if [ "$scheme" = wss ]; then start_echo "mem-echo-$count" --tls-cert "$cert" --tls-key "$key"
          else start_echo "mem-echo-$count-ws"; fi
          mpid=$last_pid
          url="$scheme://127.0.0.1:$echo_port/bench"
        else
          start_target "$t" || { log "$t: SKIPPED for memory"; stop_target; continue; }
          if [ "$scheme" = wss ]; then url=$wss_url; mpid=${target_pid2:-$target_pid}
          else url=$ws_url; mpid=$target_pid; fi
        fi
        sleep 0.5
        base=$(rss_kib "$mpid")
        log "memory $scheme $count idle sessions via $t (pid $mpid, idle RSS ${base} KiB)"
        start_hold "$url" "$scheme" "$count"
        rss=$(rss_kib "$mpid")
        held=$(head -n 1 "$holdfile")
        stop_pid "$hpid"
        "$py" - "$out/memory-$t-$scheme-$count.json" "$t" "$scheme" "$count" "$base" "$rss" "$held" <<'PY'
import json, sys
path, target, scheme, count, base, rss, held = sys.argv[1:8]
try:
    h = json.loads(held)
except Exception:
    h = {"failed": True}
est = h.get("established", 0)
r = {"mode": "memory", "target": target, "scheme": scheme, "requested": int(count),
     "established": est, "errors": h.get("errors"), "error_samples": h.get("error_samples"),
     "idle_rss_kib": int(base), "rss_kib": int(rss),
     "per_session_kib": (int(rss) - int(base)) / est if est else None}
json.dump(r, open(path, "w"))
PY
        if [ "$t" = direct ]; then stop_pid "$mpid"; else stop_target; fi
      done
    done
  done
fi

# --- sections beyond the matrix ------------------------------------------------------
# Each is a function, bounded in time (rounds x cells x targets runs of warm-up
# + duration; holds wait at most 180 s), run when named in BENCH_SECTIONS.

# run_cells PREFIX ROUNDS RATE CELLS TARGET...: interleaved rounds (target
# order rotated each round) of `load` against running targets (start_all),
# one JSON per run, PREFIX-TARGET-SCHEME-SIZE-CONNS-rROUND.json, the CPU
# sample merged in. RATE > 0: open loop at RATE msg/s over all sessions.
run_cells() {
  local prefix=$1 nrounds=$2 rate=$3 cellset=$4
  shift 4
  local list=("$@") round i n cell size conns scheme t flags rate_flags=()
  [ "$rate" = 0 ] || rate_flags=(--rate "$rate")
  n=${#list[@]}
  [ "$n" -gt 0 ] || return 0
  for round in $(seq "$nrounds"); do
    local order=()
    for i in $(seq 0 $((n - 1))); do order+=("${list[$(((i + round - 1) % n))]}"); done
    for cell in $cellset; do
      size=${cell%x*}; conns=${cell#*x}
      for scheme in $schemes; do
        for t in "${order[@]}"; do
          log "$prefix round $round/$nrounds  $scheme ${size}B x $conns at ${rate} msg/s  $t"
          flags=(); [ "$scheme" = wss ] && flags=("${client_tls_flags[@]}")
          sampled_bench "$out/$prefix-$t-$scheme-$size-$conns-r$round.json" "$t" "$scheme" load \
            --url "$(url_for "$t" "$scheme")" "${flags[@]}" --connections "$conns" --size "$size" \
            --inflight 1 --duration "$duration" --warmup "$warmup" "${rate_flags[@]}"
        done
      done
    done
  done
}

# openloop: every target at one offered rate, pinned as the matrix is.
section_openloop() {
  start_all "${targets[@]}"
  log "openloop at $openloop_rate msg/s: ${available[*]}"
  run_cells ol "$rounds" "$openloop_rate" "$openloop_cells" "${available[@]}"
  stop_all
}

workers_of() {  # TARGET: the worker count the running target reports
  case $1 in
    wsgate*)
      "$py" - "$(cat "$work/admin.$1")" <<'PY'
import re, sys, urllib.request
try:
    text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
    m = re.search(r"^wsgate_workers(?:\{[^}]*\})? (\S+)$", text, re.M)
    print(int(float(m.group(1))) if m else "null")
except OSError:
    print("null")
PY
      ;;
    nginx*) ps -o pid= --ppid "$(pid_for "$1" ws)" | wc -l ;;
    haproxy*) awk '/^Threads:/ {print $2}' "/proc/$(pid_for "$1" ws)/status" ;;
    *) echo null ;;
  esac
}

# workers2: proxy, load and echo share cores BENCH_WORKERS2_CPUS; each proxy
# at 2 workers and at 1, one offered rate, so CPU per round trip compares.
section_workers2() {
  if [ "$(nproc)" -lt 2 ]; then log "workers2: SKIPPED — fewer than 2 CPUs"; return 0; fi
  local keep_proxy=$proxy_cpu keep_load=$load_cpu keep_echo=$echo_ws_port echo_pid t list=()
  for t in $workers2_targets; do
    if [ "$t" != direct ] && have_target "$t"; then list+=("$t"); fi
  done
  proxy_cpu=$workers2_cpus; load_cpu=$workers2_cpus; peer_workers=2
  start_echo w2-echo-ws; echo_pid=$last_pid; echo_ws_port=$echo_port
  start_all "${list[@]}"
  {
    echo "{\"cpus\": \"$workers2_cpus\""
    for t in "${available[@]}"; do echo ", \"$t\": $(workers_of "$t")"; done
    echo "}"
  } > "$out/w2-workers.json"
  log "workers2 on cores $workers2_cpus at $workers2_rate msg/s: $(tr -d '\n' < "$out/w2-workers.json")"
  run_cells w2 "$rounds" "$workers2_rate" "$workers2_cells" "${available[@]}"
  stop_all
  stop_pid "$echo_pid"
  proxy_cpu=$keep_proxy; load_cpu=$keep_load; echo_ws_port=$keep_echo; peer_workers=1
}

fd_limit_of() {  # PID: lowest soft RLIMIT_NOFILE of the process and its children
  local p v low=""
  for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    v=$(awk '/^Max open files/ {print $4}' "/proc/$p/limits" 2>/dev/null) || continue
    [ -n "$v" ] || continue
    if [ -z "$low" ] || [ "$v" -lt "$low" ]; then low=$v; fi
  done
  echo "${low:-null}"
}
fd_count() {  # PID: open descriptors of the process and its children
  local p total=0
  for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    total=$((total + $(ls "/proc/$p/fd" 2>/dev/null | wc -l)))
  done
  echo "$total"
}

# hold_cell OUTFILE TARGET SCHEME COUNT: a fresh TARGET holding COUNT
# warm-idle sessions: how many were held, RSS, the proxy's fd limit and open
# descriptors, and the hold tool's own limit.
hold_cell() {
  local file=$1 t=$2 scheme=$3 count=$4 url mpid base rss fds limit hlimit held released hpid holdfile
  target_pid2=""
  start_target "$t" || { log "$t: SKIPPED for $count sessions"; stop_target; return 0; }
  if [ "$scheme" = wss ]; then url=$wss_url; mpid=${target_pid2:-$target_pid}
  else url=$ws_url; mpid=$target_pid; fi
  sleep 0.5
  base=$(rss_kib "$mpid")
  log "fdlimit $scheme $count warm-idle sessions via $t (pid $mpid, fd limit $(fd_limit_of "$mpid"))"
  start_hold "$url" "$scheme" "$count"
  rss=$(rss_kib "$mpid"); fds=$(fd_count "$mpid"); limit=$(fd_limit_of "$mpid"); hlimit=$(fd_limit_of "$hpid")
  stop_pid "$hpid"
  held=$(sed -n 1p "$holdfile"); released=$(sed -n 2p "$holdfile")
  "$py" - "$file" "$t" "$scheme" "$count" "$base" "$rss" "$fds" "$limit" "$hlimit" "$hold_warm" \
    "$held" "$released" <<'PY'
import json, sys
path, target, scheme, count, base, rss, fds, limit, hlimit, warm, held, released = sys.argv[1:13]
def parse(text):
    try:
        return json.loads(text)
    except ValueError:
        return {"failed": True}
h, rel = parse(held), parse(released)
est = h.get("established", 0)
num = lambda v: int(v) if v.isdigit() else None
json.dump({"mode": "fdlimit", "target": target, "scheme": scheme, "requested": int(count),
           "established": est, "errors": h.get("errors"), "error_samples": h.get("error_samples"),
           "open_s": h.get("open_s"), "dropped": rel.get("dropped"), "warm_bytes": int(warm),
           "idle_rss_kib": int(base), "rss_kib": int(rss),
           "per_session_kib": (int(rss) - int(base)) / est if est else None,
           "proxy_fd_limit": num(limit), "proxy_open_fds": int(fds), "hold_fd_limit": num(hlimit)},
          open(path, "w"))
PY
  stop_target
}

# fdlimit: 9,000 warm-idle sessions through each proxy under the run's fd
# limit (ulimit -n BENCH_FDLIMIT, set for the whole run above).
section_fdlimit() {
  local t scheme list=()
  for t in $fdlimit_targets; do
    if [ "$t" != direct ] && have_target "$t"; then list+=("$t"); fi
  done
  [ "$(ulimit -n)" = "$fdlimit" ] || log "fdlimit: WARNING the fd limit is $(ulimit -n), not $fdlimit"
  for scheme in $schemes; do
    for t in "${list[@]}"; do
      hold_cell "$out/fdlimit-$t-$scheme-$fdlimit_sessions.json" "$t" "$scheme" "$fdlimit_sessions"
    done
  done
}

want_section() { [[ " $sections " == *" $1 "* ]]; }
if want_section openloop; then section_openloop; fi
if want_section workers2; then section_workers2; fi
if want_section fdlimit; then section_fdlimit; fi

meta end
"$py" "$here/report.py" "$out" | tee "$out/report.md"
log "raw results: $out"
