#!/bin/bash
# A close storm: wsgate's RSS holding N warm-idle ws sessions, its peak
# (sampled every 30 ms for 3 s) while all N clients drop at once (the hold
# tool is killed), and its RSS after. Run on demand, not in make test.
#
# usage: tests/bench/close_storm.sh BUILD_DIR N [WSGATE_BIN]
set -u
[ $# -ge 2 ] || { sed -n 2,6p "$0" >&2; exit 2; }
B=$(cd "$1" && pwd)/bin n=$2
bin=$(realpath "${3:-$B/wsgate}")
d=$(mktemp -d); cd "$d" || exit 3
$B/wsgate-bench echo --listen 127.0.0.1:0 --port-file echo.port >/dev/null 2>&1 & EP=$!
for i in $(seq 50); do [ -s echo.port ] && break; sleep 0.1; done; E=$(cat echo.port)
ulimit -n $((2 * n + 1000)) 2>/dev/null
taskset -c 1 $bin --listen 127.0.0.1:0 --admin 127.0.0.1:0 --port-file ports --upstream ws://127.0.0.1:$E --log-level warn > w.log 2>&1 & WP=$!
for i in $(seq 100); do [ -s ports ] && break; sleep 0.1; done
[ -s ports ] || { echo "close_storm.sh: wsgate did not start: $(tail -3 w.log)" >&2; kill $EP; exit 3; }
P=$(python3 -c "import json;print(json.load(open('ports'))['listen'])")
$B/wsgate-bench hold --url ws://127.0.0.1:$P/x --connections $n --hold 120 --concurrency 64 --timeout 60 --warm 64 > hold.out 2>hold.err & HP=$!
for i in $(seq 600); do [ -s hold.out ] && break; sleep 0.1; done; sleep 2
grep -q "\"established\":$n," hold.out ||
  { echo "close_storm.sh: not all $n sessions opened: $(head -c 300 hold.out)" >&2; kill $HP $WP $EP; exit 1; }
held=$(grep VmRSS /proc/$WP/status | awk '{print $2}')
kill -9 $HP; wait $HP 2>/dev/null
peak=$held
for i in $(seq 100); do r=$(grep VmRSS /proc/$WP/status | awk '{print $2}'); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.03; done
after=$(grep VmRSS /proc/$WP/status | awk '{print $2}')
echo "$(basename $bin) held=$held KiB peak_during_storm=$peak after=$after"
kill $WP $EP; wait 2>/dev/null; rm -rf "$d"
