# Sourced by the on-demand bench scripts (ab.sh, instructions.sh): a work
# directory removed on exit, after every process started into `pids` is
# stopped, and a wait for a file a process writes once it is up.
work=$(mktemp -d)
pids=()
bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap bench_cleanup EXIT

wait_file() {  # FILE PID: 0 once FILE is non-empty; 1 if PID exits or 30 s pass first
  local i
  for i in $(seq 600); do
    [ -s "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
