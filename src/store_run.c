/*
 * store_run.c - runs and snapshots: run rows and their progress, recovery of runs a kill
 * left 'running', the start of a group's snapshot with the resume policy for the checkpoint
 * an interrupted crawl left, failed snapshots, and the remembered request rates (cs_rate).
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

int store_rate_get(struct store *st, const char *host, int64_t max_age_s, double *rate,
		   struct cs_error *err)
{
	sqlite3_stmt *s = store_stmt(st, S_RATE_GET, err);
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
		return store_db_error(st, err, "rate lookup");
	return 0;
}

int store_rate_put(struct store *st, const char *host, double rate, struct cs_error *err)
{
	sqlite3_stmt *s;

	if (st->mode != STORE_WRITE)
		return 0;
	if (!(s = store_stmt(st, S_RATE_PUT, err)))
		return -1;
	sqlite3_bind_text(s, 1, host, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 2, rate);
	sqlite3_bind_int64(s, 3, util_now_epoch());
	return store_step_done(st, s, err);
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
	store_now_text(now);
	if (store_begin(st, err) < 0)
		return -1;
	for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		sqlite3_stmt *s = NULL;

		if (sqlite3_prepare_v2(st->db, sql[i], -1, &s, NULL) != SQLITE_OK) {
			store_db_error(st, err, "recover");
			store_rollback(st);
			return -1;
		}
		sqlite3_bind_text(s, 1, now, -1, SQLITE_TRANSIENT);
		if (store_step_done(st, s, err) < 0) {
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
	sqlite3_stmt *s = store_stmt(st, S_RUN_INSERT, err);
	char now[21];

	if (!s)
		return -1;
	store_now_text(now);
	sqlite3_bind_text(s, 1, now, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)getpid());
	if (store_step_done(st, s, err) < 0)
		return -1;
	*run_id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int store_run_finish(struct store *st, int64_t run_id, const struct store_run_stats *r,
		     struct cs_error *err)
{
	sqlite3_stmt *s = store_stmt(st, S_RUN_FINISH, err);
	char now[21];

	if (!s)
		return -1;
	store_now_text(now);
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_text(s, 2, now, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, r->status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, r->groups_ok);
	sqlite3_bind_int64(s, 5, r->groups_failed);
	sqlite3_bind_int64(s, 6, r->requests);
	sqlite3_bind_int64(s, 7, r->retries);
	sqlite3_bind_int64(s, 8, r->throttled);
	return store_step_done(st, s, err);
}

int store_run_progress(struct store *st, int64_t run_id, const struct store_run_stats *r,
		       struct cs_error *err)
{
	sqlite3_stmt *s = store_stmt(st, S_RUN_PROGRESS, err);

	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_int64(s, 2, r->groups_ok);
	sqlite3_bind_int64(s, 3, r->groups_failed);
	sqlite3_bind_int64(s, 4, r->requests);
	sqlite3_bind_int64(s, 5, r->retries);
	sqlite3_bind_int64(s, 6, r->throttled);
	return store_step_done(st, s, err);
}

static int group_key(struct store *st, const char *instance_id, const char *group_id,
		     int64_t *key, struct cs_error *err)
{
	sqlite3_stmt *s = store_stmt(st, S_GROUP_INSERT, err);
	int rc;

	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, instance_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, group_id, -1, SQLITE_STATIC);
	if (store_step_done(st, s, err) < 0)
		return -1;
	if (!(s = store_stmt(st, S_GROUP_SELECT, err)))
		return -1;
	sqlite3_bind_text(s, 1, instance_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, group_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return store_db_error(st, err, "group lookup");
	}
	*key = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return 0;
}

static void crawl_state_fresh(struct store_snap *snap)
{
	struct store_crawl_state *cs = &snap->cs;

	free(cs->next_token);
	memset(cs, 0, sizeof(*cs));
	cs->page_no = 1;
	cs->total_reported = -1;
	buf_release(&snap->stage.last_id);
	snap->stage.sorted = 1;
}

/* Loads the group's checkpoint into snap->cs; *found is 0 when there is none. */
static int checkpoint_load(struct store *st, struct store_snap *snap, int64_t *old_snapshot,
			   int64_t *updated, int *found, struct cs_error *err)
{
	sqlite3_stmt *s = store_stmt(st, S_CKPT_SELECT, err);
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
		snap->stage.sorted = sqlite3_column_int(s, 8);
		buf_reset(&snap->stage.last_id);
		buf_append(&snap->stage.last_id, sqlite3_column_blob(s, 9),
			   (size_t)sqlite3_column_bytes(s, 9));
		cs->read_first = sqlite3_column_int64(s, 10);
		cs->read_last = sqlite3_column_int64(s, 11);
		if (tok && !cs->next_token) {
			sqlite3_reset(s);
			return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		}
	} else if (rc != SQLITE_DONE) {
		sqlite3_reset(s);
		return store_db_error(st, err, "checkpoint lookup");
	}
	sqlite3_reset(s);
	return 0;
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
	crawl_state_fresh(snap);
	store_now_text(now);
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
			crawl_state_fresh(snap);
			found = 0;
		}
	}
	/* a fresh crawl starts from nothing: no checkpoint, and no pages a finished or
	 * abandoned crawl left behind */
	if (!found && store_drop_crawl(st, snap->group_key, err) < 0)
		goto fail;
	if (!(s = store_stmt(st, S_SNAP_INSERT, err)))
		goto fail;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_int64(s, 2, snap->group_key);
	sqlite3_bind_text(s, 3, now, -1, SQLITE_TRANSIENT);
	if (store_step_done(st, s, err) < 0)
		goto fail;
	snap->snapshot_id = sqlite3_last_insert_rowid(st->db);
	if (found) {
		snap->resumed_from = old;
		if (!(s = store_stmt(st, S_SNAP_RESUMED, err)))
			goto fail;
		sqlite3_bind_int64(s, 1, old);
		sqlite3_bind_text(s, 2, now, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 3, snap->snapshot_id);
		if (store_step_done(st, s, err) < 0)
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
	buf_release(&snap->stage.last_id);
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
	if (!(s = store_stmt(st, S_SNAP_FAIL, err)))
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
	if (store_step_done(st, s, err) < 0)
		goto fail;
	if (!keep_checkpoint && store_drop_crawl(st, snap->group_key, err) < 0)
		goto fail;
	free(full);
	return store_commit(st, err);
fail:
	free(full);
	store_rollback(st);
	return -1;
}

void store_groups_free(struct group_row *rows, size_t n)
{
	size_t i;

	for (i = 0; rows && i < n; i++) {
		free(rows[i].instance_id);
		free(rows[i].group_id);
	}
	free(rows);
}

int store_groups(struct store *st, const char *instance, const char *group,
		 struct group_row **rows, size_t *n, struct cs_error *err)
{
	sqlite3_stmt *s = store_query(st, STORE_Q_GROUPS, err);
	struct group_row *out = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	*rows = NULL;
	*n = 0;
	if (!s)
		return -1;
	if (instance)
		sqlite3_bind_text(s, 1, instance, -1, SQLITE_STATIC);
	if (group)
		sqlite3_bind_text(s, 2, group, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cnt == cap) {
			struct group_row *p;

			cap = cap ? cap * 2 : 16;
			if (!(p = realloc(out, cap * sizeof(*p))))
				goto oom;
			out = p;
		}
		out[cnt].group_key = sqlite3_column_int64(s, 0);
		out[cnt].instance_id = strdup((const char *)sqlite3_column_text(s, 1));
		out[cnt].group_id = strdup((const char *)sqlite3_column_text(s, 2));
		cnt++;
		if (!out[cnt - 1].instance_id || !out[cnt - 1].group_id)
			goto oom;
	}
	if (rc != SQLITE_DONE) {
		store_db_error(st, err, "group list");
		goto fail;
	}
	sqlite3_reset(s);
	*rows = out;
	*n = cnt;
	return 0;
oom:
	cs_error_set(err, CS_ERR_NOMEM, "out of memory");
fail:
	sqlite3_reset(s);
	store_groups_free(out, cnt);
	return -1;
}

int store_known_groups(struct store *st, const char *instance_id, char ***groups, size_t *n,
		       struct cs_error *err)
{
	struct group_row *rows = NULL;
	char **out = NULL;
	size_t i, cnt = 0;

	*groups = NULL;
	*n = 0;
	if (store_groups(st, instance_id, NULL, &rows, &cnt, err) < 0)
		return -1;
	if (cnt && !(out = malloc(cnt * sizeof(*out)))) {
		store_groups_free(rows, cnt);
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	}
	/* the group ids change hands; the rest of each row is freed */
	for (i = 0; i < cnt; i++) {
		out[i] = rows[i].group_id;
		rows[i].group_id = NULL;
	}
	store_groups_free(rows, cnt);
	*groups = out;
	*n = cnt;
	return 0;
}

int store_last_success(struct store *st, int64_t *epoch, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int64_t v = 0;

	if (sqlite3_prepare_v2(st->db,
			       "SELECT max(finished_at) FROM cs_run WHERE status = 'complete'", -1, &s,
			       NULL) != SQLITE_OK)
		return store_db_error(st, err, "last success");
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		util_parse_utc((const char *)sqlite3_column_text(s, 0), &v);
	sqlite3_finalize(s);
	*epoch = v;
	return 0;
}


int store_snapshot_set_identity(struct store *st, int64_t snapshot_id, const char *identity,
				struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	/* once per snapshot at the end of a run: not worth a slot in the statement cache */
	if (sqlite3_prepare_v2(st->db, "UPDATE cs_snapshot SET identity = ?2 WHERE snapshot_id = ?1",
			       -1, &s, NULL) != SQLITE_OK)
		return store_db_error(st, err, "recording the identity of a snapshot");
	sqlite3_bind_int64(s, 1, snapshot_id);
	sqlite3_bind_text(s, 2, identity, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return store_db_error(st, err, "recording the identity of a snapshot");
	return 0;
}

