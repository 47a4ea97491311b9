#!/bin/sh
# [sandbox] with colony-init as PID 1 of a pure cgroup v2 machine: the same probe with and
# without it. protect_system = "strict" gives EROFS, private_tmp a /tmp of its own, a
# seccomp filter (Seccomp: 2, and NoNewPrivs: 1 for a user without CAP_SYS_ADMIN),
# restrict_address_families EAFNOSUPPORT for AF_INET.
. /vmtest/lib.sh
B=/var/lib/sbres
done_() { [ -e $B/boxed/done ] && [ -e $B/plain/done ]; }
check probes_done wait_until 120 done_
check cgroup2_only [ "$(awk '$3 == "cgroup"' /proc/mounts | wc -l)" = 0 ]
field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status"; }
pid_of() { json_field "$(unit_json "$1")" pid; }
boxed=$(pid_of boxed); plain=$(pid_of plain)
say "boxed: $(cat $B/boxed/usr.err) | $(cat $B/boxed/sock) | tmp seen $(cat $B/boxed/tmp.seen)"
say "plain: $(cat $B/plain/usr.err) | $(cat $B/plain/sock) | tmp seen $(cat $B/plain/tmp.seen)"
check strict_erofs grep -q 'Read-only file system' $B/boxed/usr.err
check without_not_erofs sh -c "! grep -q 'Read-only file system' $B/plain/usr.err"
check strict_root_ro sh -c "awk '\$5 == \"/\" {print \$6}' /proc/$boxed/mountinfo | tail -n1 | grep -q '^ro'"
check seccomp_mode_2 [ "$(field "$boxed" Seccomp)" = 2 ]
check no_new_privs [ "$(field "$boxed" NoNewPrivs)" = 1 ]
check without_no_seccomp [ "$(field "$plain" Seccomp)" = 0 ]
check private_tmp_hides_host [ "$(cat $B/boxed/tmp.seen)" = no ]
check without_sees_host_tmp [ "$(cat $B/plain/tmp.seen)" = yes ]
check private_tmp_writable [ "$(cat $B/boxed/tmp.write)" = ok ]
check private_tmp_not_on_host sh -c "! ls /tmp | grep -q own-$boxed"
check families_inet_refused grep -q '^inet=97 unix=0$' $B/boxed/sock
check without_inet_allowed grep -q '^inet=0 unix=0$' $B/plain/sock
check own_mount_ns [ "$(readlink /proc/$boxed/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ]
say "VMTEST PASS checks_done"
colonyctl poweroff
