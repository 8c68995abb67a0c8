/*
 * store.h - the SQLite inventory: schema migrations, runs, snapshots, the per-page staging
 * of a crawl with its checkpoint, and the finalize step that turns a complete crawl into
 * validity intervals (see schema/001_initial.sql for the data model).
 *
 * One struct store is one connection, used from one thread.  Every function returns 0 or -1
 * with err set ("database PATH: ..."); none of them prints or exits.  SQL is always
 * prepared and bound.
 */
#ifndef CREDSYNC_STORE_H
#define CREDSYNC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

struct store;

enum store_mode {
	STORE_READ,   /* an existing database, read-only; missing is an error */
	STORE_WRITE,  /* created (mode 0600) and migrated when needed */
	STORE_DRYRUN, /* the existing database read-only (or an empty one); writes go to temp tables */
};

/* Opens path in mode.  STORE_DRYRUN with path NULL opens an empty in-memory database. */
int store_open(struct store **out, const char *path, enum store_mode mode, struct cs_error *err);
void store_close(struct store *st);
const char *store_path(const struct store *st);
/* The schema version the database is at (PRAGMA user_version). */
int store_schema_version(struct store *st);

/* Explicit transaction bracket, used to commit several pages (each with its checkpoint) at
 * once.  store_rollback never fails and accepts a store with no transaction open. */
int store_begin(struct store *st, struct cs_error *err);
int store_commit(struct store *st, struct cs_error *err);
void store_rollback(struct store *st);

/* Marks runs and snapshots left 'running' by a killed process as failed.  Call only while
 * holding the run lock, so that 'running' really means dead. */
int store_recover(struct store *st, int64_t *recovered, struct cs_error *err);

struct store_run_stats {
	const char *status;     /* 'complete', 'partial' or 'failed' */
	int64_t groups_ok, groups_failed, requests, retries, throttled;
};

int store_run_begin(struct store *st, int64_t *run_id, struct cs_error *err);
/* Records which identity (creds_describe: never a secret) produced a snapshot. */
int store_snapshot_set_identity(struct store *st, int64_t snapshot_id, const char *identity,
				struct cs_error *err);
int store_run_finish(struct store *st, int64_t run_id, const struct store_run_stats *stats,
		     struct cs_error *err);

/* Where a group's crawl stands; persisted as its checkpoint with every page. */
struct store_crawl_state {
	int64_t page_no;        /* the next page to request (from 1); 0: the walk has ended */
	char *next_token;       /* owned; the NextToken to send with it, or NULL */
	int64_t pages;          /* pages staged by this walk (the next page's sequence number) */
	int64_t staged_ids;     /* IDs staged by this walk, duplicates included */
	int64_t total_reported; /* the latest Total, -1 before the first page */
	int rewalked;           /* 1 once the group was walked again after a mismatch */
	int sorted;             /* every ID staged so far rose strictly in byte order, so
				 * finalizing can read them as staged, without a sort */
	struct cs_buf last_id;  /* the last ID staged (owned) */
};

struct store_snap {
	int64_t snapshot_id;
	int64_t group_key;
	int64_t resumed_from;   /* the interrupted snapshot this one continues, or 0 */
	int64_t discarded_from; /* a checkpoint too old (or --restart) that was dropped, or 0 */
	struct store_crawl_state cs;
};

/* Starts a snapshot of (instance, group) in run_id.  A checkpoint left by an interrupted
 * crawl of the group is resumed (snap->cs filled from it) unless restart is set or it is
 * older than max_age_s; otherwise the crawl starts at page 1.  Owns snap->cs.next_token. */
int store_snapshot_begin(struct store *st, int64_t run_id, const char *instance_id,
			 const char *group_id, int restart, int64_t max_age_s,
			 struct store_snap *snap, struct cs_error *err);
void store_snap_release(struct store_snap *snap);

/* Stages one page of IDs as page number snap->cs.pages (inside the caller's transaction),
 * and keeps snap->cs.sorted and last_id up to date. */
int store_stage_page(struct store *st, struct store_snap *snap, const char *const *ids,
		     const size_t *lens, size_t n, struct cs_error *err);

/* Writes snap->cs as the group's checkpoint (inside the caller's transaction). */
int store_checkpoint(struct store *st, const struct store_snap *snap, struct cs_error *err);

/* Forgets the pages staged so far, for a re-walk of the group (caller's transaction). */
int store_stage_clear(struct store *st, const struct store_snap *snap, struct cs_error *err);

/* What finalizing found: distinct IDs staged, IDs staged more than once, and the changes
 * against the group's previous complete snapshot. */
struct store_tally {
	int64_t distinct;
	int64_t duplicates;
	int64_t added;
	int64_t removed;
};

/* Decides a finalized crawl's fate once its tally is known. */
enum store_verdict {
	STORE_REWALK = -1,       /* discard: write nothing, the group is walked again */
	STORE_INCONSISTENT = 0,  /* complete, consistent = 0 */
	STORE_CONSISTENT = 1,    /* complete, consistent = 1 */
};
typedef enum store_verdict (*store_verdict_fn)(void *arg, const struct store_tally *tally);

/*
 * Finalizes the crawl in one transaction: sorts the staged IDs and merges them with the
 * group's intervals in one pass, opening an interval for each ID new to the group and
 * closing those of IDs no longer present; then asks verdict.  On STORE_REWALK everything is
 * rolled back and 1 is returned; otherwise the snapshot is complete, its checkpoint dropped
 * (its pages wait for store_stage_sweep), and 0 is returned.  In a dry run nothing is
 * written, only counted.
 */
int store_snapshot_complete(struct store *st, const struct store_snap *snap,
			    store_verdict_fn verdict, void *arg, struct store_tally *tally,
			    struct cs_error *err);

/* Frees the pages staged by crawls that have ended (completed or abandoned without a
 * checkpoint).  Called once at the end of a run. */
int store_stage_sweep(struct store *st, struct cs_error *err);

/* Marks the snapshot failed with the service's code, message and request id (any may be
 * NULL).  keep_checkpoint keeps the staged pages so the next run resumes the crawl. */
int store_snapshot_fail(struct store *st, const struct store_snap *snap, const char *code,
			const char *message, const char *request_id, int keep_checkpoint,
			struct cs_error *err);

/* The connection, for the read-side queries of history.c (same thread only). */
struct sqlite3;
struct sqlite3 *store_db(struct store *st);
/* Formats a database error into err ("database PATH: what: sqlite message"); returns -1. */
int store_error(struct store *st, struct cs_error *err, const char *what);
/* Compacts the database file (VACUUM). */
int store_vacuum(struct store *st, struct cs_error *err);

/* The group ids the database knows for an instance (malloc'd array of malloc'd strings). */
int store_known_groups(struct store *st, const char *instance_id, char ***groups, size_t *n,
		       struct cs_error *err);

/* The finish time (epoch seconds) of the last run whose every group completed; 0 if none. */
int store_last_success(struct store *st, int64_t *epoch, struct cs_error *err);

#endif
