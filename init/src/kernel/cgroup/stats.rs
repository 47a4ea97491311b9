//! `status` figures of a unit's cgroup (memory, CPU, tasks, OOM kills), read through stat
//! files held open within an fd budget.

use super::*;

/// How many units colony-init supervises (set by the loop at each read of the directory).
static UNITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Plan the fd table for `units` units: see [`stat_fd_budget`].
pub fn plan_fd_budget(units: usize) {
    UNITS.store(units as u64, std::sync::atomic::Ordering::Relaxed);
}

/// Held stat files may take the fd numbers below this: the limit less what every unit needs
/// for itself (a pidfd, both ends of its output pipe, its log file and the log directory's fd
/// that rotation works in) and room for colony-init's own fds (the control path's reserve
/// among them) and those a start holds for a moment.
fn stat_fd_budget() -> u64 {
    let units = UNITS.load(std::sync::atomic::Ordering::Relaxed);
    nofile_limit().saturating_sub(5 * units + 128)
}

/// The soft RLIMIT_NOFILE (colony-init raises it at its start: `spawn::raise_fd_limit`).
fn nofile_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscall filling a struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        r.rlim_cur
    } else {
        1024
    }
}

/// One pread at offset 0: a cgroupfs file gives its current text afresh each time.
fn pread0(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for buf.len() bytes; fd is open.
        let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A stat file's figure: `cpu.stat`'s `usage_usec`, v1 `cpuacct.usage` in ns (to µs), or
/// the single number of the others.
/// `alt`: the file is the other source of the figure (see [`UnitCgroup::stat_path`]):
/// v1 `cpuacct.usage` (nanoseconds) for CPU, v2 `cgroup.threads` (one line a task) for tasks.
fn parse_stat(text: &str, kind: StatKind, alt: bool) -> Option<u64> {
    match kind {
        StatKind::Cpu if alt => text.trim().parse::<u64>().ok().map(|ns| ns / 1000),
        StatKind::Tasks if alt => Some(text.lines().count() as u64),
        StatKind::Cpu => keyed(text, "usage_usec"),
        StatKind::Memory | StatKind::Tasks => text.trim().parse().ok(),
    }
}

/// Memory, CPU and task figures for `status` (None: not measurable here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupStats {
    pub memory_bytes: Option<u64>,
    pub cpu_usec: Option<u64>,
    pub tasks: Option<u64>,
}

/// Held-open stat files: `status` then costs one pread each instead of open, read and
/// close. `None` where the file is absent or could not be opened (say, out of fds): then
/// [`UnitCgroup::stats`] opens and reads it by path as before.
#[derive(Debug, Default)]
pub(super) struct StatFds {
    pub(super) memory: Option<OwnedFd>,
    pub(super) cpu: Option<OwnedFd>,
    pub(super) tasks: Option<OwnedFd>,
}

/// Where a figure of [`CgroupStats`] is read, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StatKind {
    Memory,
    Cpu,
    Tasks,
}

/// Room for one pread of a stat file; a file that fills it is read again by path.
const STAT_BUF: usize = 2048;

impl UnitCgroup {
    /// The file of one figure, and whether it is v1 `cpuacct.usage` (nanoseconds, not
    /// `cpu.stat`'s keyed microseconds).
    fn stat_path(&self, kind: StatKind) -> Option<(PathBuf, bool)> {
        match kind {
            StatKind::Memory => match self.limit_dir("memory") {
                Some((d, true)) => Some((d.join("memory.current"), false)),
                Some((d, false)) => Some((d.join("memory.usage_in_bytes"), false)),
                None => None,
            },
            // v2 has cpu.stat in every cgroup, controller or not; v1 needs cpuacct.
            StatKind::Cpu => match &self.v2 {
                Some(u) => Some((u.dir.join("cpu.stat"), false)),
                None => self
                    .v1_dir("cpuacct")
                    .map(|d| (d.join("cpuacct.usage"), true)),
            },
            // Without a pids directory (a hybrid host's unit without tasks_max), the v2
            // tracking directory lists the unit's tasks.
            StatKind::Tasks => match self.limit_dir("pids") {
                Some((d, _)) => Some((d.join("pids.current"), false)),
                None => self
                    .v2
                    .as_ref()
                    .map(|u| (u.dir.join("cgroup.threads"), true)),
            },
        }
    }

    /// Whether `kind` is read from its other source (the flag of [`Self::stat_path`]).
    fn alt_source(&self, kind: StatKind) -> bool {
        match kind {
            StatKind::Memory => false,
            StatKind::Cpu => self.v2.is_none(),
            StatKind::Tasks => self.limit_dir("pids").is_none(),
        }
    }

    pub(super) fn open_stat_fds(&self) -> StatFds {
        // Held files must never crowd out what starts and watches units: only while they sit
        // below the room the units need (fds are numbered lowest free first, so a number is
        // a count). A fixed half of the table left too little: 4,000 units under a limit of
        // 20,000 failed to start; a fixed eighth made a status of 1,000 open 1,500 files.
        let budget = stat_fd_budget();
        let open = |kind| {
            let (p, _) = self.stat_path(kind)?;
            match open_ro(&p) {
                Ok(fd) if (fd.as_raw_fd() as u64) < budget => Some(fd),
                Ok(_) => {
                    tracing::debug!(unit = %self.unit, "fd budget: stat files read by path");
                    None
                }
                Err(e) => {
                    tracing::debug!(unit = %self.unit, file = %p.display(), error = %e, "stat file not held open");
                    None
                }
            }
        };
        StatFds {
            memory: open(StatKind::Memory),
            cpu: open(StatKind::Cpu),
            tasks: open(StatKind::Tasks),
        }
    }

    /// One figure: a pread of the held file, else (or if that fails) a read by path.
    pub(super) fn stat(&self, kind: StatKind) -> Option<u64> {
        let mut buf = [0u8; STAT_BUF];
        let fd = match kind {
            StatKind::Memory => self.stat_fds.memory.as_ref(),
            StatKind::Cpu => self.stat_fds.cpu.as_ref(),
            StatKind::Tasks => self.stat_fds.tasks.as_ref(),
        };
        let held = fd.and_then(|fd| match pread0(fd, &mut buf) {
            Ok(n) if n < buf.len() => Some(n),
            _ => None,
        });
        let (n, alt) = match held {
            Some(n) => (n, self.alt_source(kind)),
            None => {
                let (p, alt) = self.stat_path(kind)?;
                let f = open_ro(&p).ok()?;
                match pread0(&f, &mut buf) {
                    Ok(n) if n < buf.len() => (n, alt),
                    // Bigger than the buffer (cgroup.threads of a unit of many tasks).
                    Ok(_) => {
                        let t = read_file(&p).ok()?;
                        return parse_stat(&t, kind, alt);
                    }
                    Err(_) => return None,
                }
            }
        };
        let text = std::str::from_utf8(&buf[..n]).ok()?;
        parse_stat(text, kind, alt)
    }

    pub fn stats(&self) -> CgroupStats {
        let tasks = self.stat(StatKind::Tasks).or_else(|| {
            let threads = match (&self.v2, self.v1_tracking()) {
                (Some(u), _) => u.dir.join("cgroup.threads"),
                (None, Some(t)) => t.dir.join("tasks"),
                (None, None) => return None,
            };
            read_file(&threads).ok().map(|t| t.lines().count() as u64)
        });
        CgroupStats {
            memory_bytes: self.stat(StatKind::Memory),
            cpu_usec: self
                .stat(StatKind::Cpu)
                .map(|c| c.saturating_sub(self.cpu_base)),
            tasks,
        }
    }

    /// How many stat files are held open (for tests).
    pub fn held_stat_files(&self) -> usize {
        [
            &self.stat_fds.memory,
            &self.stat_fds.cpu,
            &self.stat_fds.tasks,
        ]
        .iter()
        .filter(|f| f.is_some())
        .count()
    }

    /// OOM kills seen in this cgroup so far (v2 memory.events, v1 memory.oom_control).
    pub fn oom_kills(&self) -> u64 {
        match self.limit_dir("memory") {
            Some((d, true)) => read_file(&d.join("memory.events"))
                .ok()
                .and_then(|t| keyed(&t, "oom_kill")),
            Some((d, false)) => read_file(&d.join("memory.oom_control"))
                .ok()
                .and_then(|t| keyed(&t, "oom_kill")),
            None => None,
        }
        .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files() {
        assert_eq!(keyed("populated 0\nfrozen 0\n", "populated"), Some(0));
        assert_eq!(
            keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"),
            Some(3)
        );
        assert_eq!(keyed("usage_usec 12\n", "user_usec"), None);
    }
}
