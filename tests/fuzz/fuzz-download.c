/* libFuzzer harness for gev-download's response parser (read_head and the
 * body framing: Content-Length, chunked, to EOF), on the example's own code
 * (included with its main renamed).  The input is the server's whole answer:
 * it is written into one end of a socket pair, which is then shut, and the
 * parser reads the other end through gev_recv as it does over TCP.
 *
 * Every input must end in a result: a status and a body size that fits in
 * the input, or an error; never a crash, a hang or a read past the buffer.
 * Built by tests/fuzz/run.sh and, with tests/fuzz/replay.c, by make check
 * over the corpus (tests/test-fuzz-corpus.sh). */
int gev_download_main(int argc, char **argv);
#define main gev_download_main
#include "../../examples/gev-download.c"
#undef main
#include <assert.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    if (size > 65536)
        size = 65536;                   /* fits a socket pair's buffer */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 0;
    int sndbuf = 262144;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(sv[0], data + off, size - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(sv[0]);                       /* EOF after the answer */
    gev_nonblock(sv[1]);

    reader *rd = malloc(sizeof *rd);
    result res = { 0 };
    const char *why = NULL;
    long long length;
    bool chunked;
    rd->fd = sv[1];
    rd->pos = rd->len = 0;
    int rc = read_head(rd, &res, &length, &chunked, &why);
    if (rc == 0) {
        assert(res.status >= 100 && res.status <= 999);
        rc = chunked ? skip_chunked(rd, &res.size, &why) : skip_body(rd, length, &res.size, &why);
        assert(res.size >= 0 && (size_t)res.size <= size);
    }
    free(rd);
    close(sv[1]);
    return 0;
}
