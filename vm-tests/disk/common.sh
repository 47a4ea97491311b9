# Shared by vm-tests/disk/run and vm-tests/disk/bench (bash): the image of this run, qemu,
# ssh. Expects HERE (vm-tests/disk), ROOT, CACHE, OUT.

# The cached Debian root (vm-tests/disk/image) with the current colony installed from its
# .deb (cargo deb, the static musl binaries), the units of examples/machine, and for the
# scenario ($1 = test) the units and scripts of files/. Leaves $OUT/root.img and
# $OUT/data.img (ext4, /data in fstab), $OUT/swap.img, $OUT/key (root's ssh key), $BASE (kernel, initrd).
disk_prepare() {
  local flavour=$1 tree=$OUT/tree
  BASE=$(bash "$HERE/image")
  echo "vm-tests: disk: colony's .deb (cargo deb)"
  (cd "$ROOT" && bash packaging/deb/cargo-deb --target x86_64-unknown-linux-musl --variant vm --no-build --out "$OUT/deb" >/dev/null)
  local deb
  deb=$(ls -t "$OUT"/deb/colony_*.deb | head -n1)
  rm -rf "$tree" && mkdir -p "$tree"
  tar -x -C "$tree" -f "$BASE/rootfs.tar"
  dpkg --root="$tree" --force-unsafe-io -i "$deb" >/dev/null
  cp "$ROOT"/examples/machine/*.unit "$tree/etc/colony/units/"
  if [ "$flavour" = test ]; then
    cp -a "$HERE/files/." "$tree/"
    cp "$ROOT/vm-tests/lib.sh" "$tree/vmtest/lib.sh"
  fi
  echo colony-disk > "$tree/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 colony-disk\n' > "$tree/etc/hosts"
  cat > "$tree/etc/fstab" <<'FSTAB'
/dev/vda   /             ext4   errors=remount-ro  0 1
/dev/vdb   /data         ext4   defaults           0 2
tmpfs      /mnt/scratch  tmpfs  size=8m            0 0
/dev/vdc   none          swap   sw                 0 0
FSTAB
  mkdir -p "$tree/data" "$tree/mnt/scratch"
  [ -f "$OUT/key" ] || ssh-keygen -q -t ed25519 -N '' -f "$OUT/key"
  install -d -m 700 "$tree/root/.ssh"
  install -m 600 "$OUT/key.pub" "$tree/root/.ssh/authorized_keys"
  rm -f "$OUT/root.img" "$OUT/data.img" "$OUT/swap.img"
  mkfs.ext4 -q -F -L root -d "$tree" "$OUT/root.img" 1536M
  mkfs.ext4 -q -F -L data "$OUT/data.img" 64M
  # A swap disk, not a file: mkfs.ext4 -d would make a file of zeros sparse, and swapon
  # refuses a file with holes.
  truncate -s 16M "$OUT/swap.img" && mkswap -q "$OUT/swap.img" >/dev/null
  rm -rf "$tree"
}

# A free TCP port on the host's loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# vm_start LOG INIT EXTRA...: boot the image in the background (QPID, PORT), the console in
# LOG.raw. sshd is forwarded to 127.0.0.1:PORT only. net.ifnames=0: the network is eth0
# (as examples/machine/network.unit says) whichever init runs.
vm_start() {
  local log=$1 init=$2; shift 2
  PORT=$(free_port)
  : > "$log.raw"
  QSTART=$(date +%s.%N)
  timeout "${VM_TIMEOUT:-${COLONY_VM_TIMEOUT:-240}}" qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot \
    -kernel "$BASE/vmlinux" -initrd "$BASE/initrd.img" \
    -append "console=ttyS0 root=/dev/vda ro net.ifnames=0 panic=-1 quiet init=$init $*" \
    -drive file="$OUT/root.img",format=raw,if=virtio -drive file="$OUT/data.img",format=raw,if=virtio \
    -drive file="$OUT/swap.img",format=raw,if=virtio \
    -netdev user,id=n0,hostfwd=tcp:127.0.0.1:"$PORT"-:22 -device virtio-net-pci,netdev=n0 \
    < /dev/null > "$log.raw" 2>&1 &
  QPID=$!
}

# vm_wait_text LOG TEXT SECONDS: true once the console shows TEXT; false if qemu ended or
# the time passed first.
vm_wait_text() {
  local end=$(( $(date +%s) + $3 ))
  while ! grep -qaF -- "$2" "$1.raw"; do
    kill -0 "$QPID" 2>/dev/null || { grep -qaF -- "$2" "$1.raw"; return; }
    [ "$(date +%s)" -ge "$end" ] && return 1
    sleep 0.2
  done
}

# vm_wait_exit LOG: wait for qemu (bounded by vm_start's timeout); RC is its status; the
# console, without carriage returns, in LOG.
vm_wait_exit() {
  set +e
  wait "$QPID"
  RC=$?
  set -e
  tr -d '\r' < "$1.raw" > "$1"
}

vm_ssh() {
  ssh -q -i "$OUT/key" -p "$PORT" -o BatchMode=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o ConnectTimeout=20 -o LogLevel=ERROR root@127.0.0.1 "$@"
}
