#!/bin/sh
# A long-running service that says on the console when it is stopped.
. /vmtest/lib.sh
name=$1
trap 'say "VMTEST STOPPED $name"; kill $child 2>/dev/null; exit 0' TERM
say "VMTEST STARTED $name"
while :; do sleep 1000 & child=$!; wait $child; done
