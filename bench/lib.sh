# shellcheck shell=bash disable=SC2034 # (the DK/KD/KK/PM prefixes are used by the scripts that source this file)
# Shared helpers for keel's benchmarks. Sourced by bench/run.sh and by every
# bench script (which run.sh starts as a child with the environment below).
#
# Environment set by run.sh (exported):
#   BENCH_DIR     this folder          BENCH_WORK  temp dir of this run (scripts, logs, bundles)
#   BENCH_OUT     per-run output dir   (rows.jsonl, hyperfine JSON files)
#   KEEL          path of bin/keel     KEEL_SOCK   socket of the keel daemon started for this run
#   DOCKERD_SOCK  dockerd's socket     BENCH_TIMEOUT  upper bound (s) for one hyperfine invocation

set -o pipefail

say() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Engine CLIs, each pinned to its daemon so no environment leaks between rows.
dk() { docker -H "unix://$DOCKERD_SOCK" "$@"; }   # docker CLI -> dockerd
kd() { docker -H "unix://$KEEL_SOCK" "$@"; }      # docker CLI -> keel daemon
kk() { "$KEEL" -H "unix://$KEEL_SOCK" "$@"; }     # keel CLI   -> keel daemon
pm() { podman "$@"; }                             # podman (daemonless)

# The command prefixes the benches put in hyperfine command lines (hyperfine
# runs them with -N, i.e. without a shell, so they must be plain argv words).
DK="docker -H unix://${DOCKERD_SOCK:-/var/run/docker.sock}"
KD="docker -H unix://${KEEL_SOCK:-}"
KK="${KEEL:-} -H unix://${KEEL_SOCK:-}"
PM="podman"

# ---- cleanup stack: every bench registers what it created; run on EXIT ----
_BENCH_CLEANUPS=()
on_exit() { _BENCH_CLEANUPS+=("$1"); }
_bench_run_cleanups() {
  local i
  for ((i = ${#_BENCH_CLEANUPS[@]} - 1; i >= 0; i--)); do
    # A subshell: a cleanup's own loop variables (`for i in ...`) must not move this loop's index.
    (eval "${_BENCH_CLEANUPS[$i]}") >/dev/null 2>&1 || true
  done
  _BENCH_CLEANUPS=()
}
trap _bench_run_cleanups EXIT
trap 'exit 130' INT TERM

# script NAME BODY: write an executable bash script under the work dir and
# print its path. Used for hyperfine --prepare and for multi-step commands, so
# hyperfine itself can run without a shell (-N) and without quoting games.
script() {
  local f="$BENCH_WORK/scripts/$1.sh"
  mkdir -p "$BENCH_WORK/scripts"
  printf '#!/bin/bash\nset -u\n%s\n' "$2" >"$f"
  chmod +x "$f"
  printf '%s' "$f"
}

# row JSON: append one result row (a JSON object) to this run's rows file.
row() { printf '%s\n' "$1" >>"$BENCH_OUT/rows.jsonl"; }

# Names are plain words; this keeps file names derived from them safe.
slug() { printf '%s' "$*" | tr -c 'A-Za-z0-9._-' '_' | cut -c1-80; }

# measure BENCH GROUP ENGINE CLIENT [options] -- COMMAND
#   options: --runs N  --warmup N  --prepare CMD  --cleanup CMD  --check CMD
#            --target SECONDS  --note TEXT
# Runs CMD once as a check (after PREPARE); if that fails the row records
# "not available (<error>)" and the bench goes on. Otherwise hyperfine times it
# (-N: no shell, so no shell start-up in the figure) and the row points at
# hyperfine's JSON export. The whole hyperfine call is bounded by BENCH_TIMEOUT.
measure() {
  local bench=$1 group=$2 engine=$3 client=$4
  shift 4
  local runs=${BENCH_RUNS:-10} warmup=0 prepare="" cleanup="" check="" target=null note=""
  while [[ $# -gt 0 && $1 != -- ]]; do
    case $1 in
      --runs) runs=$2 ;;
      --warmup) warmup=$2 ;;
      --prepare) prepare=$2 ;;
      --cleanup) cleanup=$2 ;;
      --check) check=$2 ;;
      --target) target=$2 ;;
      --note) note=$2 ;;
      *) die "measure: unknown option $1" ;;
    esac
    shift 2
  done
  shift
  local cmd="$*"
  local base
  base="$(slug "$bench-$group-$engine-$client")"
  local json="$BENCH_OUT/$base.json" errf="$BENCH_WORK/$base.check.err"
  say "$bench | $group | $engine via $client"
  [[ -n $prepare ]] && { timeout "${BENCH_TIMEOUT:-600}" bash -c "$prepare" >/dev/null 2>&1 || true; }
  local rc=0
  timeout "${BENCH_CHECK_TIMEOUT:-300}" bash -c "${check:-$cmd}" >/dev/null 2>"$errf" || rc=$?
  if ((rc != 0)); then
    local err
    err="$(grep -v '^\s*$' "$errf" | tail -n 2 | tr '\n' ' ' | cut -c1-300)"
    ((rc == 124)) && err="timed out after ${BENCH_CHECK_TIMEOUT:-300}s $err"
    [[ -z $err ]] && err="exit status $rc from: ${check:-$cmd}"
    say "  $engine: not available ($err)"
    row "$(jq -cn --arg b "$bench" --arg g "$group" --arg e "$engine" --arg c "$client" --arg cmd "$cmd" --arg err "$err" --argjson t "$target" --arg n "$note" \
      '{bench:$b,group:$g,engine:$e,client:$c,command:$cmd,unit:"s",error:$err,target:$t,note:$n}')"
    [[ -n $cleanup ]] && { bash -c "$cleanup" >/dev/null 2>&1 || true; }
    return 0
  fi
  local args=(-N --style basic --runs "$runs" --warmup "$warmup" --export-json "$json" --command-name "$engine ($client)")
  [[ -n $prepare ]] && args+=(--prepare "$prepare")
  [[ -n $cleanup ]] && args+=(--cleanup "$cleanup")
  if ! timeout "${BENCH_TIMEOUT:-600}" hyperfine "${args[@]}" "$cmd" >&2 2>"$errf.hf"; then
    local err
    err="hyperfine failed: $(grep -v '^\s*$' "$errf.hf" | tail -n 2 | tr '\n' ' ' | cut -c1-300)"
    say "  $err"
    cat "$errf.hf" >&2
    row "$(jq -cn --arg b "$bench" --arg g "$group" --arg e "$engine" --arg c "$client" --arg cmd "$cmd" --arg err "$err" --argjson t "$target" --arg n "$note" \
      '{bench:$b,group:$g,engine:$e,client:$c,command:$cmd,unit:"s",error:$err,target:$t,note:$n}')"
    return 0
  fi
  row "$(jq -cn --arg b "$bench" --arg g "$group" --arg e "$engine" --arg c "$client" --arg cmd "$cmd" --arg h "$json" --argjson t "$target" --arg n "$note" \
    '{bench:$b,group:$g,engine:$e,client:$c,command:$cmd,unit:"s",hyperfine:$h,target:$t,note:$n}')"
}

# ---- interleaved measures: engines alternate run by run ----
# hyperfine given several commands runs them in blocks (all of A, then all of
# B), so drift on a shared machine (another job starting, the page cache, a
# daemon's heap growing) can pass for a difference between engines. Instead:
#   candidate ENGINE CLIENT [--prepare CMD] [--cleanup CMD] [--check CMD] [--target S] [--note T] -- COMMAND
#   ... (one per engine row) ...
#   measure_rotated BENCH GROUP [--runs N] [--warmup N] [--block K]
# times the candidates in rounds: each round runs every candidate for a block
# of K runs (BENCH_BLOCK, default 1), in an order rotated by one each round
# (round r starts at candidate r mod n), so every engine takes every position
# equally often. Each round is one hyperfine call per candidate (its prepare
# before every run, its cleanup after the block, warm-up in the first round
# only); the rounds are merged into one export whose `rounds` keep the pairing
# report.ts uses for the spread of keel's ratio (paired by round).
_C_ENGINE=() _C_CLIENT=() _C_CMD=() _C_PREPARE=() _C_CLEANUP=() _C_CHECK=() _C_TARGET=() _C_NOTE=()
candidate() {
  local engine=$1 client=$2 prepare="" cleanup="" check="" target=null note=""
  shift 2
  while [[ $# -gt 0 && $1 != -- ]]; do
    case $1 in
      --prepare) prepare=$2 ;;
      --cleanup) cleanup=$2 ;;
      --check) check=$2 ;;
      --target) target=$2 ;;
      --note) note=$2 ;;
      *) die "candidate: unknown option $1" ;;
    esac
    shift 2
  done
  shift
  _C_ENGINE+=("$engine") _C_CLIENT+=("$client") _C_CMD+=("$*") _C_PREPARE+=("$prepare")
  _C_CLEANUP+=("$cleanup") _C_CHECK+=("$check") _C_TARGET+=("$target") _C_NOTE+=("$note")
}

# _error_row BENCH GROUP INDEX ERROR: the "not available" row of candidate INDEX.
_error_row() {
  local i=$3
  row "$(jq -cn --arg b "$1" --arg g "$2" --arg e "${_C_ENGINE[$i]}" --arg c "${_C_CLIENT[$i]}" --arg cmd "${_C_CMD[$i]}" --arg err "$4" \
    --argjson t "${_C_TARGET[$i]}" --arg n "${_C_NOTE[$i]}" \
    '{bench:$b,group:$g,engine:$e,client:$c,command:$cmd,unit:"s",error:$err,target:$t,note:$n}')"
}

measure_rotated() {
  local bench=$1 group=$2
  shift 2
  local runs=${BENCH_RUNS:-10} warmup=0 block=${BENCH_BLOCK:-1}
  while [[ $# -gt 0 ]]; do
    case $1 in
      --runs) runs=$2 ;;
      --warmup) warmup=$2 ;;
      --block) block=$2 ;;
      *) die "measure_rotated: unknown option $1" ;;
    esac
    shift 2
  done
  ((block >= 1 && runs >= 1)) || die "measure_rotated: --runs and --block must be >= 1"
  local n=${#_C_ENGINE[@]} i live=() base=() err
  # The check (after the prepare) of every candidate first: an engine that
  # cannot run the command gets its "not available" row and takes no rounds.
  for ((i = 0; i < n; i++)); do
    base[i]="$(slug "$bench-$group-${_C_ENGINE[$i]}-${_C_CLIENT[$i]}")"
    local errf="$BENCH_WORK/${base[$i]}.check.err" rc=0
    say "$bench | $group | check ${_C_ENGINE[$i]} via ${_C_CLIENT[$i]}"
    [[ -n ${_C_PREPARE[$i]} ]] && { timeout "${BENCH_TIMEOUT:-600}" bash -c "${_C_PREPARE[$i]}" >/dev/null 2>&1 || true; }
    timeout "${BENCH_CHECK_TIMEOUT:-300}" bash -c "${_C_CHECK[$i]:-${_C_CMD[$i]}}" >/dev/null 2>"$errf" || rc=$?
    [[ -n ${_C_CLEANUP[$i]} ]] && { bash -c "${_C_CLEANUP[$i]}" >/dev/null 2>&1 || true; }
    if ((rc != 0)); then
      err="$(grep -v '^\s*$' "$errf" | tail -n 2 | tr '\n' ' ' | cut -c1-300)"
      ((rc == 124)) && err="timed out after ${BENCH_CHECK_TIMEOUT:-300}s $err"
      [[ -z $err ]] && err="exit status $rc from: ${_C_CHECK[$i]:-${_C_CMD[$i]}}"
      say "  ${_C_ENGINE[$i]}: not available ($err)"
      _error_row "$bench" "$group" "$i" "$err"
    else
      live+=("$i")
    fi
  done
  local rounds=$(((runs + block - 1) / block)) r j k failed=()
  say "$bench | $group | ${#live[@]} engines × $rounds rounds of $block run(s), order rotated each round"
  for ((r = 0; r < rounds; r++)); do
    k=${#live[@]}
    for ((j = 0; j < k; j++)); do
      i=${live[$(((r + j) % k))]}
      [[ -n ${failed[$i]:-} ]] && continue
      local args=(-N --style none --runs "$block" --export-json "$BENCH_OUT/${base[$i]}.r$r.json" --command-name "${_C_ENGINE[$i]} (${_C_CLIENT[$i]})")
      ((r == 0 && warmup > 0)) && args+=(--warmup "$warmup")
      [[ -n ${_C_PREPARE[$i]} ]] && args+=(--prepare "${_C_PREPARE[$i]}")
      [[ -n ${_C_CLEANUP[$i]} ]] && args+=(--cleanup "${_C_CLEANUP[$i]}")
      if ! timeout "${BENCH_TIMEOUT:-600}" hyperfine "${args[@]}" "${_C_CMD[$i]}" >/dev/null 2>"$BENCH_WORK/${base[$i]}.hf.err"; then
        failed[i]="hyperfine failed in round $((r + 1)): $(grep -v '^\s*$' "$BENCH_WORK/${base[$i]}.hf.err" | tail -n 2 | tr '\n' ' ' | cut -c1-300)"
        say "  ${_C_ENGINE[$i]}: ${failed[$i]}"
      fi
    done
  done
  for i in "${live[@]}"; do
    if [[ -n ${failed[$i]:-} ]]; then
      _error_row "$bench" "$group" "$i" "${failed[$i]}"
      continue
    fi
    local json="$BENCH_OUT/${base[$i]}.json" files=()
    for ((r = 0; r < rounds; r++)); do files+=("$BENCH_OUT/${base[$i]}.r$r.json"); done
    # One export in hyperfine's shape (times of every run) plus the rounds, in order.
    jq -s '{results: [{command: .[0].results[0].command, times: [.[].results[0].times[]], rounds: [.[].results[0].times]}]}' "${files[@]}" >"$json" ||
      { _error_row "$bench" "$group" "$i" "could not merge the rounds"; continue; }
    rm -f "${files[@]}"
    row "$(jq -cn --arg b "$bench" --arg g "$group" --arg e "${_C_ENGINE[$i]}" --arg c "${_C_CLIENT[$i]}" --arg cmd "${_C_CMD[$i]}" --arg h "$json" \
      --argjson t "${_C_TARGET[$i]}" --arg n "${_C_NOTE[$i]}" --argjson blk "$block" \
      '{bench:$b,group:$g,engine:$e,client:$c,command:$cmd,unit:"s",hyperfine:$h,target:$t,note:$n,block:$blk}')"
  done
  _C_ENGINE=() _C_CLIENT=() _C_CMD=() _C_PREPARE=() _C_CLEANUP=() _C_CHECK=() _C_TARGET=() _C_NOTE=()
}

# value BENCH GROUP ENGINE CLIENT UNIT VALUE [TARGET] [NOTE]: a non-time figure
# (memory, counts) measured by the bench itself from kernel counters.
value() {
  row "$(jq -cn --arg b "$1" --arg g "$2" --arg e "$3" --arg c "$4" --arg u "$5" --argjson v "$6" --argjson t "${7:-null}" --arg n "${8:-}" \
    '{bench:$b,group:$g,engine:$e,client:$c,unit:$u,value:$v,target:$t,note:$n}')"
}

# unavailable BENCH GROUP ENGINE CLIENT UNIT ERROR: record a row that could not be measured.
unavailable() {
  row "$(jq -cn --arg b "$1" --arg g "$2" --arg e "$3" --arg c "$4" --arg u "$5" --arg err "$6" \
    '{bench:$b,group:$g,engine:$e,client:$c,unit:$u,error:$err,target:null,note:""}')"
}

# drop the page cache so the next run reads from disk (cold).
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# wait_for TIMEOUT_S CMD...: poll until CMD succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS >= deadline)) && return 1
    sleep 0.1
  done
}

mem_available_kb() { awk '/^MemAvailable:/ {print $2}' /proc/meminfo; }

# pss_kb PID...: summed proportional set size (kB) of the given processes.
pss_kb() {
  local total=0 p v
  for p in "$@"; do
    v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# memcg_usage_bytes PID: memory.usage_in_bytes of the (v1) memory cgroup PID is in.
memcg_usage_bytes() {
  local rel
  rel=$(awk -F: '$2 == "memory" {print $3}' "/proc/$1/cgroup" 2>/dev/null)
  [[ -n $rel && -r /sys/fs/cgroup/memory$rel/memory.usage_in_bytes ]] || return 1
  cat "/sys/fs/cgroup/memory$rel/memory.usage_in_bytes"
}

ppid_of() { awk '{print $4}' "/proc/$1/stat" 2>/dev/null; }

# ---- the Debian base image the load and pull benches share ----
# A minbase bookworm rootfs made once by debootstrap from the Debian mirror and
# cached as a tar under bench/.cache/ (gitignored): ~200 MB unpacked.
DEBIAN_ROOTFS_TAR="$BENCH_DIR/.cache/bookworm-minbase.rootfs.tar"
DEBIAN_IMAGE=keelbench/debian:bookworm

ensure_debian_rootfs() {
  [[ -s $DEBIAN_ROOTFS_TAR ]] && return 0
  mkdir -p "$BENCH_DIR/.cache"
  local d="$BENCH_DIR/.cache/bookworm-minbase.tmp"
  rm -rf "$d"
  say "debootstrap --variant=minbase bookworm (once; cached in bench/.cache)"
  timeout 1200 debootstrap --variant=minbase bookworm "$d" http://deb.debian.org/debian >"$BENCH_LOGS/debootstrap.log" 2>&1 ||
    { rm -rf "$d"; die "debootstrap failed: see $BENCH_LOGS/debootstrap.log"; }
  # apt's lists are not part of a base image (as in Debian's official one).
  rm -rf "$d"/var/lib/apt/lists/* "$d"/var/cache/apt/*.bin
  tar --numeric-owner --xattrs -C "$d" -cf "$DEBIAN_ROOTFS_TAR.tmp" . && mv "$DEBIAN_ROOTFS_TAR.tmp" "$DEBIAN_ROOTFS_TAR"
  rm -rf "$d"
}

# ensure_debian_in_dockerd: import the cached rootfs into dockerd as DEBIAN_IMAGE
# (removed again on exit when this call imported it).
ensure_debian_in_dockerd() {
  ensure_debian_rootfs
  dk image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1 && return 0
  dk import --change 'CMD ["bash"]' "$DEBIAN_ROOTFS_TAR" "$DEBIAN_IMAGE" >/dev/null || die "docker import of the Debian rootfs failed"
  on_exit "dk rmi -f $DEBIAN_IMAGE"
}

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 30000))
    [[ -z $(ss -Hltn "sport = :$p") ]] && { echo "$p"; return 0; }
  done
  return 1
}

# registry_script NAME PORT: write start/stop scripts for a Debian
# docker-registry on 127.0.0.1:PORT storing under the work dir, and print the
# path of the start script ("restart from empty": stop, wipe, start, wait).
# The stop script is "$BENCH_WORK/scripts/registry-NAME-stop.sh".
registry_script() {
  local name=$1 port=$2 dir="$BENCH_WORK/registry-$1"
  mkdir -p "$dir"
  cat >"$dir/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $dir/data}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$port
YAML
  script "registry-$name-stop" "[[ -s $dir/pid ]] && { p=\$(cat $dir/pid); kill \$p 2>/dev/null; for i in \$(seq 1 100); do kill -0 \$p 2>/dev/null || break; sleep 0.05; done; kill -9 \$p 2>/dev/null; rm -f $dir/pid; }; exit 0" >/dev/null
  script "registry-$name-fresh" "bash $BENCH_WORK/scripts/registry-$name-stop.sh
rm -rf $dir/data
setsid docker-registry serve $dir/config.yml </dev/null >>$BENCH_LOGS/registry-$name.log 2>&1 &
echo \$! >$dir/pid
for i in \$(seq 1 200); do curl -sf http://127.0.0.1:$port/v2/ >/dev/null && exit 0; sleep 0.05; done
echo 'registry $name did not start' >&2; exit 1"
}
