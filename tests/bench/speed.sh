#!/usr/bin/env bash
# Training and inference throughput of tweetlab (default, --precision fp32, and --dense: every
# padded position, the like-for-like work) against PyTorch fp32 and PyTorch bf16 autocast
# (../shared/bench/bench_torch.py [--amp bf16]) on one model, alternating the programs in each
# round. Prints one JSON line per run, tagged; tweetlab's "precision" says which path ran (on a
# CPU with AMX or AVX512-BF16 the default is bf16).
#
# Usage: tests/bench/speed.sh MODEL [ROUNDS] [STEPS]
#   MODEL: a model tweetlab resolves (all-mpnet-base-v2, a directory, ...); PyTorch gets the
#   directory tweetlab fetched it into.
# Needs: a release tweetlab (TWEETLAB_BIN, default target/release/tweetlab) and the PyTorch venv
# of ../shared/bench/README.md (TORCH_PY, default /tmp/torchref/bin/python).
set -euo pipefail
model=$1
rounds=${2:-2}
steps=${3:-20}
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${TWEETLAB_BIN:-$here/target/release/tweetlab}
torch_py=${TORCH_PY:-/tmp/torchref/bin/python}
bench_torch=${BENCH_TORCH:-$here/../shared/bench/bench_torch.py}
# The directory the model resolves to (fetching it first if need be).
dir=$("$bin" model fetch "$model" 2>/dev/null | tail -1)
[[ -d $dir ]] || { echo "could not resolve $model: $dir" >&2; exit 2; }
echo "{\"model\": \"$model\", \"dir\": \"$dir\", \"cpu\": \"$(lscpu | sed -n 's/^Model name: *//p')\"}"
for ((r = 1; r <= rounds; r++)); do
  echo "{\"round\": $r, \"program\": \"tweetlab\", \"result\": $("$bin" bench --model "$dir" --steps "$steps" --json 2>/dev/null | tail -1)}"
  echo "{\"round\": $r, \"program\": \"pytorch bf16\", \"result\": $("$torch_py" "$bench_torch" --model "$dir" --steps "$steps" --threads 2 --amp bf16 2>/dev/null | tail -1)}"
  echo "{\"round\": $r, \"program\": \"tweetlab --precision fp32\", \"result\": $("$bin" --precision fp32 bench --model "$dir" --steps "$steps" --json 2>/dev/null | tail -1)}"
  echo "{\"round\": $r, \"program\": \"pytorch fp32\", \"result\": $("$torch_py" "$bench_torch" --model "$dir" --steps "$steps" --threads 2 2>/dev/null | tail -1)}"
  echo "{\"round\": $r, \"program\": \"tweetlab --dense\", \"result\": $("$bin" --dense bench --model "$dir" --steps "$steps" --json 2>/dev/null | tail -1)}"
done
