#!/bin/sh
. /vmtest/lib.sh
cg=$(own_cgroup)
# A child shell forks until the limit stops it; this shell survives to report.
sh -c 'i=0; while [ $i -lt 10 ]; do sleep 1000 & i=$((i+1)); done' 2>/dev/null
check tasks_max_value [ "$(cat "$cg/pids.max")" = 5 ]
check tasks_max_enforced [ "$(sed -n 's/^max //p' "$cg/pids.events")" -gt 0 ]
exec sleep 1000
