#ifndef CALLGATE_CSQLITE_SHIM_H
#define CALLGATE_CSQLITE_SHIM_H
#include <sqlite3.h>

/// SQLITE_TRANSIENT is a macro Swift cannot import: it tells SQLite to copy bound text at once.
static inline sqlite3_destructor_type callgate_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
}
#endif
