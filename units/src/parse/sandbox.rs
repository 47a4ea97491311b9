//! `[sandbox]` read from the file (the values' rules live in `crate::sandbox`).

use toml::de::DeValue;

use super::{Cx, Tbl};
use crate::sandbox::{self as sb, ProtectHome, ProtectSystem, Sandbox};

impl Cx<'_> {
    pub(super) fn sandbox(&mut self, top: &Tbl<'_, '_>) -> Option<Sandbox> {
        let t = self.section(top, "sandbox")?;
        let mut s = Sandbox::default();
        if let Some(v) = t.get("protect_system") {
            match v.get_ref() {
                DeValue::Boolean(true) => s.protect_system = ProtectSystem::Yes,
                DeValue::Boolean(false) => {}
                _ => {
                    if let Some(p) = self.parsed(
                        &t,
                        "protect_system",
                        "true, false, \"full\" or \"strict\"",
                        sb::parse_protect_system,
                    ) {
                        s.protect_system = p;
                    }
                }
            }
        }
        if let Some(v) = t.get("protect_home") {
            match v.get_ref() {
                DeValue::Boolean(true) => s.protect_home = ProtectHome::Yes,
                DeValue::Boolean(false) => {}
                _ => {
                    if let Some(p) = self.parsed(
                        &t,
                        "protect_home",
                        "true, false, \"read-only\" or \"tmpfs\"",
                        sb::parse_protect_home,
                    ) {
                        s.protect_home = p;
                    }
                }
            }
        }
        if t.get("protect_proc").is_some() {
            if let Some(p) = self.parsed(
                &t,
                "protect_proc",
                "\"default\", \"invisible\", \"noaccess\" or \"ptraceable\"",
                sb::parse_protect_proc,
            ) {
                s.protect_proc = p;
            }
        }
        let flag = |cx: &mut Self, k: &str| cx.boolean(&t, k).unwrap_or(false);
        s.private_tmp = flag(self, "private_tmp");
        s.private_devices = flag(self, "private_devices");
        s.private_network = flag(self, "private_network");
        s.protect_kernel_tunables = flag(self, "protect_kernel_tunables");
        s.protect_kernel_modules = flag(self, "protect_kernel_modules");
        s.protect_kernel_logs = flag(self, "protect_kernel_logs");
        s.protect_control_groups = flag(self, "protect_control_groups");
        s.protect_hostname = flag(self, "protect_hostname");
        s.protect_clock = flag(self, "protect_clock");
        s.memory_deny_write_execute = flag(self, "memory_deny_write_execute");
        s.restrict_namespaces = flag(self, "restrict_namespaces");
        s.restrict_realtime = flag(self, "restrict_realtime");
        s.restrict_suid_sgid = flag(self, "restrict_suid_sgid");
        s.lock_personality = flag(self, "lock_personality");

        for (k, out) in [
            ("read_write_paths", &mut s.read_write_paths),
            ("read_only_paths", &mut s.read_only_paths),
            ("inaccessible_paths", &mut s.inaccessible_paths),
        ] {
            for (p, span) in self
                .strings(&t, k, "absolute paths (a leading - : may be missing)")
                .unwrap_or_default()
            {
                match sb::parse_path(p) {
                    Ok(p) => out.push(p),
                    Err(e) => self.err(span, &t.key(k), e),
                }
            }
        }
        for (p, span) in self
            .strings(&t, "bind_paths", "\"SRC\" or \"SRC:DST\" paths")
            .unwrap_or_default()
        {
            match sb::parse_bind(p) {
                Ok(b) => s.bind_paths.push(b),
                Err(e) => self.err(span, &t.key("bind_paths"), e),
            }
        }
        if let Some(items) = self.strings(
            &t,
            "system_call_filter",
            "system call names or @groups (~ denies)",
        ) {
            match sb::parse_syscall_filter(items.iter().map(|(s, _)| *s)) {
                Ok(f) => s.system_call_filter = Some(f),
                Err((i, e)) => {
                    let span = items
                        .get(i)
                        .map(|(_, sp)| sp.clone())
                        .unwrap_or_else(|| t.key_span("system_call_filter"));
                    self.err(span, &t.key("system_call_filter"), e)
                }
            }
        }
        if let Some(v) = t.get("system_call_error_number") {
            let text = match v.get_ref() {
                DeValue::Integer(i) => Some(i.as_str().to_string()),
                DeValue::String(s) => Some(s.to_string()),
                _ => None,
            };
            match text.map(|x| sb::parse_error_number(&x)) {
                Some(Ok(a)) => s.system_call_error_number = a,
                Some(Err(e)) => self.err(v.span(), &t.key("system_call_error_number"), e),
                None => self.type_err(
                    &t.key("system_call_error_number"),
                    v,
                    "an errno name such as \"EPERM\", a number, or \"kill\"",
                ),
            }
        }
        if let Some(items) = self.strings(
            &t,
            "restrict_address_families",
            "address family names such as \"AF_INET\"",
        ) {
            match sb::parse_families(items.iter().map(|(s, _)| *s)) {
                Ok(f) => s.restrict_address_families = Some(f),
                Err((i, e)) => {
                    let span = items
                        .get(i)
                        .map(|(_, sp)| sp.clone())
                        .unwrap_or_else(|| t.key_span("restrict_address_families"));
                    self.err(span, &t.key("restrict_address_families"), e)
                }
            }
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::parse_unit;
    use crate::sandbox::{ListMode, ProtectSystem, SyscallAction};
    use std::path::Path;

    #[test]
    fn reads_every_key() {
        let text = r#"exec = ["/bin/true"]
[sandbox]
protect_system = "strict"
protect_home = true
private_tmp = true
private_devices = true
private_network = true
read_write_paths = ["/var/lib/redis", "-/var/lib/maybe"]
read_only_paths = ["/srv"]
inaccessible_paths = ["/opt/secret"]
bind_paths = ["/srv/data:/data"]
protect_kernel_tunables = true
protect_kernel_modules = true
protect_kernel_logs = true
protect_control_groups = true
system_call_filter = ["@system-service", "~@privileged"]
system_call_error_number = "EPERM"
restrict_address_families = ["AF_UNIX", "AF_INET", "AF_INET6"]
memory_deny_write_execute = true
restrict_namespaces = true
restrict_realtime = true
restrict_suid_sgid = true
lock_personality = true
"#;
        let u = parse_unit(Path::new("/u/a.unit"), text).unwrap();
        let s = u.sandbox.unwrap();
        assert_eq!(s.protect_system, ProtectSystem::Strict);
        assert!(s.read_write_paths[1].optional);
        assert_eq!(s.system_call_filter.unwrap().mode, ListMode::Allow);
        assert_eq!(
            s.system_call_error_number,
            SyscallAction::Errno(libc::EPERM)
        );
        assert_eq!(s.restrict_address_families.unwrap().families.len(), 3);
        assert!(s.lock_personality && s.private_network);
    }

    #[test]
    fn bad_values_are_located() {
        let text = "exec = [\"/bin/true\"]\n[sandbox]\nprotect_system = \"ful\"\nsystem_call_filter = [\"@nope\"]\nread_only_paths = [\"rel\"]\nrestrict_address_families = [\"AF_BOGUS\"]\nprivate_tmp = \"yes\"\nprotect_sistem = true\n";
        let errs = parse_unit(Path::new("/u/a.unit"), text).unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "sandbox.protect_system",
            "sandbox.system_call_filter",
            "sandbox.read_only_paths",
            "sandbox.restrict_address_families",
            "sandbox.private_tmp",
            "sandbox.protect_sistem",
        ] {
            assert!(keys.contains(&k), "{k} not in {keys:?}");
        }
    }
}
