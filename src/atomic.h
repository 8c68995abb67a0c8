/*
 * atomic.h - writing a file so that readers see the old version or the new one, never half:
 * a temporary file in the same directory, fsync, then rename over the target.
 */
#ifndef CREDSYNC_ATOMIC_H
#define CREDSYNC_ATOMIC_H

#include <stdio.h>
#include <sys/types.h>

#include "error.h"

struct atomic_file {
	FILE *f;      /* write here */
	char *tmp;
	char *path;
};

/* Creates the temporary file with mode (further restricted by the umask). */
int atomic_open(struct atomic_file *af, const char *path, mode_t mode, struct cs_error *err);
/* Flushes, syncs and renames; the struct is released either way. */
int atomic_commit(struct atomic_file *af, struct cs_error *err);
/* The same, but with replace == 0 it fails (the target kept) when the target exists. */
int atomic_commit_mode(struct atomic_file *af, int replace, struct cs_error *err);
/* Removes the temporary file; accepts a struct never opened (zeroed). */
void atomic_abort(struct atomic_file *af);

#endif
