/* api/dump-signal.h: GEV_DUMP_SIGNAL's parser (api/dump-signal.c), for
 * the tests.  Referencing it also links the module into a program built
 * against the convenience library, an archive: its constructor then
 * registers the hub hook there too (the shared library has it always). */
#ifndef GEV_API_DUMP_SIGNAL_H
#define GEV_API_DUMP_SIGNAL_H

/* The signal a GEV_DUMP_SIGNAL value names ("QUIT", "SIGQUIT", "3"), or 0
 * for NULL, "" and anything else. */
int gev__dump_signal_parse(const char *value);

#endif
