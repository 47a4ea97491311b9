//! The one event loop: epoll over signalfd, timerfd, inotify, the FIFO and log pipes.
