/*
 * store.c - the connection: opening the file (store_file.c says what it is first),
 * migrations, pragmas, quick_check, WAL checkpoints, transactions, and the classification of
 * storage failures; see store.h for the contract, store_int.h for how the rest of the store
 * is split, schema/ for the model.
 *
 * Statements are prepared once per connection (store_sql.c) and reset after use.  Every
 * write path runs inside a transaction: the caller's (pages) or our own (snapshot begin,
 * complete, fail), so a kill -9 at any instant leaves either the old or the new state.
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
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

int store_db_error(struct store *st, struct cs_error *err, const char *what)
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
sqlite3_stmt *store_stmt(struct store *st, enum stmt_id id, struct cs_error *err)
{
	sqlite3_stmt *s = st->stmts[id];

	if (!s) {
		if (sqlite3_prepare_v3(st->db, store_stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s,
				       NULL) != SQLITE_OK) {
			store_db_error(st, err, "prepare");
			return NULL;
		}
		st->stmts[id] = s;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/* Steps a statement that returns no rows (or whose rows are ignored). */
int store_step_done(struct store *st, sqlite3_stmt *s, struct cs_error *err)
{
	int rc = sqlite3_step(s);

	while (rc == SQLITE_ROW)
		rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_db_error(st, err, "write");
	return 0;
}

int store_exec(struct store *st, const char *sql, struct cs_error *err)
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

void store_now_text(char out[21])
{
	util_format_utc(util_now_epoch(), out);
}

int store_begin(struct store *st, struct cs_error *err)
{
	if (st->in_tx)
		return 0;
	/* IMMEDIATE: take the write lock now, not half-way through a page */
	if (store_exec(st, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	st->in_tx = 1;
	return 0;
}

int store_read_begin(struct store *st, struct cs_error *err)
{
	if (st->in_tx)
		return 0;
	if (store_exec(st, "BEGIN", err) < 0)
		return -1;
	st->in_tx = 1;
	return 0;
}

int store_commit(struct store *st, struct cs_error *err)
{
	if (!st->in_tx)
		return 0;
	if (store_exec(st, "COMMIT", err) < 0) {
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
		return store_db_error(st, err, "reading the schema version");
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
		if (store_exec(st, m->sql, err) < 0 || store_exec(st, pragma, err) < 0) {
			store_rollback(st);
			cs_error_prefix(err, "migration %s: ", m->name);
			return -1;
		}
	}
	return store_commit(st, err);
}

/*
 * The tables a dry run writes, shadowing main's (SQLite resolves unqualified names in temp
 * first).  Each is created from main's own definition as the migrations left it
 * (sqlite_schema), so a dry run writes exactly the columns and constraints a sync does.
 * cs_group is copied so that group keys match the real intervals.
 */
static int dryrun_shadow(struct store *st, struct cs_error *err)
{
	static const char *const tables[] = { "cs_run", "cs_group", "cs_snapshot", "cs_stage",
					      "cs_checkpoint" };
	static const char create[] = "CREATE TABLE ";
	struct cs_buf ddl = CS_BUF_INIT;
	sqlite3_stmt *s = NULL;
	size_t i;
	int ret = -1;

	if (sqlite3_prepare_v2(st->db, "SELECT sql FROM main.sqlite_schema WHERE type = 'table'"
			       " AND name = ?1", -1, &s, NULL) != SQLITE_OK)
		return store_db_error(st, err, "dry run");
	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		const char *sql;

		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, tables[i], -1, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_ROW) {
			store_db_error(st, err, "dry run");
			goto out;
		}
		/* SQLite keeps every CREATE TABLE as "CREATE TABLE name (...)" */
		sql = (const char *)sqlite3_column_text(s, 0);
		if (!sql || strncmp(sql, create, sizeof(create) - 1)) {
			cs_error_set(err, CS_ERR_RUNTIME, "database %s: dry run: table %s has no "
				     "definition", st->path, tables[i]);
			goto out;
		}
		buf_reset(&ddl);
		buf_puts(&ddl, "CREATE TEMP TABLE ");
		buf_puts(&ddl, sql + sizeof(create) - 1);
		if (ddl.oom) {
			cs_error_set(err, CS_ERR_NOMEM, "out of memory");
			goto out;
		}
		if (store_exec(st, buf_str(&ddl), err) < 0)
			goto out;
	}
	ret = store_exec(st, "INSERT INTO temp.cs_group SELECT group_key, instance_id, group_id"
			 " FROM main.cs_group", err);
out:
	sqlite3_finalize(s);
	buf_release(&ddl);
	return ret;
}

int store_open(struct store **out, const char *path, enum store_mode mode, struct cs_error *err)
{
	struct store *st = NULL;
	enum store_file_kind kind = STORE_FILE_NEW;
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
		store_warn_symlink(path);
		if (store_locate(path, &real, err) < 0)
			goto fail;
	}
	exists = real && stat(real, &sb) == 0;
	if (mode == STORE_READ && !exists) {
		cs_error_set(err, CS_ERR_RUNTIME, "database %s: not found (run 'credsync sync' first)",
			     path);
		goto fail;
	}
	if (exists && store_classify(real, path, &kind, err) < 0)
		goto fail;
	if (mode == STORE_WRITE && (store_check_writable(real, path, err) < 0 ||
				   store_precreate(real, err) < 0)) {
		st->last_rc = SQLITE_READONLY;
		goto fail;
	}

	if (mode == STORE_WRITE)
		flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	else
		flags = SQLITE_OPEN_READONLY;
	flags |= SQLITE_OPEN_NOMUTEX;
	if (mode == STORE_DRYRUN && (!exists || kind == STORE_FILE_NEW))
		rc = sqlite3_open_v2(":memory:", &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY,
				     NULL);
	else
		rc = sqlite3_open_v2(real, &st->db, flags, NULL);
	if (rc != SQLITE_OK) {
		store_db_error(st, err, "open");
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	/* Readers wait for a writer's commit rather than failing at once. */
	sqlite3_busy_timeout(st->db, 10000);
	if (store_exec(st, "PRAGMA cache_size = -2048", err) < 0 ||
	    store_exec(st, "PRAGMA temp_store = FILE", err) < 0)
		goto fail;
	/* the schema first, in one transaction, then WAL: a kill in between leaves a complete
	 * database in rollback mode, never a WAL-mode file without tables */
	if (mode == STORE_DRYRUN && (!exists || kind == STORE_FILE_NEW)) {
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
		if (store_exec(st, "PRAGMA journal_mode = WAL", err) < 0 ||
		    store_exec(st, "PRAGMA synchronous = NORMAL", err) < 0 ||
		    store_exec(st, "PRAGMA wal_autocheckpoint = 10000", err) < 0 ||
		    store_exec(st, "PRAGMA journal_size_limit = 16777216", err) < 0)
			goto fail;
	}
	if (mode == STORE_DRYRUN && dryrun_shadow(st, err) < 0)
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
		return store_db_error(st, err, "checkpoint");
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
	for (i = 0; i < STORE_Q_COUNT; i++)
		sqlite3_finalize(st->queries[i]);
	sqlite3_close(st->db);
	buf_release(&st->page);
	free(st->path);
	free(st);
}

const char *store_path(const struct store *st)
{
	return st->path;
}

int store_error(struct store *st, struct cs_error *err, const char *what)
{
	return store_db_error(st, err, what);
}

int store_vacuum(struct store *st, struct cs_error *err)
{
	return store_exec(st, "VACUUM", err);
}
