# Sourced by compare.sh and peer_as_wsgate.sh: a free loopback port, and the
# comparison's nginx and HAProxy configurations filled in from their
# templates (nginx.conf.in, haproxy.cfg.in, next to this file).
peers_dir=$(dirname "${BASH_SOURCE[0]}")

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# nginx_conf DIR ECHO_PORT WS_PORT WSS_PORT CERT KEY WORKERS: DIR/nginx.conf,
# with DIR as nginx's prefix (pid, logs, DIR/nginx-tmp, which this creates).
nginx_conf() {
  mkdir -p "$1/nginx-tmp"
  sed -e "s|@DIR@|$1|g" -e "s|@ECHO_PORT@|$2|g" -e "s|@WS_PORT@|$3|g" \
      -e "s|@WSS_PORT@|$4|g" -e "s|@CERT@|$5|g" -e "s|@KEY@|$6|g" \
      -e "s|@WORKERS@|$7|g" "$peers_dir/nginx.conf.in" > "$1/nginx.conf"
}

# haproxy_cfg OUT ECHO_PORT WS_PORT WSS_PORT PEM THREADS: the configuration
# in OUT; PEM holds the certificate and its key.
haproxy_cfg() {
  sed -e "s|@ECHO_PORT@|$2|g" -e "s|@WS_PORT@|$3|g" \
      -e "s|@WSS_PORT@|$4|g" -e "s|@PEM@|$5|g" \
      -e "s|@THREADS@|$6|g" "$peers_dir/haproxy.cfg.in" > "$1"
}
