//! Every pending deadline in one ordered structure, arming one timerfd for the nearest.
