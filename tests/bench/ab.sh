#!/bin/bash
# ab.sh PAIRS SIZE CONNS SECONDS -- A-args -- B-args : interleaved A/B of proxy CPU per round trip.
set -u
pairs=$1 size=$2 conns=$3 secs=$4; shift 4
[ "$1" = -- ] && shift
A=(); while [ "$1" != -- ]; do A+=("$1"); shift; done; shift; Bargs=("$@")
W=/work/main/build/bin/wsgate; B=/work/main/build/bin/wsgate-bench
d=$(mktemp -d)
taskset -c 0 $B echo --port-file $d/echo.port >/dev/null 2>&1 & epid=$!
for i in $(seq 100); do [ -s $d/echo.port ] && break; sleep 0.05; done
ep=$(cat $d/echo.port)
start() { taskset -c 1 $W --listen 127.0.0.1:0 --admin 127.0.0.1:0 --port-file $d/$1.json --upstream ws://127.0.0.1:$ep --log-level warn "${@:2}" >$d/$1.log 2>&1 & echo $! > $d/$1.pid
  for i in $(seq 100); do [ -s $d/$1.json ] && break; sleep 0.05; done; }
start a "${A[@]}"; start b "${Bargs[@]}"
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
for i in $(seq $pairs); do
  for s in a b; do
    pid=$(cat $d/$s.pid); lp=$(python3 -c "import json;print(json.load(open('$d/$s.json'))['listen'])")
    taskset -c 0 $B load --url ws://127.0.0.1:$lp/b --connections $conns --size $size --duration $secs --warmup 0.5 > $d/l.json &
    lpid=$!; sleep 0.5; c0=$(cpu $pid); t0=$(date +%s.%N); sleep $secs; c1=$(cpu $pid); t1=$(date +%s.%N); wait $lpid
    python3 -c "import json;j=json.load(open('$d/l.json'));print('$s',$i,j['messages_per_sec'],($c1-$c0)*1e6/100/(j['messages_per_sec']*($t1-$t0)))" >> $d/res.txt
  done
done
kill $(cat $d/a.pid) $(cat $d/b.pid) $epid; wait 2>/dev/null
python3 - $d/res.txt <<'PY'
import sys,statistics
r={}
for l in open(sys.argv[1]):
    s,i,m,c=l.split(); r.setdefault(s,[]).append((float(m),float(c)))
ra=[a[1]/b[1] for a,b in zip(r['a'],r['b'])]
print('A cpu us/rt', [round(x[1],1) for x in r['a']], 'median', round(statistics.median([x[1] for x in r['a']]),2))
print('B cpu us/rt', [round(x[1],1) for x in r['b']], 'median', round(statistics.median([x[1] for x in r['b']]),2))
print('A/B per pair', [round(x,2) for x in ra], 'median', round(statistics.median(ra),3))
PY
rm -rf $d
