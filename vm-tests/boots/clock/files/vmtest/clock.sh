#!/bin/sh
# The checks of the clock boot, run as a unit: the wall clock is set (busybox `date -s`,
# UTC) and the calendar timer `daily` (03:00 every day) must follow at once, not at the
# deadline it had before. Ends with `colonyctl poweroff`. Waits count /proc/uptime, which
# a set clock does not move.
export PATH=/bin:/sbin
. /vmtest/lib.sh
RUNS=/run/daily.runs
runs() { if [ -f $RUNS ]; then wc -l < $RUNS; else echo 0; fi; }
daily_timer() { colonyctl --json timers 2>/dev/null; }  # daily is the only timer unit
next_run() { json_field "$(daily_timer)" next; }
next_is() { case "$(next_run)" in "$1"*) return 0 ;; esac; return 1; }
runs_are() { [ "$(runs)" = "$1" ]; }
# The run is over and the next is planned after it (not the run-now of the jump).
waiting_with_next() { unit_is daily waiting && next_is "$1"; }
show() { say "clock: $(date -u +%Y-%m-%dT%H:%M:%S) daily next=$(next_run) runs=$(runs) last=$(tail -n1 $RUNS 2>/dev/null)"; }

check clock_timer_waiting wait_until 60 unit_is daily waiting
n0=$(next_run)
check clock_initial_next_set [ -n "$n0" ]
show

# Forward, past the next 03:00: the missed run happens at once, once, and the next is
# planned from the new time (without the clock watch it would come at the old deadline).
date -u -s "2031-06-15 04:00:00" > /dev/null
check clock_forward_runs_at_once wait_until 30 runs_are 1
check clock_forward_next_after_new_time wait_until 30 waiting_with_next 2031-06-16T03:00:00
show
case "$(tail -n1 $RUNS)" in 2031-06-15T04:0*) pass clock_forward_run_at_new_time ;; *) fail clock_forward_run_at_new_time "ran at $(tail -n1 $RUNS)" ;; esac
check clock_forward_ran_once runs_are 1

# Back, to the 10th: the next run is the first 03:00 after the new time (the 11th), not
# the 16th, and nothing runs for the jump.
date -u -s "2031-06-10 12:00:00" > /dev/null
check clock_back_replanned wait_until 30 waiting_with_next 2031-06-11T03:00:00
check clock_back_no_run runs_are 1
show

# Forward to just before that run: it comes when the new clock says, in seconds, not
# hours later on the old plan.
date -u -s "2031-06-11 02:59:50" > /dev/null
check clock_near_next_unchanged wait_until 30 next_is 2031-06-11T03:00:00
check clock_runs_on_new_time wait_until 60 runs_are 2
case "$(tail -n1 $RUNS)" in 2031-06-11T03:0*) pass clock_run_at_03 ;; *) fail clock_run_at_03 "ran at $(tail -n1 $RUNS)" ;; esac
check clock_then_next_day wait_until 30 waiting_with_next 2031-06-12T03:00:00
show
say "$(colonyctl timers 2>&1)"

pass checks_done
colonyctl poweroff
