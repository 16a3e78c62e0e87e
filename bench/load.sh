#!/bin/bash
# load: `load -i` of a `docker save` archive of a Debian bookworm minbase image
# (one ~160-200 MB layer), into each engine. The image is removed from that
# engine before every run (hyperfine --prepare), so every run unpacks and
# stores the whole layer; the archive itself stays in the page cache (warm), the
# same for every engine.
source "$BENCH_DIR/lib.sh"
B=load
RUNS=${BENCH_RUNS:-5}
ARCHIVE="$BENCH_DIR/.cache/bookworm-minbase.docker-save.tar"

if [[ ! -s $ARCHIVE ]]; then
  ensure_debian_in_dockerd
  dk save -o "$ARCHIVE.tmp" "$DEBIAN_IMAGE" && mv "$ARCHIVE.tmp" "$ARCHIVE" || die "docker save failed"
fi
size_mb=$(( $(stat -c %s "$ARCHIVE") / 1024 / 1024 ))
G="load -i debian-bookworm-minbase.tar (${size_mb} MB, 1 layer)"

for e in "keel|keel CLI|$KK|kk" "keel|docker CLI|$KD|kd" "dockerd|docker CLI|$DK|dk" "podman|podman CLI|$PM|pm"; do
  IFS='|' read -r engine client cli fn <<<"$e"
  rm_img=$(script "load-rmi-$(slug "$engine-$client")" "$cli rmi -f $DEBIAN_IMAGE >/dev/null 2>&1; exit 0")
  on_exit "$fn rmi -f $DEBIAN_IMAGE"
  target=null
  candidate "$engine" "$client" --prepare "bash $rm_img" --target "$target" -- $cli load -q -i "$ARCHIVE"
done
measure_rotated $B "$G" --runs "$RUNS"
