#!/usr/bin/env bash
# A self-signed development CA and a server certificate for localhost and
# 127.0.0.1, in DIR (default build/dev-cert). Kept if already present and valid
# for at least a day.
set -euo pipefail
dir=${1:-build/dev-cert}
mkdir -p "$dir"
if [ -f "$dir/server.crt" ] && openssl x509 -checkend 86400 -noout -in "$dir/server.crt" >/dev/null 2>&1; then
  echo "dev-cert: reusing $dir/server.crt"
  exit 0
fi
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=wsgate dev CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' > "$dir/ext.cnf"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 825 -extfile "$dir/ext.cnf" -out "$dir/server.crt" 2>/dev/null
rm -f "$dir/server.csr" "$dir/ext.cnf"
chmod 644 "$dir/ca.crt" "$dir/server.crt"
echo "dev-cert: wrote $dir/server.crt (SAN localhost, 127.0.0.1), CA $dir/ca.crt"
