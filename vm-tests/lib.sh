# Shared by the scenario scripts (busybox sh): markers on the console, bounded waits.
say() { echo "$*" > /dev/console; }
pass() { say "VMTEST PASS $1"; }
fail() { say "VMTEST FAIL $1: $2"; }
check() { # check NAME CONDITION-COMMAND...
  name=$1; shift
  if "$@"; then pass "$name"; else fail "$name" "$*"; return 1; fi
}
# wait_until SECONDS COMMAND...: true once COMMAND succeeds, false after SECONDS.
wait_until() {
  limit=$1; shift
  end=$(( $(cut -d. -f1 /proc/uptime) + limit ))
  while ! "$@"; do
    [ "$(cut -d. -f1 /proc/uptime)" -ge "$end" ] && return 1
    sleep 0.1
  done
}
zombies() { # count of zombie processes
  n=0
  for s in /proc/[0-9]*/stat; do
    st=$(sed 's/.*) //' "$s" 2>/dev/null | cut -d' ' -f1)
    [ "$st" = Z ] && n=$((n + 1))
  done
  echo $n
}
no_zombies() { [ "$(zombies)" = 0 ]; }
mounted() { grep -q " $1 $2 " /proc/mounts; }
# json_field JSON KEY: the first scalar value of "KEY" in compact or pretty JSON.
json_field() {
  printf '%s' "$1" | tr -d '\n' | sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",}]*\).*/\1/p" | head -n1
}
# unit_json NAME: `colonyctl status --json NAME`
unit_json() { colonyctl status --json "$1" 2>/dev/null; }
unit_state() { json_field "$(unit_json "$1")" state; }
unit_is() { [ "$(unit_state "$1")" = "$2" ]; }
# unit_cgroup NAME: the unit's cgroup directory
unit_cgroup() {
  cg=$(json_field "$(unit_json "$1")" cgroup)
  case "$cg" in /sys/*) echo "$cg" ;; "") ;; *) echo "/sys/fs/cgroup/${cg#/}" ;; esac
}
own_cgroup() { echo "/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)"; }
# For failure reports: every zombie as pid/ppid/comm.
zombie_list() {
  for s in /proc/[0-9]*/stat; do
    l=$(cat "$s" 2>/dev/null) || continue
    rest=${l##*) }
    set -- $rest
    [ "$1" = Z ] && printf '%s ' "$(basename "$(dirname "$s")")/ppid=$2/${l#*(}"
  done
}
