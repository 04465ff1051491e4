#ifndef CALLGATE_CSQLITE_SHIM_H
#define CALLGATE_CSQLITE_SHIM_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sqlite3.h>
#ifdef __linux__
#include <pthread.h>
#endif

/// SQLITE_TRANSIENT is a macro Swift cannot import: it tells SQLite to copy bound text at once.
static inline sqlite3_destructor_type callgate_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
}

/// Names the calling thread for `top -H`, perf and /proc: Foundation's Thread.name does not on Linux, and
/// glibc's pthread_setname_np is a GNU extension Swift does not import. Used by the store's threads.
static inline void callgate_set_thread_name(const char *name) {
#ifdef __linux__
    pthread_setname_np(pthread_self(), name);
#else
    (void)name;
#endif
}
#endif
