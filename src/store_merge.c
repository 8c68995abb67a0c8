/*
 * store_merge.c - finalizing a crawl: the staged IDs merged with the group's validity
 * intervals in one pass (or one INSERT ... SELECT for a group's first snapshot), the tally
 * of what changed, and the commit or abort the caller decides on it.
 */
#include "store_int.h"

#include <stdint.h>
#include <string.h>

#include "stage_codec.h"
#include "util.h"

/* One side of the merge: a statement stepped row by row with its current key copied, since
 * SQLite's column pointers die at the next step. */
struct cursor {
	sqlite3_stmt *s;
	int done;
	struct cs_buf key;
	int pages;               /* s yields staged pages (JSON arrays), decoded here */
	const char *p, *end;     /* the rest of the current page, while pages is set */
};

static int cursor_next(struct store *st, struct cursor *c, struct cs_error *err)
{
	int rc;

	while (c->pages) {
		rc = c->p ? stage_decode_next(&c->p, c->end, &c->key) : 0;
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
			return store_db_error(st, err, "finalize");
		c->p = (const char *)sqlite3_column_text(c->s, 0);
		c->end = c->p + sqlite3_column_bytes(c->s, 0);
	}
	rc = sqlite3_step(c->s);
	if (rc == SQLITE_DONE) {
		c->done = 1;
		return 0;
	}
	if (rc != SQLITE_ROW)
		return store_db_error(st, err, "finalize");
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
	sqlite3_stmt *s = store_stmt(st, S_INTERVAL_OPEN, err);

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, snap->group_key);
	sqlite3_bind_text(s, 2, id->data, (int)id->len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, snap->snapshot_id);
	sqlite3_bind_int64(s, 4, first_seen);
	return store_step_done(st, s, err);
}

static int interval_close(struct store *st, const struct store_snap *snap,
			  const struct client_history *h, struct cs_error *err)
{
	sqlite3_stmt *s = store_stmt(st, S_INTERVAL_CLOSE, err);

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, snap->group_key);
	sqlite3_bind_text(s, 2, h->id.data, (int)h->id.len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, h->open_from);
	sqlite3_bind_int64(s, 4, snap->snapshot_id);
	return store_step_done(st, s, err);
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
	if (!(s = store_stmt(st, S_FIRST_SEEN_LOOKUP, err)))
		return -1;
	sqlite3_bind_int64(s, 1, snap->group_key);
	sqlite3_bind_text(s, 2, id->data, (int)id->len, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_db_error(st, err, "first-seen lookup");
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
	if (!(a.s = store_stmt(st, in_order ? S_STAGE_PAGES : S_MERGE_STAGED, err)))
		goto out;
	sqlite3_bind_int64(a.s, 1, snap->group_key);
	/* a second prepared statement can be stepped at the same time as the first */
	if (sqlite3_prepare_v2(st->db, store_stmt_sql[S_MERGE_INTERVALS], -1, &b.s, NULL) != SQLITE_OK) {
		store_db_error(st, err, "finalize");
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
	sqlite3_stmt *s = store_stmt(st, id, err);
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, group);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return store_db_error(st, err, "count");
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
	sqlite3_stmt *s = store_stmt(st, st->fin_first_seen ? S_FIRST_SNAPSHOT_FS : S_FIRST_SNAPSHOT, err);
	int64_t staged = 0;

	memset(t, 0, sizeof(*t));
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, snap->group_key);
	sqlite3_bind_int64(s, 2, snap->snapshot_id);
	sqlite3_bind_int64(s, 3, now);
	if (store_step_done(st, s, err) < 0)
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
	st->fin_in_order = snap->stage.sorted;
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
	if (!(s = store_stmt(st, S_SNAP_COMPLETE, err)))
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
	if (store_step_done(st, s, err) < 0 || !(s = store_stmt(st, S_CKPT_DELETE, err)))
		goto fail;
	sqlite3_bind_int64(s, 1, snap->group_key);
	if (store_step_done(st, s, err) < 0)
		goto fail;
	return store_commit(st, err);
fail:
	store_rollback(st);
	return -1;
}

