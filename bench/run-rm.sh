#!/bin/bash
# run-rm: the latency of `run --rm --network none busybox:local true`, create
# to exit to removal, through each engine's usual client. Floor: bare `runc run`
# of the same rootfs as an OCI bundle (no image store, no overlay, no monitor).
source "$BENCH_DIR/lib.sh"
B=run-rm
G="run --rm --network none busybox:local true"
RUNS=${BENCH_RUNS:-30}

measure $B "$G" keel "docker CLI" --runs "$RUNS" --warmup 3 --target 0.080 -- $KD run --rm --network none busybox:local true
measure $B "$G" dockerd "docker CLI" --runs "$RUNS" --warmup 3 -- $DK run --rm --network none busybox:local true
measure $B "$G" podman "podman CLI" --runs "$RUNS" --warmup 3 -- $PM run --rm --network none busybox:local true
measure $B "$G" keel "keel CLI" --runs "$RUNS" --warmup 3 -- $KK run --rm --network none busybox:local true

# The floor: runc's default spec (own netns with only lo, read-only root), `true`.
bundle="$BENCH_WORK/runc-bundle"
mkdir -p "$bundle" "$BENCH_WORK/runc-root"
(cd "$bundle" && runc spec) || die "runc spec failed"
jq '.process.args = ["true"] | .process.terminal = false | .root.path = $r' --arg r "$BUSYBOX_ROOTFS" "$bundle/config.json" >"$bundle/c.json" && mv "$bundle/c.json" "$bundle/config.json"
on_exit "runc --root '$BENCH_WORK/runc-root' delete -f keel-bench-floor"
measure $B "$G" "floor: runc" "runc run" --runs "$RUNS" --warmup 3 \
  -- runc --root "$BENCH_WORK/runc-root" run --bundle "$bundle" keel-bench-floor
