/*
 * store_int.h - what the store's files share and nothing outside the store sees: the
 * connection (struct store), its table of prepared statements, and the helpers that run
 * them.  The store is split by job: store.c (the connection: open, migrations, pragmas,
 * transactions, quick_check, WAL checkpoints, failure codes), store_file.c (locating and
 * classifying the file before it is opened), store_sql.c (the SQL, and the named queries of
 * store.h), store_run.c (runs, snapshots, resume policy, rates), store_stage.c (staged pages
 * and checkpoints), store_merge.c (finalizing: merge and tally), with the staged-page format
 * in stage_codec.c.
 */
#ifndef CREDSYNC_STORE_INT_H
#define CREDSYNC_STORE_INT_H

#include <sqlite3.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"
#include "store.h"

/* The store's own statements, prepared once per connection (store_stmt_sql holds their SQL). */
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

extern const char *const store_stmt_sql[S_COUNT];
/* The SQL of store.h's named queries (enum store_query_id). */
extern const char *const store_query_sql[STORE_Q_COUNT];

struct store {
	sqlite3 *db;
	char *path;
	enum store_mode mode;
	int in_tx;
	int last_rc;            /* the extended result code of the last failure */
	sqlite3_stmt *stmts[S_COUNT];
	sqlite3_stmt *queries[STORE_Q_COUNT]; /* the named queries of store_query */
	struct cs_buf page;     /* reused to build a page's JSON array */
	/* the finalize in progress (store_finalize_begin .. commit) */
	int fin_in_order;       /* the merge read the pages as staged (verified in order) */
	int fin_first_seen;     /* the group has clients in cs_first_seen */
	int64_t fin_now;
};

/* Formats the connection's last error into err ("database PATH: what: message; advice"),
 * remembering its code for store_failure_code; returns -1. */
int store_db_error(struct store *st, struct cs_error *err, const char *what);
/* The statement id, prepared on first use and then reset and unbound; NULL with err set. */
sqlite3_stmt *store_stmt(struct store *st, enum stmt_id id, struct cs_error *err);
/* Steps s to its end (rows ignored) and resets it; 0, or -1 with err set. */
int store_step_done(struct store *st, sqlite3_stmt *s, struct cs_error *err);
/* Runs SQL without parameters (sqlite3_exec); 0, or -1 with err set. */
int store_exec(struct store *st, const char *sql, struct cs_error *err);
/* The current time as UTC text (YYYY-MM-DDTHH:MM:SSZ). */
void store_now_text(char out[21]);
/* What a database file is (store_classify). */
enum store_file_kind {
	STORE_FILE_NEW,       /* missing, empty, or SQLite without a single schema object */
	STORE_FILE_OURS,      /* credsync's application_id */
	STORE_FILE_OURS_OLD,  /* a credsync database from before the application_id (version 1) */
	STORE_FILE_FOREIGN,   /* anything else: never written */
};

/* Classifies the file at path (named shown in messages) without writing a byte; a foreign
 * or unreadable file is -1 with err set. */
int store_classify(const char *path, const char *shown, enum store_file_kind *kind,
		   struct cs_error *err);
/* Warns when path is a symbolic link in a world-writable directory. */
void store_warn_symlink(const char *path);
/* Refuses (ReadOnly) a file, directory, -wal or -shm this user cannot write. */
int store_check_writable(const char *real, const char *shown, struct cs_error *err);
/* Creates path with mode 0600 unless it exists. */
int store_precreate(const char *path, struct cs_error *err);
/* Deletes a group's staged pages and its checkpoint (inside the caller's transaction). */
int store_drop_crawl(struct store *st, int64_t group_key, struct cs_error *err);

#endif
