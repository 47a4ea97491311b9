#!/bin/sh
# The disk scenario's checks inside the machine (vmtest.unit), once everything is up.
# The kernel command line says which boot this is:
#   vmtest=first|later   later boots also check what the previous boot left
#   vmtest.action=poweroff|reboot|wait   what to do after the checks (wait: the host does it)
#   vmtest.token=T       the text the host wrote into /root/synced (over ssh) last boot
. /vmtest/lib.sh
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | head -n1; }
phase=$(arg vmtest)
action=$(arg vmtest.action)
token=$(arg vmtest.token)
boot=$(cat /proc/sys/kernel/random/boot_id)
state=/var/lib/vmtest
mkdir -p "$state"
prev=$(cat "$state/last-boot" 2>/dev/null)
say "VMTEST BOOT $phase $boot"

# Every boot: the file systems came up clean and as /etc/fstab says.
rec=$(dmesg | grep -i 'recover' | head -n 3)
if [ -n "$rec" ]; then fail no-journal-recovery "$rec"; else pass no-journal-recovery; fi
check root-read-write grep -q '^[^ ]* / ext4 rw' /proc/mounts
check fstab-data mounted /data ext4
check fstab-scratch mounted /mnt/scratch tmpfs
check fstab-swap grep -q '^/dev/vdc ' /proc/swaps

# The boot tasks ran, in their order.
since_ns() { date -d "$(json_field "$(unit_json "$1")" since)" +%s%N 2>/dev/null || echo 0; }
tasks_ok=1
for t in fsck-root remount-root mount-all swap hostname loopback network ssh-keys; do
  s=$(unit_state "$t")
  [ "$s" = exited ] || { fail "boot-task-$t" "state $s"; tasks_ok=; }
done
[ -n "$tasks_ok" ] && pass boot-tasks-done
before() { [ "$(since_ns "$1")" -lt "$(since_ns "$2")" ]; }
boot_order() {
  before fsck-root remount-root && before remount-root mount-all && before mount-all swap &&
    before remount-root ssh-keys && before remount-root hostname
}
check boot-task-order boot_order
check hostname [ "$(hostname)" = colony-disk ]

# Logs live on the disk once the root is writable, also those begun before.
check early-log-moved [ "$(json_field "$(unit_json early)" log_file)" = /var/log/colony/early.log ]
check early-log-this-boot wait_until 10 grep -q "early line of boot $boot" /var/log/colony/early.log
check colony-init-log-on-disk test -s /var/log/colony/colony-init.log
check crasher-failed wait_until 10 unit_is crasher failed

if [ "$phase" != first ]; then
  check synced-file-intact [ "$(cat /root/synced 2>/dev/null)" = "$token" ]
  last=$(tail -n 1 /var/lib/scribe/out.prev 2>/dev/null)
  case "$last" in
    "stopped after "*) pass running-unit-file-intact ;;
    *) fail running-unit-file-intact "last line of the previous boot's file: '$last'" ;;
  esac
  check previous-boot-known [ -n "$prev" ]
  check early-log-kept grep -q "early line of boot $prev" /var/log/colony/early.log
  check crash-reason-kept grep -q "crash reason: out of widgets (boot $prev)" /var/log/colony/crasher.log
fi

echo "$boot" > "$state/last-boot"
sync
say "VMTEST READY $phase"
case "$action" in
  poweroff) colonyctl poweroff ;;
  reboot) colonyctl reboot ;;
esac
