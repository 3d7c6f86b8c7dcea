#!/bin/sh
# Runs one test program with a time limit (libuv's runner does the same), so
# a hang fails that one test instead of the whole suite.
#   GEV_TEST_TIMEOUT  the limit in seconds (default 300; valgrind needs more)
#   GEV_TEST_WRAPPER  a command to run compiled tests under, e.g. valgrind;
#                     shell-script tests run their programs themselves
limit=${GEV_TEST_TIMEOUT:-300}
case $1 in
    *.sh) exec timeout -k 10 "$limit" "${SHELL:-/bin/sh}" "$@" ;;
esac
# shellcheck disable=SC2086
exec timeout -k 10 "$limit" ${GEV_TEST_WRAPPER} "$@"
