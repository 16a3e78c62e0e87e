#!/bin/bash
# run-rm: the latency of `run --rm --network none busybox:local true`, create
# to exit to removal, through each engine's usual client. Floor: bare `runc run`
# of the same rootfs as an OCI bundle (no image store, no overlay, no monitor).
source "$BENCH_DIR/lib.sh"
B=run-rm
G="run --rm --network none busybox:local true"
RUNS=${BENCH_RUNS:-30}

# The engines (and the floor) alternate run by run, order rotated each round (lib.sh: measure_rotated).
candidate keel "docker CLI" --target 0.080 -- $KD run --rm --network none busybox:local true
candidate dockerd "docker CLI" -- $DK run --rm --network none busybox:local true
candidate podman "podman CLI" -- $PM run --rm --network none busybox:local true
candidate keel "keel CLI" -- $KK run --rm --network none busybox:local true

# The floor: runc's default spec (own netns with only lo, read-only root), `true`.
bundle="$BENCH_WORK/runc-bundle"
mkdir -p "$bundle" "$BENCH_WORK/runc-root"
(cd "$bundle" && runc spec) || die "runc spec failed"
jq '.process.args = ["true"] | .process.terminal = false | .root.path = $r' --arg r "$BUSYBOX_ROOTFS" "$bundle/config.json" >"$bundle/c.json" && mv "$bundle/c.json" "$bundle/config.json"
on_exit "runc --root '$BENCH_WORK/runc-root' delete -f keel-bench-floor"
candidate "floor: runc" "runc run" -- runc --root "$BENCH_WORK/runc-root" run --bundle "$bundle" keel-bench-floor
measure_rotated $B "$G" --runs "$RUNS" --warmup 3
