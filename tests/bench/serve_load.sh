#!/usr/bin/env bash
# Load test: `tweetlab serve` against ../shared/bench/serve_torch.py (a plain PyTorch deploy of
# the same checkpoint, one forward at a time), on 127.0.0.1 only, free ports, same tweets (one
# per request, drawn at random from a CSV's text column), driven by wrk, alternating the two
# servers at each concurrency. Prints one line per run: server, concurrency, requests/s, p50, p99.
#
# Usage: tests/bench/serve_load.sh MODEL_DIR TEXTS.csv [SECONDS] [CONCURRENCIES] [ROUNDS]
# Needs: wrk (Debian package), a release tweetlab (target/release/tweetlab) and the PyTorch venv
# of ../shared/bench/README.md (TORCH_PY, default /tmp/torchref/bin/python).
set -euo pipefail
model=$1
texts=$2
seconds=${3:-30}
concurrencies=${4:-"1 8 64"}
rounds=${5:-1}
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${TWEETLAB_BIN:-$here/target/release/tweetlab}
torch_py=${TORCH_PY:-/tmp/torchref/bin/python}
serve_torch=${SERVE_TORCH:-$here/../shared/bench/serve_torch.py}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# One JSON body per line: {"inputs": TEXT}.
python3 - "$texts" > "$work/bodies.jsonl" <<'PY'
import csv, json, sys
for row in csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")):
    print(json.dumps({"inputs": row["text"]}))
PY
cat > "$work/post.lua" <<LUA
local bodies = {}
for line in io.lines("$work/bodies.jsonl") do bodies[#bodies + 1] = line end
math.randomseed(7)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  return wrk.format(nil, "/invocations", nil, bodies[math.random(#bodies)])
end
LUA

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ping() {
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$1/ping" >/dev/null && return 0; sleep 0.1; done
  echo "server on port $1 never answered /ping" >&2; exit 1
}

tl_port=$(free_port)
"$bin" serve --model "$model" --port "$tl_port" --device cpu >"$work/tweetlab.log" 2>&1 &
pids+=($!)
pt_port=$(free_port)
"$torch_py" "$serve_torch" --model "$model" --port "$pt_port" --threads 2 >"$work/torch.log" 2>&1 &
pids+=($!)
wait_ping "$tl_port"
wait_ping "$pt_port"

run() { # name port concurrency
  local out
  out=$(wrk -t1 -c"$3" -d"${seconds}s" --timeout 30s --latency -s "$work/post.lua" "http://127.0.0.1:$2" 2>&1)
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr '\n' ' ' || true)
  printf '%-9s c=%-3s %8s req/s  p50 %8s  p99 %8s  %s\n' "$1" "$3" "$rps" "$p50" "$p99" "$errors"
}

for round in $(seq "$rounds"); do
  for c in $concurrencies; do
    if (( round % 2 == 1 )); then
      run pytorch "$pt_port" "$c"; run tweetlab "$tl_port" "$c"
    else
      run tweetlab "$tl_port" "$c"; run pytorch "$pt_port" "$c"
    fi
  done
done
echo "tweetlab /metrics after the runs:"
curl -s "http://127.0.0.1:$tl_port/metrics" | grep -E '^tweetlab_(batch_texts_(sum|count)|texts_total|requests_total)'
