#!/usr/bin/env bash
# `make run`: the backend and the proxy in the foreground with a dev
# certificate, and a ready-to-paste client command. Ctrl-C stops both.
#   BACKEND_POLICY=strict make run   reproduces the staging 1011s
# "wsgate is up" is printed only once both processes have bound their
# ports and answer (the proxy's /readyz, the backend's /healthz); if either
# exits or does not answer within RUN_UP_TIMEOUT seconds (default 20), the
# script says which, stops the other and exits non-zero.
set -euo pipefail
build=${1:-build}
bin="$build/bin"
cert="$build/dev-cert"
state="$build/dev-run"
mkdir -p "$state"

secret="$state/jwt-secret"
[ -s "$secret" ] || { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$secret"; chmod 600 "$secret"; }

BACKEND_LISTEN=${BACKEND_LISTEN:-127.0.0.1:8080}
BACKEND_ADMIN=${BACKEND_ADMIN:-127.0.0.1:9091}
PROXY_LISTEN=${PROXY_LISTEN:-127.0.0.1:8443}
PROXY_ADMIN=${PROXY_ADMIN:-127.0.0.1:9090}
POLICY=${BACKEND_POLICY:-fallback}
UP_TIMEOUT=${RUN_UP_TIMEOUT:-20}
# Written by each binary once its sockets are bound: an answer on a port
# some other process holds cannot pass for ours.
rm -f "$state/backend.ports" "$state/proxy.ports"

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "run: stopped"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

"$bin/wsgate-backend" --listen "$BACKEND_LISTEN" --admin "$BACKEND_ADMIN" \
  --jwt-secret-file "$secret" --context-policy "$POLICY" --port-file "$state/backend.ports" \
  ${BACKEND_ARGS:-} &
pids+=($!)
names=(wsgate-backend)
"$bin/wsgate" --listen "$PROXY_LISTEN" --admin "$PROXY_ADMIN" \
  --tls-cert "$cert/server.crt" --tls-key "$cert/server.key" \
  --upstream "ws://$BACKEND_LISTEN" \
  --upstream-trace-url "http://$BACKEND_ADMIN/debug/traces/{correlation_id}" \
  --incident-log "$state/incidents.jsonl" --port-file "$state/proxy.ports" ${PROXY_ARGS:-} &
pids+=($!)
names+=(wsgate)

answers() {  # answers PORT_FILE URL: bound (port file written) and the URL gives 2xx
  [ -s "$1" ] && curl -sf --max-time 2 -o /dev/null "$2"
}
# Exits with the status of any process that has ended, naming it.
check_alive() {
  local i status
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      status=0
      wait "${pids[$i]}" 2>/dev/null || status=$?
      echo "run: ${names[$i]} exited with status $status before wsgate was up (its log is above)" >&2
      exit $((status == 0 ? 1 : status))
    fi
  done
}
deadline=$((SECONDS + UP_TIMEOUT))
while :; do
  check_alive
  backend_up=no proxy_up=no
  answers "$state/backend.ports" "http://$BACKEND_ADMIN/healthz" && backend_up=yes
  answers "$state/proxy.ports" "http://$PROXY_ADMIN/readyz" && proxy_up=yes
  [ "$backend_up$proxy_up" = yesyes ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    [ "$backend_up" = yes ] || echo "run: wsgate-backend did not answer http://$BACKEND_ADMIN/healthz within ${UP_TIMEOUT}s" >&2
    [ "$proxy_up" = yes ] || echo "run: wsgate did not answer http://$PROXY_ADMIN/readyz within ${UP_TIMEOUT}s" >&2
    exit 1
  fi
  sleep 0.1
done
check_alive
token=$("$bin/wsgate-backend" token --sub dev-user-001 --thread-id thread-1 --ttl 3600 --jwt-secret-file "$secret")
cat <<MSG

wsgate is up (backend policy: $POLICY). Try it:

  NODE_EXTRA_CA_CERTS=$cert/ca.crt \\
    npx --yes wscat -c wss://localhost:${PROXY_LISTEN##*:}/ws -H "Authorization: Bearer $token"

  or with Python (Debian's python3-websockets):
  SSL_CERT_FILE=$cert/ca.crt /usr/bin/python3 -c 'import asyncio,websockets
async def m():
  async with websockets.connect("wss://localhost:${PROXY_LISTEN##*:}/ws", extra_headers={"Authorization":"Bearer $token"}) as ws:
    print(await ws.recv()); await ws.send("{\"type\":\"user_message\",\"content\":\"hi\"}")
    for _ in range(5): print(await ws.recv())
asyncio.run(m())'

  metrics:   curl http://$PROXY_ADMIN/metrics     incidents: curl http://$PROXY_ADMIN/incidents
  traces:    curl http://$BACKEND_ADMIN/debug/traces?limit=5
Ctrl-C stops both.
MSG
status=0
wait -n "${pids[@]}" || status=$?
echo "run: a process exited with status $status; stopping the other" >&2
exit "$status"
