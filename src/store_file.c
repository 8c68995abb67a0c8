/*
 * store_file.c - what a database file is before SQLite opens it for good: its one real name
 * (store_locate), whether it is credsync's (read through a connection that writes nothing),
 * whether this user can write it, its -wal and -shm, and a private mode from the first byte.
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

#define CREDSYNC_APPLICATION_ID 0x43525359 /* "CRSY", PRAGMA application_id */

static int pragma_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* Creates the file with mode 0600 before SQLite does (SQLite would use 0644), so the
 * inventory is private from the first byte; the -wal and -shm files copy this mode. */
int store_precreate(const char *path, struct cs_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0) {
		if (errno == EEXIST)
			return 0;
		return cs_error_set(err, CS_ERR_RUNTIME, "database %s: cannot create: %s", path,
				    strerror(errno));
	}
	close(fd);
	return 0;
}

/*
 * A symlink in a world-writable directory (like /tmp) may have been planted by another user
 * to make us write the inventory where they can read it, or over a file of ours.  The sticky
 * bit does not help: the link is theirs.  We warn rather than refuse, since an operator may
 * have made it on purpose.
 */
void store_warn_symlink(const char *path)
{
	struct stat lsb, dsb;
	char dir[4096];
	const char *slash = strrchr(path, '/');
	size_t len;

	if (lstat(path, &lsb) != 0 || !S_ISLNK(lsb.st_mode))
		return;
	len = slash ? (size_t)(slash - path) : 1;
	if (len == 0)
		len = 1;
	if (len >= sizeof(dir))
		return;
	memcpy(dir, slash ? path : ".", len);
	dir[len] = '\0';
	if (stat(dir, &dsb) == 0 && (dsb.st_mode & S_IWOTH))
		log_msg(LOG_WARN, NULL,
			"database %s is a symbolic link in the world-writable directory %s: anyone "
			"could have made it point elsewhere; prefer a private directory", path, dir);
}

int store_locate(const char *path, char **real, struct cs_error *err)
{
	enum store_file_kind kind;
	char *dir = NULL, *rdir = NULL, *out = NULL;
	const char *base;
	struct stat sb;
	size_t len;

	*real = NULL;
	if (stat(path, &sb) == 0) {
		if (!S_ISREG(sb.st_mode))
			return cs_error_set(err, CS_ERR_RUNTIME, "database %s is not a regular file",
					    path);
		/* one file, one WAL: SQLite names the WAL after the name it was opened by */
		if (sb.st_nlink > 1)
			return cs_error_set(err, CS_ERR_RUNTIME,
					    "database %s has %ju hard links: SQLite keeps its write-ahead log "
					    "beside each name, so two names would corrupt it; remove the other "
					    "link(s) (find -samefile) and use one name", path,
					    (uintmax_t)sb.st_nlink);
		if (!(out = realpath(path, NULL)))
			return cs_error_set(err, CS_ERR_RUNTIME, "database %s: %s", path,
					    strerror(errno));
		/* another application's file is refused before even a lock file is made */
		if (store_classify(out, path, &kind, err) < 0) {
			free(out);
			return -1;
		}
		*real = out;
		return 0;
	}
	if (errno != ENOENT)
		return cs_error_set(err, CS_ERR_RUNTIME, "database %s: %s", path, strerror(errno));
	/* not there yet: the directory's real name and the file's own */
	if (!(dir = strdup(path)))
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	base = strrchr(path, '/');
	if (base) {
		dir[base - path > 0 ? base - path : 1] = '\0';
		base++;
	} else {
		strcpy(dir, ".");
		base = path;
	}
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		free(dir);
		return cs_error_set(err, CS_ERR_RUNTIME, "database %s: not a file name", path);
	}
	if (!(rdir = realpath(dir, NULL))) {
		cs_error_set(err, CS_ERR_RUNTIME, "database %s: directory %s: %s", path, dir,
			     strerror(errno));
		free(dir);
		return -1;
	}
	len = strlen(rdir) + strlen(base) + 2;
	if ((out = malloc(len)))
		snprintf(out, len, "%s/%s", strcmp(rdir, "/") ? rdir : "", base);
	free(dir);
	free(rdir);
	if (!out)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	*real = out;
	return 0;
}

/* 1 when this user may create files in the directory holding path. */
static int dir_writable(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : 0;

	if (!slash)
		return access(".", W_OK | X_OK) == 0;
	if (len == 0)
		len = 1;
	if (len >= sizeof(dir))
		return 1;
	memcpy(dir, path, len);
	dir[len] = '\0';
	return access(dir, W_OK | X_OK) == 0;
}

/*
 * What the file at path is, read through a read-only connection that changes nothing: no
 * journal mode switch, no -wal or -shm for a file in rollback mode, not a byte written.
 */
int store_classify(const char *path, const char *shown, enum store_file_kind *kind,
		    struct cs_error *err)
{
	static const char *const v1_tables = "cs_checkpoint,cs_group,cs_interval,cs_run,cs_snapshot,cs_stage";
	struct cs_buf tables = CS_BUF_INIT;
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int appid, version, objects = 0, rc, ret = -1;
	struct stat sb;

	*kind = STORE_FILE_NEW;
	if (stat(path, &sb) != 0 || sb.st_size == 0)
		return 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto sqlfail;
	appid = pragma_int(db, "PRAGMA application_id");
	version = pragma_int(db, "PRAGMA user_version");
	if (appid == -1 || version == -1)
		goto sqlfail;
	if ((unsigned)appid == CREDSYNC_APPLICATION_ID) {
		*kind = STORE_FILE_OURS;
		ret = 0;
		goto out;
	}
	if (sqlite3_prepare_v2(db, "SELECT type, name FROM sqlite_schema ORDER BY name", -1, &s,
			       NULL) != SQLITE_OK)
		goto sqlfail;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		objects++;
		if (!strcmp((const char *)sqlite3_column_text(s, 0), "table")) {
			if (tables.len)
				buf_putc(&tables, ',');
			buf_puts(&tables, (const char *)sqlite3_column_text(s, 1));
		}
	}
	if (rc != SQLITE_DONE)
		goto sqlfail;
	if (appid == 0 && version == 0 && objects == 0)
		*kind = STORE_FILE_NEW;
	else if (appid == 0 && version == 1 && !strcmp(buf_str(&tables), v1_tables))
		*kind = STORE_FILE_OURS_OLD;
	else {
		*kind = STORE_FILE_FOREIGN;
		cs_error_set(err, CS_ERR_RUNTIME,
			     "database %s is not a credsync database (application_id 0x%08x, "
			     "user_version %d, tables: %.300s); refusing to touch it: give credsync a "
			     "file of its own (-d or database:)", shown, (unsigned)appid, version,
			     tables.len ? buf_str(&tables) : "none");
		goto out;
	}
	ret = 0;
	goto out;
sqlfail:
	/* a WAL-mode file cannot be read without its -shm, which SQLite must create beside it */
	if (db && (sqlite3_extended_errcode(db) & 0xff) == SQLITE_READONLY && !dir_writable(path))
		cs_error_set(err, CS_ERR_RUNTIME,
			     "database %s is read-only here: this user cannot write its directory, "
			     "where SQLite keeps the -wal and -shm files; fix the directory's "
			     "permissions or move the database", shown);
	else
		cs_error_set(err, CS_ERR_RUNTIME, "database %s: %s; refusing to touch it", shown,
			     db ? sqlite3_errmsg(db) : "cannot open");
out:
	sqlite3_finalize(s);
	sqlite3_close(db);
	buf_release(&tables);
	return ret;
}

/*
 * A sync must be able to write the file, its directory (SQLite creates -wal and -shm there)
 * and any -wal/-shm already there.  Checked before SQLite opens the file: SQLite would open
 * an unwritable file read-only without a word and create a -shm with the file's mode, which
 * keeps failing later runs even after the file's own mode is fixed.  A -wal/-shm of ours
 * that is unwritable (left by an earlier read-only attempt) is given the file's mode back.
 */
int store_check_writable(const char *real, const char *shown, struct cs_error *err)
{
	static const char *const sides[] = { "-wal", "-shm" };
	char side[4200], dir[4096];
	const char *slash = strrchr(real, '/');
	struct stat sb, fsb;
	size_t i, len = slash ? (size_t)(slash - real) : 0;

	if (len == 0)
		len = 1;
	if (len >= sizeof(dir))
		return 0;
	memcpy(dir, slash ? real : ".", len);
	dir[len] = '\0';
	if (access(dir, W_OK | X_OK) != 0)
		return cs_error_set(err, CS_ERR_RUNTIME,
				    "database %s is read-only: this user cannot write its directory %s (%s), "
				    "where SQLite keeps the -wal and -shm files; fix the permissions or "
				    "move the database", shown, dir, strerror(errno));
	if (stat(real, &fsb) != 0)
		return 0;
	if (access(real, R_OK | W_OK) != 0)
		return cs_error_set(err, CS_ERR_RUNTIME,
				    "database %s is read-only: this user cannot write it (%s, mode %04o); "
				    "fix its permissions (chmod 600) or run as its owner", shown,
				    strerror(errno), (unsigned)(fsb.st_mode & 07777));
	for (i = 0; i < 2; i++) {
		snprintf(side, sizeof(side), "%s%s", real, sides[i]);
		if (stat(side, &sb) != 0 || access(side, R_OK | W_OK) == 0)
			continue;
		if (sb.st_uid != geteuid() || chmod(side, fsb.st_mode & 0600) != 0 ||
		    access(side, R_OK | W_OK) != 0)
			return cs_error_set(err, CS_ERR_RUNTIME,
					    "database %s is read-only: this user cannot write %s (mode %04o); "
					    "fix its permissions or remove it while no credsync or sqlite3 "
					    "has the database open", shown, side,
					    (unsigned)(sb.st_mode & 07777));
		log_msg(LOG_INFO, NULL, "gave %s the database's mode back (it was %04o)", side,
			(unsigned)(sb.st_mode & 07777));
	}
	return 0;
}
