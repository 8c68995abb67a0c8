/* lock.c - the run lock beside the database; see lock.h. */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static void read_holder(int fd, char *out, size_t outlen)
{
	char buf[256];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	long long pid = 0;
	char started[32] = "";

	out[0] = '\0';
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (sscanf(buf, "pid %lld started %31s", &pid, started) >= 1)
		snprintf(out, outlen, "pid %lld, started %s", pid, started[0] ? started : "?");
}

int lock_acquire(struct run_lock *l, const char *db_path, int64_t wait_ms, struct cs_error *err)
{
	size_t len = strlen(db_path) + 6;
	int64_t give_up = util_mono_ms() + wait_ms;
	char holder[128], info[96], started[21];

	l->fd = -1;
	l->path = malloc(len);
	if (!l->path)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	snprintf(l->path, len, "%s.lock", db_path);
	l->fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (l->fd < 0) {
		cs_error_set(err, CS_ERR_RUNTIME, "cannot open lock file %s: %s", l->path,
			     strerror(errno));
		goto fail;
	}
	while (flock(l->fd, LOCK_EX | LOCK_NB) < 0) {
		struct timespec ts = { 0, 100 * 1000000L };

		if (errno != EWOULDBLOCK && errno != EINTR) {
			cs_error_set(err, CS_ERR_RUNTIME, "cannot lock %s: %s", l->path, strerror(errno));
			goto fail;
		}
		if (util_mono_ms() >= give_up) {
			read_holder(l->fd, holder, sizeof(holder));
			cs_error_set(err, CS_ERR_LOCKED,
				     "database %s is in use by another credsync run (%s)%s; try again later%s",
				     db_path, holder[0] ? holder : "holder unknown",
				     wait_ms ? " and did not finish in time" : "",
				     wait_ms ? "" : " or pass --wait DURATION");
			goto fail;
		}
		nanosleep(&ts, NULL);
	}
	util_format_utc(util_now_epoch(), started);
	snprintf(info, sizeof(info), "pid %ld started %s\n", (long)getpid(), started);
	if (ftruncate(l->fd, 0) < 0 || pwrite(l->fd, info, strlen(info), 0) < 0) {
		/* the lock holds without the note; the note only improves a message */
	}
	return 0;
fail:
	lock_release(l);
	return -1;
}

void lock_release(struct run_lock *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd); /* drops the flock */
	l->fd = -1;
	free(l->path);
	l->path = NULL;
}
