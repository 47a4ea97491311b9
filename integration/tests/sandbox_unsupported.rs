//! A kernel that cannot give a `[sandbox]` key: colony-init runs under a seccomp filter of
//! its own (put there by a wrapper before exec) under which the kernel refuses to take
//! filters, as one built without CONFIG_SECCOMP_FILTER does (prctl(PR_SET_SECCOMP) answers
//! EINVAL, seccomp(2) ENOSYS). The unit still runs, with what the kernel can give (its
//! private /tmp), and `colonyctl status` says in words what is not enforced; the syscall
//! the filter would have denied indeed works.

use colony_integration::{compile_c, wait_for, Colony, SOON};

/// Refuses seccomp filters to everything it execs, then execs its arguments.
const NO_SECCOMP: &str = r#"
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_seccomp, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_prctl, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_SET_SECCOMP, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof f / sizeof f[0], f };
    if (argc < 2) return 2;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("no-seccomp");
        return 1;
    }
    execv(argv[1], argv + 1);
    perror("no-seccomp: exec");
    return 127;
}
"#;

/// Mounts a tmpfs on /tmp (the unit's own, private_tmp) and says how it went, then waits.
const MOUNTER: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>

int main(void) {
    int r = mount("tmpfs", "/tmp", "tmpfs", 0, "size=1m") < 0 ? errno : 0;
    printf("mount=%d\n", r);
    fflush(stdout);
    for (;;) pause();
}
"#;

#[test]
fn a_key_the_kernel_refuses_is_a_warning_in_status_and_the_unit_runs() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandbox-unsupported");
    std::fs::create_dir_all(&dir).unwrap();
    let (Some(wrapper), Some(mounter)) = (
        compile_c(&dir, "no-seccomp", NO_SECCOMP),
        compile_c(&dir, "mounter", MOUNTER),
    ) else {
        return;
    };
    let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut c = Colony::new();
    c.wrapper = Some(wrapper);
    c.write_unit(
        "boxed",
        &format!(
            "exec = [{:?}]\n[restart]\npolicy = \"never\"\n[sandbox]\nprivate_tmp = true\nsystem_call_filter = [\"~@mount\"]\n",
            mounter.display().to_string()
        ),
    );
    let c = c.start();
    let u = c.wait_state("boxed", "running");
    let warnings = u["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        warnings.iter().any(|w| w.as_str().is_some_and(|w| w
            .starts_with("[sandbox] not enforced")
            && w.contains("system_call_filter"))),
        "{u}"
    );
    let out = c.ctl(&["status", "boxed"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("warning: [sandbox] not enforced: this kernel has no seccomp filters"),
        "{text}"
    );
    // Not enforced indeed: the mount ~@mount would deny works (in the unit's own /tmp).
    let log = c.logs.join("boxed.log");
    let r = wait_for("the mounter's answer", SOON, || {
        let t = std::fs::read_to_string(&log).ok()?;
        t.lines()
            .find_map(|l| l.rsplit_once("mount=").map(|(_, v)| v.trim().to_string()))
    });
    assert_eq!(
        r, "0",
        "the filter was not installed, the mount namespace was"
    );
    let pid = u["pid"].as_i64().unwrap();
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/mnt")).unwrap();
    assert_ne!(
        ns(&pid.to_string()),
        ns("self"),
        "a mount namespace of its own"
    );
    drop(c);
    let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let tmp = |t: &str| {
        t.lines()
            .filter(|l| l.split(' ').nth(4) == Some("/tmp"))
            .count()
    };
    assert_eq!(tmp(&before), tmp(&after), "the host's /tmp untouched");
}
