//! Credentials prepared in the parent for the child: groups, gid, uid, capabilities, umask.
