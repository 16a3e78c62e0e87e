#!/bin/bash
# compose: `up -d`, a second `up -d` with nothing changed, and `down` of a
# 10-service project, with keel compose (keel's CLI → keel daemon),
# docker-compose v1 (Debian's, a Python client of the Docker API) → dockerd,
# and podman-compose (Debian's) → podman. One compose file for all three:
# 10 busybox services, even ones on two networks (front, back), odd ones on
# back only, a named volume each, s3 → s2 → s1 a dependency chain of 3.
# Each container's command is a shell that exits on SIGTERM, so `down` times
# the engines, not a 10 s stop timeout.
#
# Per group, engines alternate run by run (lib.sh: measure_rotated):
#   up -d     before each run the project is down (-v): every run creates the
#             2 networks, 10 volumes and 10 containers and starts them in order
#   no-op up  before each run the project is up: `up -d` finds nothing to do
#   down      before each run the project is up: stop and remove the 10
#             containers and the 2 networks (the volumes stay, as in `down`)
# After each engine's block its project is taken down (-v), so no engine's
# containers sit on the host while another is timed.
source "$BENCH_DIR/lib.sh"
B=compose
RUNS=${BENCH_RUNS:-5}
# A project name of this run only: other sessions may use these daemons too.
PROJ="keelbench-compose-$$"

dir="$BENCH_WORK/compose"
mkdir -p "$dir"
F="$dir/compose.yaml"
{
  # docker-compose v1 reads a file without `version` as its legacy v1 format
  # (no `services:` key); 3.7 is a format all three read (keel warns that it is obsolete).
  echo 'version: "3.7"'
  echo 'services:'
  for i in $(seq 1 10); do
    echo "  s$i:"
    echo '    image: busybox:local'
    echo "    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 3600 & wait\"]"
    if ((i % 2 == 0)); then echo '    networks: [front, back]'; else echo '    networks: [back]'; fi
    echo "    volumes: [\"v$i:/data\"]"
    ((i == 2)) && echo '    depends_on: [s1]'
    ((i == 3)) && echo '    depends_on: [s2]'
  done
  echo 'networks:'
  echo '  front: {}'
  echo '  back: {}'
  echo 'volumes:'
  for i in $(seq 1 10); do echo "  v$i: {}"; done
} >"$F"

# docker-compose v1 gives up on a request after 60 s: on a loaded shared host
# dockerd's answers can take longer (a timed-out run would fail the row).
export COMPOSE_HTTP_TIMEOUT=600

# The three clients, each pinned to its engine.
KC="$KEEL -H unix://$KEEL_SOCK compose -p $PROJ -f $F"
DC="docker-compose -H unix://$DOCKERD_SOCK -p $PROJ -f $F"
PC="podman-compose -p $PROJ -f $F"
# podman-compose 1.0.3 names every object after the project without checking labels; its `down`
# leaves the named volumes: remove them by name too.
pc_volumes() { for i in $(seq 1 10); do printf ' %s_v%s' "$PROJ" "$i"; done; }

ENGINES=("keel|keel compose|$KC" "dockerd|docker-compose v1|$DC" "podman|podman-compose|$PC")
for e in "${ENGINES[@]}"; do
  IFS='|' read -r engine client cli <<<"$e"
  name=$(slug "$engine")
  extra=""
  [[ $engine == podman ]] && extra="podman volume rm -f$(pc_volumes) >/dev/null 2>&1"
  log="$BENCH_LOGS/compose-$name.log"
  # down is retried: dockerd 20.10 may refuse a network removal for a moment after its containers went
  script "compose-down-$name" "for i in 1 2 3; do $cli down -v >>$log 2>&1 && break; sleep 1; done; $extra
exit 0" >/dev/null
  script "compose-up-$name" "$cli up -d >>$log 2>&1 || $cli up -d >>$log 2>&1" >/dev/null
  on_exit "bash $BENCH_WORK/scripts/compose-down-$name.sh"
done
down_s() { printf 'bash %s' "$BENCH_WORK/scripts/compose-down-$(slug "$1").sh"; }
up_s() { printf 'bash %s' "$BENCH_WORK/scripts/compose-up-$(slug "$1").sh"; }

# The issue's targets: keel ≤ 0.3× docker-compose v1 on dockerd for up and down (said on keel's row).
note() { [[ $1 == keel ]] && printf 'target: keel ÷ dockerd (docker-compose v1) ≤ 0.3'; return 0; }

G1="up -d, 10 services (2 networks, 10 volumes, chain of 3)"
for e in "${ENGINES[@]}"; do
  IFS='|' read -r engine client cli <<<"$e"
  candidate "$engine" "$client" --prepare "$(down_s "$engine")" --cleanup "$(down_s "$engine")" --note "$(note "$engine")" -- $cli up -d
done
measure_rotated $B "$G1" --runs "$RUNS"

G2="second up -d, nothing changed"
for e in "${ENGINES[@]}"; do
  IFS='|' read -r engine client cli <<<"$e"
  target=null
  [[ $engine == keel ]] && target=0.150
  candidate "$engine" "$client" --prepare "$(up_s "$engine")" --cleanup "$(down_s "$engine")" --target "$target" -- $cli up -d
done
measure_rotated $B "$G2" --runs "$((RUNS * 2))"

G3="down, 10 services"
for e in "${ENGINES[@]}"; do
  IFS='|' read -r engine client cli <<<"$e"
  candidate "$engine" "$client" --prepare "$(up_s "$engine")" --cleanup "$(down_s "$engine")" --note "$(note "$engine")" -- $cli down
done
measure_rotated $B "$G3" --runs "$RUNS"
