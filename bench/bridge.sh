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
# A name of this run only: a network an engine failed to remove in an earlier
# run (dockerd 20.10 can keep a stale endpoint) never blocks this one.
NET=keelbench-net-$$

G="run --rm busybox:local true (default bridge)"
candidate keel "docker CLI" --target 0.120 -- $KD run --rm busybox:local true
candidate dockerd "docker CLI" -- $DK run --rm busybox:local true
candidate podman "podman CLI" -- $PM run --rm busybox:local true
measure_rotated $B "$G" --runs "$RUNS" --warmup 2

G100="start $N × run -d on one user network"
GREACH="reachable by name from the last (ping -c1 NAME)"
names=()
for i in $(seq 1 "$N"); do names+=("keelbench-n-$i"); done
ENGINES=("keel|docker CLI|$KD|rm -f" "dockerd|docker CLI|$DK|rm -f" "podman|podman CLI|$PM|rm -f -t 0 --ignore")
# (podman's rm stops at the first missing name unless --ignore, and waits
# out the stop timeout, 10 s, unless -t 0)
# Timed rounds alternate the engines (lib.sh: measure_rotated); each block's
# cleanup takes its containers and network down, so no engine's 100 idle
# containers sit on the host while another engine is timed.
for e in "${ENGINES[@]}"; do
  IFS='|' read -r engine client cli rmf <<<"$e"
  tag=$(slug "$engine")
  # Removal is retried: an engine may release a network's endpoints a moment
  # after it has removed the containers.
  teardown=$(script "net-teardown-$tag" "$cli $rmf ${names[*]} >/dev/null 2>&1
for i in \$(seq 1 50); do $cli network inspect $NET >/dev/null 2>&1 || exit 0; $cli network rm $NET >/dev/null 2>&1 && exit 0; sleep 0.2; done
echo 'could not remove network $NET' >&2; exit 1")
  prepare=$(script "net-prepare-$tag" "bash $teardown && $cli network create $NET >/dev/null")
  start=$(script "net-start-$tag" "for i in \$(seq 1 $N); do $cli run -d --network $NET --name keelbench-n-\$i busybox:local sleep 3600 >/dev/null || exit 1; done")
  # The check proves the engine can make the network and run a container; it
  # puts no container on the network: right after a container on it, dockerd
  # 20.10 here has kept a stale endpoint that blocks `network rm` for good.
  check=$(script "net-check-$tag" "$cli network inspect $NET >/dev/null && $cli run --rm --network none busybox:local true")
  on_exit "bash $teardown"
  candidate "$engine" "$client" --prepare "bash $prepare" --cleanup "bash $teardown" --check "bash $check" -- bash "$start"
done
measure_rotated $B "$G100" --runs "$RUNS100"

# Reachability, untimed: one more start of the N per engine, then the pings.
for e in "${ENGINES[@]}"; do
  IFS='|' read -r engine client cli rmf <<<"$e"
  tag=$(slug "$engine")
  teardown="$BENCH_WORK/scripts/net-teardown-$tag.sh"
  last=$(jq -c --arg e "$engine" --arg c "$client" --arg g "$G100" 'select(.bench == "bridge" and .group == $g and .engine == $e and .client == $c)' "$BENCH_OUT/rows.jsonl" | tail -n 1)
  if [[ -n $(jq -r '.error // empty' <<<"$last") ]]; then
    unavailable $B "$GREACH" "$engine" "$client" "of $N" "no containers: $(jq -r .error <<<"$last")"
    bash "$teardown"
    continue
  fi
  if ! { bash "$BENCH_WORK/scripts/net-prepare-$tag.sh" && bash "$BENCH_WORK/scripts/net-start-$tag.sh"; } 2>"$BENCH_WORK/reach-$tag.err"; then
    unavailable $B "$GREACH" "$engine" "$client" "of $N" "could not start the $N containers: $(tail -n 2 "$BENCH_WORK/reach-$tag.err" | tr '\n' ' ')"
    bash "$teardown"
    continue
  fi
  ok=$(timeout 300 $cli exec "keelbench-n-$N" sh -c "ok=0; for i in \$(seq 1 $N); do ping -c1 -W2 keelbench-n-\$i >/dev/null 2>&1 && ok=\$((ok+1)); done; echo \$ok" 2>"$BENCH_WORK/reach-$tag.err")
  if [[ $ok =~ ^[0-9]+$ ]]; then
    value $B "$GREACH" "$engine" "$client" "of $N" "$ok"
  else
    unavailable $B "$GREACH" "$engine" "$client" "of $N" "exec failed: $(tail -n 2 "$BENCH_WORK/reach-$tag.err" | tr '\n' ' ')"
  fi
  bash "$teardown"
done
