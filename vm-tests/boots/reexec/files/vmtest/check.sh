#!/bin/sh
# colony-init as PID 1 (pure cgroup v2) re-executes into a second build and into itself:
# every unit keeps its PID, cgroup and limits, is still tracked (a kill is seen and the
# unit restarted), the timer keeps its schedule, this script (a unit) runs on, `colonyctl
# version` shows the reexecs; then `colonyctl poweroff` still works.
. /vmtest/lib.sh
pid_of() { json_field "$(unit_json "$1")" pid; }
restarts_of() { json_field "$(unit_json "$1")" restarts; }
up() { unit_is svc running && unit_is limited running && [ -s /run/tick.runs ]; }
check units_up wait_until 120 up

svc=$(pid_of svc); lim=$(pid_of limited); me=$$
lim_cg=$(unit_cgroup limited)
limits() { [ "$(cat "$lim_cg/memory.max")" = 67108864 ] && [ "$(cat "$lim_cg/pids.max")" = 20 ]; }
check limits_set limits
check cgroup2_only [ "$(awk '$3 == "cgroup"' /proc/mounts | wc -l)" = 0 ]
v=$(colonyctl version --json)
say "version before: $v"
check version_before [ "$(json_field "$v" version)" = 0.1.0 ]

same() { # the units as they were: pids, cgroup, limits
  [ "$(pid_of svc)" = "$svc" ] && [ "$(pid_of limited)" = "$lim" ] && unit_is svc running \
    && grep -qx "$lim" "$lim_cg/cgroup.procs" && [ "$(cat "$lim_cg/memory.max")" = 67108864 ] \
    && [ "$(readlink /proc/1/exe)" != "" ] && kill -0 "$me"
}
runs() { wc -l < /run/tick.runs; }
# PID 1 holds a pidfd of the unit's process (a pidfd's fdinfo names its pid).
pidfd_held() { grep -qs "^Pid:[[:space:]]*$1\$" /proc/1/fdinfo/*; }
check pidfd_before pidfd_held "$svc"

t0=$(cut -d' ' -f1 /proc/uptime)
out=$(colonyctl reexec --binary /sbin/colony-init-next 2>&1); rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
say "VMTEST TIME reexec_to_second_build $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f ms", (b-a)*1000}')"
say "reexec said: $out"
check reexec_second_build_answered [ "$rc" = 0 ]
version_is() { # VERSION REEXECS
  v=$(colonyctl version --json)
  [ "$(json_field "$v" version)" = "$1" ] && [ "$(json_field "$v" reexecs)" = "$2" ] \
    && [ -n "$(json_field "$v" reexecuted)" ] && [ "$(json_field "$v" reexecuted)" != null ]
}
check version_after_second_build version_is 0.1.0+second 1
check pid1_is_second_build sh -c 'readlink /proc/1/exe | grep -q colony-init-next'
check units_same_after_second_build same
check pidfd_after_second_build pidfd_held "$svc"
n=$(runs)
check timer_runs_on wait_until 30 sh -c "[ \$(wc -l < /run/tick.runs) -gt $(( n + 2 )) ]"

colonyctl reexec; rc=$?
check reexec_itself_answered [ "$rc" = 0 ]
check version_after_itself version_is 0.1.0+second 2
check units_same_after_itself same
check pidfd_after_itself pidfd_held "$lim"

# Still tracked by its pidfd: a kill is seen and the unit restarted with a new pid.
kill -KILL "$svc"
restarted() { p=$(pid_of svc); [ -n "$p" ] && [ "$p" != "$svc" ] && unit_is svc running; }
check kill_seen_and_restarted wait_until 60 restarted
check restart_counted [ "$(restarts_of svc)" = 1 ]
check no_zombies wait_until 10 no_zombies
check refused_broken_binary sh -c '! colonyctl reexec --binary /bin/false'
check still_running_after_refusal unit_is limited running
say "VMTEST PASS checks_done"
colonyctl poweroff
