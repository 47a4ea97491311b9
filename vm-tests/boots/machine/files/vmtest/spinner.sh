#!/bin/sh
. /vmtest/lib.sh
cg=$(own_cgroup)
check cpu_max_value [ "$(cut -d' ' -f1 "$cg/cpu.max")" = 10000 ]
sh -c 'while :; do :; done' &
spin=$!
throttled() { [ "$(sed -n 's/^nr_throttled //p' "$cg/cpu.stat")" -gt 0 ]; }
check cpu_max_throttles wait_until 60 throttled
kill $spin
wait $spin
exec sleep 1000
