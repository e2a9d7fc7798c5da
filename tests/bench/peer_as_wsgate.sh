#!/bin/bash
# nginx or HAProxy in wsgate's place under tests/bench/ab.sh (as WSGATE or
# WSGATE_B): takes ab.sh's wsgate flags (uses --port-file, --upstream and,
# with BENCH_SCHEME=wss, --tls-cert/--tls-key; ignores the rest) plus
# --peer nginx|haproxy, fills in the comparison's nginx.conf.in or
# haproxy.cfg.in for one worker, and execs the peer in the foreground as one
# process (nginx: master_process off), so the pid ab.sh samples is the one
# relaying. The port file names the TLS listener when a certificate is given.
#   WSGATE_B=tests/bench/peer_as_wsgate.sh tests/bench/ab.sh build 10 64 32 3 \
#     -- --threads 1 -- --peer haproxy
set -eu
port_file="" upstream="" cert="" key="" peer=nginx
while [ $# -gt 0 ]; do
  case $1 in
    --port-file) port_file=$2; shift 2 ;;
    --upstream) upstream=$2; shift 2 ;;
    --tls-cert) cert=$2; shift 2 ;;
    --tls-key) key=$2; shift 2 ;;
    --peer) peer=$2; shift 2 ;;
    *) shift ;;
  esac
done
[ -n "$port_file" ] && [ -n "$upstream" ] ||
  { echo "peer_as_wsgate.sh: needs --port-file and --upstream" >&2; exit 2; }
# shellcheck source=tests/bench/peers.sh
. "$(dirname "$0")/peers.sh"
echo_port=${upstream##*:}
echo_port=${echo_port%%/*}
# Inside the caller's work directory (ab.sh removes it at exit).
dir=$(dirname "$port_file")/$peer.$$
mkdir -p "$dir"
ws_port=$(free_port) wss_port=$(free_port)
listen_port=$ws_port
if [ -n "$cert" ]; then
  listen_port=$wss_port
else
  # The templates listen for TLS too: a throwaway certificate for it.
  cert=$dir/cert.pem key=$dir/key.pem
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -keyout "$key" -out "$cert" >/dev/null 2>&1
fi
# The port file once the peer listens.
(for _ in $(seq 100); do
   if python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2)" \
        "$listen_port" 2>/dev/null; then
     echo "{\"listen\": $listen_port}" > "$port_file.tmp" && mv "$port_file.tmp" "$port_file"; exit 0
   fi
   sleep 0.1
 done) &
case $peer in
  nginx)
    nginx_conf "$dir" "$echo_port" "$ws_port" "$wss_port" "$cert" "$key" 1
    sed -i "s|^master_process on;|master_process off;|" "$dir/nginx.conf"
    exec "${NGINX:-/usr/sbin/nginx}" -p "$dir" -c "$dir/nginx.conf" ;;
  haproxy)
    cat "$cert" "$key" > "$dir/haproxy.pem"
    haproxy_cfg "$dir/haproxy.cfg" "$echo_port" "$ws_port" "$wss_port" "$dir/haproxy.pem" 1
    exec "${HAPROXY:-/usr/sbin/haproxy}" -db -f "$dir/haproxy.cfg" ;;
  *) echo "peer_as_wsgate.sh: --peer must be nginx or haproxy" >&2; exit 2 ;;
esac
