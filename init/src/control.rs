//! The control FIFO: reading requests, opening reply FIFOs safely, writing replies without blocking.
