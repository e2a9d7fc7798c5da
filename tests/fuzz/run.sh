#!/usr/bin/env bash
# Runs every libFuzzer target of a WSGATE_FUZZ=ON build for a bounded time.
#
#   tests/fuzz/run.sh BUILD_DIR [SECONDS]     (default 60 s per target)
#
# Each target starts from its committed seeds (corpus/<name>/) plus every
# crash ever found (crashes/<name>/), works in BUILD_DIR/fuzz-work/<name>/ so
# the committed corpus stays small, and writes new crashes, timeouts and
# out-of-memory inputs into tests/fuzz/crashes/<name>/ (commit them: `make
# test` replays them). FUZZ_MERGE_CORPUS=1 also merges newly covered inputs,
# minimised, into corpus/<name>/. FUZZ_TARGETS="a b" limits the targets.
# Exit status: 0 when no target found anything.
set -uo pipefail

build=${1:?usage: run.sh BUILD_DIR [SECONDS]}
seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
manifest=$build/tests/fuzz/fuzzers.txt
[[ -f $manifest ]] || { echo "run.sh: $manifest missing: configure with -DWSGATE_FUZZ=ON" >&2; exit 2; }

status=0
summary=()
while read -r name corpus dict; do
  [[ -n $name ]] || continue
  if [[ -n ${FUZZ_TARGETS:-} && " $FUZZ_TARGETS " != *" $name "* ]]; then continue; fi
  bin=$build/bin/$name
  [[ -x $bin ]] || { echo "run.sh: $bin not built" >&2; status=1; continue; }
  work=$build/fuzz-work/$name
  crashes=$here/crashes/$name
  mkdir -p "$work" "$crashes"
  log=$build/fuzz-work/$name.log
  args=(-max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$crashes/"
        -timeout=10 -rss_limit_mb=2048)
  [[ -n ${dict:-} && -f $dict ]] && args+=(-dict="$dict")
  echo "== $name: ${seconds}s"
  "$bin" "${args[@]}" "$work" "$corpus" "$crashes" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [[ $rc -ne 0 ]]; then
    status=1
    echo "   FOUND something (exit $rc); see $log and $crashes/"
    grep -m1 -E 'ERROR|FUZZ_CHECK|runtime error' "$log" | sed 's/^/   /'
  fi
  summary+=("$(printf '%-22s %12s execs %8s exec/s  %-10s exit %s' "$name" "${execs:-?}" "${rate:-?}" "${cov:-}" "$rc")")
  if [[ ${FUZZ_MERGE_CORPUS:-0} == 1 ]]; then
    "$bin" -merge=1 "$corpus" "$work" >>"$log" 2>&1 || true
  fi
done <"$manifest"

echo
printf '%s\n' "${summary[@]}"
exit $status
