#!/bin/sh
# Runs one test program with a time limit (libuv's runner does the same), so
# a hang fails that one test instead of the whole suite.  GEV_TEST_TIMEOUT
# overrides the limit in seconds (valgrind runs need more).
limit=${GEV_TEST_TIMEOUT:-300}
exec timeout -k 10 "$limit" ${GEV_TEST_WRAPPER} "$@"
