#!/bin/sh
# Entrypoint mode as PID 1 of a machine: `rdinit=/sbin/colony-init -- /bin/sh entry.sh`.
export PATH=/bin:/sbin
. /vmtest/lib.sh
say "VMTEST TIME entry_started_s=$(cut -d' ' -f1 /proc/uptime)"
check cmd_parent_is_pid1 [ "$PPID" = 1 ]
for m in "/proc proc" "/sys sysfs" "/dev devtmpfs" "/dev/pts devpts" "/dev/shm tmpfs" "/run tmpfs" "/sys/fs/cgroup cgroup2"; do
  set -- $m
  check "mounted_$1" mounted "$1" "$2"
done
check cgroup2_controllers grep -q memory /sys/fs/cgroup/cgroup.controllers
check hostname_from_etc [ "$(hostname)" = colony-vm ]
check ctrl_alt_del_disabled [ "$(cat /proc/sys/kernel/ctrl-alt-del)" = 0 ]
check console_fds [ -t 1 ]
# Signals to PID 1 reach CMD.
got=
got_usr1() { [ "$got" = usr1 ]; }
trap 'got=usr1' USR1
kill -USR1 1
check forward_usr1_from_pid1 wait_until 30 got_usr1
trap - USR1
# 300 orphans (double fork): PID 1 reaps them all.
i=0
while [ $i -lt 300 ]; do (sleep 0.05 &); i=$((i + 1)); done
check orphans_reaped_by_pid1 wait_until 60 no_zombies
# Leftovers for the shutdown: one that goes on SIGTERM, one that ignores it.
sleep 1000 &
sh -c 'trap "" TERM; exec sleep 1000' &
ign=$!
ignores_term() { grep -q '^SigIgn:.*[4-7cdef]...$' /proc/$ign/status; }
check leftover_ignores_term wait_until 30 ignores_term
say "VMTEST TIME entry_done_s=$(cut -d" " -f1 /proc/uptime)"
pass entry_done
exit 0
