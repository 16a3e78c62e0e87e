#!/bin/bash
# bridge: networking cost.
#  1. `run --rm busybox:local true` on the default bridge network (no --network):
#     veth pair, address, NAT rules set up and torn down per container.
#  2. 100 detached containers started in sequence on one user network (total
#     time), then, untimed, a check that every one of them answers by name from
#     the last one (`ping -c1 NAME` through the engine's DNS), reported as a count.
source "$BENCH_DIR/lib.sh"
B=bridge
RUNS=${BENCH_RUNS:-20}
RUNS100=${BENCH_RUNS100:-2}
N=${BENCH_BRIDGE_N:-100}
NET=keelbench-net

G="run --rm busybox:local true (default bridge)"
measure $B "$G" keel "docker CLI" --runs "$RUNS" --warmup 2 -- $KD run --rm busybox:local true
measure $B "$G" dockerd "docker CLI" --runs "$RUNS" --warmup 2 -- $DK run --rm busybox:local true
measure $B "$G" podman "podman CLI" --runs "$RUNS" --warmup 2 -- $PM run --rm busybox:local true

G100="start $N × run -d on one user network"
GREACH="reachable by name from the last (ping -c1 NAME)"
names=()
for i in $(seq 1 "$N"); do names+=("keelbench-n-$i"); done
for e in "keel|docker CLI|$KD" "dockerd|docker CLI|$DK" "podman|podman CLI|$PM"; do
  IFS='|' read -r engine client cli <<<"$e"
  tag=$(slug "$engine")
  teardown=$(script "net-teardown-$tag" "$cli rm -f ${names[*]} keelbench-n-check >/dev/null 2>&1; $cli network rm $NET >/dev/null 2>&1; exit 0")
  prepare=$(script "net-prepare-$tag" "bash $teardown; $cli network create $NET >/dev/null")
  start=$(script "net-start-$tag" "for i in \$(seq 1 $N); do $cli run -d --network $NET --name keelbench-n-\$i busybox:local sleep 3600 >/dev/null || exit 1; done")
  check=$(script "net-check-$tag" "$cli run -d --network $NET --name keelbench-n-check busybox:local sleep 3600 >/dev/null || exit 1; $cli rm -f keelbench-n-check >/dev/null")
  on_exit "bash $teardown"
  measure $B "$G100" "$engine" "$client" --runs "$RUNS100" --prepare "bash $prepare" --check "bash $check" -- bash "$start"
  if [[ -n $(tail -n 1 "$BENCH_OUT/rows.jsonl" | jq -r '.error // empty') ]]; then
    unavailable $B "$GREACH" "$engine" "$client" "of $N" "no containers: $(tail -n 1 "$BENCH_OUT/rows.jsonl" | jq -r .error)"
    bash "$teardown"
    continue
  fi
  # The last hyperfine run left the N containers up.
  ok=$(timeout 300 $cli exec "keelbench-n-$N" sh -c "ok=0; for i in \$(seq 1 $N); do ping -c1 -W2 keelbench-n-\$i >/dev/null 2>&1 && ok=\$((ok+1)); done; echo \$ok" 2>"$BENCH_WORK/reach-$tag.err")
  if [[ $ok =~ ^[0-9]+$ ]]; then
    value $B "$GREACH" "$engine" "$client" "of $N" "$ok"
  else
    unavailable $B "$GREACH" "$engine" "$client" "of $N" "exec failed: $(tail -n 2 "$BENCH_WORK/reach-$tag.err" | tr '\n' ' ')"
  fi
  bash "$teardown"
done
