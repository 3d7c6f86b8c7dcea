#!/bin/sh
# Runs one test program with a time limit (libuv's runner does the same), so
# a hang fails that one test instead of the whole suite, and says how long it
# took (the last line of its .log; tests/ci-extra.sh lists the slowest).
#   GEV_TEST_TIMEOUT  the limit in seconds (default 300; valgrind needs more)
#   GEV_TEST_WRAPPER  a command to run compiled tests under, e.g. valgrind;
#                     shell-script tests run their programs themselves
limit=${GEV_TEST_TIMEOUT:-300}
started=$(date +%s%N)
case $1 in
    *.sh) timeout -k 10 "$limit" "${SHELL:-/bin/sh}" "$@" ;;
    # shellcheck disable=SC2086
    *) timeout -k 10 "$limit" ${GEV_TEST_WRAPPER} "$@" ;;
esac
rc=$?
echo "run-with-timeout: $1 took $(( ($(date +%s%N) - started) / 1000000 )) ms, exit $rc"
exit $rc
