#!/usr/bin/env bash
# Usage: scripts/tls-postgres.sh start DIR | stop DIR
# A second PostgreSQL that accepts only TLS connections, for the test that
# proves Sluice honours sslmode: a CA and a server certificate for
# `localhost` (made here, each start), `hostssl` only in pg_hba.conf.
# `start` prints the port; DIR/ca.crt is the CA to verify against.
set -euo pipefail
action=$1 dir=$2
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ "$action" = stop ]; then
  run_pg "$pg_bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit 0
fi

rm -rf "$dir" && mkdir -p "$dir/data"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Sluice test CA" \
  -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' >"$dir/san.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 2 -extfile "$dir/san.ext" -out "$dir/server.crt" 2>/dev/null
chmod 600 "$dir/server.key"
[ "$(id -u)" = 0 ] && chown -R postgres "$dir" && chmod 755 "$dir" && chmod 644 "$dir/ca.crt"

run_pg "$pg_bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; exit 1; }
cat >"$dir/data/pg_hba.conf" <<HBA
local     all all              trust
hostssl   all all 127.0.0.1/32 trust
hostssl   all all ::1/128      trust
hostnossl all all 0.0.0.0/0    reject
hostnossl all all ::/0         reject
HBA
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run_pg "$pg_bin/pg_ctl" -w -D "$dir/data" -l "$dir/pg.log" \
  -o "-p $port -k $dir/data -c listen_addresses=localhost -c fsync=off -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" \
  start >/dev/null || { tail -n 20 "$dir/pg.log"; exit 1; }
echo "$port"
