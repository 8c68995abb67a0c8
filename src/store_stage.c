/*
 * store_stage.c - the staging of a crawl: each page of IDs as one row of cs_stage (in the
 * format of stage_codec.h), the group's checkpoint written with it, and the sweep of pages
 * no crawl needs any more.
 */
#include "store_int.h"

#include <string.h>

#include "stage_codec.h"
#include "util.h"

int store_drop_crawl(struct store *st, int64_t group, struct cs_error *err)
{
	sqlite3_stmt *s;

	if (!(s = store_stmt(st, S_STAGE_CLEAR, err)))
		return -1;
	sqlite3_bind_int64(s, 1, group);
	if (store_step_done(st, s, err) < 0)
		return -1;
	if (!(s = store_stmt(st, S_CKPT_DELETE, err)))
		return -1;
	sqlite3_bind_int64(s, 1, group);
	return store_step_done(st, s, err);
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
	struct store_staging *sg = &snap->stage;
	sqlite3_stmt *s = store_stmt(st, S_STAGE_INSERT, err);
	size_t i;

	if (!s)
		return -1;
	/* the service serves sorted pages in practice; when it does, finalizing skips the sort
	 * (any ID out of order, or repeated, turns that off for the walk) */
	for (i = 0; sg->sorted && i < n; i++) {
		const char *prev = i ? ids[i - 1] : buf_str(&sg->last_id);
		size_t plen = i ? lens[i - 1] : sg->last_id.len;

		if ((i || snap->cs.staged_ids) && bytes_cmp(prev, plen, ids[i], lens[i]) >= 0)
			sg->sorted = 0;
	}
	buf_reset(&st->page);
	stage_encode(&st->page, ids, lens, n);
	if (n) {
		buf_reset(&sg->last_id);
		buf_append(&sg->last_id, ids[n - 1], lens[n - 1]);
	}
	if (st->page.oom)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	sqlite3_bind_int64(s, 1, snap->group_key);
	sqlite3_bind_int64(s, 2, snap->cs.pages);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)n);
	sqlite3_bind_text(s, 4, st->page.data, (int)st->page.len, SQLITE_STATIC);
	return store_step_done(st, s, err);
}

int store_checkpoint(struct store *st, const struct store_snap *snap, struct cs_error *err)
{
	sqlite3_stmt *s = store_stmt(st, S_CKPT_UPSERT, err);
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
	sqlite3_bind_int(s, 10, snap->stage.sorted);
	if (snap->stage.last_id.len)
		sqlite3_bind_text(s, 11, snap->stage.last_id.data, (int)snap->stage.last_id.len,
				  SQLITE_STATIC);
	if (cs->read_first)
		sqlite3_bind_int64(s, 12, cs->read_first);
	if (cs->read_last)
		sqlite3_bind_int64(s, 13, cs->read_last);
	return store_step_done(st, s, err);
}

int store_stage_clear(struct store *st, struct store_snap *snap, struct cs_error *err)
{
	sqlite3_stmt *s = store_stmt(st, S_STAGE_CLEAR, err);

	if (!s)
		return -1;
	/* a walk from page 1: nothing staged, so nothing known of its order yet */
	snap->stage.sorted = 1;
	buf_reset(&snap->stage.last_id);
	sqlite3_bind_int64(s, 1, snap->group_key);
	return store_step_done(st, s, err);
}

int store_stage_sweep(struct store *st, struct cs_error *err)
{
	if (store_begin(st, err) < 0)
		return -1;
	if (store_exec(st, "DELETE FROM cs_stage WHERE group_key NOT IN"
			   " (SELECT group_key FROM cs_checkpoint)", err) < 0) {
		store_rollback(st);
		return -1;
	}
	return store_commit(st, err);
}

