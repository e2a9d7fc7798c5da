#!/bin/bash
# nginx in wsgate's place under tests/bench/ab.sh (WSGATE or WSGATE_B):
# takes ab.sh's wsgate flags (uses --port-file and --upstream, ignores the
# rest), writes tests/bench/nginx.conf.in for one single-process nginx
# (master_process off, so the pid ab.sh samples is the one relaying) and
# execs it. ws only. e.g.
#   WSGATE=build/bin/wsgate WSGATE_B=tests/bench/nginx_as_wsgate.sh \
#     tests/bench/ab.sh build 10 64 32 3 -- --threads 1 -- --nginx
set -eu
port_file="" upstream=""
while [ $# -gt 0 ]; do
  case $1 in
    --port-file) port_file=$2; shift 2 ;;
    --upstream) upstream=$2; shift 2 ;;
    *) shift ;;
  esac
done
[ -n "$port_file" ] && [ -n "$upstream" ] || { echo "nginx_as_wsgate.sh: needs --port-file and --upstream" >&2; exit 2; }
echo_port=${upstream##*:}
echo_port=${echo_port%%/*}
# Inside the caller's work directory (ab.sh removes it at exit).
dir=$(dirname "$port_file")/nginx.$$
mkdir -p "$dir/nginx-tmp"
free_port() { python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
ws_port=$(free_port) wss_port=$(free_port)
# The template also listens for TLS: a throwaway certificate for it.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
sed -e "s|@DIR@|$dir|g" -e "s|@ECHO_PORT@|$echo_port|g" -e "s|@WS_PORT@|$ws_port|g" \
    -e "s|@WSS_PORT@|$wss_port|g" -e "s|@CERT@|$dir/cert.pem|g" -e "s|@KEY@|$dir/key.pem|g" \
    -e "s|@WORKERS@|1|g" -e "s|^master_process on;|master_process off;|" \
    "$(dirname "$0")/nginx.conf.in" > "$dir/nginx.conf"
# The port file once nginx listens.
(for _ in $(seq 100); do
   if python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2)" "$ws_port" 2>/dev/null; then
     echo "{\"listen\": $ws_port}" > "$port_file.tmp" && mv "$port_file.tmp" "$port_file"; exit 0
   fi
   sleep 0.1
 done) &
exec "${NGINX:-/usr/sbin/nginx}" -p "$dir" -c "$dir/nginx.conf"
