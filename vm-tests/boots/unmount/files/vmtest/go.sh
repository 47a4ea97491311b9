#!/bin/sh
# Boot tasks ran in order, their dependents started only then (or never, after a failed
# one), then poweroff: the console must show each file system unmounted, children first.
. /vmtest/lib.sh
holding() { unit_is holder running && [ -s /mnt/a/b/held ]; }
check boot_task_dependent_up wait_until 120 holding
check boot_tasks_in_order [ "$(cat /tmp/order | tr '\n' ' ')" = "mkmnt second " ]
check boot_tasks_exited sh -c '. /vmtest/lib.sh; unit_is mkmnt exited && unit_is second exited'
check failed_task_failed wait_until 30 unit_is bad failed
check after_failed_task_not_started sh -c '. /vmtest/lib.sh; unit_is never failed && [ ! -e /tmp/never-ran ]'
err=$(json_field "$(unit_json never)" error)
check failed_task_named [ "$err" = "boot task bad failed: exited with code 3" ]
check mounts_made sh -c '. /vmtest/lib.sh; mounted /mnt/a tmpfs && mounted /mnt/a/b tmpfs && mounted /mnt/c tmpfs'
say "VMTEST POWEROFF"
colonyctl poweroff
