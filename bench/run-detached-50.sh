#!/bin/bash
# run-detached-50: 50 detached `sleep 3600` containers started one after
# another (total time), then the host memory each idle container costs, then
# removal. --network none, so the figure is the container machinery alone (the
# bridge bench covers networking).
#
# Memory, two ways, both with the 50 containers idle:
#  - "MemAvailable delta": (mean of MemAvailable before starting and after
#    removing the 50 - MemAvailable with them running) / 50, from /proc/meminfo: everything the host pays,
#    including daemon heap, kernel objects (cgroups, namespaces, mounts) and
#    page cache the containers' files pin. Noisy on a busy machine.
#  - "PSS of init + monitor": summed Pss (/proc/PID/smaps_rollup) of each
#    container's init process and its parent (conmon for keel and podman,
#    containerd-shim-runc-v2 for dockerd), / 50.
#  - "memory cgroup usage": memory.usage_in_bytes of each container's memory
#    cgroup (v1; found from the init pid's /proc/PID/cgroup), / 50: the
#    container's own processes plus page cache and kernel memory charged to it.
source "$BENCH_DIR/lib.sh"
B=run-detached-50
N=${BENCH_DETACHED_N:-50}
# 10 timed runs per engine by default (the rounds alternate the engines): with
# 3, one slow run on a shared machine moved the median by itself.
RUNS=${BENCH_RUNS:-10}
G="start $N × run -d --network none busybox:local sleep 3600"

names=()
for i in $(seq 1 "$N"); do names+=("keelbench-d-$i"); done

# start_script / rm_script ENGINE CLIENT RM-WORDS CLI-WORDS...: the scripts of one engine.
start_script() {
  local cli="${*:4}"
  script "start50-$(slug "$1-$2")" "for i in \$(seq 1 $N); do $cli run -d --network none --name keelbench-d-\$i busybox:local sleep 3600 >/dev/null || exit 1; done"
}
rm_script() {
  local cli="${*:4}"
  script "rm50-$(slug "$1-$2")" "$cli $3 ${names[*]} >/dev/null 2>&1; exit 0"
}

# timed_candidate ENGINE CLIENT RM-WORDS CLI-WORDS...: the timed row of one
# engine. Its containers are removed before each run and after each block, so
# no engine's 50 containers sit on the host while another engine is timed.
timed_candidate() {
  local engine=$1 client=$2 cli="${*:4}" start rmall check target=null
  start=$(start_script "$@")
  rmall=$(rm_script "$@")
  on_exit "bash $rmall"
  [[ $engine == keel && $client == "docker CLI" ]] && target=3
  # The check is one container, so an engine without `run -d` fails fast.
  check=$(script "check-$(slug "$engine-$client")" "$cli run -d --network none --name keelbench-d-check busybox:local sleep 3600 >/dev/null || exit 1; $cli rm -f keelbench-d-check >/dev/null")
  candidate "$engine" "$client" --prepare "bash $rmall" --cleanup "bash $rmall" --check "bash $check" --target "$target" -- bash "$start"
}

# bench_engine ENGINE CLIENT RM-WORDS CLI-WORDS...: the untimed memory figures of one engine.
bench_engine() {
  local engine=$1 client=$2
  local cli="${*:4}" start rmall
  start=$(start_script "$@")
  rmall=$(rm_script "$@")
  local last
  last=$(jq -c --arg e "$engine" --arg c "$client" 'select(.bench == "'"$B"'" and .engine == $e and .client == $c and .unit == "s")' "$BENCH_OUT/rows.jsonl" | tail -n 1)
  if [[ $(jq -r '.error // empty' <<<"$last") != "" ]]; then
    bash "$rmall"
    unavailable $B "host memory per idle container (MemAvailable delta)" "$engine" "$client" MB "no containers: $(jq -r .error <<<"$last")"
    return
  fi
  # Memory is measured on a separate round, outside hyperfine, so the baseline
  # can be read on both sides: before the start and after the removal.
  bash "$rmall"
  sleep 3
  sync
  local before with after
  before=$(mem_available_kb)
  bash "$start" || { unavailable $B "host memory per idle container (MemAvailable delta)" "$engine" "$client" MB "the memory round failed to start $N containers"; bash "$rmall"; return; }
  sleep 3
  sync
  with=$(mem_available_kb)
  local pids=() p pp n
  for n in "${names[@]}"; do
    p=$($cli inspect -f '{{.State.Pid}}' "$n" 2>/dev/null)
    [[ $p =~ ^[0-9]+$ && $p != 0 ]] || continue
    pp=$(ppid_of "$p")
    pids+=("$p" "$pp")
  done
  local running=$((${#pids[@]} / 2))
  local pss cgmem=0 cgn=0 u
  pss=$(pss_kb "${pids[@]}")
  # Each container's memory cgroup (v1): the init pid's /proc/PID/cgroup names it.
  for ((k = 0; k < ${#pids[@]}; k += 2)); do
    u=$(memcg_usage_bytes "${pids[$k]}") || continue
    cgmem=$((cgmem + u)) cgn=$((cgn + 1))
  done
  bash "$rmall"
  sleep 3
  sync
  after=$(mem_available_kb)
  local memt=null pssnote drift
  [[ $engine == keel && $client == "docker CLI" ]] && memt=0.5
  drift=$(( (before > after ? before - after : after - before) ))
  # Other work on the host moves MemAvailable too; when it moved more between
  # the two baselines than the signal we look for (0.5 MB a container), the
  # figure says nothing, and the row says so instead of printing noise.
  if ((drift > N * 512)); then
    unavailable $B "host memory per idle container (MemAvailable delta)" "$engine" "$client" MB \
      "not measurable: MemAvailable moved $((drift / 1024)) MB between the baselines (other load on the host)"
  else
    value $B "host memory per idle container (MemAvailable delta)" "$engine" "$client" MB \
      "$(awk -v a="$before" -v c="$after" -v b="$with" -v n="$N" 'BEGIN {printf "%.3f", ((a + c) / 2 - b) / n / 1024}')" "$memt" \
      "baseline drift $((drift / 1024)) MB"
  fi
  if ((cgn > 0)); then
    value $B "memory cgroup usage per idle container" "$engine" "$client" MB \
      "$(awk -v s="$cgmem" -v n="$cgn" 'BEGIN {printf "%.3f", s / n / 1048576}')" null "memory.usage_in_bytes of $cgn containers"
  fi
  pssnote="$running of $N containers had a pid"
  if ((running > 0)); then
    value $B "PSS per idle container (init + monitor)" "$engine" "$client" MB \
      "$(awk -v s="$pss" -v n="$running" 'BEGIN {printf "%.3f", s / n / 1024}')" null "$pssnote"
  else
    unavailable $B "PSS per idle container (init + monitor)" "$engine" "$client" MB "inspect gave no State.Pid"
  fi
}

# podman's rm stops at the first missing name unless --ignore, and waits out
# the stop timeout (sleep as PID 1 ignores SIGTERM) unless -t 0.
timed_candidate keel "docker CLI" "rm -f" $KD
timed_candidate dockerd "docker CLI" "rm -f" $DK
timed_candidate podman "podman CLI" "rm -f -t 0 --ignore" $PM
measure_rotated $B "$G" --runs "$RUNS"
bench_engine keel "docker CLI" "rm -f" $KD
bench_engine dockerd "docker CLI" "rm -f" $DK
bench_engine podman "podman CLI" "rm -f -t 0 --ignore" $PM
