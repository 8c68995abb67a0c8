/*
 * history.h - read-side questions about the stored history: which snapshot a REF names,
 * what changed between two snapshots of a group, the snapshot list, a group's client count
 * over time, and pruning old snapshots without changing what the kept ones contain.
 *
 * REF parsing is pure (no database) so it can be fuzzed and unit-tested alone.  Diff rows are
 * streamed to a callback, so memory does not grow with the inventory.
 */
#ifndef CREDSYNC_HISTORY_H
#define CREDSYNC_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

enum ref_kind {
	REF_SNAPSHOT,  /* 17 */
	REF_RUN,       /* run:5: per group, the latest complete snapshot of run 5 or before */
	REF_TIME,      /* 2026-11-27, 2026-11-27T02:00:00Z, 7d: latest complete at or before */
	REF_LATEST,
	REF_PREVIOUS,  /* the complete snapshot before the other side's (or before latest) */
};

struct diff_ref {
	enum ref_kind kind;
	int64_t value;     /* snapshot id, run id or epoch seconds */
	char text[64];     /* as the user wrote it, for reports */
};

/* Parses a REF; now is the current epoch (for ages like 7d).  CS_ERR_USAGE on failure. */
int history_parse_ref(const char *s, int64_t now, struct diff_ref *out, struct cs_error *err);

/* The groups the database knows, filtered by instance and group (NULL: any), ordered
 * (store_groups; struct group_row is in store.h). */
int history_groups(struct store *st, const char *instance, const char *group,
		   struct group_row **rows, size_t *n, struct cs_error *err);
/* Frees what history_groups or history_select_groups returned. */
void history_groups_free(struct group_row *rows, size_t n);

/* The same for lists of instances and groups (n 0: any), as repeated --instance/--group. */
int history_select_groups(struct store *st, const char *const *instances, size_t ninstances,
			  const char *const *groups, size_t ngroups, struct group_row **rows,
			  size_t *n, struct cs_error *err);

struct snap_row {
	int64_t snapshot_id, run_id, group_key;
	char instance_id[128], group_id[128];
	char status[16];
	char started_at[21], finished_at[21];
	int64_t pages, client_count, total_reported, added, removed; /* -1: NULL */
	int consistent;   /* -1: NULL */
	char error_code[128];
	char error_message[768];
	char identity[256];   /* "" when NULL */
};

/* Resolves ref for one group to a complete snapshot; *snapshot_id 0 when there is none.
 * other is the snapshot of the other side (for REF_PREVIOUS as --from), 0 if none. */
int history_resolve(struct store *st, int64_t group_key, const struct diff_ref *ref,
		    int64_t other, int64_t *snapshot_id, struct cs_error *err);

/* Loads one snapshot row by id; *found 0 when it does not exist. */
int history_snapshot(struct store *st, int64_t snapshot_id, struct snap_row *row, int *found,
		     struct cs_error *err);

/* Counts the client IDs added (in to, not in from) and removed between two complete
 * snapshots of a group. */
int history_diff_counts(struct store *st, int64_t group_key, int64_t from, int64_t to,
			int64_t *added, int64_t *removed, struct cs_error *err);

/* Streams the added (want_added) or removed client IDs, sorted; cb returns non-zero to stop
 * (that value is returned). */
typedef int (*history_id_cb)(void *arg, const char *client_id, size_t len);
int history_diff_ids(struct store *st, int64_t group_key, int64_t from, int64_t to,
		     int want_added, history_id_cb cb, void *arg, struct cs_error *err);

/* Streams the client IDs of complete snapshot snapshot_id of a group, sorted; with glob
 * (NULL: all) only those whose client ID or device ID matches it (SQLite GLOB). */
int history_members(struct store *st, int64_t group_key, int64_t snapshot_id, const char *glob,
		    history_id_cb cb, void *arg, struct cs_error *err);

/* One period during which a client held a credential in a group: from complete snapshot
 * from_snap up to (not including) to_snap.  A snapshot that was pruned has run 0 and at "". */
struct history_interval {
	const char *client_id;
	size_t client_len;
	int64_t from_snap, from_run;
	int64_t to_snap, to_run;     /* to_snap 0: still held at the group's latest snapshot */
	char from_at[21], to_at[21];
};
typedef int (*history_interval_cb)(void *arg, const struct history_interval *iv);

/* Streams a group's intervals of every client whose client ID or device ID equals pattern
 * (is_glob 0) or matches it as a GLOB (is_glob 1), by client, then start. */
int history_intervals(struct store *st, int64_t group_key, const char *pattern, int is_glob,
		      history_interval_cb cb, void *arg, struct cs_error *err);

/*
 * Whether a group's history was pruned: *before is its earliest retained complete snapshot
 * when the database shows that an earlier one existed (an interval starts before it, or its
 * own added/removed counts are not those of a group's first snapshot), else 0.
 */
int history_pruned_before(struct store *st, int64_t group_key, int64_t *before,
			  struct cs_error *err);

/* Lists snapshots newest first.  limit 0: all.  cb as above. */
typedef int (*history_snap_cb)(void *arg, const struct snap_row *row);
int history_snapshots(struct store *st, const char *instance, const char *group, int64_t limit,
		      history_snap_cb cb, void *arg, struct cs_error *err);

/* A group's complete snapshots in order, for charts: ids, epochs and client counts
 * (malloc'd arrays of *n). */
int history_series(struct store *st, int64_t group_key, int64_t **ids, int64_t **epochs,
		   int64_t **counts, size_t *n, struct cs_error *err);

struct prune_result {
	int64_t snapshots;   /* snapshot rows deleted */
	int64_t intervals;   /* interval rows deleted */
	int64_t runs;        /* run rows left without snapshots and deleted */
};

/*
 * Deletes snapshots: beyond the keep_last newest complete ones of each group (keep_last > 0),
 * or finished before older_than_epoch (> 0); with both, only those both rules would delete
 * (a snapshot is kept while either keeps it, as restic's keep-last and keep-within).  Each group's latest complete snapshot, running
 * snapshots and those a checkpoint still needs are never deleted; nor is an interval that a
 * kept snapshot's membership or changes need.  dry_run counts and changes nothing.
 */
int history_prune(struct store *st, int64_t keep_last, int64_t older_than_epoch, int dry_run,
		  struct prune_result *res, struct cs_error *err);

#endif
