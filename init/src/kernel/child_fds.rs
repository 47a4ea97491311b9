//! A child's fd table without a copy of colony-init's.
//!
//! A forked child gets a copy of every fd colony-init holds (a pidfd, an output pipe, a log
//! file and up to three cgroup stat files per unit) and exec then closes them one by one: with
//! 10,000 units, 70,000 closes per start, so starting N units costs O(N²) (perf: the child's
//! `do_close_on_exec`). Instead the fds a child needs are copied into a few low fd numbers
//! reserved once ([`Slots`]), the child is cloned with CLONE_FILES, and its first act is
//! `close_range(low, ~0, CLOSE_RANGE_UNSHARE)`: the kernel gives it a private table holding
//! only the fds below `low`. colony-init waits until the child has left the shared table
//! (a futex word in a shared page, [`Lent::wait_left`]) before it uses the slots again.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Enough for devnull, stdout, stderr, the report pipe, the pidfd whose namespaces a
/// sandbox joins and four `cgroup.procs` files.
pub const SLOTS: usize = 10;

#[derive(Clone, Copy)]
pub struct Slots {
    fds: [RawFd; SLOTS],
    /// Every slot is below this: the child's private table is the fds below it.
    pub low: RawFd,
    /// /dev/null, copied over a slot to let go of what it held.
    filler: RawFd,
    /// A word in a MAP_SHARED page: 0 while the child may still use the shared table.
    word: *mut AtomicU32,
}

// SAFETY: the raw pointer is to a process-wide shared mapping that is never unmapped, and
// every use is under the mutex.
unsafe impl Send for Slots {}

static SLOTS_ONCE: Mutex<Option<Slots>> = Mutex::new(None);
/// Set once a child could not leave the shared table (close_range and unshare both refused,
/// e.g. by an old container's seccomp profile): every child then gets a full copy.
static REFUSED: AtomicBool = AtomicBool::new(false);

/// The word's values, set by the child.
pub const LEFT: u32 = 1;
pub const CANNOT_LEAVE: u32 = 2;

/// What became of a child cloned with CLONE_FILES.
#[derive(Debug, PartialEq, Eq)]
pub enum Left {
    /// It has its own table.
    Yes,
    /// It could not leave and exits: clone again without CLONE_FILES.
    Cannot,
    /// It died first (a dead process holds no table).
    Died,
    /// It did not run within [`LEAVE_LIMIT`] (cloned into a frozen cgroup, say): it was sent
    /// SIGKILL, which it meets before its first instruction, so it never uses the table.
    Killed,
}

/// How long colony-init waits for a child to leave its fd table: the child's first system
/// call, normally microseconds away.
pub const LEAVE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Slots {
    fn reserve() -> Option<Slots> {
        // SAFETY: plain syscalls on fds and a mapping we create here and keep for good.
        unsafe {
            let filler = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if filler < 0 {
                return None;
            }
            let mut fds = [-1; SLOTS];
            // A failure (EMFILE, say) closes what was opened: the next spawn tries again.
            let give_back = |fds: &[RawFd]| {
                for &fd in fds.iter().chain([&filler]) {
                    if fd >= 0 {
                        libc::close(fd);
                    }
                }
            };
            for i in 0..SLOTS {
                fds[i] = libc::fcntl(filler, libc::F_DUPFD_CLOEXEC, 3);
                if fds[i] < 0 {
                    give_back(&fds);
                    return None;
                }
            }
            let page = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if page == libc::MAP_FAILED {
                give_back(&fds);
                return None;
            }
            let low = fds.iter().copied().max().unwrap_or(3) + 1;
            Some(Slots {
                fds,
                low,
                filler,
                word: page.cast(),
            })
        }
    }
}

/// The slots, lent to one spawn at a time (the guard holds the lock).
pub struct Lent {
    _guard: MutexGuard<'static, Option<Slots>>,
    slots: Slots,
    used: usize,
}

/// The slots, reserved at the first call; None where they cannot be (then a child gets a
/// full copy of the table, as with fork).
pub fn lend() -> Option<Lent> {
    if REFUSED.load(Ordering::Relaxed) {
        return None;
    }
    let mut guard = SLOTS_ONCE.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = Slots::reserve();
    }
    let slots = (*guard)?;
    Some(Lent {
        _guard: guard,
        slots,
        used: 0,
    })
}

impl Lent {
    pub fn low(&self) -> RawFd {
        self.slots.low
    }

    /// The shared word the child sets once it has its own table, cleared for this child.
    pub fn arm_word(&self) -> *const AtomicU32 {
        let s = self.slots;
        // SAFETY: the mapping lives for good; no child runs yet (slots are lent one at a time).
        unsafe { (*s.word).store(0, Ordering::SeqCst) };
        s.word
    }

    /// Copies `fd` into the next free slot (CLOEXEC) and returns the slot's number, or None
    /// when the slots are used up or the copy fails.
    pub fn place(&mut self, fd: RawFd) -> Option<RawFd> {
        let slot = *self.slots.fds.get(self.used)?;
        // SAFETY: dup3 over a slot we reserved.
        if unsafe { libc::dup3(fd, slot, libc::O_CLOEXEC) } < 0 {
            return None;
        }
        self.used += 1;
        Some(slot)
    }

    /// Blocks until the child cloned with CLONE_FILES has left the shared table, cannot, or
    /// is gone. `pidfd` is the child's. After `Cannot`, no child is cloned so again.
    pub fn wait_left(&self, pidfd: BorrowedFd<'_>) -> Left {
        let word = self.slots.word;
        let since = std::time::Instant::now();
        // What the child said, if it said anything yet.
        let said = || {
            // SAFETY: the shared word outlives every child.
            match unsafe { (*word).load(Ordering::SeqCst) } {
                0 => None,
                LEFT => Some(Left::Yes),
                _ => {
                    REFUSED.store(true, Ordering::Relaxed);
                    Some(Left::Cannot)
                }
            }
        };
        loop {
            if let Some(left) = said() {
                return left;
            }
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 50_000_000,
            };
            // SAFETY: FUTEX_WAIT (shared, the page is MAP_SHARED) on a word we own; returns
            // at once if it is no longer 0.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    word,
                    libc::FUTEX_WAIT,
                    0u32,
                    &ts as *const libc::timespec,
                    std::ptr::null::<u32>(),
                    0u32,
                );
            }
            let mut p = libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll on one valid pollfd, no wait. Readable: the child has exited.
            if unsafe { libc::poll(&mut p, 1, 0) } > 0 {
                // A child that cannot leave says so and exits at once: its word, set before
                // its exit, comes first (else its refusal would pass for a crash).
                return said().unwrap_or(Left::Died);
            }
            if since.elapsed() >= LEAVE_LIMIT
                && crate::kernel::spawn::send_signal(pidfd, libc::SIGKILL).is_ok()
            {
                return Left::Killed;
            }
        }
    }
}

impl Drop for Lent {
    /// Let go of what the slots held (a pipe's write end must close for its EOF).
    fn drop(&mut self) {
        let Slots { filler, fds, .. } = self.slots;
        for &slot in &fds[..self.used] {
            // SAFETY: dup3 over a slot we reserved.
            unsafe { libc::dup3(filler, slot, libc::O_CLOEXEC) };
        }
    }
}
