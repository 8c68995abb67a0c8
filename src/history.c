/*
 * history.c - REFs, diffs, snapshot lists, series and prune over the interval model; see
 * history.h and schema/001_initial.sql.
 *
 * A diff between snapshots A and B of a group only needs the intervals that start or end
 * between them: an interval covering both is a client present on both sides.  Grouping those
 * by client (the primary key's order, so no sort) settles removals followed by re-adds.
 */
#include "history.h"

#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int history_parse_ref(const char *s, int64_t now, struct diff_ref *out, struct cs_error *err)
{
	int64_t v = 0, ms;
	size_t i, len = strlen(s);

	memset(out, 0, sizeof(*out));
	if (len == 0 || len >= sizeof(out->text))
		goto bad;
	memcpy(out->text, s, len + 1);
	if (!strcmp(s, "latest")) {
		out->kind = REF_LATEST;
		return 0;
	}
	if (!strcmp(s, "previous")) {
		out->kind = REF_PREVIOUS;
		return 0;
	}
	if (!strncmp(s, "run:", 4) || !strncmp(s, "snapshot:", 9)) {
		const char *d = s + (s[0] == 'r' ? 4 : 9);

		out->kind = s[0] == 'r' ? REF_RUN : REF_SNAPSHOT;
		if (!*d || strlen(d) > 18)
			goto bad;
		for (i = 0; d[i]; i++) {
			if (!isdigit((unsigned char)d[i]))
				goto bad;
			v = v * 10 + (d[i] - '0');
		}
		if (v <= 0)
			goto bad;
		out->value = v;
		return 0;
	}
	for (i = 0; i < len && isdigit((unsigned char)s[i]); i++)
		v = i < 18 ? v * 10 + (s[i] - '0') : v;
	if (i == len) {
		if (len > 18 || v <= 0)
			goto bad;
		out->kind = REF_SNAPSHOT;
		out->value = v;
		return 0;
	}
	if (util_parse_utc(s, &v) == 0) {
		out->kind = REF_TIME;
		out->value = v;
		return 0;
	}
	if (util_parse_duration(s, &ms) == 0) {
		out->kind = REF_TIME;
		out->value = now - ms / 1000;
		return 0;
	}
bad:
	return cs_error_set(err, CS_ERR_USAGE,
			    "'%.64s' is not a REF: expected a snapshot id (17), run:N, a date "
			    "(2026-11-27), a UTC time (2026-11-27T02:00:00Z), an age (7d), latest or "
			    "previous", s);
}

/* The named query id of the store, reset and unbound, in *s; -1 with err set. */
static int prepare(struct store *st, enum store_query_id id, sqlite3_stmt **s,
		   struct cs_error *err)
{
	*s = store_query(st, id, err);
	return *s ? 0 : -1;
}

static void col_text(sqlite3_stmt *s, int i, char *out, size_t outlen)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	snprintf(out, outlen, "%s", t ? (const char *)t : "");
}

static int64_t col_int_or(sqlite3_stmt *s, int i, int64_t dflt)
{
	return sqlite3_column_type(s, i) == SQLITE_NULL ? dflt : sqlite3_column_int64(s, i);
}

void history_groups_free(struct group_row *rows, size_t n)
{
	store_groups_free(rows, n);
}

int history_groups(struct store *st, const char *instance, const char *group,
		   struct group_row **rows, size_t *n, struct cs_error *err)
{
	return store_groups(st, instance, group, rows, n, err);
}

static int listed(const char *const *list, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return 1;
	return n == 0;
}

int history_select_groups(struct store *st, const char *const *instances, size_t ninstances,
			  const char *const *groups, size_t ngroups, struct group_row **rows,
			  size_t *n, struct cs_error *err)
{
	size_t i, k = 0;

	if (history_groups(st, NULL, NULL, rows, n, err) < 0)
		return -1;
	for (i = 0; i < *n; i++) {
		struct group_row *r = &(*rows)[i];

		if (listed(instances, ninstances, r->instance_id) &&
		    listed(groups, ngroups, r->group_id)) {
			(*rows)[k++] = *r;
			continue;
		}
		free(r->instance_id);
		free(r->group_id);
	}
	*n = k;
	return 0;
}

static int single_int(struct store *st, sqlite3_stmt *s, int64_t *out, struct cs_error *err)
{
	int rc = sqlite3_step(s);

	*out = 0;
	if (rc == SQLITE_ROW)
		*out = col_int_or(s, 0, 0);
	else if (rc != SQLITE_DONE)
		return store_error(st, err, "query");
	return 0;
}

int history_resolve(struct store *st, int64_t group_key, const struct diff_ref *ref,
		    int64_t other, int64_t *snapshot_id, struct cs_error *err)
{
	static const enum store_query_id query[] = {
		[REF_SNAPSHOT] = STORE_Q_RESOLVE_SNAPSHOT,
		[REF_RUN] = STORE_Q_RESOLVE_RUN,
		[REF_TIME] = STORE_Q_RESOLVE_TIME,
		[REF_LATEST] = STORE_Q_RESOLVE_LATEST,
		[REF_PREVIOUS] = STORE_Q_RESOLVE_PREVIOUS,
	};
	sqlite3_stmt *s = NULL;
	int64_t bound = ref->value;
	int ret;

	*snapshot_id = 0;
	if (ref->kind == REF_PREVIOUS) {
		if (other)
			bound = other;
		else {
			struct diff_ref latest = { REF_LATEST, 0, "latest" };

			if (history_resolve(st, group_key, &latest, 0, &bound, err) < 0)
				return -1;
			if (!bound)
				return 0;
		}
	}
	if (prepare(st, query[ref->kind], &s, err) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, group_key);
	if (ref->kind != REF_LATEST)
		sqlite3_bind_int64(s, 2, bound);
	ret = single_int(st, s, snapshot_id, err);
	sqlite3_reset(s);
	return ret;
}

static void read_snap(sqlite3_stmt *s, struct snap_row *r)
{
	memset(r, 0, sizeof(*r));
	r->snapshot_id = sqlite3_column_int64(s, 0);
	r->run_id = sqlite3_column_int64(s, 1);
	r->group_key = sqlite3_column_int64(s, 2);
	col_text(s, 3, r->instance_id, sizeof(r->instance_id));
	col_text(s, 4, r->group_id, sizeof(r->group_id));
	col_text(s, 5, r->status, sizeof(r->status));
	col_text(s, 6, r->started_at, sizeof(r->started_at));
	col_text(s, 7, r->finished_at, sizeof(r->finished_at));
	r->pages = col_int_or(s, 8, -1);
	r->client_count = col_int_or(s, 9, -1);
	r->total_reported = col_int_or(s, 10, -1);
	r->added = col_int_or(s, 11, -1);
	r->removed = col_int_or(s, 12, -1);
	r->consistent = (int)col_int_or(s, 13, -1);
	col_text(s, 14, r->error_code, sizeof(r->error_code));
	col_text(s, 15, r->error_message, sizeof(r->error_message));
	col_text(s, 16, r->identity, sizeof(r->identity));
}

int history_snapshot(struct store *st, int64_t snapshot_id, struct snap_row *row, int *found,
		     struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*found = 0;
	if (prepare(st, STORE_Q_SNAPSHOT, &s, err) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, snapshot_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		read_snap(s, row);
		*found = 1;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_error(st, err, "snapshot lookup");
	return 0;
}

int history_snapshots(struct store *st, const char *instance, const char *group, int64_t limit,
		      history_snap_cb cb, void *arg, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	struct snap_row row;
	int rc, stop = 0;

	if (prepare(st, STORE_Q_SNAPSHOTS, &s, err) < 0)
		return -1;
	if (instance)
		sqlite3_bind_text(s, 1, instance, -1, SQLITE_STATIC);
	if (group)
		sqlite3_bind_text(s, 2, group, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, limit > 0 ? limit : -1);
	while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		read_snap(s, &row);
		stop = cb(arg, &row);
	}
	sqlite3_reset(s);
	if (stop)
		return stop;
	if (rc != SQLITE_DONE)
		return store_error(st, err, "snapshot list");
	return 0;
}

static void bind_diff(sqlite3_stmt *s, int64_t group_key, int64_t a, int64_t b)
{
	sqlite3_bind_int64(s, 1, group_key);
	sqlite3_bind_int64(s, 2, a);
	sqlite3_bind_int64(s, 3, b);
	sqlite3_bind_int64(s, 4, a < b ? a : b);
	sqlite3_bind_int64(s, 5, a < b ? b : a);
}

int history_diff_counts(struct store *st, int64_t group_key, int64_t from, int64_t to,
			int64_t *added, int64_t *removed, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*added = *removed = 0;
	if (from == to)
		return 0;
	if (prepare(st, STORE_Q_DIFF_COUNTS, &s, err) < 0)
		return -1;
	bind_diff(s, group_key, from, to);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*added = sqlite3_column_int64(s, 0);
		*removed = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return store_error(st, err, "diff");
	return 0;
}

int history_diff_ids(struct store *st, int64_t group_key, int64_t from, int64_t to,
		     int want_added, history_id_cb cb, void *arg, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, stop = 0;

	if (from == to)
		return 0;
	if (prepare(st, want_added ? STORE_Q_DIFF_ADDED : STORE_Q_DIFF_REMOVED, &s, err) < 0)
		return -1;
	bind_diff(s, group_key, from, to);
	while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW)
		stop = cb(arg, (const char *)sqlite3_column_text(s, 0),
			  (size_t)sqlite3_column_bytes(s, 0));
	sqlite3_reset(s);
	if (stop)
		return stop;
	if (rc != SQLITE_DONE)
		return store_error(st, err, "diff");
	return 0;
}

int history_members(struct store *st, int64_t group_key, int64_t snapshot_id, const char *glob,
		    history_id_cb cb, void *arg, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc, stop = 0;

	/* the primary key's order: streamed, never sorted */
	if (prepare(st, STORE_Q_MEMBERS, &s, err) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, group_key);
	sqlite3_bind_int64(s, 2, snapshot_id);
	if (glob)
		sqlite3_bind_text(s, 3, glob, -1, SQLITE_STATIC);
	while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW)
		stop = cb(arg, (const char *)sqlite3_column_text(s, 0),
			  (size_t)sqlite3_column_bytes(s, 0));
	sqlite3_reset(s);
	if (stop)
		return stop;
	if (rc != SQLITE_DONE)
		return store_error(st, err, "client list");
	return 0;
}

int history_intervals(struct store *st, int64_t group_key, const char *pattern, int is_glob,
		      history_interval_cb cb, void *arg, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	struct history_interval iv;
	int rc, stop = 0;

	if (prepare(st, is_glob ? STORE_Q_INTERVALS_GLOB : STORE_Q_INTERVALS_EXACT, &s, err) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, group_key);
	sqlite3_bind_text(s, 2, pattern, -1, SQLITE_STATIC);
	while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&iv, 0, sizeof(iv));
		iv.client_id = (const char *)sqlite3_column_text(s, 0);
		iv.client_len = (size_t)sqlite3_column_bytes(s, 0);
		iv.from_snap = sqlite3_column_int64(s, 1);
		iv.to_snap = sqlite3_column_int64(s, 2);
		iv.from_run = sqlite3_column_int64(s, 3);
		col_text(s, 4, iv.from_at, sizeof(iv.from_at));
		iv.to_run = sqlite3_column_int64(s, 5);
		col_text(s, 6, iv.to_at, sizeof(iv.to_at));
		stop = cb(arg, &iv);
	}
	sqlite3_reset(s);
	if (stop)
		return stop;
	if (rc != SQLITE_DONE)
		return store_error(st, err, "history");
	return 0;
}

int history_pruned_before(struct store *st, int64_t group_key, int64_t *before,
			  struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*before = 0;
	/* the earliest complete snapshot, and whether history before it was pruned */
	if (prepare(st, STORE_Q_PRUNED_BEFORE, &s, err) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, group_key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_int(s, 1))
		*before = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_error(st, err, "history");
	return 0;
}

int history_series(struct store *st, int64_t group_key, int64_t **ids, int64_t **epochs,
		   int64_t **counts, size_t *n, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	size_t cnt = 0, cap = 0;
	int64_t *a = NULL, *b = NULL, *c = NULL;
	int rc;

	*ids = *epochs = *counts = NULL;
	*n = 0;
	if (prepare(st, STORE_Q_SERIES, &s, err) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, group_key);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cnt == cap) {
			int64_t *pa, *pb, *pc;

			cap = cap ? cap * 2 : 32;
			pa = realloc(a, cap * sizeof(*a));
			if (pa)
				a = pa;
			pb = realloc(b, cap * sizeof(*b));
			if (pb)
				b = pb;
			pc = realloc(c, cap * sizeof(*c));
			if (pc)
				c = pc;
			if (!pa || !pb || !pc) {
				cs_error_set(err, CS_ERR_NOMEM, "out of memory");
				goto fail;
			}
		}
		a[cnt] = sqlite3_column_int64(s, 0);
		b[cnt] = col_int_or(s, 1, 0);
		c[cnt] = col_int_or(s, 2, 0);
		cnt++;
	}
	if (rc != SQLITE_DONE) {
		store_error(st, err, "series");
		goto fail;
	}
	sqlite3_reset(s);
	*ids = a;
	*epochs = b;
	*counts = c;
	*n = cnt;
	return 0;
fail:
	sqlite3_reset(s);
	free(a);
	free(b);
	free(c);
	return -1;
}

static int exec_count(struct store *st, enum store_query_id id, int64_t bind, int64_t *changes,
		      struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (prepare(st, id, &s, err) < 0)
		return -1;
	if (sqlite3_bind_parameter_count(s) >= 1)
		sqlite3_bind_int64(s, 1, bind);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_error(st, err, "prune");
	if (changes)
		*changes = store_changes(st);
	return 0;
}

int history_prune(struct store *st, int64_t keep_last, int64_t older_than_epoch, int dry_run,
		  struct prune_result *res, struct cs_error *err)
{
	memset(res, 0, sizeof(*res));
	if (store_begin(st, err) < 0)
		return -1;
	if (exec_count(st, STORE_Q_PRUNE_CREATE, 0, NULL, err) < 0 ||
	    exec_count(st, STORE_Q_PRUNE_CLEAR, 0, NULL, err) < 0)
		goto fail;
	/* beyond the N newest complete snapshots of its group */
	if (keep_last > 0 && exec_count(st, STORE_Q_PRUNE_KEEP_LAST, keep_last, NULL, err) < 0)
		goto fail;
	/* both rules: kept while either keeps it, so only the young are spared from keep_last */
	if (keep_last > 0 && older_than_epoch > 0 &&
	    exec_count(st, STORE_Q_PRUNE_SPARE_YOUNG, older_than_epoch, NULL, err) < 0)
		goto fail;
	if (keep_last <= 0 && older_than_epoch > 0 &&
	    exec_count(st, STORE_Q_PRUNE_OLDER_THAN, older_than_epoch, NULL, err) < 0)
		goto fail;
	/* never: a group's latest complete snapshot, nor one a checkpoint resumes */
	if (exec_count(st, STORE_Q_PRUNE_SPARE_NEEDED, 0, NULL, err) < 0)
		goto fail;
	if (exec_count(st, STORE_Q_PRUNE_SNAPSHOTS, 0, &res->snapshots, err) < 0)
		goto fail;
	/*
	 * A closed interval stays while a kept complete snapshot lies inside it (membership) or
	 * it ends at a kept snapshot (that snapshot's 'removed' changes).  Open intervals are in
	 * the latest complete snapshot, which is always kept.
	 */
	/* the first-seen time of a client whose intervals go is kept apart: a device that
	 * comes back after its history was pruned is still the device first seen then */
	if (exec_count(st, STORE_Q_PRUNE_FIRST_SEEN, 0, NULL, err) < 0)
		goto fail;
	if (exec_count(st, STORE_Q_PRUNE_INTERVALS, 0, &res->intervals, err) < 0)
		goto fail;
	if (exec_count(st, STORE_Q_PRUNE_RUNS, 0, &res->runs, err) < 0)
		goto fail;
	if (dry_run) {
		store_rollback(st);
		return 0;
	}
	return store_commit(st, err);
fail:
	store_rollback(st);
	return -1;
}
