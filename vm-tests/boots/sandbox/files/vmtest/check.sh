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

# Every key: the units of `prepare`, each with its forbidden action and the same action
# allowed without the key. is NAME ACTION VALUE: the probe's "ACTION=VALUE" (errno, 0: it
# worked; count: entries; chr: -1 not a device).
out() { cat "$B/$1/out" 2>/dev/null; }
probe_done() { for u in strict full yes sysoff paths devices pathsoff sec secoff group host hostoff proc procoff; do out $u | grep -q DONE || return 1; done; }
check sbprobes_done wait_until 120 probe_done
for u in strict full yes sysoff paths devices pathsoff sec secoff group host hostoff proc procoff; do
  say "$u: $(out $u | tr '\n' ' ')"
done
is() { out "$1" | grep -qx "$2=$3"; }
isnt() { out "$1" | grep -q "^$2=" && ! out "$1" | grep -qx "$2=$3"; }
EROFS=30; ENOENT=2; EPERM=1; EACCES=13; EAFNOSUPPORT=97
check strict_usr is strict write:/usr/p $EROFS
check strict_etc is strict write:/etc/p $EROFS
check strict_rw_path is strict write:/var/lib/sbres/strict/f 0
check full_usr is full write:/usr/p $EROFS
check full_etc is full write:/etc/p $EROFS
check full_var is full write:/var/lib/sbres/full/f 0
check true_usr is yes write:/usr/p $EROFS
check true_etc is yes write:/etc/p 0
check without_system_usr is sysoff write:/usr/p 0
check without_system_etc is sysoff write:/etc/p 0
check protect_home_hidden is paths count:/home 0
check protect_home_root_ro is paths write:/root/p $EROFS
check protect_home_read_only is devices write:/root/p $EROFS
check protect_home_read_only_sees is devices count:/home 1
check without_home is pathsoff count:/home 1
check without_home_root is pathsoff write:/root/p 0
check inaccessible_paths is paths count:/var/lib/sbsecret 0
check without_inaccessible is pathsoff count:/var/lib/sbsecret 1
check read_only_paths is paths write:/var/lib/sbro/p $EROFS
check without_read_only is pathsoff write:/var/lib/sbro/p 0
check bind_paths is paths exists:/var/lib/sbdst/marker 0
check without_bind is pathsoff exists:/var/lib/sbdst/marker $ENOENT
check private_tmp_key is paths exists:/tmp/host-marker $ENOENT
check without_private_tmp is pathsoff exists:/tmp/host-marker 0
check private_devices_hides is devices exists:/dev/ttyS0 $ENOENT
check private_devices_null is devices exists:/dev/null 0
check without_private_devices is paths exists:/dev/ttyS0 0
check kernel_tunables is paths write:/proc/sys/kernel/domainname $EROFS
check without_tunables is pathsoff write:/proc/sys/kernel/domainname 0
check kernel_modules is paths count:/lib/modules 0
check without_modules is pathsoff count:/lib/modules 1
check kernel_logs is paths chr:/dev/kmsg -1
check without_logs is pathsoff chr:/dev/kmsg 0
check control_groups is paths write:/sys/fs/cgroup/p $EROFS
check without_control_groups isnt pathsoff write:/sys/fs/cgroup/p $EROFS
net() { readlink "/proc/$(pid_of "$1")/ns/net"; }
check private_network [ "$(net paths)" != "$(readlink /proc/1/ns/net)" ]
check without_private_network [ "$(net pathsoff)" = "$(readlink /proc/1/ns/net)" ]
check deny_list_error_number is sec mount $EACCES
check deny_list_clock is sec adjtimex $EACCES
check families_key is sec inet $EAFNOSUPPORT
check memory_deny_write_execute is sec wx $EPERM
check restrict_namespaces is sec unshare $EPERM
check lock_personality is sec personality $EPERM
check restrict_realtime is sec realtime $EPERM
check restrict_suid_sgid is sec suid $EPERM
check sec_seccomp_2 [ "$(field "$(pid_of sec)" Seccomp)" = 2 ]
for a in mount inet wx unshare personality realtime suid adjtimex; do
  check "without_$a" is secoff $a 0
done
check group_allow_list_mount is group mount $EPERM
check group_allow_list_inet is group inet 0
check protect_hostname is host hostname $EPERM
check protect_hostname_uts [ "$(readlink "/proc/$(pid_of host)/ns/uts")" != "$(readlink /proc/1/ns/uts)" ]
check protect_clock is host adjtimex $EPERM
check without_protect_clock is hostoff adjtimex 0
check protect_proc is proc exists:/proc/1 $ENOENT
check without_protect_proc is procoff exists:/proc/1 0
say "VMTEST PASS checks_done"
colonyctl poweroff
