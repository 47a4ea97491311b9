#!/bin/sh
# scribe.unit: keeps the last boot's file as out.prev (guest.sh checks its end), then
# appends a line every 0.2 s, unsynced, and "stopped after N lines" on SIGTERM.
d=/var/lib/scribe
mkdir -p "$d"
[ -f "$d/out" ] && mv "$d/out" "$d/out.prev"
echo "boot $(cat /proc/sys/kernel/random/boot_id)" > "$d/out"
: > /run/scribe.ready
stop=
trap 'stop=1' TERM
n=0
while [ -z "$stop" ]; do
  n=$((n + 1))
  echo "line $n" >> "$d/out"
  sleep 0.2
done
echo "stopped after $n lines" >> "$d/out"
