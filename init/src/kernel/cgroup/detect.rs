//! Which cgroup hierarchies are mounted, and where colony-init's own cgroup is in each:
//! read from /proc/self/mountinfo and /proc/self/cgroup, no other I/O.

use super::*;

/// Which hierarchies [`Cgroups::setup_with`] may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hierarchies {
    /// Everything usable: v2 for tracking (and limits when it has the controllers), v1 for
    /// the controllers bound there.
    #[default]
    Auto,
    V1Only,
    V2Only,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    V2,
    Hybrid,
    V1,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::V2 => "v2",
            Layout::Hybrid => "hybrid",
            Layout::V1 => "v1",
        }
    }
}

/// What /proc/self/mountinfo and /proc/self/cgroup say about our place in each hierarchy.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Detected {
    /// The v2 hierarchy: our own cgroup's directory, and its path as /proc/self/cgroup says.
    pub v2: Option<Hier>,
    /// v1 controller -> our own cgroup's directory in its hierarchy.
    pub v1: BTreeMap<&'static str, Hier>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hier {
    /// Directory of our own cgroup (mount point + own path below the mount's root).
    pub dir: PathBuf,
    /// Our own cgroup path as /proc/self/cgroup shows it.
    pub rel: String,
    /// The mount is read-only.
    pub read_only: bool,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4);
        if b[i] == b'\\' && oct.is_some_and(|o| o.iter().all(|c| (b'0'..=b'7').contains(c))) {
            let v = oct
                .unwrap_or_default()
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            out.push(v as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Our cgroup directory in a hierarchy mounted at `mount` whose root is `root`.
fn own_dir(mount: &str, root: &str, own: &str) -> PathBuf {
    let below = if root == "/" {
        own
    } else if let Some(rest) = own.strip_prefix(root) {
        if rest.is_empty() || rest.starts_with('/') {
            rest
        } else {
            own
        }
    } else {
        // A cgroup namespace shows paths relative to its root already.
        own
    };
    let mut p = PathBuf::from(mount);
    for part in below.split('/').filter(|s| !s.is_empty()) {
        p.push(part);
    }
    p
}

/// Parses the two /proc files. Pure, so every layout can be unit-tested.
pub fn detect(mountinfo: &str, proc_cgroup: &str) -> Detected {
    // Our path per hierarchy: "" for v2, else each controller name.
    let mut own_v2: Option<&str> = None;
    let mut own_v1: BTreeMap<&str, &str> = BTreeMap::new();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id == "0" && ctrls.is_empty() {
            own_v2 = Some(path);
        } else {
            for c in ctrls.split(',') {
                own_v1.insert(c, path);
            }
        }
    }

    let mut det = Detected::default();
    // Mount point of the cgroup2 mount chosen so far: a later mount on the same point is on
    // top of it (a container's fresh cgroup2 over the host's), and replaces it.
    let mut v2_at: Option<String> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < sep + 4 || sep < 6 {
            continue;
        }
        let root = unescape(fields[3]);
        let mount = unescape(fields[4]);
        let read_only = fields[5].split(',').any(|o| o == "ro");
        let fstype = fields[sep + 1];
        let super_opts = fields[sep + 3];
        match fstype {
            // A root of "/.." (or below it) is a cgroup outside our cgroup namespace: our own
            // cgroup's place in that mount cannot be known from paths relative to our
            // namespace (an `unshare --cgroup` that kept the host's mount), so it is unusable.
            "cgroup2" if root == "/.." || root.starts_with("/../") => {}
            "cgroup2" if det.v2.is_none() || v2_at.as_deref() == Some(mount.as_str()) => {
                if let Some(own) = own_v2 {
                    det.v2 = Some(Hier {
                        dir: own_dir(&mount, &root, own),
                        rel: own.to_owned(),
                        read_only,
                    });
                    v2_at = Some(mount);
                }
            }
            "cgroup" => {
                for opt in super_opts.split(',') {
                    let Some(&c) = V1_CONTROLLERS.iter().find(|c| **c == opt) else {
                        continue;
                    };
                    if det.v1.contains_key(c) {
                        continue;
                    }
                    if let Some(own) = own_v1.get(c) {
                        det.v1.insert(
                            c,
                            Hier {
                                dir: own_dir(&mount, &root, own),
                                rel: own.to_string(),
                                read_only,
                            },
                        );
                    }
                }
            }
            _ => {}
        }
    }
    det
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MI: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_PC: &str = "\
9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn detects_this_hosts_hybrid_layout() {
        let d = detect(HYBRID_MI, HYBRID_PC);
        let v2 = d.v2.unwrap();
        assert_eq!(v2.dir, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(v2.rel, "/");
        assert_eq!(
            d.v1["memory"].dir,
            PathBuf::from("/sys/fs/cgroup/memory/process_api/abc")
        );
        assert_eq!(d.v1["pids"].dir, PathBuf::from("/sys/fs/cgroup/pids"));
        assert_eq!(d.v1.len(), 5);
    }

    #[test]
    fn detects_pure_v2_with_a_container_root_and_escapes() {
        let mi = "\
25 1 0:22 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw
26 1 0:23 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw
";
        let d = detect(mi, "0::/docker/abc/svc\n");
        let v2 = d.v2.unwrap();
        assert_eq!(v2.dir, PathBuf::from("/sys/fs/cgroup/svc"));
        assert!(v2.read_only);
        assert!(d.v1.is_empty());
        assert_eq!(unescape("/mnt/my\\040cg"), "/mnt/my cg");
        assert_eq!(unescape("a\\"), "a\\");
    }

    #[test]
    fn detects_a_cgroup_namespace_root() {
        // PID 1 of a container with a private cgroup namespace and its own cgroup2 mount:
        // the delegated subtree is "/" both in the mount and in /proc/self/cgroup.
        let mi = "\
24 1 0:22 / / rw - overlay overlay rw
30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate
";
        let v2 = detect(mi, "0::/\n").v2.unwrap();
        assert_eq!(v2.dir, PathBuf::from("/sys/fs/cgroup"));
        assert_eq!(v2.rel, "/");
        assert!(!v2.read_only);
        // Once colony-init moved into its leaf.
        let v2 = detect(mi, "0::/init\n").v2.unwrap();
        assert_eq!(v2.dir, PathBuf::from("/sys/fs/cgroup/init"));
    }

    #[test]
    fn a_cgroup2_mounted_over_another_replaces_it() {
        // A read-only mount over a writable one: what is seen is the one on top.
        let mi = "\
25 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
40 25 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw
";
        let v2 = detect(mi, "0::/\n").v2.unwrap();
        assert_eq!(v2.dir, PathBuf::from("/sys/fs/cgroup"));
        assert!(v2.read_only);
        // A container's fresh cgroup2 over the host's (whose root is outside the container's
        // cgroup namespace: "/..").
        let mi = "\
25 1 0:26 /.. /sys/fs/cgroup ro - cgroup2 cgroup2 rw
40 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
";
        let v2 = detect(mi, "0::/\n").v2.unwrap();
        assert_eq!(v2.dir, PathBuf::from("/sys/fs/cgroup"));
        assert!(!v2.read_only);
        // A mount elsewhere does not replace the first one found.
        let mi = "\
25 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
40 1 0:26 / /mnt/cg ro - cgroup2 cgroup2 rw
";
        let v2 = detect(mi, "0::/a\n").v2.unwrap();
        assert_eq!(v2.dir, PathBuf::from("/sys/fs/cgroup/a"));
        assert!(!v2.read_only);
    }

    #[test]
    fn a_cgroup2_mount_outside_our_namespace_is_not_used() {
        // `unshare --cgroup` without a new cgroup2 mount: the host's mount shows "/..", and
        // "/" of /proc/self/cgroup is not its root (that would be the host's root cgroup).
        let mi = "25 1 0:26 /.. /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(detect(mi, "0::/\n").v2, None);
        let mi = "25 1 0:26 /../.. /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(detect(mi, "0::/x\n").v2, None);
    }

    #[test]
    fn co_mounted_v1_controllers_share_a_directory() {
        let mi = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let d = detect(mi, "3:cpu,cpuacct:/a\n");
        assert_eq!(d.v1["cpu"].dir, d.v1["cpuacct"].dir);
        assert_eq!(
            d.v1["cpu"].dir,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a")
        );
    }

    #[test]
    fn nothing_mounted_is_nothing_detected() {
        assert_eq!(detect("", ""), Detected::default());
        assert_eq!(detect("garbage\n1 2 3\n", "x\n0::/\n"), Detected::default());
    }
}
