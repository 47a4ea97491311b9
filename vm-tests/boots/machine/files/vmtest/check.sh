#!/bin/sh
# The checks of the machine boot, run as a unit; ends with `colonyctl poweroff`.
export PATH=/bin:/sbin
. /vmtest/lib.sh
all_running() { colonyctl status svc-a svc-b svc-c users forker spinner tree hb weighted >/dev/null 2>&1; }
check all_units_running wait_until 120 all_running
say "VMTEST TIME units_running_s=$(cut -d' ' -f1 /proc/uptime)"
check pid1_is_colony_init [ "$(cat /proc/1/comm)" = colony-init ]
check status_answers colonyctl status
check hostname_from_etc [ "$(hostname)" = colony-vm ]
check cad_disabled [ "$(cat /proc/sys/kernel/ctrl-alt-del)" = 0 ]

# The open-files limit: PID 1 raised its own past the 4096 a machine's init inherits; a
# unit gets the soft limit colony-init was started with (1024) and that raised hard limit.
nofile() { awk '/^Max open files/ { print $4, $5 }' "/proc/$1/limits"; }
pid1_hard=$(awk '/^Max open files/ { print $5 }' /proc/1/limits)
check pid1_fd_limit_raised [ "$pid1_hard" -gt 4096 ]
check unit_fd_limit [ "$(nofile "$(json_field "$(unit_json svc-a)" pid)")" = "1024 $pid1_hard" ]

# users and capabilities (the unit reports into its log)
L=$(json_field "$(unit_json users)" log_file); [ -n "$L" ] || L=/var/log/colony/users.log
users_done() { grep -q users-report-done "$L" 2>/dev/null; }
check users_report wait_until 60 users_done
check users_uid grep -q 'uid=1000(vmuser) gid=1000(vmuser)' "$L"
check users_supplementary_groups grep -q '1001(vmextra)' "$L"
check users_cap_eff grep -q 'CapEff:.*0000000000000400' "$L"
check users_cap_amb grep -q 'CapAmb:.*0000000000000400' "$L"
check users_cap_bnd grep -q 'CapBnd:.*0000000000000400' "$L"
check users_no_new_privs grep -q 'NoNewPrivs:.*1' "$L"

# cgroup v2: OOM kill with its reason, whole-unit kill, cgroup removed
oom_reason() { unit_json oomer | grep -q '"reason": *"oom"'; }
check oom_kill_reason wait_until 60 oom_reason
tree_ready() { [ -f /run/tree.pids ] && [ "$(wc -l < /run/tree.pids)" -ge 3 ]; }
check tree_children_started wait_until 60 tree_ready
cg=$(unit_cgroup tree)
check tree_has_cgroup [ -n "$cg" -a -d "$cg" ]
colonyctl stop tree
check tree_stopped unit_is tree stopped
alive=0; for p in $(cat /run/tree.pids); do [ -e /proc/$p ] && alive=$((alive + 1)); done
check tree_all_killed [ "$alive" = 0 ]
# The cgroup goes with the unit: removing its file drops the unit and its cgroup.
colonyctl remove tree
cg_gone() { [ ! -d "$cg" ]; }
check tree_cgroup_removed wait_until 30 cg_gone

# io_weight: written to the unit's io.weight (the host's cgroup v2 has no io controller, so
# only here is the value itself seen), and no warning in its status.
wcg=$(unit_cgroup weighted)
check io_weight_value [ "$(cat "$wcg/io.weight" 2>/dev/null)" = "default 300" ]
check io_weight_no_warning sh -c '! colonyctl status --json weighted | grep -q "io_weight = 300 not applied"'

# heartbeat restart and timer runs
hb_restarted() { unit_json hb | grep -q '"reason": *"heartbeat"'; }
check heartbeat_restart wait_until 60 hb_restarted
ticked() { [ -f /run/tick.runs ] && [ "$(wc -l < /run/tick.runs)" -ge 2 ]; }
check timer_runs wait_until 60 ticked

# a crash-looping and an OOMing unit do not disturb PID 1 or the others
pid_a=$(json_field "$(unit_json svc-a)" pid)
crashed() { [ "$(json_field "$(unit_json crasher)" restarts)" -ge 3 ] 2>/dev/null; }
check crasher_restarts wait_until 60 crashed
oom_looped() { [ "$(json_field "$(unit_json oomer)" restarts)" -ge 2 ] 2>/dev/null; }
check oomer_restarts wait_until 60 oom_looped
check others_undisturbed [ "$(json_field "$(unit_json svc-a)" pid)" = "$pid_a" ]
check status_still_answers colonyctl status svc-a

# orphans of units are reaped by the real PID 1
i=0
while [ $i -lt 200 ]; do (sleep 0.05 &); i=$((i + 1)); done
check orphans_reaped wait_until 60 no_zombies || say "zombies: $(zombie_list)"

# Two stragglers outside every unit's cgroup, for the final kill of PID 1: one goes on
# SIGTERM (and says so), one ignores it and needs the SIGKILL after the kill timeout.
sh -c '. /vmtest/lib.sh; echo $$ > /sys/fs/cgroup/cgroup.procs; trap "say VMTEST TERMED straggler; exit 0" TERM; sleep 1000 & wait' &
s1=$!
sh -c 'echo $$ > /sys/fs/cgroup/cgroup.procs; trap "" TERM; exec sleep 1000' &
s2=$!
escaped() { grep -qx '0::/' /proc/$s1/cgroup && grep -qx '0::/' /proc/$s2/cgroup && grep -q '^SigIgn:.*[4-7cdef]...$' /proc/$s2/status; }
check stragglers_escaped wait_until 30 escaped
pass checks_done
colonyctl poweroff
