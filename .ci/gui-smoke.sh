#!/usr/bin/env bash
# Starts the real tweetlab binary under Xvfb on the sample data, waits until the table has been
# drawn (the app writes a mark into its frame log), takes a screenshot and checks that the window
# drew something: many colours, not one flat fill. Usage: .ci/gui-smoke.sh BINARY OUT.png
set -euo pipefail
bin=$1
shot=$2
work=$(mktemp -d)
display=:97
Xvfb $display -screen 0 1280x800x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
xvfb=$!
app=
cleanup() {
  [ -n "$app" ] && kill "$app" 2>/dev/null || true
  kill "$xvfb" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do DISPLAY=$display xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done

export DISPLAY=$display XDG_RUNTIME_DIR=$work XDG_DATA_HOME=$work/share XDG_CONFIG_HOME=$work/config
export TWEETLAB_DATA_DIR=$work/data TWEETLAB_FRAME_LOG=$work/frames.log
"$bin" sample-data/train.csv >"$work/app.log" 2>&1 &
app=$!
for _ in $(seq 600); do
  grep -q '^# table-drawn' "$work/frames.log" 2>/dev/null && break
  if ! kill -0 "$app" 2>/dev/null; then
    echo "tweetlab exited early:"; cat "$work/app.log"; exit 1
  fi
  sleep 0.1
done
grep '^# table-drawn rows=203 ' "$work/frames.log" || { echo "no table with 203 rows was drawn"; cat "$work/app.log"; exit 1; }
sleep 1
DISPLAY=$display xdotool mousemove 1 799 || true
sleep 0.5
import -window root "$shot"
colours=$(convert "$shot" -format '%k' info:)
spread=$(convert "$shot" -colorspace Gray -format '%[fx:standard_deviation]' info:)
echo "screenshot $shot: $colours colours, grey standard deviation $spread"
[ "$colours" -gt 50 ] || { echo "the window looks empty"; exit 1; }
awk -v s="$spread" 'BEGIN { exit !(s > 0.02) }' || { echo "the window is one flat colour"; exit 1; }
echo "frames drawn: $(grep -vc '^#' "$work/frames.log")"
