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
source "$BENCH_DIR/lib.sh"
B=run-detached-50
N=${BENCH_DETACHED_N:-50}
RUNS=${BENCH_RUNS:-3}
G="start $N × run -d --network none busybox:local sleep 3600"

names=()
for i in $(seq 1 "$N"); do names+=("keelbench-d-$i"); done

bench_engine() { # ENGINE CLIENT CLI-WORDS...
  local engine=$1 client=$2
  shift 2
  local cli="$*" tag
  tag=$(slug "$engine-$client")
  local start rmall
  start=$(script "start50-$tag" "for i in \$(seq 1 $N); do $cli run -d --network none --name keelbench-d-\$i busybox:local sleep 3600 >/dev/null || exit 1; done")
  rmall=$(script "rm50-$tag" "$cli rm -f ${names[*]} >/dev/null 2>&1; exit 0")
  on_exit "bash $rmall"
  local target=null
  [[ $engine == keel && $client == "docker CLI" ]] && target=3
  # The check is one container, so an engine without `run -d` fails fast.
  local check
  check=$(script "check-$tag" "$cli run -d --network none --name keelbench-d-check busybox:local sleep 3600 >/dev/null || exit 1; $cli rm -f keelbench-d-check >/dev/null")
  measure $B "$G" "$engine" "$client" --runs "$RUNS" --prepare "bash $rmall" --check "bash $check" --target "$target" -- bash "$start"
  local last
  last=$(tail -n 1 "$BENCH_OUT/rows.jsonl")
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
  local pss
  pss=$(pss_kb "${pids[@]}")
  bash "$rmall"
  sleep 3
  sync
  after=$(mem_available_kb)
  local memt=null pssnote
  [[ $engine == keel && $client == "docker CLI" ]] && memt=0.5
  value $B "host memory per idle container (MemAvailable delta)" "$engine" "$client" MB \
    "$(awk -v a="$before" -v c="$after" -v b="$with" -v n="$N" 'BEGIN {printf "%.3f", ((a + c) / 2 - b) / n / 1024}')" "$memt" \
    "baseline: mean of before/after; before-after drift $(awk -v a="$before" -v c="$after" 'BEGIN {printf "%.1f", (a - c) / 1024}') MB"
  pssnote="$running of $N containers had a pid"
  if ((running > 0)); then
    value $B "PSS per idle container (init + monitor)" "$engine" "$client" MB \
      "$(awk -v s="$pss" -v n="$running" 'BEGIN {printf "%.3f", s / n / 1024}')" null "$pssnote"
  else
    unavailable $B "PSS per idle container (init + monitor)" "$engine" "$client" MB "inspect gave no State.Pid"
  fi
}

bench_engine keel "docker CLI" $KD
bench_engine dockerd "docker CLI" $DK
bench_engine podman "podman CLI" $PM
