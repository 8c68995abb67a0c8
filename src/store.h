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

/*
 * Resolves path to the one name of the database file, whatever symlinks or ".." lead to it
 * (the directory is resolved when the file does not exist yet), so that every name of one
 * file shares one lock and one WAL.  Refuses a file that is not a regular file or that has
 * more than one hard link (SQLite keeps the WAL beside the name, so two names would be two
 * WALs of one file), and a file that is not credsync's (see store_open).  *real is
 * malloc'd.
 */
int store_locate(const char *path, char **real, struct cs_error *err);

/*
 * Opens path in mode.  STORE_DRYRUN with path NULL opens an empty in-memory database.
 * Only credsync's own files are opened: an existing non-empty SQLite file without
 * credsync's application_id (or the tables of a credsync database from before it had one)
 * is refused unchanged, before anything is written to it.  A new database gets its whole
 * schema in one transaction.  STORE_WRITE refuses a file or directory it cannot write
 * (ReadOnly) before anything else happens.
 */
int store_open(struct store **out, const char *path, enum store_mode mode, struct cs_error *err);
/* Rolls back any open transaction and closes the connection; st may be NULL. */
void store_close(struct store *st);
/* The path the store was opened with (":memory:" for a dry run without a file). */
const char *store_path(const struct store *st);
/* The schema version the database is at (PRAGMA user_version). */
int store_schema_version(struct store *st);

/* Explicit transaction bracket, used to commit several pages (each with its checkpoint) at
 * once.  store_rollback never fails and accepts a store with no transaction open. */
/* Opens the write transaction (BEGIN IMMEDIATE); nothing when one is open already. */
int store_begin(struct store *st, struct cs_error *err);
/* Commits the open transaction (rolled back when the commit fails); nothing without one. */
int store_commit(struct store *st, struct cs_error *err);
/* Rolls back the open transaction, if any. */
void store_rollback(struct store *st);

/* Marks runs left 'running' by a killed process as 'interrupted' (keeping the counts they
 * kept as they went) and their running snapshots as failed.  Call only while holding the
 * run lock, so that 'running' really means dead. */
int store_recover(struct store *st, int64_t *recovered, struct cs_error *err);

struct store_run_stats {
	const char *status;     /* 'complete', 'partial' or 'failed' */
	int64_t groups_ok, groups_failed, requests, retries, throttled;
};

/* Records a new run as 'running' (with this process's pid); *run_id is its id. */
int store_run_begin(struct store *st, int64_t *run_id, struct cs_error *err);
/* Records which identity (creds_describe: never a secret) produced a snapshot. */
int store_snapshot_set_identity(struct store *st, int64_t snapshot_id, const char *identity,
				struct cs_error *err);
/* Records the run's end: its status and counts, finished now. */
int store_run_finish(struct store *st, int64_t run_id, const struct store_run_stats *stats,
		     struct cs_error *err);
/* Records the run's counts so far (stats->status is ignored), inside the caller's
 * transaction if one is open: a run killed later is repaired with these. */
int store_run_progress(struct store *st, int64_t run_id, const struct store_run_stats *stats,
		       struct cs_error *err);

/* PRAGMA quick_check: 0 when the file is sound, else -1 with err saying it is damaged. */
int store_quick_check(struct store *st, struct cs_error *err);

/* The credsync error code for the store's last failure: "DiskFull", "ReadOnly" or
 * "StorageError"; NULL while nothing has failed. */
const char *store_failure_code(const struct store *st);

/* The rate remembered for an endpoint host (0 when none, or older than max_age_s). */
int store_rate_get(struct store *st, const char *host, int64_t max_age_s, double *rate,
		   struct cs_error *err);
/* Remembers the rate for host (nothing in a dry run). */
int store_rate_put(struct store *st, const char *host, double rate, struct cs_error *err);

/* Copies the WAL into the database (PASSIVE: as far as readers allow; truncate: all of it,
 * then empties the file) and warns when a reader keeps the WAL from shrinking past 64 MiB. */
int store_wal_checkpoint(struct store *st, int truncate, struct cs_error *err);

/* Where a group's walk stands: the crawl writes it, the store persists it as the group's
 * checkpoint with every page (and fills it when a checkpoint is resumed). */
struct store_crawl_state {
	int64_t page_no;        /* the next page to request (from 1); 0: the walk has ended */
	char *next_token;       /* owned; the NextToken to send with it, or NULL */
	int64_t pages;          /* pages staged by this walk (the next page's sequence number) */
	int64_t staged_ids;     /* IDs staged by this walk, duplicates included */
	int64_t total_reported; /* the latest Total, -1 before the first page */
	int rewalked;           /* 1 once the group was walked again after a mismatch */
	int64_t read_first;     /* epoch seconds the walk's first page was read, 0 before */
	int64_t read_last;      /* epoch seconds its latest page was read, 0 before */
};

/* What staging knows of the IDs staged so far: the store's alone (persisted with the
 * checkpoint, so a resumed walk keeps it). */
struct store_staging {
	int sorted;             /* every ID staged so far rose strictly in byte order, so
				 * finalizing can read them as staged, without a sort */
	struct cs_buf last_id;  /* the last ID staged (owned) */
};

struct store_snap {
	int64_t snapshot_id;
	int64_t group_key;
	int64_t resumed_from;   /* the interrupted snapshot this one continues, or 0 */
	int64_t discarded_from; /* a checkpoint dropped (see discarded_why), or 0 */
	const char *discarded_why; /* "--restart", "too old", "its pages are stale" */
	struct store_crawl_state cs;   /* the crawl's */
	struct store_staging stage;    /* the store's */
};

/* When a checkpoint left by an interrupted crawl is resumed. */
struct store_resume {
	int restart;                /* never: --restart */
	int64_t max_age_s;          /* a checkpoint not updated for longer is dropped */
	int64_t finalize_max_age_s; /* a walk that had ended is finalized only while its last
				     * page is younger than this; else it is walked again */
};

/* Starts a snapshot of (instance, group) in run_id.  A checkpoint left by an interrupted
 * crawl of the group is resumed (snap->cs filled from it, read times included) unless the
 * policy drops it; otherwise the crawl starts at page 1.  Owns snap->cs.next_token. */
int store_snapshot_begin(struct store *st, int64_t run_id, const char *instance_id,
			 const char *group_id, const struct store_resume *policy,
			 struct store_snap *snap, struct cs_error *err);
/* Frees what snap owns (its walk's token and its staging's last ID); snap may be NULL. */
void store_snap_release(struct store_snap *snap);

/* Stages one page of IDs as page number snap->cs.pages (inside the caller's transaction),
 * and keeps snap->stage up to date. */
int store_stage_page(struct store *st, struct store_snap *snap, const char *const *ids,
		     const size_t *lens, size_t n, struct cs_error *err);

/* Writes snap->cs and snap->stage as the group's checkpoint (inside the caller's
 * transaction). */
int store_checkpoint(struct store *st, const struct store_snap *snap, struct cs_error *err);

/* Forgets the pages staged so far and what staging knew of them, for a re-walk of the group
 * (caller's transaction). */
int store_stage_clear(struct store *st, struct store_snap *snap, struct cs_error *err);

/* What finalizing found: distinct IDs staged, IDs staged more than once, and the changes
 * against the group's previous complete snapshot. */
struct store_tally {
	int64_t distinct;
	int64_t duplicates;
	int64_t added;
	int64_t removed;        /* previous members this walk lacks, closed */
	int64_t carried;        /* the same, kept (keep_absent) */
	int64_t members;        /* members of the snapshot: distinct + carried */
};

/* How a finalized walk is committed: consistent = 1 or 0.  An inconsistent walk proves no
 * removal, so it must have been merged with keep_absent. */
enum store_verdict {
	STORE_INCONSISTENT = 0,
	STORE_CONSISTENT = 1,
};

/*
 * Finalizing is three steps so that the caller decides in between, on the tally:
 * store_finalize_begin opens a transaction and merges the staged IDs with the group's
 * intervals in one pass (opening an interval for each ID new to the group, closing those of
 * IDs no longer present unless keep_absent) and fills tally; then either
 * store_finalize_commit records the
 * snapshot as complete with the verdict (its checkpoint dropped; its pages wait for
 * store_stage_sweep), or store_finalize_abort undoes everything (a re-walk, or a walk that
 * is no inventory).  In a dry run nothing is written, only counted.
 */
int store_finalize_begin(struct store *st, const struct store_snap *snap, int keep_absent,
			 struct store_tally *tally, struct cs_error *err);
/* The second step, after store_finalize_begin: records the snapshot complete and commits. */
int store_finalize_commit(struct store *st, const struct store_snap *snap,
			  enum store_verdict verdict, struct store_tally *tally,
			  struct cs_error *err);
/* The other second step: undoes everything store_finalize_begin did. */
void store_finalize_abort(struct store *st);

/* Frees the pages staged by crawls that have ended (completed or abandoned without a
 * checkpoint).  Called once at the end of a run. */
int store_stage_sweep(struct store *st, struct cs_error *err);

/* Marks the snapshot failed with the service's code, message and request id (any may be
 * NULL).  keep_checkpoint keeps the staged pages so the next run resumes the crawl. */
int store_snapshot_fail(struct store *st, const struct store_snap *snap, const char *code,
			const char *message, const char *request_id, int keep_checkpoint,
			struct cs_error *err);

/* The rows of one batched audit insert (STORE_Q_AUDIT_ADD_*_BATCH). */
#define STORE_AUDIT_BATCH 64

/*
 * The named queries of the modules that read the inventory (history.c, audit.c): their SQL
 * is one table in the store (store_sql.c), prepared once per connection.  The parameters and
 * columns of each are those of its SQL there.
 */
enum store_query_id {
	STORE_Q_GROUPS,            /* ?1 instance or NULL, ?2 group or NULL: key, instance, group */
	STORE_Q_RESOLVE_SNAPSHOT,  /* ?1 group, ?2 snapshot id: the id, if complete */
	STORE_Q_RESOLVE_RUN,       /* ?1 group, ?2 run id: latest complete at or before */
	STORE_Q_RESOLVE_TIME,      /* ?1 group, ?2 epoch: latest complete read at or before */
	STORE_Q_RESOLVE_LATEST,    /* ?1 group */
	STORE_Q_RESOLVE_PREVIOUS,  /* ?1 group, ?2 snapshot id: latest complete before */
	STORE_Q_SNAPSHOT,          /* ?1 snapshot id: one snapshot row */
	STORE_Q_SNAPSHOTS,         /* ?1 instance, ?2 group (NULL: any), ?3 limit: newest first */
	STORE_Q_DIFF_COUNTS,       /* ?1 group, ?2 a, ?3 b, ?4 min, ?5 max: added, removed */
	STORE_Q_DIFF_ADDED,        /* as DIFF_COUNTS: client ids in b only, sorted */
	STORE_Q_DIFF_REMOVED,      /* as DIFF_COUNTS: client ids in a only, sorted */
	STORE_Q_MEMBERS,           /* ?1 group, ?2 snapshot, ?3 glob or NULL: client ids */
	STORE_Q_INTERVALS_GLOB,    /* ?1 group, ?2 glob: a client's intervals */
	STORE_Q_INTERVALS_EXACT,   /* ?1 group, ?2 client or device id */
	STORE_Q_PRUNED_BEFORE,     /* ?1 group: earliest complete snapshot, whether pruned */
	STORE_Q_SERIES,            /* ?1 group: id, epoch, client count per complete snapshot */
	STORE_Q_PRUNE_CREATE,      /* the steps of history_prune, in order */
	STORE_Q_PRUNE_CLEAR,
	STORE_Q_PRUNE_KEEP_LAST,   /* ?1 keep_last */
	STORE_Q_PRUNE_SPARE_YOUNG, /* ?1 older_than epoch */
	STORE_Q_PRUNE_OLDER_THAN,  /* ?1 older_than epoch */
	STORE_Q_PRUNE_SPARE_NEEDED,
	STORE_Q_PRUNE_SNAPSHOTS,
	STORE_Q_PRUNE_FIRST_SEEN,
	STORE_Q_PRUNE_INTERVALS,
	STORE_Q_PRUNE_RUNS,
	/* audit.c, in the order it uses them (their SQL says their parameters) */
	STORE_Q_AUDIT_CREATE_GROUP,
	STORE_Q_AUDIT_CREATE_UNEXPECTED,
	STORE_Q_AUDIT_CREATE_GONE,
	STORE_Q_AUDIT_REGISTER_BY_ID,
	STORE_Q_AUDIT_GROUPS,
	STORE_Q_AUDIT_GROUP_BY_CLIENT,
	STORE_Q_AUDIT_GROUP_FIRST_LAST,
	STORE_Q_AUDIT_SET_BY_KEY,
	STORE_Q_AUDIT_BY_KEY,
	STORE_Q_AUDIT_ADD_UNEXPECTED,
	STORE_Q_AUDIT_ADD_GONE,
	STORE_Q_AUDIT_SET_COUNTS,
	STORE_Q_AUDIT_TEMP_NO_JOURNAL,
	STORE_Q_AUDIT_TEMP_CACHE,
	STORE_Q_AUDIT_ADD_GROUP,
	STORE_Q_AUDIT_GROUP_COUNT,
	STORE_Q_AUDIT_GROUP_COUNTS,
	STORE_Q_AUDIT_MISSING_COUNT,
	STORE_Q_AUDIT_UNEXPECTED,
	STORE_Q_AUDIT_MISSING,
	STORE_Q_AUDIT_ADD_UNEXPECTED_BATCH,
	STORE_Q_AUDIT_ADD_GONE_BATCH,
	STORE_Q_COUNT
};

/* The named query id, prepared on first use and cached for the connection, returned reset
 * and unbound (NULL with err set).  Reset it once read, so it keeps no read transaction
 * open; and never step one query from inside a loop over the same query. */
struct sqlite3_stmt;
struct sqlite3_stmt *store_query(struct store *st, enum store_query_id id, struct cs_error *err);
/* A statement of its own for the named query id, for a query stepped by several cursors at
 * once: not cached, the caller finalizes it (NULL with err set; err may be NULL). */
struct sqlite3_stmt *store_query_new(struct store *st, enum store_query_id id,
				     struct cs_error *err);
/* Runs the named query id, a statement without parameters, to its end (rows ignored). */
int store_query_run(struct store *st, enum store_query_id id, struct cs_error *err);
/* Registers a virtual-table module on the connection as name (an eponymous table that named
 * queries read); aux reaches its xCreate/xConnect.  -1 with err set (err may be NULL). */
struct sqlite3_module;
int store_create_module(struct store *st, const char *name, const struct sqlite3_module *module,
			void *aux, struct cs_error *err);
/* Opens a read transaction (BEGIN, deferred), so that several queries see one state of the
 * database; store_rollback ends it.  Nothing when a transaction is open already. */
int store_read_begin(struct store *st, struct cs_error *err);
/* The rows changed by the last INSERT, UPDATE or DELETE this connection stepped. */
int64_t store_changes(struct store *st);

/* Formats a database error into err ("database PATH: what: sqlite message"); returns -1. */
int store_error(struct store *st, struct cs_error *err, const char *what);
/* Compacts the database file (VACUUM). */
int store_vacuum(struct store *st, struct cs_error *err);

/* One group the database knows. */
struct group_row {
	int64_t group_key;
	char *instance_id;
	char *group_id;
};

/* The groups the database knows, filtered by instance and group (NULL: any), ordered by
 * instance and group; *rows is malloc'd, freed with store_groups_free. */
int store_groups(struct store *st, const char *instance, const char *group,
		 struct group_row **rows, size_t *n, struct cs_error *err);
/* Frees what store_groups returned. */
void store_groups_free(struct group_row *rows, size_t n);

/* The group ids the database knows for an instance (malloc'd array of malloc'd strings). */
int store_known_groups(struct store *st, const char *instance_id, char ***groups, size_t *n,
		       struct cs_error *err);

/* The finish time (epoch seconds) of the last run whose every group completed; 0 if none. */
int store_last_success(struct store *st, int64_t *epoch, struct cs_error *err);

#endif
