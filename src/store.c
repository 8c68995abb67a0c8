/*
 * store.c - the SQLite inventory; see store.h for the contract and schema/ for the model.
 *
 * Statements are prepared once per connection (the table below) and reset after use.  Every
 * write path runs inside a transaction: the caller's (pages) or our own (snapshot begin,
 * complete, fail), so a kill -9 at any instant leaves either the old or the new state.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "schema.h"
#include "util.h"

/* a WAL that passes this while a reader holds it back is worth a warning */
#define STORE_WAL_WARN_BYTES ((off_t)64 << 20)

enum stmt_id {
	S_RUN_INSERT,
	S_RUN_FINISH,
	S_GROUP_INSERT,
	S_GROUP_SELECT,
	S_CKPT_SELECT,
	S_CKPT_DELETE,
	S_CKPT_UPSERT,
	S_STAGE_INSERT,
	S_STAGE_CLEAR,
	S_SNAP_INSERT,
	S_SNAP_RESUMED,
	S_SNAP_FAIL,
	S_SNAP_COMPLETE,
	S_MERGE_STAGED,
	S_STAGE_PAGES,
	S_MERGE_INTERVALS,
	S_INTERVAL_OPEN,
	S_INTERVAL_CLOSE,
	S_HAS_INTERVALS,
	S_FIRST_SNAPSHOT,
	S_STAGED_TOTAL,
	S_RUN_PROGRESS,
	S_FIRST_SNAPSHOT_FS,
	S_FIRST_SEEN_LOOKUP,
	S_HAS_FIRST_SEEN,
	S_RATE_GET,
	S_RATE_PUT,
	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_RUN_INSERT] = "INSERT INTO cs_run (started_at, status, pid) VALUES (?1, 'running', ?2)",
	[S_RUN_FINISH] =
		"UPDATE cs_run SET finished_at = ?2, status = ?3, groups_ok = ?4, groups_failed = ?5,"
		" requests = ?6, retries = ?7, throttled = ?8 WHERE run_id = ?1",
	[S_GROUP_INSERT] = "INSERT OR IGNORE INTO cs_group (instance_id, group_id) VALUES (?1, ?2)",
	[S_GROUP_SELECT] = "SELECT group_key FROM cs_group WHERE instance_id = ?1 AND group_id = ?2",
	[S_CKPT_SELECT] =
		"SELECT snapshot_id, page_no, next_token, pages, staged_ids, total_reported,"
		" rewalked, updated_epoch, sorted, last_id, read_first_epoch, read_last_epoch"
		" FROM cs_checkpoint WHERE group_key = ?1",
	[S_CKPT_DELETE] = "DELETE FROM cs_checkpoint WHERE group_key = ?1",
	/* an update in place on every page, not a delete and insert */
	[S_CKPT_UPSERT] =
		"INSERT INTO cs_checkpoint (group_key, snapshot_id, page_no, next_token,"
		" pages, staged_ids, total_reported, rewalked, updated_epoch, sorted, last_id,"
		" read_first_epoch, read_last_epoch)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
		" ON CONFLICT (group_key) DO UPDATE SET snapshot_id = excluded.snapshot_id,"
		" page_no = excluded.page_no, next_token = excluded.next_token,"
		" pages = excluded.pages, staged_ids = excluded.staged_ids,"
		" total_reported = excluded.total_reported, rewalked = excluded.rewalked,"
		" updated_epoch = excluded.updated_epoch, sorted = excluded.sorted,"
		" last_id = excluded.last_id, read_first_epoch = excluded.read_first_epoch,"
		" read_last_epoch = excluded.read_last_epoch",
	[S_STAGE_INSERT] = "INSERT OR REPLACE INTO cs_stage (group_key, seq, n, ids) VALUES (?1, ?2, ?3, ?4)",
	[S_STAGE_CLEAR] = "DELETE FROM cs_stage WHERE group_key = ?1",
	[S_SNAP_INSERT] =
		"INSERT INTO cs_snapshot (run_id, group_key, status, started_at) VALUES (?1, ?2, 'running', ?3)",
	[S_SNAP_RESUMED] =
		"UPDATE cs_snapshot SET status = 'failed', finished_at = coalesce(finished_at, ?2),"
		" error_code = coalesce(error_code, 'Interrupted'),"
		" error_message = coalesce(error_message, 'crawl interrupted') || '; resumed by snapshot ' || ?3"
		" WHERE snapshot_id = ?1",
	[S_SNAP_FAIL] =
		"UPDATE cs_snapshot SET status = 'failed', finished_at = ?2, finished_epoch = ?3,"
		" pages = ?4, total_reported = ?5, error_code = ?6, error_message = ?7, request_id = ?8,"
		" read_first_epoch = ?9, read_last_epoch = ?10 WHERE snapshot_id = ?1",
	[S_SNAP_COMPLETE] =
		"UPDATE cs_snapshot SET status = 'complete', finished_at = ?2, finished_epoch = ?3,"
		" pages = ?4, client_count = ?5, total_reported = ?6, consistent = ?7, added = ?8,"
		" removed = ?9, read_first_epoch = ?10, read_last_epoch = ?11 WHERE snapshot_id = ?1",
	/* The staged IDs in byte order (SQLite sorts them, spilling to disk for huge groups)
	 * and the group's intervals in primary-key order: the two sides of the merge. */
	[S_MERGE_STAGED] =
		"SELECT j.value FROM cs_stage p, json_each(p.ids) j WHERE p.group_key = ?1"
		" ORDER BY j.value",
	/* the pages themselves, in crawl order: for walks whose IDs rose in byte order, and for
	 * a group's first snapshot, the IDs are decoded in C as they are read, with no sorter
	 * and no json_each */
	[S_STAGE_PAGES] = "SELECT ids FROM cs_stage WHERE group_key = ?1 ORDER BY seq",
	[S_MERGE_INTERVALS] =
		"SELECT client_id, from_snap, to_snap, first_seen FROM cs_interval"
		" WHERE group_key = ?1 ORDER BY client_id, from_snap",
	[S_INTERVAL_OPEN] =
		"INSERT INTO cs_interval (group_key, client_id, from_snap, to_snap, first_seen)"
		" VALUES (?1, ?2, ?3, NULL, ?4)",
	[S_INTERVAL_CLOSE] =
		"UPDATE cs_interval SET to_snap = ?4 WHERE group_key = ?1 AND client_id = ?2"
		" AND from_snap = ?3",
	[S_HAS_INTERVALS] = "SELECT count(*) FROM (SELECT 1 FROM cs_interval WHERE group_key = ?1 LIMIT 1)",
	[S_FIRST_SNAPSHOT] =
		"INSERT OR IGNORE INTO cs_interval (group_key, client_id, from_snap, to_snap, first_seen)"
		" SELECT ?1, j.value, ?2, NULL, ?3 FROM cs_stage p, json_each(p.ids) j"
		" WHERE p.group_key = ?1",
	[S_STAGED_TOTAL] = "SELECT coalesce(sum(n), 0) FROM cs_stage WHERE group_key = ?1",
	[S_RUN_PROGRESS] =
		"UPDATE cs_run SET groups_ok = ?2, groups_failed = ?3, requests = ?4, retries = ?5,"
		" throttled = ?6 WHERE run_id = ?1",
	/* as S_FIRST_SNAPSHOT, for a group some of whose clients prune has forgotten: they come
	 * back with the first-seen time they had */
	[S_FIRST_SNAPSHOT_FS] =
		"INSERT OR IGNORE INTO cs_interval (group_key, client_id, from_snap, to_snap, first_seen)"
		" SELECT ?1, j.value, ?2, NULL, coalesce((SELECT f.first_seen FROM cs_first_seen f"
		"  WHERE f.group_key = ?1 AND f.client_id = j.value), ?3)"
		" FROM cs_stage p, json_each(p.ids) j WHERE p.group_key = ?1",
	[S_FIRST_SEEN_LOOKUP] =
		"SELECT first_seen FROM cs_first_seen WHERE group_key = ?1 AND client_id = ?2",
	[S_HAS_FIRST_SEEN] =
		"SELECT count(*) FROM (SELECT 1 FROM cs_first_seen WHERE group_key = ?1 LIMIT 1)",
	[S_RATE_GET] = "SELECT rate FROM main.cs_rate WHERE host = ?1 AND updated_epoch >= ?2",
	[S_RATE_PUT] =
		"INSERT INTO main.cs_rate (host, rate, updated_epoch) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (host) DO UPDATE SET rate = excluded.rate,"
		" updated_epoch = excluded.updated_epoch",
};

struct store {
	sqlite3 *db;
	char *path;
	enum store_mode mode;
	int in_tx;
	int last_rc;            /* the extended result code of the last failure */
	sqlite3_stmt *stmts[S_COUNT];
	struct cs_buf page;     /* reused to build a page's JSON array */
	/* the finalize in progress (store_finalize_begin .. commit) */
	int fin_in_order;       /* the merge read the pages as staged (verified in order) */
	int fin_first_seen;     /* the group has clients in cs_first_seen */
	int64_t fin_now;
};

/* What an operator can do about a storage failure, in plain words. */
static const char *storage_advice(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return "; the disk is full: free space or move the database, then run "
		       "'credsync sync' again (interrupted crawls resume from their checkpoints)";
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return "; the database cannot be written: check that this user may write the file, "
		       "its -wal and -shm files and its directory";
	case SQLITE_IOERR:
		return "; the disk reported an I/O error: check the device and the file system";
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return "; the file is damaged: restore it from a backup or move it away and sync "
		       "into a new one";
	}
	return "";
}

static int db_error(struct store *st, struct cs_error *err, const char *what)
{
	st->last_rc = st->db ? sqlite3_extended_errcode(st->db) : SQLITE_CANTOPEN;
	return cs_error_set(err, CS_ERR_RUNTIME, "database %s: %s: %s%s", st->path, what,
			    st->db ? sqlite3_errmsg(st->db) : "cannot open",
			    storage_advice(st->last_rc));
}

const char *store_failure_code(const struct store *st)
{
	if (!st || !st->last_rc)
		return NULL;
	switch (st->last_rc & 0xff) {
	case SQLITE_FULL:
		return "DiskFull";
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return "ReadOnly";
	}
	return "StorageError";
}

/* Returns the prepared statement, reset and unbound, or NULL with err set. */
static sqlite3_stmt *stmt(struct store *st, enum stmt_id id, struct cs_error *err)
{
	sqlite3_stmt *s = st->stmts[id];

	if (!s) {
		if (sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s,
				       NULL) != SQLITE_OK) {
			db_error(st, err, "prepare");
			return NULL;
		}
		st->stmts[id] = s;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/* Steps a statement that returns no rows (or whose rows are ignored). */
static int step_done(struct store *st, sqlite3_stmt *s, struct cs_error *err)
{
	int rc = sqlite3_step(s);

	while (rc == SQLITE_ROW)
		rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return db_error(st, err, "write");
	return 0;
}

static int exec(struct store *st, const char *sql, struct cs_error *err)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		st->last_rc = sqlite3_extended_errcode(st->db);
		cs_error_set(err, CS_ERR_RUNTIME, "database %s: %s%s", st->path,
			     msg ? msg : sqlite3_errmsg(st->db), storage_advice(st->last_rc));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static void now_text(char out[21])
{
	util_format_utc(util_now_epoch(), out);
}

int store_begin(struct store *st, struct cs_error *err)
{
	if (st->in_tx)
		return 0;
	/* IMMEDIATE: take the write lock now, not half-way through a page */
	if (exec(st, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	st->in_tx = 1;
	return 0;
}

int store_commit(struct store *st, struct cs_error *err)
{
	if (!st->in_tx)
		return 0;
	if (exec(st, "COMMIT", err) < 0) {
		store_rollback(st);
		return -1;
	}
	st->in_tx = 0;
	return 0;
}

void store_rollback(struct store *st)
{
	if (!st || !st->in_tx)
		return;
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	st->in_tx = 0;
}

int store_schema_version(struct store *st)
{
	sqlite3_stmt *s = NULL;
	int v = -1;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

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

/*
 * Applies every pending migration in one transaction: a new file gets its whole schema or
 * nothing, so no reader ever sees half of it, and a kill mid-upgrade leaves the old version.
 */
static int migrate(struct store *st, struct cs_error *err)
{
	int have = store_schema_version(st), latest = 0, i;
	char pragma[64];

	for (i = 0; i < schema_migration_count; i++)
		if (schema_migrations[i].version > latest)
			latest = schema_migrations[i].version;
	if (have < 0)
		return db_error(st, err, "reading the schema version");
	if (have > latest)
		return cs_error_set(err, CS_ERR_RUNTIME,
				    "database %s: schema version %d is newer than this credsync knows (%d); "
				    "upgrade credsync", st->path, have, latest);
	if (have == latest)
		return 0;
	if (st->mode != STORE_WRITE && have == 0)
		return cs_error_set(err, CS_ERR_RUNTIME,
				    "database %s has no inventory yet; run 'credsync sync' first",
				    st->path);
	if (st->mode != STORE_WRITE)
		return cs_error_set(err, CS_ERR_RUNTIME,
				    "database %s: schema version %d is older than this credsync's; "
				    "run 'credsync sync' once to upgrade it", st->path, have);
	if (store_begin(st, err) < 0)
		return -1;
	for (i = 0; i < schema_migration_count; i++) {
		const struct schema_migration *m = &schema_migrations[i];

		if (m->version <= have)
			continue;
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", m->version);
		if (exec(st, m->sql, err) < 0 || exec(st, pragma, err) < 0) {
			store_rollback(st);
			cs_error_prefix(err, "migration %s: ", m->name);
			return -1;
		}
	}
	return store_commit(st, err);
}

/* Creates the file with mode 0600 before SQLite does (SQLite would use 0644), so the
 * inventory is private from the first byte; the -wal and -shm files copy this mode. */
static int precreate(const char *path, struct cs_error *err)
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

/* The tables a dry run writes, shadowing main's (SQLite resolves unqualified names in temp
 * first).  cs_group is copied so that group keys match the real intervals.  The columns
 * must be main's: tests/unit/test_store.c checks them against the migrated schema. */
static const char dryrun_sql[] =
	"CREATE TEMP TABLE cs_run (run_id INTEGER PRIMARY KEY, started_at TEXT, finished_at TEXT,"
	" status TEXT, groups_ok INTEGER, groups_failed INTEGER, requests INTEGER,"
	" retries INTEGER, throttled INTEGER, pid INTEGER);"
	"CREATE TEMP TABLE cs_group (group_key INTEGER PRIMARY KEY, instance_id TEXT NOT NULL,"
	" group_id TEXT NOT NULL, UNIQUE (instance_id, group_id));"
	"INSERT INTO temp.cs_group SELECT group_key, instance_id, group_id FROM main.cs_group;"
	"CREATE TEMP TABLE cs_snapshot (snapshot_id INTEGER PRIMARY KEY, run_id INTEGER,"
	" group_key INTEGER, status TEXT, started_at TEXT, finished_at TEXT,"
	" finished_epoch INTEGER, pages INTEGER, client_count INTEGER, total_reported INTEGER,"
	" consistent INTEGER, added INTEGER, removed INTEGER, error_code TEXT,"
	" error_message TEXT, request_id TEXT, read_first_epoch INTEGER, read_last_epoch INTEGER,"
	" identity TEXT);"
	"CREATE TEMP TABLE cs_stage (group_key INTEGER NOT NULL, seq INTEGER NOT NULL,"
	" n INTEGER NOT NULL, ids TEXT NOT NULL, PRIMARY KEY (group_key, seq));"
	"CREATE TEMP TABLE cs_checkpoint (group_key INTEGER PRIMARY KEY, snapshot_id INTEGER,"
	" page_no INTEGER, next_token TEXT, pages INTEGER, staged_ids INTEGER,"
	" total_reported INTEGER, rewalked INTEGER, updated_epoch INTEGER, sorted INTEGER,"
	" last_id TEXT, read_first_epoch INTEGER, read_last_epoch INTEGER);";

/*
 * A symlink in a world-writable directory (like /tmp) may have been planted by another user
 * to make us write the inventory where they can read it, or over a file of ours.  The sticky
 * bit does not help: the link is theirs.  We warn rather than refuse, since an operator may
 * have made it on purpose.
 */
static void warn_symlink(const char *path)
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

enum file_kind {
	FILE_NEW,       /* missing, empty, or SQLite without a single schema object */
	FILE_OURS,      /* credsync's application_id */
	FILE_OURS_OLD,  /* a credsync database from before the application_id (version 1) */
	FILE_FOREIGN,   /* anything else: never written */
};

static int classify(const char *path, const char *shown, enum file_kind *kind,
		    struct cs_error *err);

int store_locate(const char *path, char **real, struct cs_error *err)
{
	enum file_kind kind;
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
		if (classify(out, path, &kind, err) < 0) {
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
static int classify(const char *path, const char *shown, enum file_kind *kind,
		    struct cs_error *err)
{
	static const char *const v1_tables = "cs_checkpoint,cs_group,cs_interval,cs_run,cs_snapshot,cs_stage";
	struct cs_buf tables = CS_BUF_INIT;
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int appid, version, objects = 0, rc, ret = -1;
	struct stat sb;

	*kind = FILE_NEW;
	if (stat(path, &sb) != 0 || sb.st_size == 0)
		return 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto sqlfail;
	appid = pragma_int(db, "PRAGMA application_id");
	version = pragma_int(db, "PRAGMA user_version");
	if (appid == -1 || version == -1)
		goto sqlfail;
	if ((unsigned)appid == CREDSYNC_APPLICATION_ID) {
		*kind = FILE_OURS;
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
		*kind = FILE_NEW;
	else if (appid == 0 && version == 1 && !strcmp(buf_str(&tables), v1_tables))
		*kind = FILE_OURS_OLD;
	else {
		*kind = FILE_FOREIGN;
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
static int check_writable(const char *real, const char *shown, struct cs_error *err)
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

int store_open(struct store **out, const char *path, enum store_mode mode, struct cs_error *err)
{
	struct store *st = NULL;
	enum file_kind kind = FILE_NEW;
	char *real = NULL;
	int flags, rc;
	struct stat sb;
	int exists;

	*out = NULL;
	if (!path && mode != STORE_DRYRUN)
		return cs_error_set(err, CS_ERR_RUNTIME, "no database path");
	st = calloc(1, sizeof(*st));
	if (!st || !(st->path = strdup(path ? path : ":memory:"))) {
		free(st);
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	}
	st->mode = mode;

	/* a reader or a dry run of a database that is not there has nothing to resolve */
	if (path && (mode == STORE_WRITE || stat(path, &sb) == 0)) {
		warn_symlink(path);
		if (store_locate(path, &real, err) < 0)
			goto fail;
	}
	exists = real && stat(real, &sb) == 0;
	if (mode == STORE_READ && !exists) {
		cs_error_set(err, CS_ERR_RUNTIME, "database %s: not found (run 'credsync sync' first)",
			     path);
		goto fail;
	}
	if (exists && classify(real, path, &kind, err) < 0)
		goto fail;
	if (mode == STORE_WRITE && (check_writable(real, path, err) < 0 || precreate(real, err) < 0)) {
		st->last_rc = SQLITE_READONLY;
		goto fail;
	}

	if (mode == STORE_WRITE)
		flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	else
		flags = SQLITE_OPEN_READONLY;
	flags |= SQLITE_OPEN_NOMUTEX;
	if (mode == STORE_DRYRUN && (!exists || kind == FILE_NEW))
		rc = sqlite3_open_v2(":memory:", &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY,
				     NULL);
	else
		rc = sqlite3_open_v2(real, &st->db, flags, NULL);
	if (rc != SQLITE_OK) {
		db_error(st, err, "open");
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	/* Readers wait for a writer's commit rather than failing at once. */
	sqlite3_busy_timeout(st->db, 10000);
	if (exec(st, "PRAGMA cache_size = -2048", err) < 0 ||
	    exec(st, "PRAGMA temp_store = FILE", err) < 0)
		goto fail;
	/* the schema first, in one transaction, then WAL: a kill in between leaves a complete
	 * database in rollback mode, never a WAL-mode file without tables */
	if (mode == STORE_DRYRUN && (!exists || kind == FILE_NEW)) {
		st->mode = STORE_WRITE; /* migrate the in-memory database */
		if (migrate(st, err) < 0)
			goto fail;
		st->mode = STORE_DRYRUN;
	} else if (migrate(st, err) < 0) {
		goto fail;
	}
	/*
	 * WAL: readers (diff, sqlite3 shells) never block the sync, and a commit per page is an
	 * append.  synchronous=NORMAL in WAL loses nothing on a process crash and at most the
	 * last commits on power loss, which a resumed crawl fetches again.  A 2 MiB page cache
	 * keeps memory flat whatever the inventory's size.
	 */
	if (mode == STORE_WRITE) {
		if (exec(st, "PRAGMA journal_mode = WAL", err) < 0 ||
		    exec(st, "PRAGMA synchronous = NORMAL", err) < 0 ||
		    exec(st, "PRAGMA wal_autocheckpoint = 10000", err) < 0 ||
		    exec(st, "PRAGMA journal_size_limit = 16777216", err) < 0)
			goto fail;
	}
	if (mode == STORE_DRYRUN && exec(st, dryrun_sql, err) < 0)
		goto fail;
	free(real);
	*out = st;
	return 0;
fail:
	free(real);
	store_close(st);
	return -1;
}

int store_quick_check(struct store *st, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	struct cs_buf found = CS_BUF_INIT;
	int rc, n = 0;

	if (sqlite3_prepare_v2(st->db, "PRAGMA quick_check(5)", -1, &s, NULL) != SQLITE_OK)
		goto damaged;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *line = (const char *)sqlite3_column_text(s, 0);

		if (line && !strcmp(line, "ok"))
			continue;
		if (n++)
			buf_puts(&found, "; ");
		buf_puts(&found, line ? line : "?");
	}
	if (rc != SQLITE_DONE)
		goto damaged;
	sqlite3_finalize(s);
	if (!n) {
		buf_release(&found);
		return 0;
	}
	cs_error_set(err, CS_ERR_RUNTIME,
		     "database %s is damaged (PRAGMA quick_check: %.400s); nothing was fetched: "
		     "restore it from a backup, or move it away and sync into a new file",
		     st->path, buf_str(&found));
	buf_release(&found);
	st->last_rc = SQLITE_CORRUPT;
	return -1;
damaged:
	st->last_rc = sqlite3_extended_errcode(st->db);
	cs_error_set(err, CS_ERR_RUNTIME,
		     "database %s is damaged (PRAGMA quick_check: %s); nothing was fetched: restore "
		     "it from a backup, or move it away and sync into a new file", st->path,
		     sqlite3_errmsg(st->db));
	sqlite3_finalize(s);
	buf_release(&found);
	return -1;
}

/* The WAL size worth a warning: 64 MiB, or $CREDSYNC_WAL_WARN_MIB (for tests and for
 * operators who want to hear sooner). */
static off_t wal_warn_bytes(void)
{
	const char *env = getenv("CREDSYNC_WAL_WARN_MIB");
	long mib = env && *env ? strtol(env, NULL, 10) : 0;

	return mib > 0 ? (off_t)mib << 20 : STORE_WAL_WARN_BYTES;
}

int store_rate_get(struct store *st, const char *host, int64_t max_age_s, double *rate,
		   struct cs_error *err)
{
	sqlite3_stmt *s = stmt(st, S_RATE_GET, err);
	int rc;

	*rate = 0;
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, util_now_epoch() - max_age_s);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*rate = sqlite3_column_double(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(st, err, "rate lookup");
	return 0;
}

int store_rate_put(struct store *st, const char *host, double rate, struct cs_error *err)
{
	sqlite3_stmt *s;

	if (st->mode != STORE_WRITE)
		return 0;
	if (!(s = stmt(st, S_RATE_PUT, err)))
		return -1;
	sqlite3_bind_text(s, 1, host, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 2, rate);
	sqlite3_bind_int64(s, 3, util_now_epoch());
	return step_done(st, s, err);
}

int store_wal_checkpoint(struct store *st, int truncate, struct cs_error *err)
{
	int log = 0, done = 0, rc;
	char wal[4200];
	struct stat sb;

	if (st->mode != STORE_WRITE)
		return 0;
	rc = sqlite3_wal_checkpoint_v2(st->db, NULL,
				       truncate ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE,
				       &log, &done);
	/* a reader in the way (BUSY) only delays the copy; it is no failure */
	if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
		return db_error(st, err, "checkpoint");
	snprintf(wal, sizeof(wal), "%s-wal", sqlite3_db_filename(st->db, "main"));
	if (stat(wal, &sb) == 0 && sb.st_size > wal_warn_bytes() && log > done)
		log_msg(LOG_WARN, NULL,
			"database %s: the write-ahead log is %jd MiB and cannot shrink: another "
			"connection (a long query in sqlite3, or a reader left open) holds an old "
			"read snapshot; close it and the next checkpoint copies %d page(s) back",
			st->path, (intmax_t)(sb.st_size >> 20), log - done);
	return 0;
}

void store_close(struct store *st)
{
	int i;

	if (!st)
		return;
	store_rollback(st);
	for (i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmts[i]);
	sqlite3_close(st->db);
	buf_release(&st->page);
	free(st->path);
	free(st);
}

const char *store_path(const struct store *st)
{
	return st->path;
}

int store_recover(struct store *st, int64_t *recovered, struct cs_error *err)
{
	static const char *const sql[] = {
		"UPDATE cs_snapshot SET status = 'failed', finished_at = ?1,"
		" error_code = 'Interrupted',"
		" error_message = 'the run was stopped before this crawl finished'"
		" WHERE status = 'running'",
		/* the counts are what the run kept as it went (store_run_progress) */
		"UPDATE cs_run SET status = 'interrupted', finished_at = ?1 WHERE status = 'running'",
	};
	char now[21];
	size_t i;

	*recovered = 0;
	now_text(now);
	if (store_begin(st, err) < 0)
		return -1;
	for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		sqlite3_stmt *s = NULL;

		if (sqlite3_prepare_v2(st->db, sql[i], -1, &s, NULL) != SQLITE_OK) {
			db_error(st, err, "recover");
			store_rollback(st);
			return -1;
		}
		sqlite3_bind_text(s, 1, now, -1, SQLITE_TRANSIENT);
		if (step_done(st, s, err) < 0) {
			sqlite3_finalize(s);
			store_rollback(st);
			return -1;
		}
		if (i == 0)
			*recovered = sqlite3_changes(st->db);
		sqlite3_finalize(s);
	}
	return store_commit(st, err);
}

int store_run_begin(struct store *st, int64_t *run_id, struct cs_error *err)
{
	sqlite3_stmt *s = stmt(st, S_RUN_INSERT, err);
	char now[21];

	if (!s)
		return -1;
	now_text(now);
	sqlite3_bind_text(s, 1, now, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)getpid());
	if (step_done(st, s, err) < 0)
		return -1;
	*run_id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int store_run_finish(struct store *st, int64_t run_id, const struct store_run_stats *r,
		     struct cs_error *err)
{
	sqlite3_stmt *s = stmt(st, S_RUN_FINISH, err);
	char now[21];

	if (!s)
		return -1;
	now_text(now);
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_text(s, 2, now, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, r->status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, r->groups_ok);
	sqlite3_bind_int64(s, 5, r->groups_failed);
	sqlite3_bind_int64(s, 6, r->requests);
	sqlite3_bind_int64(s, 7, r->retries);
	sqlite3_bind_int64(s, 8, r->throttled);
	return step_done(st, s, err);
}

int store_run_progress(struct store *st, int64_t run_id, const struct store_run_stats *r,
		       struct cs_error *err)
{
	sqlite3_stmt *s = stmt(st, S_RUN_PROGRESS, err);

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_int64(s, 2, r->groups_ok);
	sqlite3_bind_int64(s, 3, r->groups_failed);
	sqlite3_bind_int64(s, 4, r->requests);
	sqlite3_bind_int64(s, 5, r->retries);
	sqlite3_bind_int64(s, 6, r->throttled);
	return step_done(st, s, err);
}

static int group_key(struct store *st, const char *instance_id, const char *group_id,
		     int64_t *key, struct cs_error *err)
{
	sqlite3_stmt *s = stmt(st, S_GROUP_INSERT, err);
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, instance_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, group_id, -1, SQLITE_STATIC);
	if (step_done(st, s, err) < 0)
		return -1;
	if (!(s = stmt(st, S_GROUP_SELECT, err)))
		return -1;
	sqlite3_bind_text(s, 1, instance_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, group_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return db_error(st, err, "group lookup");
	}
	*key = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return 0;
}

static void crawl_state_fresh(struct store_crawl_state *cs)
{
	free(cs->next_token);
	buf_release(&cs->last_id);
	memset(cs, 0, sizeof(*cs));
	cs->page_no = 1;
	cs->total_reported = -1;
	cs->sorted = 1;
}

/* Loads the group's checkpoint into snap->cs; *found is 0 when there is none. */
static int checkpoint_load(struct store *st, struct store_snap *snap, int64_t *old_snapshot,
			   int64_t *updated, int *found, struct cs_error *err)
{
	sqlite3_stmt *s = stmt(st, S_CKPT_SELECT, err);
	int rc;

	*found = 0;
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, snap->group_key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		struct store_crawl_state *cs = &snap->cs;
		const unsigned char *tok = sqlite3_column_text(s, 2);

		*found = 1;
		*old_snapshot = sqlite3_column_int64(s, 0);
		cs->page_no = sqlite3_column_int64(s, 1);
		cs->next_token = tok ? strdup((const char *)tok) : NULL;
		cs->pages = sqlite3_column_int64(s, 3);
		cs->staged_ids = sqlite3_column_int64(s, 4);
		cs->total_reported = sqlite3_column_type(s, 5) == SQLITE_NULL
					     ? -1 : sqlite3_column_int64(s, 5);
		cs->rewalked = sqlite3_column_int(s, 6);
		*updated = sqlite3_column_int64(s, 7);
		cs->sorted = sqlite3_column_int(s, 8);
		buf_reset(&cs->last_id);
		buf_append(&cs->last_id, sqlite3_column_blob(s, 9), (size_t)sqlite3_column_bytes(s, 9));
		cs->read_first = sqlite3_column_int64(s, 10);
		cs->read_last = sqlite3_column_int64(s, 11);
		if (tok && !cs->next_token) {
			sqlite3_reset(s);
			return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		}
	} else if (rc != SQLITE_DONE) {
		sqlite3_reset(s);
		return db_error(st, err, "checkpoint lookup");
	}
	sqlite3_reset(s);
	return 0;
}

static int drop_crawl(struct store *st, int64_t group, struct cs_error *err)
{
	sqlite3_stmt *s;

	if (!(s = stmt(st, S_STAGE_CLEAR, err)))
		return -1;
	sqlite3_bind_int64(s, 1, group);
	if (step_done(st, s, err) < 0)
		return -1;
	if (!(s = stmt(st, S_CKPT_DELETE, err)))
		return -1;
	sqlite3_bind_int64(s, 1, group);
	return step_done(st, s, err);
}

int store_snapshot_begin(struct store *st, int64_t run_id, const char *instance_id,
			 const char *group_id, const struct store_resume *policy,
			 struct store_snap *snap, struct cs_error *err)
{
	int64_t now_epoch = util_now_epoch();
	int64_t old = 0, updated = 0;
	int found = 0;
	sqlite3_stmt *s;
	char now[21];

	memset(snap, 0, sizeof(*snap));
	crawl_state_fresh(&snap->cs);
	now_text(now);
	if (store_begin(st, err) < 0)
		return -1;
	if (group_key(st, instance_id, group_id, &snap->group_key, err) < 0 ||
	    checkpoint_load(st, snap, &old, &updated, &found, err) < 0)
		goto fail;
	if (found) {
		/* a walk that had ended is finalized only while what it read is recent: data read
		 * long ago would be dated as read then, but it is no longer worth an inventory */
		if (policy->restart)
			snap->discarded_why = "--restart";
		else if (now_epoch - updated > policy->max_age_s)
			snap->discarded_why = "too old";
		else if (snap->cs.page_no == 0 &&
			 now_epoch - snap->cs.read_last > policy->finalize_max_age_s)
			snap->discarded_why = "its pages are stale (finalize_max_age)";
		if (snap->discarded_why) {
			snap->discarded_from = old;
			crawl_state_fresh(&snap->cs);
			found = 0;
		}
	}
	/* a fresh crawl starts from nothing: no checkpoint, and no pages a finished or
	 * abandoned crawl left behind */
	if (!found && drop_crawl(st, snap->group_key, err) < 0)
		goto fail;
	if (!(s = stmt(st, S_SNAP_INSERT, err)))
		goto fail;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_int64(s, 2, snap->group_key);
	sqlite3_bind_text(s, 3, now, -1, SQLITE_TRANSIENT);
	if (step_done(st, s, err) < 0)
		goto fail;
	snap->snapshot_id = sqlite3_last_insert_rowid(st->db);
	if (found) {
		snap->resumed_from = old;
		if (!(s = stmt(st, S_SNAP_RESUMED, err)))
			goto fail;
		sqlite3_bind_int64(s, 1, old);
		sqlite3_bind_text(s, 2, now, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 3, snap->snapshot_id);
		if (step_done(st, s, err) < 0)
			goto fail;
	}
	if (store_checkpoint(st, snap, err) < 0 || store_commit(st, err) < 0)
		goto fail;
	return 0;
fail:
	store_rollback(st);
	store_snap_release(snap);
	return -1;
}

void store_snap_release(struct store_snap *snap)
{
	if (!snap)
		return;
	free(snap->cs.next_token);
	snap->cs.next_token = NULL;
	buf_release(&snap->cs.last_id);
}

/* memcmp order, as SQLite's BINARY collation. */
static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : (alen < blen ? -1 : alen > blen);
}

int store_stage_page(struct store *st, struct store_snap *snap, const char *const *ids,
		     const size_t *lens, size_t n, struct cs_error *err)
{
	struct store_crawl_state *cs = &snap->cs;
	sqlite3_stmt *s = stmt(st, S_STAGE_INSERT, err);
	size_t i;

	if (!s)
		return -1;
	buf_reset(&st->page);
	buf_putc(&st->page, '[');
	for (i = 0; i < n; i++) {
		const char *prev = i ? ids[i - 1] : buf_str(&cs->last_id);
		size_t plen = i ? lens[i - 1] : cs->last_id.len;

		/* the service serves sorted pages in practice; when it does, finalizing skips
		 * the sort (any ID out of order, or repeated, turns that off for the walk) */
		if (cs->sorted && (i || cs->staged_ids) &&
		    bytes_cmp(prev, plen, ids[i], lens[i]) >= 0)
			cs->sorted = 0;
		if (i)
			buf_putc(&st->page, ',');
		buf_json_string(&st->page, ids[i], lens[i]);
	}
	buf_putc(&st->page, ']');
	if (n) {
		buf_reset(&cs->last_id);
		buf_append(&cs->last_id, ids[n - 1], lens[n - 1]);
	}
	if (st->page.oom)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	sqlite3_bind_int64(s, 1, snap->group_key);
	sqlite3_bind_int64(s, 2, snap->cs.pages);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)n);
	sqlite3_bind_text(s, 4, st->page.data, (int)st->page.len, SQLITE_STATIC);
	return step_done(st, s, err);
}

int store_checkpoint(struct store *st, const struct store_snap *snap, struct cs_error *err)
{
	sqlite3_stmt *s = stmt(st, S_CKPT_UPSERT, err);
	const struct store_crawl_state *cs = &snap->cs;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, snap->group_key);
	sqlite3_bind_int64(s, 2, snap->snapshot_id);
	sqlite3_bind_int64(s, 3, cs->page_no);
	if (cs->next_token)
		sqlite3_bind_text(s, 4, cs->next_token, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, cs->pages);
	sqlite3_bind_int64(s, 6, cs->staged_ids);
	if (cs->total_reported >= 0)
		sqlite3_bind_int64(s, 7, cs->total_reported);
	sqlite3_bind_int(s, 8, cs->rewalked);
	sqlite3_bind_int64(s, 9, util_now_epoch());
	sqlite3_bind_int(s, 10, cs->sorted);
	if (cs->last_id.len)
		sqlite3_bind_text(s, 11, cs->last_id.data, (int)cs->last_id.len, SQLITE_STATIC);
	if (cs->read_first)
		sqlite3_bind_int64(s, 12, cs->read_first);
	if (cs->read_last)
		sqlite3_bind_int64(s, 13, cs->read_last);
	return step_done(st, s, err);
}

int store_stage_clear(struct store *st, const struct store_snap *snap, struct cs_error *err)
{
	sqlite3_stmt *s = stmt(st, S_STAGE_CLEAR, err);

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, snap->group_key);
	return step_done(st, s, err);
}

/* One side of the merge: a statement stepped row by row with its current key copied, since
 * SQLite's column pointers die at the next step. */
struct cursor {
	sqlite3_stmt *s;
	int done;
	struct cs_buf key;
	int pages;               /* s yields staged pages (JSON arrays), decoded here */
	const char *p, *end;     /* the rest of the current page, while pages is set */
};

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * Decodes the next string of a staged page, a JSON array as buf_json_string writes it, into
 * key.  Returns 1, 0 at the end of the array, or -1 when the text is not such an array
 * (it always is: we wrote it).
 */
static int page_next_id(const char **pp, const char *end, struct cs_buf *key)
{
	const char *p = *pp, *q;

	while (p < end && (*p == '[' || *p == ',' || *p == ' '))
		p++;
	if (p >= end || *p == ']') {
		*pp = end;
		return 0;
	}
	if (*p++ != '"')
		return -1;
	buf_reset(key);
	for (;;) {
		for (q = p; q < end && *q != '"' && *q != '\\'; q++)
			;
		buf_append(key, p, (size_t)(q - p));
		if (q >= end)
			return -1;
		if (*q == '"') {
			*pp = q + 1;
			return key->oom ? -1 : 1;
		}
		if (q + 1 >= end)
			return -1;
		switch (q[1]) {
		case '"': buf_putc(key, '"'); break;
		case '\\': buf_putc(key, '\\'); break;
		case '/': buf_putc(key, '/'); break;
		case 'n': buf_putc(key, '\n'); break;
		case 't': buf_putc(key, '\t'); break;
		case 'r': buf_putc(key, '\r'); break;
		case 'b': buf_putc(key, '\b'); break;
		case 'f': buf_putc(key, '\f'); break;
		case 'u': {
			int h0, h1, h2, h3;

			/* buf_json_string escapes only bytes below 0x20 and 0x7f this way */
			if (q + 5 >= end || (h0 = hexval(q[2])) != 0 || (h1 = hexval(q[3])) != 0 ||
			    (h2 = hexval(q[4])) < 0 || (h3 = hexval(q[5])) < 0)
				return -1;
			buf_putc(key, (char)(h2 << 4 | h3));
			q += 4;
			break;
		}
		default:
			return -1;
		}
		p = q + 2;
	}
}

static int cursor_next(struct store *st, struct cursor *c, struct cs_error *err)
{
	int rc;

	while (c->pages) {
		rc = c->p ? page_next_id(&c->p, c->end, &c->key) : 0;
		if (rc > 0)
			return 0;
		if (rc < 0)
			return cs_error_set(err, CS_ERR_RUNTIME, "database %s: a staged page is corrupt",
					    st->path);
		rc = sqlite3_step(c->s);
		if (rc == SQLITE_DONE) {
			c->done = 1;
			return 0;
		}
		if (rc != SQLITE_ROW)
			return db_error(st, err, "finalize");
		c->p = (const char *)sqlite3_column_text(c->s, 0);
		c->end = c->p + sqlite3_column_bytes(c->s, 0);
	}
	rc = sqlite3_step(c->s);
	if (rc == SQLITE_DONE) {
		c->done = 1;
		return 0;
	}
	if (rc != SQLITE_ROW)
		return db_error(st, err, "finalize");
	buf_reset(&c->key);
	buf_append(&c->key, sqlite3_column_text(c->s, 0), (size_t)sqlite3_column_bytes(c->s, 0));
	return c->key.oom ? cs_error_set(err, CS_ERR_NOMEM, "out of memory") : 0;
}

/* Byte order, as SQLite's BINARY collation (memcmp, then the shorter first). */
static int key_cmp(const struct cs_buf *a, const struct cs_buf *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(buf_str(a), buf_str(b), n);

	return c ? c : (a->len < b->len ? -1 : a->len > b->len);
}

/* The intervals of one client, gathered from consecutive rows of the interval cursor. */
struct client_history {
	struct cs_buf id;
	int present;          /* it has an interval open before this snapshot */
	int64_t open_from;    /* that interval's from_snap */
	int64_t first_seen;
	int any;              /* it has any interval at all */
};

static int history_next(struct store *st, struct cursor *c, int64_t ours,
			struct client_history *h, struct cs_error *err)
{
	h->present = h->any = 0;
	h->first_seen = INT64_MAX;
	buf_reset(&h->id);
	while (!c->done) {
		int64_t from = sqlite3_column_int64(c->s, 1);

		if (h->any && key_cmp(&c->key, &h->id) != 0)
			break;
		/* rows this merge inserted may or may not be visited: they are ours, skip them */
		if (from != ours) {
			if (!h->any) {
				buf_append(&h->id, c->key.data, c->key.len);
				h->any = 1;
			}
			if (sqlite3_column_int64(c->s, 3) < h->first_seen)
				h->first_seen = sqlite3_column_int64(c->s, 3);
			if (sqlite3_column_type(c->s, 2) == SQLITE_NULL) {
				h->present = 1;
				h->open_from = from;
			}
		}
		if (cursor_next(st, c, err) < 0)
			return -1;
	}
	return h->id.oom ? cs_error_set(err, CS_ERR_NOMEM, "out of memory") : 0;
}

static int interval_open(struct store *st, const struct store_snap *snap, const struct cs_buf *id,
			 int64_t first_seen, struct cs_error *err)
{
	sqlite3_stmt *s = stmt(st, S_INTERVAL_OPEN, err);

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, snap->group_key);
	sqlite3_bind_text(s, 2, id->data, (int)id->len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, snap->snapshot_id);
	sqlite3_bind_int64(s, 4, first_seen);
	return step_done(st, s, err);
}

static int interval_close(struct store *st, const struct store_snap *snap,
			  const struct client_history *h, struct cs_error *err)
{
	sqlite3_stmt *s = stmt(st, S_INTERVAL_CLOSE, err);

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, snap->group_key);
	sqlite3_bind_text(s, 2, h->id.data, (int)h->id.len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, h->open_from);
	sqlite3_bind_int64(s, 4, snap->snapshot_id);
	return step_done(st, s, err);
}

/*
 * The merge: both sides ascend in byte order.  A staged ID without an open interval opens
 * one (keeping the client's first_seen if it was here before); an open interval without a
 * staged ID is closed.  Adjacent equal staged IDs are duplicates.  In a dry run the same walk
 * only counts.
 */
/* The first-seen time of a client with no interval in the group: kept in cs_first_seen if
 * prune forgot its intervals, else now. */
static int first_seen_of(struct store *st, const struct store_snap *snap, const struct cs_buf *id,
			 int64_t now, int64_t *out, struct cs_error *err)
{
	sqlite3_stmt *s;
	int rc;

	*out = now;
	if (!st->fin_first_seen)
		return 0;
	if (!(s = stmt(st, S_FIRST_SEEN_LOOKUP, err)))
		return -1;
	sqlite3_bind_int64(s, 1, snap->group_key);
	sqlite3_bind_text(s, 2, id->data, (int)id->len, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(st, err, "first-seen lookup");
	return 0;
}

/* close 0 keeps the previous members this walk lacks (counted in t->carried). */
static int merge(struct store *st, const struct store_snap *snap, int in_order, int64_t now,
		 int close, struct store_tally *t, struct cs_error *err)
{
	struct cursor a = { NULL, 0, CS_BUF_INIT, in_order, NULL, NULL };
	struct cursor b = { NULL, 0, CS_BUF_INIT, 0, NULL, NULL };
	struct client_history h = { CS_BUF_INIT, 0, 0, 0, 0 };
	struct cs_buf prev = CS_BUF_INIT;
	int write = st->mode != STORE_DRYRUN, ret = -1;
	/* a dry run inserts nothing, and its snapshot ids are not the database's */
	int64_t ours = write ? snap->snapshot_id : -1;

	memset(t, 0, sizeof(*t));
	if (!(a.s = stmt(st, in_order ? S_STAGE_PAGES : S_MERGE_STAGED, err)))
		goto out;
	sqlite3_bind_int64(a.s, 1, snap->group_key);
	/* a second prepared statement can be stepped at the same time as the first */
	if (sqlite3_prepare_v2(st->db, stmt_sql[S_MERGE_INTERVALS], -1, &b.s, NULL) != SQLITE_OK) {
		db_error(st, err, "finalize");
		goto out;
	}
	sqlite3_bind_int64(b.s, 1, snap->group_key);
	if (cursor_next(st, &a, err) < 0 || cursor_next(st, &b, err) < 0 ||
	    history_next(st, &b, ours, &h, err) < 0)
		goto out;
	while (!a.done || h.any) {
		int c = a.done ? 1 : !h.any ? -1 : key_cmp(&a.key, &h.id);

		if (c <= 0) {
			/* a staged ID: new to the group, back again, or still here */
			if (c < 0 || !h.present) {
				int64_t seen = h.first_seen;

				t->added++;
				if (write && c < 0 && first_seen_of(st, snap, &a.key, now, &seen, err) < 0)
					goto out;
				if (write && interval_open(st, snap, &a.key, seen, err) < 0)
					goto out;
			}
			t->distinct++;
			/* skip its duplicates */
			buf_reset(&prev);
			buf_append(&prev, a.key.data, a.key.len);
			for (;;) {
				if (cursor_next(st, &a, err) < 0)
					goto out;
				if (a.done || key_cmp(&a.key, &prev) != 0)
					break;
				t->duplicates++;
			}
			/* read as staged, the order is our claim, not SQLite's: check it */
			if (in_order && !a.done && key_cmp(&a.key, &prev) < 0) {
				ret = 1;
				goto out;
			}
			if (c == 0 && history_next(st, &b, ours, &h, err) < 0)
				goto out;
		} else {
			/* a client of the group that was not staged: gone, if it was here */
			if (h.present && !close) {
				t->carried++;
			} else if (h.present) {
				t->removed++;
				if (write && interval_close(st, snap, &h, err) < 0)
					goto out;
			}
			if (history_next(st, &b, ours, &h, err) < 0)
				goto out;
		}
	}
	t->members = t->distinct + t->carried;
	ret = 0;
out:
	if (a.s)
		sqlite3_reset(a.s);
	sqlite3_finalize(b.s);
	buf_release(&a.key);
	buf_release(&b.key);
	buf_release(&h.id);
	buf_release(&prev);
	return ret;
}

static int count_query(struct store *st, enum stmt_id id, int64_t group, int64_t *out,
		       struct cs_error *err)
{
	sqlite3_stmt *s = stmt(st, id, err);
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, group);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return db_error(st, err, "count");
	}
	*out = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return 0;
}

/* The group has no interval yet: nothing can be removed or re-added, so the merge reduces to
 * one INSERT ... SELECT over the staged pages (OR IGNORE drops the duplicates): the insert
 * cursor stays open inside SQLite, cheaper than a statement stepped per ID from C. */
static int first_snapshot(struct store *st, const struct store_snap *snap, int64_t now,
			  struct store_tally *t, struct cs_error *err)
{
	sqlite3_stmt *s = stmt(st, st->fin_first_seen ? S_FIRST_SNAPSHOT_FS : S_FIRST_SNAPSHOT, err);
	int64_t staged = 0;

	memset(t, 0, sizeof(*t));
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, snap->group_key);
	sqlite3_bind_int64(s, 2, snap->snapshot_id);
	sqlite3_bind_int64(s, 3, now);
	if (step_done(st, s, err) < 0)
		return -1;
	t->distinct = t->added = t->members = sqlite3_changes(st->db);
	if (count_query(st, S_STAGED_TOTAL, snap->group_key, &staged, err) < 0)
		return -1;
	t->duplicates = staged - t->distinct;
	return 0;
}

/* Merges in the order the pages claim, or sorted when they do not keep that claim. */
static int finalize_merge(struct store *st, const struct store_snap *snap, int close,
			  struct store_tally *t, struct cs_error *err)
{
	int64_t any = 0;
	int rc;

	if (count_query(st, S_HAS_INTERVALS, snap->group_key, &any, err) < 0)
		return -1;
	if (!any && st->mode != STORE_DRYRUN)
		return first_snapshot(st, snap, st->fin_now, t, err);
	rc = merge(st, snap, st->fin_in_order, st->fin_now, close, t, err);
	if (rc > 0) {
		/* not in order after all: undo and merge again with a sort */
		store_rollback(st);
		st->fin_in_order = 0;
		if (store_begin(st, err) < 0)
			return -1;
		rc = merge(st, snap, 0, st->fin_now, close, t, err);
	}
	return rc < 0 ? -1 : 0;
}

int store_finalize_begin(struct store *st, const struct store_snap *snap, int keep_absent,
			 struct store_tally *t, struct cs_error *err)
{
	int64_t fs = 0;

	memset(t, 0, sizeof(*t));
	st->fin_now = util_now_epoch();
	st->fin_in_order = snap->cs.sorted;
	if (store_begin(st, err) < 0)
		return -1;
	if (count_query(st, S_HAS_FIRST_SEEN, snap->group_key, &fs, err) < 0)
		goto fail;
	st->fin_first_seen = fs > 0;
	if (finalize_merge(st, snap, !keep_absent, t, err) < 0)
		goto fail;
	return 0;
fail:
	store_rollback(st);
	return -1;
}

void store_finalize_abort(struct store *st)
{
	store_rollback(st);
}

int store_finalize_commit(struct store *st, const struct store_snap *snap,
			  enum store_verdict v, struct store_tally *t, struct cs_error *err)
{
	int64_t now = st->fin_now, read_last = snap->cs.read_last ? snap->cs.read_last : now;
	char nowt[21];
	sqlite3_stmt *s;

	util_format_utc(now, nowt);
	if (!st->in_tx)
		return cs_error_set(err, CS_ERR_RUNTIME, "database %s: finalize without begin",
				    st->path);
	if (!(s = stmt(st, S_SNAP_COMPLETE, err)))
		goto fail;
	sqlite3_bind_int64(s, 1, snap->snapshot_id);
	sqlite3_bind_text(s, 2, nowt, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_int64(s, 4, snap->cs.pages);
	sqlite3_bind_int64(s, 5, t->members);
	if (snap->cs.total_reported >= 0)
		sqlite3_bind_int64(s, 6, snap->cs.total_reported);
	sqlite3_bind_int(s, 7, v == STORE_CONSISTENT);
	sqlite3_bind_int64(s, 8, t->added);
	sqlite3_bind_int64(s, 9, t->removed);
	sqlite3_bind_int64(s, 10, snap->cs.read_first ? snap->cs.read_first : read_last);
	sqlite3_bind_int64(s, 11, read_last);
	/* The staged pages stay until store_stage_sweep at the end of the run: freed now, their
	 * pages would hold this run's new intervals, and the next run's staging would have to
	 * grow the file instead of reusing them. */
	if (step_done(st, s, err) < 0 || !(s = stmt(st, S_CKPT_DELETE, err)))
		goto fail;
	sqlite3_bind_int64(s, 1, snap->group_key);
	if (step_done(st, s, err) < 0)
		goto fail;
	return store_commit(st, err);
fail:
	store_rollback(st);
	return -1;
}

int store_stage_sweep(struct store *st, struct cs_error *err)
{
	if (store_begin(st, err) < 0)
		return -1;
	if (exec(st, "DELETE FROM cs_stage WHERE group_key NOT IN"
		     " (SELECT group_key FROM cs_checkpoint)", err) < 0) {
		store_rollback(st);
		return -1;
	}
	return store_commit(st, err);
}

int store_snapshot_fail(struct store *st, const struct store_snap *snap, const char *code,
			const char *message, const char *request_id, int keep_checkpoint,
			struct cs_error *err)
{
	int64_t now = util_now_epoch();
	char nowt[21];
	sqlite3_stmt *s;
	char *full = NULL;

	util_format_utc(now, nowt);
	/* The public snapshots relation has no request id column: it rides in the message,
	 * where an operator quoting the error to support will find it. */
	if (request_id && *request_id) {
		size_t len = strlen(message ? message : "") + strlen(request_id) + 16;

		full = malloc(len);
		if (!full)
			return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		snprintf(full, len, "%s (request %s)", message ? message : "", request_id);
	}
	if (store_begin(st, err) < 0)
		goto fail;
	if (!(s = stmt(st, S_SNAP_FAIL, err)))
		goto fail;
	sqlite3_bind_int64(s, 1, snap->snapshot_id);
	sqlite3_bind_text(s, 2, nowt, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_int64(s, 4, snap->cs.pages);
	if (snap->cs.total_reported >= 0)
		sqlite3_bind_int64(s, 5, snap->cs.total_reported);
	if (code)
		sqlite3_bind_text(s, 6, code, -1, SQLITE_STATIC);
	if (full || message)
		sqlite3_bind_text(s, 7, full ? full : message, -1, SQLITE_STATIC);
	if (request_id)
		sqlite3_bind_text(s, 8, request_id, -1, SQLITE_STATIC);
	if (snap->cs.read_first)
		sqlite3_bind_int64(s, 9, snap->cs.read_first);
	if (snap->cs.read_last)
		sqlite3_bind_int64(s, 10, snap->cs.read_last);
	if (step_done(st, s, err) < 0)
		goto fail;
	if (!keep_checkpoint && drop_crawl(st, snap->group_key, err) < 0)
		goto fail;
	free(full);
	return store_commit(st, err);
fail:
	free(full);
	store_rollback(st);
	return -1;
}

int store_known_groups(struct store *st, const char *instance_id, char ***groups, size_t *n,
		       struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	char **out = NULL;
	size_t cnt = 0, cap = 0;
	int rc, ret = -1;

	*groups = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(st->db,
			       "SELECT group_id FROM cs_group WHERE instance_id = ?1 ORDER BY group_id",
			       -1, &s, NULL) != SQLITE_OK)
		return db_error(st, err, "group list");
	sqlite3_bind_text(s, 1, instance_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cnt == cap) {
			char **p;

			cap = cap ? cap * 2 : 16;
			if (!(p = realloc(out, cap * sizeof(*p))))
				goto oom;
			out = p;
		}
		if (!(out[cnt] = strdup((const char *)sqlite3_column_text(s, 0))))
			goto oom;
		cnt++;
	}
	if (rc != SQLITE_DONE) {
		db_error(st, err, "group list");
		goto fail;
	}
	sqlite3_finalize(s);
	*groups = out;
	*n = cnt;
	return 0;
oom:
	cs_error_set(err, CS_ERR_NOMEM, "out of memory");
fail:
	while (cnt)
		free(out[--cnt]);
	free(out);
	sqlite3_finalize(s);
	return ret;
}

int store_last_success(struct store *st, int64_t *epoch, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int64_t v = 0;

	if (sqlite3_prepare_v2(st->db,
			       "SELECT max(finished_at) FROM cs_run WHERE status = 'complete'", -1, &s,
			       NULL) != SQLITE_OK)
		return db_error(st, err, "last success");
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		util_parse_utc((const char *)sqlite3_column_text(s, 0), &v);
	sqlite3_finalize(s);
	*epoch = v;
	return 0;
}

struct sqlite3 *store_db(struct store *st)
{
	return st->db;
}

int store_error(struct store *st, struct cs_error *err, const char *what)
{
	return db_error(st, err, what);
}

int store_vacuum(struct store *st, struct cs_error *err)
{
	return exec(st, "VACUUM", err);
}

int store_snapshot_set_identity(struct store *st, int64_t snapshot_id, const char *identity,
				struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	/* once per snapshot at the end of a run: not worth a slot in the statement cache */
	if (sqlite3_prepare_v2(st->db, "UPDATE cs_snapshot SET identity = ?2 WHERE snapshot_id = ?1",
			       -1, &s, NULL) != SQLITE_OK)
		return db_error(st, err, "recording the identity of a snapshot");
	sqlite3_bind_int64(s, 1, snapshot_id);
	sqlite3_bind_text(s, 2, identity, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_error(st, err, "recording the identity of a snapshot");
	return 0;
}
