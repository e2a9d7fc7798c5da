#!/usr/bin/env bash
# `make run`: the backend and the proxy in the foreground with a dev
# certificate, and a ready-to-paste client command. Ctrl-C stops both.
#   BACKEND_POLICY=strict make run   reproduces the staging 1011s
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

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "run: stopped"
}
trap cleanup INT TERM EXIT

"$bin/wsgate-backend" --listen "$BACKEND_LISTEN" --admin "$BACKEND_ADMIN" \
  --jwt-secret-file "$secret" --context-policy "$POLICY" ${BACKEND_ARGS:-} &
pids+=($!)
"$bin/wsgate" --listen "$PROXY_LISTEN" --admin "$PROXY_ADMIN" \
  --tls-cert "$cert/server.crt" --tls-key "$cert/server.key" \
  --upstream "ws://$BACKEND_LISTEN" \
  --upstream-trace-url "http://$BACKEND_ADMIN/debug/traces/{correlation_id}" \
  --incident-log "$state/incidents.jsonl" ${PROXY_ARGS:-} &
pids+=($!)

for _ in $(seq 50); do
  curl -sf "http://$PROXY_ADMIN/readyz" >/dev/null 2>&1 && curl -sf "http://$BACKEND_ADMIN/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
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
wait -n "${pids[@]}"
