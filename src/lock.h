/*
 * lock.h - one run at a time per database: an flock(2) on DB.lock beside it.
 *
 * The kernel drops the lock when its holder dies, so a crashed run never leaves a stale lock;
 * the file only carries the holder's pid and start time for the message a second run prints.
 */
#ifndef CREDSYNC_LOCK_H
#define CREDSYNC_LOCK_H

#include <stdint.h>

#include "error.h"

struct run_lock {
	int fd;
	char *path;
};

/* Takes the lock of db_path, waiting up to wait_ms (0: not at all).  Fails with
 * CS_ERR_LOCKED naming the holder's pid and start time when it is held. */
int lock_acquire(struct run_lock *l, const char *db_path, int64_t wait_ms, struct cs_error *err);
void lock_release(struct run_lock *l);

#endif
