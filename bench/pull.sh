#!/bin/bash
# pull: cold pull of one 3-layer image from a local registry (Debian
# docker-registry on 127.0.0.1) into each engine, then push of it to an empty
# registry. The image: Debian bookworm minbase, + python3-minimal (apt, via
# `docker build`), + a 5 MB file and 200 small ones. Built once, cached as a
# docker-save archive in bench/.cache.
#
# Cold: before every run the image (and the Debian base, whose layer is the
# same) is removed from the engine and the page cache dropped.
# Rows beside the engines: `skopeo copy` to a dir (blob transfer alone) and the
# floor: the three layers fetched at once with `curl | gzip -d | tar -x`.
source "$BENCH_DIR/lib.sh"
B=pull
RUNS=${BENCH_RUNS:-5}
ARCHIVE="$BENCH_DIR/.cache/py3-3layer.docker-save.tar"
BUILD_TAG=keelbench/py:3layer

if [[ ! -s $ARCHIVE ]]; then
  ensure_debian_in_dockerd
  ctx="$BENCH_WORK/py-context"
  mkdir -p "$ctx/payload/small"
  head -c $((5 * 1024 * 1024)) /dev/urandom >"$ctx/payload/big.bin"
  for i in $(seq 1 200); do head -c $((512 + RANDOM % 3584)) /dev/urandom >"$ctx/payload/small/f$i"; done
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $DEBIAN_IMAGE
RUN apt-get update && apt-get install -y --no-install-recommends python3-minimal && rm -rf /var/lib/apt/lists/*
COPY payload /payload
DOCKERFILE
  say "building the 3-layer image with dockerd (once; cached in bench/.cache)"
  DOCKER_BUILDKIT=0 dk build -q -t "$BUILD_TAG" "$ctx" >"$BENCH_LOGS/py-build.log" 2>&1 || die "docker build failed: see $BENCH_LOGS/py-build.log"
  dk save -o "$ARCHIVE.tmp" "$BUILD_TAG" && mv "$ARCHIVE.tmp" "$ARCHIVE" || die "docker save failed"
  dk rmi -f "$BUILD_TAG" >/dev/null
fi

# ---- the source registry, seeded with skopeo (gzip layers, as a push would) ----
PORT=$(free_port) || die "no free port"
fresh=$(registry_script src "$PORT")
on_exit "bash $BENCH_WORK/scripts/registry-src-stop.sh"
bash "$fresh" || die "docker-registry did not start: see $BENCH_LOGS/registry-src.log"
REF="127.0.0.1:$PORT/keelbench/py:1"
skopeo copy -q --dest-tls-verify=false "docker-archive:$ARCHIVE" "docker://$REF" >&2 || die "skopeo could not seed the registry"
manifest=$(skopeo inspect --raw --tls-verify=false "docker://$REF") || die "skopeo inspect failed"
nlayers=$(jq '.layers | length' <<<"$manifest")
zmb=$(jq '[.layers[].size] | add / 1048576 | floor' <<<"$manifest")
G="cold pull ($zmb MB gzip, $nlayers layers)"

# prepare: remove the image (and its base) from one engine, then drop the page cache.
cold() { # NAME CLI-WORDS...
  local name=$1
  shift
  script "cold-$name" "$* rmi -f $REF $DEBIAN_IMAGE >/dev/null 2>&1; sync; echo 3 >/proc/sys/vm/drop_caches; exit 0"
}
on_exit "kk rmi -f $REF"
on_exit "kd rmi -f $REF"
on_exit "dk rmi -f $REF"
on_exit "pm rmi -f $REF"
candidate keel "keel CLI" --prepare "bash $(cold keel-k $KK)" -- $KK pull "$REF"
candidate keel "docker CLI" --prepare "bash $(cold keel-d $KD)" -- $KD pull "$REF"
candidate dockerd "docker CLI" --prepare "bash $(cold dockerd $DK)" -- $DK pull "$REF"
candidate podman "podman CLI" --prepare "bash $(cold podman $PM)" -- $PM pull -q --tls-verify=false "$REF"

out="$BENCH_WORK/pulled"
on_exit "rm -rf $out"
candidate "blobs only: skopeo" "skopeo copy → dir:" \
  --prepare "bash $(script cold-skopeo "rm -rf $out; mkdir -p $out; sync; echo 3 >/proc/sys/vm/drop_caches")" \
  -- skopeo copy -q --src-tls-verify=false "docker://$REF" "dir:$out/skopeo"
floor_body="set -o pipefail; mkdir -p $out; pids=()"
i=0
for d in $(jq -r '.layers[].digest' <<<"$manifest"); do
  i=$((i + 1))
  floor_body+="
mkdir -p $out/layer$i; (curl -sf http://127.0.0.1:$PORT/v2/keelbench/py/blobs/$d | gzip -d | tar -x -C $out/layer$i) & pids+=(\$!)"
done
floor_body+="
for p in \"\${pids[@]}\"; do wait \$p || exit 1; done"
candidate "floor: curl|gzip|tar" "all layers at once" \
  --prepare "bash $(script cold-floor "rm -rf $out; sync; echo 3 >/proc/sys/vm/drop_caches")" \
  -- bash "$(script floor-pull "$floor_body")"
# Engines, skopeo and the floor alternate run by run (lib.sh: measure_rotated).
measure_rotated $B "$G" --runs "$RUNS"

# ---- push to an empty registry (wiped and restarted before every run) ----
PPORT=$(free_port) || die "no free port"
pfresh=$(registry_script dst "$PPORT")
on_exit "bash $BENCH_WORK/scripts/registry-dst-stop.sh"
bash "$pfresh" || die "docker-registry did not start: see $BENCH_LOGS/registry-dst.log"
PREF="127.0.0.1:$PPORT/keelbench/py:1"
GP="push to an empty registry ($nlayers layers)"
for e in "keel|keel CLI|$KK|kk" "keel|docker CLI|$KD|kd" "dockerd|docker CLI|$DK|dk" "podman|podman CLI|$PM|pm"; do
  IFS='|' read -r engine client cli fn <<<"$e"
  [[ $engine == keel && $client == "docker CLI" ]] && continue # same daemon work as the keel CLI row
  tls=""; [[ $engine == podman ]] && tls="--tls-verify=false"
  # Untimed: make sure the engine has the image under the push name.
  $fn image inspect "$REF" >/dev/null 2>&1 || $fn pull $tls "$REF" >/dev/null 2>&1
  $fn tag "$REF" "$PREF" >/dev/null 2>&1
  on_exit "$fn rmi -f $PREF"
  # The check also proves the push stored every layer the pushed manifest names.
  check=$(script "push-check-$(slug "$engine")" "set -e -o pipefail
$cli push $tls $PREF >/dev/null
for d in \$(skopeo inspect --raw --tls-verify=false docker://$PREF | jq -r '.layers[].digest'); do
  curl -sfI http://127.0.0.1:$PPORT/v2/keelbench/py/blobs/\$d >/dev/null || { echo \"layer \$d missing after push\" >&2; exit 1; }
done")
  candidate "$engine" "$client" --prepare "bash $pfresh" --check "bash $pfresh && bash $check" -- $cli push $tls "$PREF"
done
measure_rotated $B "$GP" --runs "$RUNS"
