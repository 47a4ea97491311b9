//! The unit's `[sandbox]` for every process colony-init runs on a unit's behalf: the one
//! entry point, so its main program, its health checks and its hooks run under the same
//! rules (`kernel::sandbox` prepares, `kernel::spawn` carries it out in the child).

use super::*;

use crate::kernel::creds::Creds;
use crate::kernel::sandbox::{self, Join, Prepared};

/// Which process of the unit is being started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beside {
    /// Its main program, or a command run before it: namespaces of its own.
    Nothing,
    /// A command run while the main program runs (a health check): in the main program's
    /// mount and network namespaces, when it has them; fresh ones when it is gone.
    Main,
}

impl Engine {
    /// The sandbox of a process run for `unit` (None: its definition asks for none).
    pub(super) fn unit_sandbox(
        &mut self,
        unit: &str,
        def: &Unit,
        creds: &Creds,
        beside: Beside,
    ) -> Result<Option<Prepared>, String> {
        let main = match beside {
            Beside::Main => self
                .units
                .get(unit)
                .and_then(|rt| rt.main.as_ref())
                .map(|p| p.pidfd.as_fd()),
            Beside::Nothing => None,
        };
        let join = main.map_or(Join::Fresh, Join::Main);
        sandbox::prepare(&mut self.sandboxes, def, creds, &self.opts.run_dir, join)
            .map_err(|e| e.to_string())
    }
}
