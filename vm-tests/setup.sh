#!/usr/bin/env bash
# Installs what the VM suite needs on a Debian 12 root machine, replacing nothing:
# qemu from bookworm-backports through a private sources list (plain bookworm's qemu would
# remove the preinstalled backports qemu-utils), busybox-static and cpio, the musl target,
# and Debian's kernel unpacked from its .deb into the cache (no initramfs-tools, no udev).
# Sourced by vm-tests/run; expects CACHE to be set.
set -euo pipefail
: "${CACHE:?}"
mkdir -p "$CACHE/apt/lists/partial" "$CACHE/apt/parts" "$CACHE/kernel"

apt_private() {
  if [ ! -f "$CACHE/apt/parts/debian.sources" ]; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      sed -E 's/^Suites: bookworm bookworm-updates$/Suites: bookworm bookworm-updates bookworm-backports/' \
        /etc/apt/sources.list.d/debian.sources > "$CACHE/apt/parts/debian.sources"
      grep -q bookworm-backports "$CACHE/apt/parts/debian.sources" || cat >> "$CACHE/apt/parts/debian.sources" <<'SRC'

Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    else
      cat > "$CACHE/apt/parts/debian.sources" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
  fi
  APTO=(-o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts="$CACHE/apt/parts"
        -o Dir::State::lists="$CACHE/apt/lists" -o APT::Sandbox::User=root)
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get "${APTO[@]}" update -qq
    APT_UPDATED=1
  fi
}

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "vm-tests: need root to install ${need[*]}" >&2; exit 1; }
  apt_private
  echo "vm-tests: installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get "${APTO[@]}" install -y -qq --no-install-recommends \
    -t bookworm-backports "${need[@]}"
fi

if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  rustup target add x86_64-unknown-linux-musl
fi

if [ ! -s "$CACHE/kernel/vmlinux" ]; then
  apt_private
  KPKG=$(apt-cache "${APTO[@]}" depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  echo "vm-tests: fetching kernel $KPKG"
  rm -rf "$CACHE/kernel/tmp" && mkdir -p "$CACHE/kernel/tmp"
  (cd "$CACHE/kernel/tmp" && apt-get "${APTO[@]}" download "$KPKG")
  dpkg-deb --fsys-tarfile "$CACHE/kernel/tmp/${KPKG}"_*.deb | tar -x -C "$CACHE/kernel/tmp" --wildcards './boot/vmlinuz-*'
  # The uncompressed ELF boots via PVH and skips seconds of XZ decompression under TCG.
  python3 - "$CACHE/kernel/tmp/boot/"vmlinuz-* "$CACHE/kernel/vmlinux.part" <<'PY'
import lzma, sys
d = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(lzma.LZMADecompressor().decompress(d[d.find(b"\xfd7zXZ\0"):]))
PY
  mv "$CACHE/kernel/vmlinux.part" "$CACHE/kernel/vmlinux"
  echo "$KPKG" > "$CACHE/kernel/version"
  rm -rf "$CACHE/kernel/tmp"
fi
