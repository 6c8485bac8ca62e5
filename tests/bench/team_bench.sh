#!/usr/bin/env bash
# Team bench: a throw-away PostgreSQL (Debian's `postgresql` package) on 127.0.0.1 at a free
# port, `tweetlab team bench` against it (20 annotators, K = 3, 60 s by default), then the
# invariants the bench checks in SQL. With --fault the server is killed with SIGKILL (the
# postmaster and every backend) KILL_AT seconds after the bench starts (default 8: the 18,273
# labels of train.csv at K = 3 take about 20 s here) and started again 3 s later: the
# annotators' sessions reconnect and their outboxes drain.
#
# Usage: tests/bench/team_bench.sh DATA.csv [--fault] [-- extra `team bench` options]
# Needs: postgresql (Debian package), a tweetlab binary (TWEETLAB_BIN, default
# target/release/tweetlab). Runs as root (the server then runs as the postgres user) or not.
set -euo pipefail
data=$(realpath "$1"); shift
fault=0
if [[ ${1:-} == --fault ]]; then fault=1; shift; fi
[[ ${1:-} == -- ]] && shift
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${TWEETLAB_BIN:-$here/target/release/tweetlab}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $pgbin/initdb ]] || { echo "needs Debian's postgresql package" >&2; exit 2; }
work=$(mktemp -d /tmp/tweetlab-team-bench.XXXXXX)
as_pg=()
if [[ $(id -u) == 0 ]]; then chown postgres: "$work"; as_pg=(runuser -u postgres --); fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stop() { "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap stop EXIT
"${as_pg[@]}" "$pgbin/initdb" -D "$work/data" -U postgres --auth-local=trust -E UTF8 >/dev/null
printf 'local all postgres trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n' \
  > "$work/data/pg_hba.conf"
opts="-k $work -c listen_addresses=127.0.0.1 -p $port -c max_connections=100"
start() { "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -o "$opts" -l "$work/log" -w start >/dev/null; }
start
"${as_pg[@]}" "$pgbin/psql" -h "$work" -p "$port" -U postgres -qc "CREATE DATABASE bench" postgres
url="host=127.0.0.1 port=$port user=postgres dbname=bench"
echo "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
if [[ $fault == 0 ]]; then
  "$bin" team --db "$url" bench --data "$data" "$@"
  exit
fi
"$bin" team --db "$url" bench --data "$data" "$@" &
bench=$!
sleep "${KILL_AT:-8}"
pid=$(head -1 "$work/data/postmaster.pid")
echo "kill -9 the server (postmaster $pid and its backends) at $(date +%T)" >&2
pkill -9 -P "$pid" || true
kill -9 "$pid"
sleep 3
start
echo "server started again at $(date +%T)" >&2
wait "$bench"
