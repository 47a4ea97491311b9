//! A unit's log file across `colonyctl reexec`: the open file goes to the new image as it
//! is (its fd kept across exec), with its size and the start of a line not ended yet, so
//! that image does not walk to and open 1000 files again, and no half line is lost.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;

use nix::unistd::Gid;
use serde::{Deserialize, Serialize};

use super::{shared_dir, LogFile, MAX_LINE};
use crate::kernel::safe_path::{self, PathError};

/// What the new image needs of an open log file beside its path and limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogKept {
    /// Where it is (the new image opens the file again if the unit's is another now).
    pub path: PathBuf,
    /// The open file (kept open across exec, listed with the state's fds).
    pub fd: RawFd,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub size: u64,
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub regular: bool,
    /// The start of a line whose newline has not come yet.
    #[serde(skip_serializing_if = "crate::core::is_default")]
    pub partial: Vec<u8>,
}

impl LogFile {
    /// What a new image needs to take this file over (`None`: no file open now; the new
    /// image opens it).
    pub fn kept(&self) -> Option<LogKept> {
        self.file.as_ref().map(|f| LogKept {
            path: self.path.clone(),
            fd: f.as_raw_fd(),
            size: self.size,
            regular: self.regular,
            partial: self.partial.clone(),
        })
    }

    /// The log file at `kept.path` as the previous image had it open (checked by it when it
    /// opened it): its directory is walked safely as at any open (once for all the files
    /// in it), the file is not opened again.
    ///
    /// # Safety
    /// `kept.fd` is open, the log file at `kept.path`, and owned by nothing else here.
    pub unsafe fn adopt(
        kept: LogKept,
        max_size: u64,
        keep: u32,
        group: Option<Gid>,
    ) -> Result<LogFile, PathError> {
        // SAFETY: by the caller's contract.
        let file = unsafe { File::from(crate::handover::adopt(kept.fd)) };
        let path = kept.path;
        let (dir, name) = safe_path::split(&path)?;
        let dir = shared_dir(dir)?;
        let mut partial = kept.partial;
        partial.truncate(MAX_LINE);
        Ok(LogFile {
            path: path.clone(),
            dir,
            name: name.to_os_string(),
            group,
            file: Some(file),
            size: kept.size,
            max_size,
            keep,
            partial,
            regular: kept.regular,
        })
    }
}
