# colony-init's wakeups (its context switches, /proc/1/status) with N heartbeat units:
# none while nothing beats, one per beat. Figures go to the console as VMTEST BENCH lines.
. /vmtest/lib.sh
N=$(cat /vmtest/units)
BEATS=${BEATS:-200}
ctxt() { awk '/ctxt_switches/ { n += $2 } END { print n }' /proc/1/status; }
field() { awk -v k="$1:" '$1 == k { print $2 }' /proc/1/status; }

# colonyctl status @hb: exit 0 once every tagged unit runs. Under TCG a status of
# thousands takes a while: ask every 5 s, for at most 20 min.
end=$(( $(cut -d. -f1 /proc/uptime) + 1200 ))
until colonyctl status @hb > /dev/null 2>&1; do
  [ "$(cut -d. -f1 /proc/uptime)" -ge "$end" ] && break
  sleep 5
  say "VMTEST PROGRESS $(cut -d' ' -f1 /proc/uptime) s: $(colonyctl status @hb 2>/dev/null | grep -c ' running') of $N running, $(awk '/^MemAvailable/ { print int($2 / 1024) }' /proc/meminfo) MB available"
done
running=$(colonyctl status @hb 2>/dev/null | grep -c ' running')
check heartbeat_units_running [ "$running" = "$N" ]
say "VMTEST BENCH heartbeat units: $running running $(cut -d' ' -f1 /proc/uptime) s after the kernel started"
say "VMTEST BENCH memory: $(awk '$2 >= 4096 { printf "%s %d MB, ", $1, $2 / 1024 }' /proc/meminfo)"
say "VMTEST BENCH slab: $(awk 'NR > 2 { print int($3 * $4 / 1048576), $1 }' /proc/slabinfo | sort -n -r | head -n 12 | tr '\n' ' ' | head -c 400)"
say "VMTEST BENCH processes: $(ls -d /proc/[0-9]* | wc -l)"
say "VMTEST BENCH colony-init: VmRSS $(field VmRSS) kB, $(ls /proc/1/fd | wc -l) open fds, limit $(awk '/Max open files/ { print $4 }' /proc/1/limits)"

w0=$(ctxt)
sleep 10
idle=$(( $(ctxt) - w0 ))
say "VMTEST BENCH wakeups in 10 s with no beat: $idle (target 0)"

# One beat at a time (touch: IN_ATTRIB on the heartbeat directory), so each is its own event.
w0=$(ctxt)
i=0
while [ "$i" -lt "$BEATS" ]; do
  touch "/run/colony/heartbeat/hb$((i * 7919 % N))"
  sleep 0.05
  i=$((i + 1))
done
sleep 1
during=$(( $(ctxt) - w0 ))
say "VMTEST BENCH wakeups for $BEATS beats, one at a time: $during (target about $BEATS: one per beat)"
restarted=$(colonyctl status --json @hb 2>/dev/null | grep -c '"reason": *"heartbeat"')
check no_heartbeat_restarts [ "$restarted" = 0 ]

pass checks_done
colonyctl poweroff
