#!/bin/bash
# build: `docker build` of a reference project, through keel (docker CLI with
# DOCKER_BUILDKIT=0, and keel's own CLI), dockerd's legacy builder and
# `podman build`, all from the same base image (Debian bookworm minbase from
# debootstrap, loaded from one `docker save` archive, so all three engines hold
# the same image ID). Nothing leaves the machine.
#
# The reference project (Dockerfile below): stage 1 = base + a RUN writing
# 50 MB in 5,000 files + a COPY of 5 MB and 200 small files; stage 2 = base +
# two COPY --from of stage 1 + a final RUN. Four measures:
#   cold     base image present, no build cache: before every run the built tag,
#            the build's intermediate images (image prune of dangling ones), the
#            build cache (builder prune) and the cache mounts are removed.
#   no-op    the same build again, everything cached.
#   1 file   one of the 200 small copied files gets new content before every run.
#   cache mount  a second project whose RUN --mount=type=cache fetches into the
#            cache mount only when it is empty (the fetch stands for a package
#            download: 2 s + 20 MB in 2,000 files). One file its COPY reads
#            changes before every run, so the RUN reruns and only the cache
#            mount's content can spare the fetch. dockerd's legacy builder has no
#            --mount: its row builds the same Dockerfile without the flag, the
#            RUN fetching into the layer (then deleted), i.e. paying the fetch.
source "$BENCH_DIR/lib.sh"
B=build
RUNS=${BENCH_RUNS:-5}
ARCHIVE="$BENCH_DIR/.cache/bookworm-minbase.docker-save.tar"
TAG=keelbench/build:ref
CTAG=keelbench/build:cachemount
# The docker CLI's legacy builder (no buildx here; the variable makes it explicit, and quiet about it).
export DOCKER_BUILDKIT=0

# ---- the base image, the same in every engine ----
if [[ ! -s $ARCHIVE ]]; then
  ensure_debian_in_dockerd
  dk save -o "$ARCHIVE.tmp" "$DEBIAN_IMAGE" && mv "$ARCHIVE.tmp" "$ARCHIVE" || die "docker save failed"
fi
for fn in dk kk pm; do
  if ! $fn image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1; then
    $fn load -q -i "$ARCHIVE" >/dev/null || die "$fn load of the base image failed"
    on_exit "$fn rmi -f $DEBIAN_IMAGE"
  fi
done

# ---- the reference project ----
ctx="$BENCH_WORK/build-ref"
mkdir -p "$ctx/payload/small"
head -c $((5 * 1024 * 1024)) /dev/urandom >"$ctx/payload/big.bin"
for i in $(seq 1 200); do head -c $((512 + RANDOM % 3584)) /dev/urandom >"$ctx/payload/small/f$i"; done
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $DEBIAN_IMAGE AS gen
RUN mkdir /data && head -c 51200000 /dev/urandom | split -b 10240 -d -a 4 - /data/f
COPY payload /payload

FROM $DEBIAN_IMAGE
COPY --from=gen /data /data
COPY --from=gen /payload /payload
RUN find /data /payload -type f | wc -l >/files.count && du -sk /data /payload >/du.txt
DOCKERFILE

# ---- the cache-mount project (a Dockerfile per builder: dockerd's legacy one has no --mount) ----
cctx="$BENCH_WORK/build-cachemount"
mkdir -p "$cctx/app/src"
for i in $(seq 1 20); do head -c 2048 /dev/urandom | base64 >"$cctx/app/src/m$i.c"; done
cat >"$cctx/app/build.sh" <<'SH'
#!/bin/sh
# Stands in for a package manager: fetch into /cache unless it is there (2 s and
# 20 MB in 2,000 files, like a download), then "build" from the cache and the sources.
set -e
if [ ! -f /cache/complete ]; then
  sleep 2
  mkdir -p /cache/pkgs
  head -c 20480000 /dev/urandom | split -b 10240 -d -a 4 - /cache/pkgs/p
  touch /cache/complete
fi
mkdir -p /out
cat /cache/pkgs/* /app/src/* | sha256sum >/out/result
SH
printf 'FROM %s\nCOPY app /app\nRUN --mount=type=cache,target=/cache sh /app/build.sh\n' "$DEBIAN_IMAGE" >"$cctx/Dockerfile"
printf 'FROM %s\nCOPY app /app\nRUN sh /app/build.sh && rm -rf /cache\n' "$DEBIAN_IMAGE" >"$cctx/Dockerfile.legacy"

# ---- cold: what each engine keeps for a build, removed ----
# Untagged images left by builds (legacy intermediates, podman's --layers, keel's
# step images) are dangling once the tags are gone: `image prune -f` (never -a:
# the base image stays). Then the build cache proper: `builder prune -af` for
# keel (its cache entries and cache mounts) and dockerd; podman keeps its cache
# mounts under /var/tmp/buildah-cache (-<uid> when rootless).
cold_script() { # NAME CLI-WORDS... -> path of a script that empties that engine's build cache
  local name=$1 extra
  shift
  case $name in
    podman) extra="rm -rf /var/tmp/buildah-cache /var/tmp/buildah-cache-\$(id -u)" ;;
    *) extra="$* builder prune -af >/dev/null 2>&1" ;;
  esac
  script "build-cold-$name" "$* rmi -f $TAG $CTAG >/dev/null 2>&1
$* image prune -f >/dev/null 2>&1
$extra
exit 0"
}
for fn in kd dk pm; do on_exit "$fn rmi -f $TAG $CTAG; $fn image prune -f"; done
on_exit "kd builder prune -af; dk builder prune -af; rm -rf /var/tmp/buildah-cache /var/tmp/buildah-cache-\$(id -u)"

# images_count CLI-WORDS...: every image the engine holds, intermediate ones included.
images_count() { "$@" images -aq 2>/dev/null | sort -u | wc -l; }

# verify_cold NAME COLD CLI BUILD...: untimed, once: a build then the cold script
# must leave exactly the images that were there before (only the base). Fails
# when the build fails (measure's own check then records why).
verify_cold() {
  local name=$1 cold=$2 cli=$3 rc=0
  shift 3
  bash "$cold"
  local before after
  before=$(images_count $cli)
  "$@" >/dev/null 2>&1 || rc=$?
  bash "$cold"
  after=$(images_count $cli)
  ((before == after)) || say "  warning: $name keeps $((after - before)) image(s) after the cold clean-up"
  return $rc
}

# keel's own CLI only where the client's share shows (no-op): elsewhere it is the same daemon work as the docker CLI row.
engines=("keel|docker CLI|$KD|keel-d" "dockerd|docker CLI|$DK|dockerd" "podman|podman CLI|$PM|podman")
bcmd() { # CLI-WORDS-VAR ENGINE TAG CONTEXT [Dockerfile]: the build command words
  local cli=$1 engine=$2 tag=$3 dir=$4 df=${5:-}
  local extra=""
  [[ $engine == podman ]] && extra="--layers"
  [[ -n $df ]] && extra+=" -f $dir/$df"
  echo "$cli build -q $extra -t $tag $dir"
}

# The issue's targets are ratios (keel ≤ 0.5× dockerd's and ≤ 0.5× podman's median): said on keel's row.
ratio_note() { [[ $1 == keel && $2 == "docker CLI" ]] && printf 'target: keel ÷ dockerd and keel ÷ podman ≤ 0.5'; return 0; }

# Every group alternates the engines run by run (lib.sh: measure_rotated): the
# machine is shared, and a build takes long enough for the load to move between
# one engine's runs and the next's.
G1="cold build (base image present, no build cache)"
for e in "${engines[@]}"; do
  IFS='|' read -r engine client cli name <<<"$e"
  cold=$(cold_script "$name" $cli)
  cmd=$(bcmd "$cli" "$engine" "$TAG" "$ctx")
  # A build that just passed verify_cold stands for the check (one cold build less per engine).
  check=""; verify_cold "$engine ($client)" "$cold" "$cli" $cmd && check=true
  candidate "$engine" "$client" --prepare "bash $cold" ${check:+--check "$check"} --note "$(ratio_note "$engine" "$client")" -- $cmd
done
measure_rotated $B "$G1" --runs "$RUNS"

# The floor: the docker CLI against a stand-in daemon that answers /build at
# once (clifloor.mjs): the client's own share (start-up, tarring and sending
# the 5 MB context) that no daemon can take off the no-op rebuild.
FLOOR_SOCK="$BENCH_WORK/clifloor.sock"
node "$BENCH_DIR/clifloor.mjs" "$FLOOR_SOCK" >"$BENCH_LOGS/clifloor.log" 2>&1 &
floor_pid=$!
on_exit "kill $floor_pid"
wait_for 10 test -S "$FLOOR_SOCK" || say "warning: the CLI floor's stand-in daemon did not start"
G2="no-op rebuild (all cached)"
for e in "${engines[@]}" "keel|keel CLI|$KK|keel-k" "floor: docker CLI alone|docker CLI|docker -H unix://$FLOOR_SOCK|floor"; do
  IFS='|' read -r engine client cli name <<<"$e"
  target=null; [[ $engine == keel && $client == "docker CLI" ]] && target=0.100
  candidate "$engine" "$client" --target "$target" --note "$(ratio_note "$engine" "$client")" -- $(bcmd "$cli" "$engine" "$TAG" "$ctx")
done
measure_rotated $B "$G2" --runs "$((RUNS * 2))" --warmup 1

G3="rebuild after changing 1 of the copied files"
touch1=$(script build-touch1 "head -c 2048 /dev/urandom >$ctx/payload/small/f100")
for e in "${engines[@]}"; do
  IFS='|' read -r engine client cli name <<<"$e"
  candidate "$engine" "$client" --prepare "bash $touch1" --note "$(ratio_note "$engine" "$client")" -- $(bcmd "$cli" "$engine" "$TAG" "$ctx")
done
measure_rotated $B "$G3" --runs "$RUNS"

# (Group names stay short: lib.sh's file names keep 80 characters of bench-group-engine-client.)
G4="rebuild where only a cache mount helps"
touch2=$(script build-touch2 "head -c 2048 /dev/urandom | base64 >$cctx/app/src/m1.c")
for e in "${engines[@]}"; do
  IFS='|' read -r engine client cli name <<<"$e"
  df=Dockerfile note=$(ratio_note "$engine" "$client")
  [[ $engine == dockerd ]] && df=Dockerfile.legacy note="legacy builder: no --mount, the same RUN without it"
  # The check (untimed) fills the cache mount; every timed run then changes a source first.
  candidate "$engine" "$client" --prepare "bash $touch2" --note "$note" -- $(bcmd "$cli" "$engine" "$CTAG" "$cctx" "$df")
done
measure_rotated $B "$G4" --runs "$RUNS"
