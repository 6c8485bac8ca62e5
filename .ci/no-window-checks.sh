#!/usr/bin/env bash
# The two builds without the window, run by .ci/run in the background: the CUDA check (candle's
# CUDA backend, whose kernels nvcc compiles for minutes) and the CLI-only check (the same without
# CUDA, so it reuses nearly all of it). Niced and in their own target dir, they take little
# more than the core time the main builds leave idle, and finish alone after clippy.
# Usage: .ci/no-window-checks.sh OUT_DIR [SHARED_DIR]
# Writes OUT_DIR/{cuda,cli}.log and .rc (the exit status); no SHARED_DIR: no CUDA check.
set -uo pipefail
# .ci/run starts this in its own session, and where the kernel groups the scheduling of each
# session (autogroup), `nice` only ranks processes inside the group: the group itself is niced too.
echo 19 > /proc/self/autogroup 2>/dev/null || true
out=$1
shared=${2:-}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/no-window-checks"
timed() {
  local name=$1; shift
  local t0=$SECONDS
  "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "($name: $(( SECONDS - t0 )) s in the background, exit $rc)" >> "$out/$name.log"
  echo "$rc" > "$out/$name.rc"
}
# A subshell, so that the toolchain's environment stays out of the CLI-only check.
cuda_check() (
  bash "$shared/tools/cuda-toolchain.sh" "${TMPDIR:-/tmp}/tweetlab-cuda" > "$out/toolchain.log" 2>&1 \
    || { cat "$out/toolchain.log"; echo "setting up the CUDA toolchain failed"; return 1; }
  # shellcheck disable=SC1090
  . <(grep '^export' "$out/toolchain.log")
  nice -n 19 cargo check --locked --no-default-features --features cuda,serve
)
if [ -n "$shared" ]; then timed cuda cuda_check; fi
timed cli nice -n 19 cargo check --locked --no-default-features --features serve
