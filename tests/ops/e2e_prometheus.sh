#!/usr/bin/env bash
# End to end: a real Prometheus scrapes the real backend and proxy with our
# rule files loaded; a 1011 storm goes through the proxy; the 1011 alert must
# go pending, every dashboard query must evaluate, the close-code panels must
# return series, the incident must name the failing backend stage, and the
# dashboard linter must pass against the live /metrics.
#
#   tests/ops/e2e_prometheus.sh build/bin/wsgate build/bin/wsgate-backend
#
# Needs: prometheus + promtool (Debian package prometheus), openssl, curl,
# /usr/bin/python3 with python3-websockets and python3-yaml.
# Environment:
#   E2E_REQUIRE_FIRING=1   also wait for the alert to fire (for: 1m; adds ~1 min)
#   E2E_KEEP=1             keep the temp directory (logs, TSDB) for inspection
#   E2E_TIMEOUT=170        seconds before the whole run is stopped (default 170)
set -uo pipefail

# Bounded in time whatever hangs: re-run under timeout(1); its TERM reaches
# the trap below, which stops every process this script started.
if [[ -z "${_WSGATE_E2E_UNDER_TIMEOUT:-}" ]]; then
  export _WSGATE_E2E_UNDER_TIMEOUT=1
  exec timeout --kill-after=20 "${E2E_TIMEOUT:-170}" "$0" "$@"
fi

PROXY_BIN="${1:-}"
BACKEND_BIN="${2:-}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ops="$repo/tests/ops"
PY=/usr/bin/python3
TIMEOUT="${E2E_TIMEOUT:-170}"

die() { echo "FAIL $*" >&2; exit 1; }

[[ -n "$PROXY_BIN" && -n "$BACKEND_BIN" ]] || die "usage: $0 PATH/wsgate PATH/wsgate-backend"
[[ -x "$PROXY_BIN" ]] || die "proxy binary $PROXY_BIN is missing or not executable (build first: cmake --build build)"
[[ -x "$BACKEND_BIN" ]] || die "backend binary $BACKEND_BIN is missing or not executable (build first)"
PROXY_BIN="$(cd "$(dirname "$PROXY_BIN")" && pwd)/$(basename "$PROXY_BIN")"
BACKEND_BIN="$(cd "$(dirname "$BACKEND_BIN")" && pwd)/$(basename "$BACKEND_BIN")"
for tool in prometheus promtool openssl curl; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian packages: prometheus, openssl, curl)"
done
$PY -c 'import websockets, yaml' 2>/dev/null || die "$PY lacks websockets or yaml (Debian: python3-websockets python3-yaml)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/wsgate-e2e.XXXXXX")"
pids=()
status=1

show_logs() {
  for f in "$tmp"/*.log; do
    [[ -f "$f" ]] || continue
    echo "---- last lines of $(basename "$f")" >&2
    tail -n 25 "$f" >&2
  done
}

cleanup() {
  local rc=$?
  if [[ $status -ne 0 && $rc -eq 0 ]]; then rc=1; fi
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [[ $status -ne 0 ]]; then
    show_logs
    echo "e2e_prometheus: FAILED (temp dir: $tmp)" >&2
  fi
  if [[ "${E2E_KEEP:-0}" != 1 && $status -eq 0 ]]; then rm -rf "$tmp"; fi
  exit $rc
}
trap cleanup EXIT
trap 'echo "FAIL interrupted, or over the ${TIMEOUT}s time limit (E2E_TIMEOUT)" >&2; exit 1' INT TERM

step() { echo "== $*"; }

# ---------------------------------------------------------------- ports
read -r BACKEND_PORT BACKEND_ADMIN PROXY_PORT PROXY_ADMIN PROM_PORT < <($PY - <<'PYEOF'
import socket
socks = []
for _ in range(5):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PYEOF
)
echo "ports: backend $BACKEND_PORT admin $BACKEND_ADMIN, proxy $PROXY_PORT admin $PROXY_ADMIN, prometheus $PROM_PORT"

wait_http() { # URL NAME PID SECONDS
  local url=$1 name=$2 pid=$3 secs=$4 i
  for ((i = 0; i < secs * 10; i++)); do
    curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || die "$name exited before $url answered (see $name.log)"
    sleep 0.1
  done
  die "$name did not answer $url within ${secs}s"
}

# ---------------------------------------------------------------- secrets, TLS
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$tmp/jwt.key"
# A certificate that expires in 7 days: WsgateTLSCertExpiringSoon (< 14 days)
# must see it; the proxy must export its notAfter.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$tmp/tls.key" -out "$tmp/tls.crt" >"$tmp/openssl.log" 2>&1 || die "openssl could not make a certificate"

# ---------------------------------------------------------------- backend, proxy
step "start wsgate-backend (--context-policy strict: incomplete contexts close with 1011)"
"$BACKEND_BIN" --listen "127.0.0.1:$BACKEND_PORT" --admin "127.0.0.1:$BACKEND_ADMIN" \
  --jwt-secret-file "$tmp/jwt.key" --context-policy strict --fault context.drop=run_id \
  --log-format json --log-level info >"$tmp/backend.log" 2>&1 &
backend_pid=$!; pids+=($backend_pid)
wait_http "http://127.0.0.1:$BACKEND_ADMIN/healthz" backend $backend_pid 20

step "start wsgate (TLS, upstream ws://127.0.0.1:$BACKEND_PORT)"
"$PROXY_BIN" --listen "127.0.0.1:$PROXY_PORT" --admin "127.0.0.1:$PROXY_ADMIN" \
  --tls-cert "$tmp/tls.crt" --tls-key "$tmp/tls.key" \
  --upstream "ws://127.0.0.1:$BACKEND_PORT" \
  --upstream-trace-url "http://127.0.0.1:$BACKEND_ADMIN/debug/traces/{correlation_id}" \
  --incident-log "$tmp/incidents.jsonl" --log-format json --log-level info >"$tmp/proxy.log" 2>&1 &
proxy_pid=$!; pids+=($proxy_pid)
wait_http "http://127.0.0.1:$PROXY_ADMIN/healthz" proxy $proxy_pid 20
wait_http "http://127.0.0.1:$PROXY_ADMIN/readyz" proxy $proxy_pid 20

token="$("$BACKEND_BIN" token --sub e2e-user --jwt-secret-file "$tmp/jwt.key" 2>"$tmp/token.log" | tr -d '[:space:]')"
[[ -n "$token" ]] || die "wsgate-backend token printed no token: $(cat "$tmp/token.log")"

# ---------------------------------------------------------------- prometheus
step "start prometheus (scrape and evaluation every 1s, rules from dashboards/prometheus)"
cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $repo/dashboards/prometheus/recording-rules.yml
  - $repo/dashboards/prometheus/alert-rules.yml
scrape_configs:
  - job_name: wsgate
    static_configs:
      - targets: ["127.0.0.1:$PROXY_ADMIN"]
  - job_name: wsgate-backend
    static_configs:
      - targets: ["127.0.0.1:$BACKEND_ADMIN"]
YAML
promtool check config "$tmp/prometheus.yml" >"$tmp/promtool.log" 2>&1 || { cat "$tmp/promtool.log" >&2; die "promtool check config failed on the e2e config"; }
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --enable-feature=exemplar-storage \
  --log.level=warn >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!; pids+=($prom_pid)
PROM="http://127.0.0.1:$PROM_PORT"
wait_http "$PROM/-/ready" prometheus $prom_pid 30
$PY "$ops/e2e_check.py" wait-targets --prom "$PROM" --timeout 20 || exit 1

# ---------------------------------------------------------------- storm
step "drive a 1011 storm through the proxy (wss://127.0.0.1:$PROXY_PORT/ws)"
: >"$tmp/ids.txt"
$PY "$ops/ws_storm.py" --url "wss://127.0.0.1:$PROXY_PORT/ws" --cafile "$tmp/tls.crt" \
  --token "$token" --duration 75 --concurrency 4 --pause 0.05 --timeout 10 --probe-401 \
  --stop-file "$tmp/stop" --ids-file "$tmp/ids.txt" >"$tmp/storm.json" 2>"$tmp/storm.log" &
storm_pid=$!; pids+=($storm_pid)

# The storm's opening connections must close with 1011 before anything else makes sense.
for _ in $(seq 150); do
  [[ -s "$tmp/ids.txt" ]] && break
  kill -0 $storm_pid 2>/dev/null || break
  sleep 0.1
done
if [[ ! -s "$tmp/ids.txt" ]]; then
  touch "$tmp/stop"; wait $storm_pid 2>/dev/null
  cat "$tmp/storm.json" "$tmp/storm.log" >&2
  die "no session through the proxy ended with 1011 within 15s (storm summary above)"
fi

step "wait for WsgateHigh1011Ratio to go pending"
states=pending,firing
[[ "${E2E_REQUIRE_FIRING:-0}" == 1 ]] && states=firing
$PY "$ops/e2e_check.py" wait-alert --prom "$PROM" --alert WsgateHigh1011Ratio --states "$states" --timeout 100 || {
  touch "$tmp/stop"; wait $storm_pid 2>/dev/null; cat "$tmp/storm.json" "$tmp/storm.log" >&2; exit 1; }

step "evaluate every dashboard query through Prometheus"
$PY "$ops/e2e_check.py" dashboard --prom "$PROM" --dashboard "$repo/dashboards/grafana/wsgate.json" || exit 1

step "the TLS certificate gauge and its alert"
$PY "$ops/e2e_check.py" tls-gauge --prom "$PROM" --cert "$tmp/tls.crt" || exit 1
$PY "$ops/e2e_check.py" wait-alert --prom "$PROM" --alert WsgateTLSCertExpiringSoon --timeout 10 || exit 1

touch "$tmp/stop"
wait $storm_pid; storm_rc=$?
echo "storm: $(cat "$tmp/storm.json")"
[[ $storm_rc -eq 0 ]] || { cat "$tmp/storm.log" >&2; die "the storm client reported a failure (above)"; }

step "follow the alert to the incident and the failing backend stage"
$PY "$ops/e2e_check.py" incidents --admin "http://127.0.0.1:$PROXY_ADMIN" --ids-file "$tmp/ids.txt" || exit 1

step "lint the dashboard against the live /metrics of both binaries"
curl -fsS "http://127.0.0.1:$PROXY_ADMIN/metrics" >"$tmp/proxy-metrics.prom" || die "GET proxy /metrics failed"
curl -fsS "http://127.0.0.1:$BACKEND_ADMIN/metrics" >"$tmp/backend-metrics.prom" || die "GET backend /metrics failed"
promtool check metrics <"$tmp/proxy-metrics.prom" >"$tmp/check-metrics.log" 2>&1 || {
  # promtool also reports style hints; only a parse error is fatal here.
  grep -qi "error while linting\|text format parsing error" "$tmp/check-metrics.log" && { cat "$tmp/check-metrics.log" >&2; die "proxy /metrics is not valid exposition"; }; }
$PY "$ops/lint_dashboard.py" --exposition "$tmp/proxy-metrics.prom" --exposition "$tmp/backend-metrics.prom" \
  "$repo/dashboards/grafana/wsgate.json" || die "dashboard names metrics the binaries do not expose (above)"

status=0
echo "e2e_prometheus: 1 passed, 0 failed"
