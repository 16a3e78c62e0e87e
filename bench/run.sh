#!/bin/bash
# keel's benchmark runner: `npm run bench [-- NAME...]`.
#
# Sets up the three engines on this machine (dockerd, podman, a keel daemon on
# its own temp roots), gives each the same busybox image, runs the selected
# benches (all by default) and prints a table of medians with keel's ratio to
# each peer. Everything it starts or creates is removed on exit. See README.md.
set -u
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH_DIR")"
ALL_BENCHES=(run-rm run-detached-50 load pull bridge build clones compose)
source "$BENCH_DIR/lib.sh"

usage() {
  cat <<EOF
usage: npm run bench [-- [--save-baseline] NAME...]     NAME: ${ALL_BENCHES[*]} (default: all)
  --save-baseline  make this run's figures bench/baseline.json (rows of the benches run replace
                   theirs; other benches' rows stay). Every run is compared with that file.
environment: BENCH_RUNS (default per bench), BENCH_BLOCK (runs per engine per round, 1),
             BENCH_TIMEOUT (s per hyperfine call, 600), BENCH_KEEP_WORK=1 keeps the temp work dir.
             BENCH_CLONES_N: instances in the clones bench (20).
EOF
}

selected=()
save_baseline=0
for a in "$@"; do
  case $a in
    -h | --help) usage; exit 0 ;;
    --save-baseline) save_baseline=1 ;;
    *)
      [[ -f $BENCH_DIR/$a.sh && " ${ALL_BENCHES[*]} " == *" $a "* ]] || { usage; die "unknown bench \"$a\""; }
      selected+=("$a")
      ;;
  esac
done
((${#selected[@]})) || selected=("${ALL_BENCHES[@]}")

(($(id -u) == 0)) || die "the benches drive dockerd, podman and runc: run them as root"

# ---- packages: the peers and the tools the benches use ----
need_pkgs=()
for p in docker.io podman hyperfine jq busybox-static runc conmon skopeo docker-registry debootstrap curl postgresql-client docker-compose podman-compose; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
done
if ((${#need_pkgs[@]})); then
  say "installing ${need_pkgs[*]} (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_pkgs[@]}" >&2 || die "apt-get install ${need_pkgs[*]} failed"
fi
command -v docker >/dev/null || die "no docker CLI on PATH"

STAMP="$(date -u +%Y-%m-%dT%H-%M-%SZ)"
BENCH_WORK="$(mktemp -d /tmp/keel-bench.XXXXXX)"
BENCH_LOGS="/tmp/keel-bench-logs.$STAMP"
BENCH_OUT="$BENCH_WORK/out"
mkdir -p "$BENCH_OUT" "$BENCH_LOGS"
: >"$BENCH_OUT/rows.jsonl"
[[ ${BENCH_KEEP_WORK:-0} == 1 ]] || on_exit "rm -rf '$BENCH_WORK'"
KEEL="$ROOT/bin/keel"
# keel's CLI as install.sh leaves it: bundled from the sources being measured (src/cli/bundle.ts)
node "$ROOT/src/cli/bundle.ts" >/dev/null || die "could not bundle keel's CLI (npm run bundle)"
DOCKERD_SOCK=/var/run/docker.sock
export BENCH_DIR BENCH_WORK BENCH_OUT BENCH_LOGS KEEL DOCKERD_SOCK
say "work dir $BENCH_WORK, daemon logs in $BENCH_LOGS"

# umount_under DIR: unmount everything mounted below DIR (deepest first).
umount_under() {
  awk -v d="$1/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
}

# podman asks runc for RLIMIT_NOFILE and RLIMIT_NPROC of 1048576 for root, and
# runc's prlimit fails (EPERM) where that is above the hard limit podman itself
# runs with (it lowers its own NPROC: 32768 here). Give podman's containers
# podman's own hard limits, read from a short-lived podman process, and pin
# its runtime (below).
podman_conf() {
  (exec podman system service --time 2 "unix://$BENCH_WORK/podman-probe.sock" >/dev/null 2>&1) &
  local pid=$! nofile="" nproc=""
  # podman sets its limits early in its start-up: read them once it serves.
  wait_for 10 test -S "$BENCH_WORK/podman-probe.sock"
  nofile=$(awk '/^Max open files/ {print $5}' "/proc/$pid/limits" 2>/dev/null)
  nproc=$(awk '/^Max processes/ {print $4}' "/proc/$pid/limits" 2>/dev/null)
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  [[ $nofile =~ ^[0-9]+$ ]] || nofile=$(ulimit -Hn)
  [[ $nproc =~ ^[0-9]+$ ]] || nproc=$(ulimit -Hu)
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' "$nofile" "$nofile" "$nproc" "$nproc"
  # podman prefers crun when both are installed, and crun refuses cgroup v1 hybrid hosts like these:
  # measure podman on runc, the runtime keel and dockerd use.
  printf '[engine]\nruntime = "runc"\n'
}
export CONTAINERS_CONF="$BENCH_WORK/containers.conf"
podman_conf >"$CONTAINERS_CONF"
say "podman: $(tr "\n" " " <"$CONTAINERS_CONF")"

# ---- dockerd: reuse a running one, else start it in the background ----
if ! dk version >/dev/null 2>&1; then
  say "starting dockerd (log: $BENCH_LOGS/dockerd.log)"
  dockerd --pidfile "$BENCH_WORK/dockerd.pid" >"$BENCH_LOGS/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  on_exit "kill $DOCKERD_PID; for i in \$(seq 1 150); do kill -0 $DOCKERD_PID || break; sleep 0.1; done; kill -9 $DOCKERD_PID"
  wait_for 60 dk version || die "dockerd did not come up: see $BENCH_LOGS/dockerd.log"
fi

# ---- keel daemon on its own roots (data on the same disk as docker's) ----
KEEL_DATA="$(mktemp -d /var/lib/keel-bench.XXXXXX)"
KEEL_EXEC="$(mktemp -d /run/keel-bench.XXXXXX)"
KEEL_SOCK="$KEEL_EXEC/keel.sock"
export KEEL_SOCK KEEL_DATA KEEL_EXEC
on_exit "umount_under '$KEEL_DATA'; umount_under '$KEEL_EXEC'; rm -rf '$KEEL_DATA' '$KEEL_EXEC'"
say "starting keel daemon (data $KEEL_DATA, exec $KEEL_EXEC, log $BENCH_LOGS/keel.log)"
node "$KEEL" daemon --data-root "$KEEL_DATA" --exec-root "$KEEL_EXEC" >"$BENCH_LOGS/keel.log" 2>&1 &
KEEL_PID=$!
# Containers first (they outlive the daemon under conmon), then the daemon.
on_exit "kd rm -f \$(kd ps -aq) ; kill $KEEL_PID; for i in \$(seq 1 100); do kill -0 $KEEL_PID || break; sleep 0.1; done; kill -9 $KEEL_PID"
wait_for 30 test -S "$KEEL_SOCK" || die "keel daemon did not come up: see $BENCH_LOGS/keel.log"
wait_for 30 kd version || die "keel daemon does not answer on $KEEL_SOCK: see $BENCH_LOGS/keel.log"

# ---- the same busybox image in all three engines ----
BUSYBOX_ROOTFS="$BENCH_WORK/busybox/rootfs"
BUSYBOX_TAR="$BENCH_WORK/busybox/rootfs.tar"
export BUSYBOX_ROOTFS BUSYBOX_TAR
make_busybox_rootfs() {
  local r=$BUSYBOX_ROOTFS a
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,var/run}
  chmod 1777 "$r/tmp"
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list-full); do
    [[ $a == bin/busybox ]] && continue
    ln -sf /bin/busybox "$r/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  tar --numeric-owner -C "$r" -cf "$BUSYBOX_TAR" .
}
make_busybox_rootfs || die "could not build the busybox rootfs"
if dk image inspect busybox:local >/dev/null 2>&1; then
  say "dockerd already has busybox:local; keeping it"
else
  dk import "$BUSYBOX_TAR" busybox:local >/dev/null || die "docker import failed"
  on_exit "dk rmi -f busybox:local"
fi
if pm image exists busybox:local; then
  say "podman already has busybox:local; keeping it"
else
  pm import "$BUSYBOX_TAR" busybox:local >/dev/null || die "podman import failed"
  on_exit "pm rmi -f busybox:local"
fi
kk import "$BUSYBOX_TAR" busybox:local >/dev/null || die "keel import failed: see $BENCH_LOGS/keel.log"

# ---- what ran where: recorded beside the figures ----
jq -n --arg date "$STAMP" --arg kernel "$(uname -r)" --arg cpu "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
  --arg ncpu "$(nproc)" --arg mem "$(awk '/MemTotal/ {print $2" kB"}' /proc/meminfo)" \
  --arg keel "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)" --arg node "$(node --version)" \
  --arg dockerd "$(dk version -f '{{.Server.Version}}' 2>/dev/null)" --arg dockercli "$(docker --version)" \
  --arg podman "$(podman --version)" --arg runc "$(runc --version | head -1)" --arg conmon "$(conmon --version | head -1)" \
  --arg hyperfine "$(hyperfine --version)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  '{date:$date,kernel:$kernel,cpu:$cpu,ncpu:$ncpu,memory:$mem,keelCommit:$keel,node:$node,dockerd:$dockerd,dockerCli:$dockercli,podman:$podman,runc:$runc,conmon:$conmon,hyperfine:$hyperfine,loadavgAtStart:$load}' \
  >"$BENCH_OUT/meta.json"

# ---- the benches: each in its own process, each cleans up after itself ----
failed=()
for b in "${selected[@]}"; do
  say "=== $b ==="
  if ! bash "$BENCH_DIR/$b.sh"; then
    failed+=("$b")
    unavailable "$b" "(bench script)" "-" "-" "s" "bench script $b.sh exited with an error; see the output above"
  fi
done

# bin/keel runs src/ instead of the bundle once a source file changes: say so when one changed during the run
node --input-type=module -e "process.exit((await import('$ROOT/src/cli/bundle.ts')).currentBundle() ? 0 : 1)" ||
  say "warning: keel's sources changed during this run, so keel's CLI ran from src/ (slower to start), not from its bundle"

mkdir -p "$BENCH_DIR/results"
report_args=(--baseline "$BENCH_DIR/baseline.json")
((save_baseline)) && report_args+=(--save-baseline "$BENCH_DIR/baseline.json")
node "$BENCH_DIR/report.ts" "$BENCH_OUT" "$BENCH_DIR/results/$STAMP.json" "${report_args[@]}" || die "report failed (raw rows in $BENCH_OUT)"
((${#failed[@]} == 0)) || { say "benches with errors: ${failed[*]}"; exit 1; }
