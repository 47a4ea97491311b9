#!/bin/sh
# The delegated boot, run as a unit of the machine's colony-init (root, every capability).
# It plays a container runtime on a pure cgroup2 host: a cgroup /sys/fs/cgroup/ctr with
# memory, pids and cpu, and in it a second colony-init as PID 1 of new cgroup, mount and
# PID namespaces (vm-tests/c/cgns.c), which sees ctr as its /sys/fs/cgroup. Then the same
# with that mount read-only. Ends with `colonyctl poweroff`.
export PATH=/bin:/sbin
. /vmtest/lib.sh
CTR=/sys/fs/cgroup/ctr
IRUN=/run/colony-inner
ILOG=/run/inner.log
ictl() { colonyctl --run-dir "$IRUN" "$@"; }
is_num() { case "$1" in '' | *[!0-9]*) return 1 ;; esac; }
has_controllers() { # FILE: memory, pids and cpu all listed
  for c in memory pids cpu; do grep -qw "$c" "$1" || return 1; done
}
# start_inner [-r]: the container; its PID (as seen here) in /run/inner.pid.
start_inner() {
  rm -f /run/inner.pid /run/limited.cgroup
  IPID=""
  cgns -c "$CTR" $1 -p /run/inner.pid -- /sbin/colony-init --units /etc/colony/inner \
    --run-dir "$IRUN" --log-dir /var/log/colony-inner --state-dir /var/lib/colony-inner >> "$ILOG" 2>&1 &
  HELPER=$!
  wait_until 30 test -s /run/inner.pid && IPID=$(cat /run/inner.pid)
}
inner_up() { ictl status limited > /dev/null 2>&1; }
inner_gone() { [ ! -e "/proc/$IPID" ]; }
# stop_inner NAME: SIGTERM to the inner colony-init, which must end and leave ctr empty.
stop_inner() {
  kill -TERM "$IPID"
  check "$1_inner_exits" wait_until 60 inner_gone || return 1
  wait "$HELPER" # cgns exits as soon as its child is reaped
  rc=$?
  check "$1_inner_exit_status" [ "$rc" = 0 ]
  left=""
  for d in "$CTR"/*/; do [ -d "$d" ] && left="$left $d"; done
  check "$1_no_cgroup_left" [ -z "$left" ] || say "left below ctr:$left"
}

check pid1_is_colony_init [ "$(cat /proc/1/comm)" = colony-init ]
check pure_v2 mounted /sys/fs/cgroup cgroup2

# The runtime's part: the controllers for its containers, and a cgroup for this one.
for c in memory pids cpu; do
  grep -qw $c /sys/fs/cgroup/cgroup.subtree_control || echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control
done
mkdir "$CTR"
check ctr_has_controllers has_controllers "$CTR/cgroup.controllers"

# 1. A writable delegated subtree.
start_inner
check inner_started [ -n "$IPID" ]
check inner_unit_running wait_until 90 inner_up || say "$(cat "$ILOG")"
# What the unit itself sees: its cgroup below the namespace's root.
unit_saw() { [ -s /run/limited.cgroup ]; }
check inner_unit_in_cgroupns wait_until 30 unit_saw
check inner_unit_cgroup_path grep -qx '0::/colony/limited' /run/limited.cgroup || say "unit saw: $(cat /run/limited.cgroup)"
check inner_moved_to_leaf grep -qx '0::/ctr/init' "/proc/$IPID/cgroup"
check ctr_subtree_delegated has_controllers "$CTR/cgroup.subtree_control"
J=$(ictl status --json limited)
say "inner status: $(ictl status limited | tr '\n' '|')"
check inner_status_cgroup [ "$(json_field "$J" cgroup)" = /colony/limited ]
check inner_status_memory is_num "$(json_field "$J" memory_bytes)"
check inner_status_tasks is_num "$(json_field "$J" tasks)"
D=$CTR/colony/limited
check outer_unit_cgroup [ -n "$(cat "$D/cgroup.procs")" ]
check outer_memory_max [ "$(cat "$D/memory.max")" = 67108864 ]
check outer_pids_max [ "$(cat "$D/pids.max")" = 5 ]
check outer_cpu_max [ "$(cat "$D/cpu.max")" = "50000 100000" ]
capped() { [ "$(sed -n 's/^max //p' "$D/pids.events")" -gt 0 ] 2> /dev/null; }
check tasks_max_enforced wait_until 60 capped
check tasks_max_holds [ "$(cat "$D/pids.current")" -le 5 ]
no_warning() { ! ictl status limited | grep -q 'not enforced'; }
check inner_status_no_warning no_warning
stop_inner rw
# ... and ctr is as it was handed over, ready for the next container.
check rw_ctr_handed_back [ -z "$(cat "$CTR/cgroup.subtree_control")" ] || say "ctr subtree_control: $(cat "$CTR/cgroup.subtree_control")"

# 2. The same delegated mount, read-only: units run without cgroups, status says so.
rm -rf "$IRUN"
start_inner -r
check ro_inner_started [ -n "$IPID" ]
check ro_mount_is_ro grep -q ' /sys/fs/cgroup cgroup2 ro' "/proc/$IPID/mounts"
check ro_unit_running wait_until 90 inner_up || say "$(cat "$ILOG")"
say "inner status (ro): $(ictl status limited | tr '\n' '|')"
not_enforced() { ictl status limited | grep -q 'warning: memory_max, cpu_max, tasks_max not enforced: no usable cgroups here'; }
check ro_status_not_enforced not_enforced
no_cgroup() { cg=$(json_field "$(ictl status --json limited)" cgroup); [ -z "$cg" ] || [ "$cg" = null ]; }
check ro_no_cgroup no_cgroup
stop_inner ro

sed 's/^/inner| /' "$ILOG" > /dev/console
rmdir "$CTR"
check ctr_removed [ ! -d "$CTR" ]
pass checks_done
colonyctl poweroff
