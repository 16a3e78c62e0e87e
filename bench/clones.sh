#!/bin/bash
# clones: a seeded PostgreSQL (Debian's postgresql in an image FROM the
# debootstrap bookworm minbase, ~100 MB of rows, stopped cleanly), and the
# time until 20 fresh instances of it accept connections (pg_isready from the
# host on each instance's bridge IP), one after another and all at once:
#   keel        `keel clone --start` of the stopped seeded container (one CLI
#               call, one request: what `docker run` is for the others)
#   keel pool   `keel pool take` from a pool of 20 kept ready (the pool is made
#               and filled before each run, untimed, and removed after it)
#   dockerd     `docker run` ×20 of the image `docker commit` made of the
#               stopped seeded container (the commit is timed once, apart)
#   podman      the same with podman
# then the latency of one `pool take` (keel's client library in a running
# process, the API through curl, and keel's CLI), and
# the disk the 20 idle instances use (their own dirs, and apart what the
# commit added for dockerd and podman; keel's clones stack SRC's own data).
#
# The same PostgreSQL image everywhere: built once by keel (cached as a
# `docker save` archive in bench/.cache), loaded into dockerd and podman.
# Each engine seeds its own container with the same SQL.
source "$BENCH_DIR/lib.sh"
B=clones
RUNS=${BENCH_RUNS:-3}
# BENCH_CLONES_N: fewer instances for quicker loops while working on clones (the figures are for 20).
N=${BENCH_CLONES_N:-20}
BASE_ARCHIVE="$BENCH_DIR/.cache/bookworm-minbase.docker-save.tar"
PG_IMAGE=keelbench/postgres:bookworm
SRC=keelbench-pg-seed
READY_LINE="database system is ready to accept connections"
# ~100 MB of rows (pg_total_relation_size is checked below).
SEED_SQL="CREATE TABLE seed AS SELECT g AS id, md5(g::text) AS a, repeat(md5(g::text), 4) AS b FROM generate_series(1, 470000) g; CREATE INDEX ON seed (id); CHECKPOINT;"
export DOCKER_BUILDKIT=0

# ---- the base image, the same in every engine (as in build.sh) ----
if [[ ! -s $BASE_ARCHIVE ]]; then
  ensure_debian_in_dockerd
  dk save -o "$BASE_ARCHIVE.tmp" "$DEBIAN_IMAGE" && mv "$BASE_ARCHIVE.tmp" "$BASE_ARCHIVE" || die "docker save failed"
fi

# ---- the PostgreSQL image: built by keel once, then the same archive everywhere ----
ctx="$BENCH_WORK/clones-pg"
mkdir -p "$ctx"
# No VOLUME: the data lives in the container's filesystem, which is what commit and clone carry.
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $DEBIAN_IMAGE
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PGDATA=/var/lib/postgresql/data
USER postgres
RUN initdb --auth=trust -U postgres -D \$PGDATA >/dev/null && printf "listen_addresses = '*'\nunix_socket_directories = '/tmp'\n" >>\$PGDATA/postgresql.conf && echo 'host all all 0.0.0.0/0 trust' >>\$PGDATA/pg_hba.conf
EXPOSE 5432
# SIGINT: PostgreSQL's fast shutdown, a clean stop.
STOPSIGNAL SIGINT
CMD ["postgres"]
DOCKERFILE
PG_ARCHIVE="$BENCH_DIR/.cache/postgres-$(sha256sum "$ctx/Dockerfile" | cut -c1-12).docker-save.tar"
for fn in dk kk pm; do
  $fn image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1 && continue
  $fn load -q -i "$BASE_ARCHIVE" >/dev/null || die "$fn load of the base image failed"
  on_exit "$fn rmi -f $DEBIAN_IMAGE"
done
if [[ ! -s $PG_ARCHIVE ]]; then
  say "building $PG_IMAGE with keel (apt-get from the Debian mirror; once, cached in bench/.cache)"
  kd build -q -t "$PG_IMAGE" "$ctx" >"$BENCH_LOGS/clones-build.log" 2>&1 || die "keel build of $PG_IMAGE failed: see $BENCH_LOGS/clones-build.log"
  kd save -o "$PG_ARCHIVE.tmp" "$PG_IMAGE" && mv "$PG_ARCHIVE.tmp" "$PG_ARCHIVE" || die "keel save of $PG_IMAGE failed"
fi
for fn in kd dk pm; do
  $fn load -q -i "$PG_ARCHIVE" >/dev/null || die "$fn load of $PG_IMAGE failed"
  on_exit "$fn rmi -f $PG_IMAGE"
done

# ---- helpers the timed scripts call ----
# wait-ready IP...: until PostgreSQL on every IP accepts connections (pg_isready from the host).
WAIT=$(script clones-wait-ready 'left=("$@")
for ((t = 0; t < 6000 && ${#left[@]}; t++)); do
  next=()
  for ip in "${left[@]}"; do pg_isready -q -t 1 -h "$ip" -p 5432 || next+=("$ip"); done
  left=("${next[@]}")
  ((${#left[@]})) && sleep 0.01
done
((${#left[@]} == 0)) || { echo "not ready: ${left[*]}" >&2; exit 1; }')
calc() { awk "BEGIN { printf \"${2:-%.6f}\", $1 }"; } # calc EXPR [FORMAT]
ip_of() { echo "\$($1 inspect -f '{{.NetworkSettings.IPAddress}}' $2)"; }

# ---- the seeded container in each engine ----
seed() { # CLI-FN
  local fn=$1
  $fn rm -f "$SRC" >/dev/null 2>&1
  $fn run -d --name "$SRC" "$PG_IMAGE" >/dev/null || return 1
  on_exit "$fn rm -f $SRC"
  wait_for 120 $fn exec "$SRC" pg_isready -q -h /tmp || { say "$fn: the seed container's PostgreSQL did not come up"; return 1; }
  $fn exec "$SRC" psql -q -h /tmp -U postgres -c "$SEED_SQL" >/dev/null || return 1
  local size
  size=$($fn exec "$SRC" psql -qtA -h /tmp -U postgres -c "SELECT pg_total_relation_size('seed')")
  say "$fn: seeded $((size / 1024 / 1024)) MB of rows"
  $fn stop -t 120 "$SRC" >/dev/null || return 1
  [[ $($fn inspect -f '{{.State.ExitCode}}' "$SRC") == 0 ]] || { say "$fn: PostgreSQL did not stop cleanly"; return 1; }
}
for fn in kd dk pm; do seed $fn || die "$fn: seeding failed (see above)"; done

# The one-time step before the 20: docker/podman commit the stopped container; keel's first clone freezes its writes.
t0=$(date +%s%N)
dk commit "$SRC" keelbench/pg-seeded:dk >/dev/null || die "docker commit failed"
value $B "one-time: commit (dockerd, podman) / first clone (keel)" dockerd "docker CLI" s "$(calc "($(date +%s%N) - $t0) / 1e9")"
on_exit "dk rmi -f keelbench/pg-seeded:dk"
t0=$(date +%s%N)
pm commit -q "$SRC" keelbench/pg-seeded:pm >/dev/null || die "podman commit failed"
value $B "one-time: commit (dockerd, podman) / first clone (keel)" podman "podman CLI" s "$(calc "($(date +%s%N) - $t0) / 1e9")"
on_exit "pm rmi -f keelbench/pg-seeded:pm"
t0=$(date +%s%N)
kk clone "$SRC" --name kbpg-first >/dev/null || die "keel clone failed: see $BENCH_LOGS/keel.log"
value $B "one-time: commit (dockerd, podman) / first clone (keel)" keel "keel CLI" s "$(calc "($(date +%s%N) - $t0) / 1e9")" null "freezes SRC's writable layer (a rename)"
kd rm -f kbpg-first >/dev/null

# ---- the instances ----
# Names: kbpgk<i> (keel clones), kbpgd<i> (dockerd), kbpgm<i> (podman); pool members are found by label.
rm_keel=$(script clones-rm-keel "ids=\$($KD ps -aq --filter name=kbpgk) ; [[ -n \$ids ]] && $KD rm -f -v \$ids >/dev/null; exit 0")
rm_dk=$(script clones-rm-dk "ids=\$($DK ps -aq --filter name=kbpgd) ; [[ -n \$ids ]] && $DK rm -f -v \$ids >/dev/null; exit 0")
rm_pm=$(script clones-rm-pm "ids=\$($PM ps -aq --filter name=kbpgm) ; [[ -n \$ids ]] && $PM rm -f -v \$ids >/dev/null; exit 0")
pool_fill=$(script clones-pool-fill "$KK pool rm kbpool >/dev/null 2>&1
$KK pool create kbpool --from $SRC --size $N --ready 'log:$READY_LINE' >/dev/null || exit 1
for i in \$(seq 1 6000); do
  [[ \$(curl -sf --unix-socket $KEEL_SOCK http://localhost/keel/pools | jq '.[] | select(.name == \"kbpool\") | .readyCount') == $N ]] && exit 0
  sleep 0.05
done
echo 'the pool did not fill' >&2; exit 1")
pool_rm=$(script clones-pool-rm "$KK pool rm kbpool >/dev/null 2>&1
ids=\$($KD ps -aq --filter label=keel.pool.taken=kbpool) ; [[ -n \$ids ]] && $KD rm -f -v \$ids >/dev/null; exit 0")
on_exit "bash $rm_keel; bash $rm_dk; bash $rm_pm; bash $pool_rm"

seq_keel=$(script clones-seq-keel "set -e
for i in \$(seq 1 $N); do
  $KK clone --start $SRC --name kbpgk\$i >/dev/null
  bash $WAIT $(ip_of "$KD" "kbpgk\$i")
done")
seq_pool=$(script clones-seq-pool "set -e
for i in \$(seq 1 $N); do
  name=\$($KK pool take kbpool | jq -r .name)
  bash $WAIT $(ip_of "$KD" "\$name")
done")
seq_dk=$(script clones-seq-dk "set -e
for i in \$(seq 1 $N); do
  $DK run -d --name kbpgd\$i keelbench/pg-seeded:dk >/dev/null
  bash $WAIT $(ip_of "$DK" "kbpgd\$i")
done")
seq_pm=$(script clones-seq-pm "set -e
for i in \$(seq 1 $N); do
  $PM run -d --name kbpgm\$i keelbench/pg-seeded:pm >/dev/null
  bash $WAIT $(ip_of "$PM" "kbpgm\$i")
done")

# All at once: every instance asked for in parallel, then all waited for.
par_keel=$(script clones-par-keel "set -e
$KK clone --start $SRC --count $N --name-prefix kbpgk >/dev/null
bash $WAIT \$($KD inspect -f '{{.NetworkSettings.IPAddress}}' \$(seq -f kbpgk%g 1 $N))")
par_pool=$(script clones-par-pool "set -e
for i in \$(seq 1 $N); do $KK pool take kbpool >$BENCH_WORK/take.\$i & done
wait
bash $WAIT \$($KD inspect -f '{{.NetworkSettings.IPAddress}}' \$(cat $BENCH_WORK/take.* | jq -r .name))")
par_dk=$(script clones-par-dk "set -e
for i in \$(seq 1 $N); do $DK run -d --name kbpgd\$i keelbench/pg-seeded:dk >/dev/null & done
wait
bash $WAIT \$($DK inspect -f '{{.NetworkSettings.IPAddress}}' \$(seq -f kbpgd%g 1 $N))")
par_pm=$(script clones-par-pm "set -e
for i in \$(seq 1 $N); do $PM run -d --name kbpgm\$i keelbench/pg-seeded:pm >/dev/null & done
wait
bash $WAIT \$($PM inspect -f '{{.NetworkSettings.IPAddress}}' \$(seq -f kbpgm%g 1 $N))")

note_keel="target: keel ÷ dockerd ≤ 0.3 (clone + start to ready, per instance); per instance = figure ÷ $N"
# The checks are quick (what each command needs is there): a full check would start 20 more instances per engine.
candidates() { # KIND (seq|par)
  local k=$1 s
  s=${k}_keel; candidate keel "keel clone --start" --prepare "bash $rm_keel" --cleanup "bash $rm_keel" --check "$KD inspect $SRC" --note "$note_keel" -- bash "${!s}"
  s=${k}_pool; candidate "keel pool" "keel pool take" --prepare "bash $pool_fill" --cleanup "bash $pool_rm" --check "$KK pool ls" --note "pool of $N filled before each run, untimed" -- bash "${!s}"
  s=${k}_dk; candidate dockerd "docker run of the commit" --prepare "bash $rm_dk" --cleanup "bash $rm_dk" --check "$DK image inspect keelbench/pg-seeded:dk" -- bash "${!s}"
  s=${k}_pm; candidate podman "podman run of the commit" --prepare "bash $rm_pm" --cleanup "bash $rm_pm" --check "$PM image inspect keelbench/pg-seeded:pm" -- bash "${!s}"
}
candidates seq
measure_rotated $B "$N instances ready, one after another (total)" --runs "$RUNS"
candidates par
measure_rotated $B "$N instances ready, all at once (total)" --runs "$RUNS"

# ---- one take: from keel's client library in a running process (a test suite's view), the API call
# through curl, and keel's CLI; curl's and the CLI's figures include their own process start, so
# curl's start alone (curl --version) is measured beside them as the floor of that row ----
take_wait=$(script clones-take-wait "for i in \$(seq 1 6000); do
  [[ \$(curl -sf --unix-socket $KEEL_SOCK http://localhost/keel/pools | jq '.[] | select(.name == \"kbpool\") | .readyCount') == $N ]] && exit 0
  sleep 0.05
done; exit 1")
bash "$pool_fill" || die "the pool did not fill"
take_lib=$(node "$BENCH_DIR/pooltake.ts" "$KEEL_SOCK" kbpool "$N" $((RUNS * 5))) || die "pool take through the library failed"
value $B "one pool take (a pool of $N, refilled before each take)" keel "library (KeelClient)" s "$(jq .median <<<"$take_lib")" 0.020 \
  "median of $((RUNS * 5)) takes in one process (bench/pooltake.ts), $(jq -r '"\(.min * 1000 | floor)-\(.max * 1000 | ceil) ms"' <<<"$take_lib")"
measure $B "one pool take (a pool of $N, refilled before each take)" keel "curl --version (curl's own start, the floor)" --runs $((RUNS * 3)) -- curl --version
measure $B "one pool take (a pool of $N, refilled before each take)" keel "API (curl)" --runs $((RUNS * 3)) --prepare "bash $take_wait" \
  -- curl -sf --unix-socket "$KEEL_SOCK" -X POST http://localhost/keel/pools/kbpool/take
measure $B "one pool take (a pool of $N, refilled before each take)" keel "keel CLI" --runs $((RUNS * 3)) --prepare "bash $take_wait" \
  -- $KK pool take kbpool
bash "$pool_rm"

# ---- disk used by N idle instances ----
# Each instance's own directories (du counts a hard link once): keel the clone's snapshot (upper, work,
# record) and container dir; dockerd its overlay2 layer, init layer and container dir; podman its
# overlay layer and container dir. "Writes" is the upper dir alone, what the instance wrote.
KEEL_CDIR="$KEEL_DATA/containers"
disk_row() { # ENGINE CLIENT CLI START-SCRIPT RM-SCRIPT DIRS-FN NAME-FILTER
  local engine=$1 client=$2 cli=$3 start=$4 rm=$5 dirsfn=$6 filter=$7
  bash "$rm"
  if ! bash "$start" >/dev/null 2>"$BENCH_WORK/disk.err"; then
    unavailable $B "disk per idle instance (own dirs)" "$engine" "$client" MB "$(tail -n 2 "$BENCH_WORK/disk.err")"
    bash "$rm"
    return
  fi
  sleep 5 # idle: past PostgreSQL's start-up writes
  sync
  local ids all=() uppers=() id
  ids=$($cli ps -q --no-trunc --filter "name=$filter")
  for id in $ids; do
    local up
    up=$($cli inspect -f '{{.GraphDriver.Data.UpperDir}}' "$id")
    [[ -n $up && -d $up ]] || continue
    uppers+=("$up")
    # shellcheck disable=SC2207
    all+=($($dirsfn "$id" "$up"))
  done
  local n=${#uppers[@]}
  if ((n == 0)); then
    unavailable $B "disk per idle instance (own dirs)" "$engine" "$client" MB "no upper dirs found"
  else
    local total written
    total=$(du -scx -B1 "${all[@]}" 2>/dev/null | tail -1 | cut -f1)
    written=$(du -scx -B1 "${uppers[@]}" 2>/dev/null | tail -1 | cut -f1)
    value $B "disk per idle instance (own dirs)" "$engine" "$client" MB "$(calc "$total / $n / 1048576")" null "$n instances; of which written (upper dir): $(calc "$written / $n / 1048576" %.2f) MB"
    value $B "disk per idle instance beyond what it wrote" "$engine" "$client" MB "$(calc "($total - $written) / $n / 1048576")" \
      "$([[ $engine == keel ]] && echo 1 || echo null)"
  fi
  bash "$rm"
}
keel_dirs() { echo "$(dirname "$2")" "$KEEL_CDIR/$1"; }
dk_dirs() { echo "$(dirname "$2")" "$(dirname "$2")-init" "/var/lib/docker/containers/$1"; }
pm_dirs() { echo "$(dirname "$2")" "/var/lib/containers/storage/overlay-containers/$1"; }
disk_row keel "keel clone --start" "$KD" "$par_keel" "$rm_keel" keel_dirs kbpgk
disk_row dockerd "docker run of the commit" "$DK" "$par_dk" "$rm_dk" dk_dirs kbpgd
disk_row podman "podman run of the commit" "$PM" "$par_pm" "$rm_pm" pm_dirs kbpgm
# What the commit added, shared by the instances (keel's clones stack the seed container's own data instead).
base_size=$(dk image inspect -f '{{.Size}}' "$PG_IMAGE")
value $B "shared by the $N: the image commit made (dockerd, podman) / frozen layer (keel)" dockerd "docker CLI" MB "$(calc "($(dk image inspect -f '{{.Size}}' keelbench/pg-seeded:dk) - $base_size) / 1048576")"
base_size=$(pm image inspect -f '{{.Size}}' "$PG_IMAGE")
value $B "shared by the $N: the image commit made (dockerd, podman) / frozen layer (keel)" podman "podman CLI" MB "$(calc "($(pm image inspect -f '{{.Size}}' keelbench/pg-seeded:pm) - $base_size) / 1048576")"
value $B "shared by the $N: the image commit made (dockerd, podman) / frozen layer (keel)" keel "keel CLI" MB 0 null "none added: the clones stack the seed container's own writable layer, frozen in place"
