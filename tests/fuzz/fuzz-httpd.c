/* libFuzzer harness for gev-httpd's request-head parser (parse_head) and
 * its path decoding, on the example's own code: the example is included
 * with its main renamed, so what is fuzzed is what runs.
 *
 * Every complete head must come back with a length within the input and
 * either status 0 with a NUL-terminated method and target inside the
 * buffer, or one of the errors gev-httpd answers; decoding a target never
 * grows it.
 * Built by tests/fuzz/run.sh (clang -fsanitize=fuzzer,address,undefined)
 * and, with tests/fuzz/replay.c as the driver, by make check over the
 * corpus (tests/test-fuzz-corpus.sh). */
int gev_httpd_main(int argc, char **argv);
#define main gev_httpd_main
#include "../../examples/gev-httpd.c"
#undef main
#include <assert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    static char buf[HEAD_MAX + 1];
    if (!ready) {
        init_tables();
        ready = true;
    }
    if (size > HEAD_MAX)
        size = HEAD_MAX;
    memcpy(buf, data, size);
    buf[size] = '\0';                   /* what read_head() guarantees */
    request r;
    ssize_t head = parse_head(buf, size, &r);
    if (head == HEAD_MORE)
        return 0;
    assert(head > 0 && (size_t)head <= size);
    if (r.status != 0) {
        assert(r.status == 400 || r.status == 431 || r.status == 501 || r.status == 505);
        return 0;
    }
    assert(r.method == buf && r.target > r.method && r.target < buf + size);
    size_t tlen = strlen(r.target);
    assert(r.target + tlen < buf + size);
    char target[HEAD_MAX + 1];
    memcpy(target, r.target, tlen + 1);
    int rc = decode_path(target);
    assert((rc == 0 && strlen(target) <= tlen) || rc == 400);
    return 0;
}
