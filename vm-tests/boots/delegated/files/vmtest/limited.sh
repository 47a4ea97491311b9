#!/bin/sh
# What this unit sees of its cgroup (the checker reads it from the shared /run).
cat /proc/self/cgroup > /run/limited.cgroup
# A child shell forks until pids.max stops it; this shell survives and stays.
sh -c 'i=0; while [ $i -lt 10 ]; do sleep 1000 & i=$((i+1)); done' 2>/dev/null
exec sleep 1000
