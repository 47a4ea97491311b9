# Shared by the scenario scripts (busybox sh): markers on the console, bounded waits.
say() { echo "$*" > /dev/console; }
pass() { say "VMTEST PASS $1"; }
fail() { say "VMTEST FAIL $1: $2"; }
check() { # check NAME CONDITION-COMMAND...
  name=$1; shift
  if "$@"; then pass "$name"; else fail "$name" "$*"; fi
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
