/*
 * error.h - the error contract shared by every module.
 *
 * A fallible function returns 0 on success or a negative value on failure and, on failure,
 * fills the caller's struct cs_error once.  Callers pass the error up unchanged; only the
 * command that started the work reports it (libgit2's contract).  The kind decides the exit
 * status, which main.c alone maps.
 */
#ifndef CREDSYNC_ERROR_H
#define CREDSYNC_ERROR_H

#include <stddef.h>

enum cs_error_kind {
	CS_ERR_NONE = 0,
	CS_ERR_RUNTIME,     /* I/O, database, network: exit 1 */
	CS_ERR_USAGE,       /* bad command line: exit 64 */
	CS_ERR_CONFIG,      /* bad configuration: exit 78 */
	CS_ERR_CREDENTIALS, /* missing or rejected credentials: exit 77 */
	CS_ERR_LOCKED,      /* another run holds the lock: exit 75 */
	CS_ERR_INTERRUPTED, /* stopped by a signal */
	CS_ERR_NOMEM,
};

struct cs_error {
	enum cs_error_kind kind;
	char msg[1024];
};

/* Sets err (if err is not NULL and not already set) and returns -1, so code says
 * `return cs_error_set(err, CS_ERR_RUNTIME, "...")`.  A set error is never overwritten:
 * the first, most precise message wins. */
int cs_error_set(struct cs_error *err, enum cs_error_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes an already set message with context ("group 'x': " + msg). */
void cs_error_prefix(struct cs_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Empties err (kind CS_ERR_NONE, no message). */
void cs_error_clear(struct cs_error *err);

#endif
