#!/usr/bin/env bash
# Usage: scripts/stack.sh STATE_DIR COMMAND...
# Starts PostgreSQL (data under STATE_DIR/pg) and moto (SQS + DynamoDB) on
# free loopback ports, exports where they are (SLUICE_*), runs COMMAND, and
# stops both when COMMAND ends or on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
state=$(mkdir -p "$1" && cd "$1" && pwd)
shift

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

# Postgres refuses to run as root: as root, the data folder belongs to postgres.
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# As root, the postgres user must reach the data folder. A checkout inside a
# private folder (/root, `mktemp -d`) is out of its reach: the data then lives
# in a folder of its own under /tmp, named after the state folder (so reruns
# find it), recorded in STATE/pg-location for `make clean`.
pg_root="$state"
if [ "$(id -u)" = 0 ]; then
  chown postgres "$state"
  if ! runuser -u postgres -- test -x "$state"; then
    pg_root="/tmp/sluice-pg-$(printf %s "$state" | sha256sum | cut -c1-16)"
    mkdir -p "$pg_root" && chown postgres "$pg_root" && chmod 700 "$pg_root"
    echo "$pg_root" > "$state/pg-location"
  fi
fi
pg_data="$pg_root/pg"
pg_port=$(free_port)
if [ ! -s "$pg_data/PG_VERSION" ]; then
  mkdir -p "$pg_data"
  [ "$(id -u)" = 0 ] && chown postgres "$pg_data"
  run_pg "$pg_bin/initdb" -D "$pg_data" -A trust -U postgres >"$state/initdb.log" 2>&1 \
    || { cat "$state/initdb.log"; exit 1; }
fi
pg_opts="-p $pg_port -k $pg_data -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
run_pg "$pg_bin/pg_ctl" -w -D "$pg_data" -l "$pg_root/pg.log" -o "$pg_opts" start >/dev/null \
  || { tail -n 20 "$pg_root/pg.log"; exit 1; }

# `$SLUICE_PG_CTL stop|start`: the outage test stops this Postgres and starts
# it again on the same port, with the same options.
cat >"$state/pg-ctl" <<EOF
#!/usr/bin/env bash
set -euo pipefail
run() { if [ "\$(id -u)" = 0 ]; then runuser -u postgres -- "\$@"; else "\$@"; fi; }
case "\$1" in
  stop) run "$pg_bin/pg_ctl" -w -D "$pg_data" -m fast stop >/dev/null ;;
  start) run "$pg_bin/pg_ctl" -w -D "$pg_data" -l "$pg_root/pg.log" -o "$pg_opts" start >/dev/null ;;
  *) echo "usage: \$0 stop|start" >&2; exit 2 ;;
esac
EOF
chmod +x "$state/pg-ctl"

moto_port=$(free_port)
.venv/bin/python scripts/moto_serial.py 127.0.0.1 "$moto_port" >"$state/moto.log" 2>&1 &
moto_pid=$!

stop() {
  kill "$moto_pid" 2>/dev/null || true
  run_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast stop >/dev/null 2>&1 || true
}
trap stop EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$moto_port/moto-api/" 2>/dev/null && break
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$moto_port/moto-api/')" 2>/dev/null && break
  sleep 0.2
done

# The JWT signing keys of this state folder (kept between runs).
if [ ! -s "$state/jwt-private.pem" ]; then
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$state/jwt-private.pem" 2>/dev/null
  openssl pkey -in "$state/jwt-private.pem" -pubout -out "$state/jwt-public.pem"
  chmod 600 "$state/jwt-private.pem"
fi
# The key of the upload tokens handed to Uppy (UPLOAD_TOKEN_KEYS), kept too.
if [ ! -s "$state/upload-token-key" ]; then
  (umask 077 && openssl rand -base64 48 > "$state/upload-token-key")
fi

export SLUICE_STATE_DIR="$state" SLUICE_PG_PORT="$pg_port" SLUICE_MOTO_URL="http://127.0.0.1:$moto_port" SLUICE_PG_CTL="$state/pg-ctl"
echo "stack: postgres on 127.0.0.1:$pg_port, moto on 127.0.0.1:$moto_port, state in $state"
"$@"
