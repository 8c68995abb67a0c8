/*
 * audit.c - the register and the comparison of audit.h.
 *
 * The comparison is one merge in C of two ordered streams: the register sorted by ID and
 * the inventory side in the same key order.  The register is never stored: it is the
 * eponymous virtual table audit_register (id, line), read from the file while SQLite's
 * sorter consumes it (a million inserts and an index cost more than that one sort, which
 * also brings a repeated ID next to its twin).  The inventory side is read straight from
 * cs_interval in its primary key's order, one stream per group, merged across groups by a
 * small heap; by device, groups whose client IDs do not all share "GroupID@@@" are sorted
 * by device ID in one query instead.  Nothing of a million rows is held in memory: SQLite
 * sorts on disk (temp_store = FILE), and only the findings are written, to temporary tables:
 *   temp.audit_group (group_key, snapshot_id, ord, by_key, clients, unexpected)
 *                                         the groups added, and their counts once compared
 *   temp.audit_unexpected (group_key, client_id)  clients that are not in the register
 *   temp.audit_gone (line, id)            register entries nobody holds
 * Everything runs in one read transaction: the inventory cannot change half-way, and
 * nothing is written to the database itself.  The SQL is the store's named queries
 * (STORE_Q_AUDIT_*, in store_sql.c).
 */
#include "audit_int.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "util.h"

int audit_prepare(struct store *st, enum store_query_id id, sqlite3_stmt **s,
		  struct cs_error *err)
{
	if (!(*s = store_query_new(st, id, NULL)))
		return store_error(st, err, "audit");
	return 0;
}
/* ---- comparing ---- */

/*
 * One stream of the inventory side in key order: one group's clients read in the interval
 * key's order (by client, the key; by device too when the group's first and last client IDs
 * share their part up to the first "@@@", so that all of them do, as Alibaba's
 * GroupID@@@DeviceID IDs do), or the other groups' rows sorted by key (STORE_Q_AUDIT_BY_KEY),
 * each naming its group.
 */
struct source {
	sqlite3_stmt *s;
	int sorted;              /* STORE_Q_AUDIT_BY_KEY: column 0 key, 1 group ordinal,
				  * 2 client ID */
	size_t prefix;           /* bytes before the key (a group's shared "GroupID@@@") */
	size_t ord;              /* the group's ordinal */
	const char *key, *client;
	size_t klen, clen;
};

/* SQLite's BINARY order: bytes, then length. */
static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : alen < blen ? -1 : alen > blen;
}

/* What follows the first "@@@" of a client ID (what STORE_Q_AUDIT_BY_KEY computes), or NULL. */
static const char *device_part(const char *id, size_t len)
{
	const char *p = id, *end = id + len;

	while (end - p >= 3 && (p = memchr(p, '@', (size_t)(end - p - 2)))) {
		if (p[1] == '@' && p[2] == '@')
			return p + 3;
		p++;
	}
	return NULL;
}

/* The next row of x: 1, 0 at its end, -1. */
static int source_step(struct source *x)
{
	int rc = sqlite3_step(x->s);

	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return -1;
	if (x->sorted) {
		x->key = (const char *)sqlite3_column_text(x->s, 0);
		x->klen = (size_t)sqlite3_column_bytes(x->s, 0);
		x->ord = (size_t)sqlite3_column_int64(x->s, 1);
		x->client = (const char *)sqlite3_column_text(x->s, 2);
		x->clen = (size_t)sqlite3_column_bytes(x->s, 2);
		return 1;
	}
	x->client = (const char *)sqlite3_column_text(x->s, 0);
	x->clen = (size_t)sqlite3_column_bytes(x->s, 0);
	x->key = x->client + x->prefix;
	x->klen = x->clen - x->prefix;
	return 1;
}

/* A binary min-heap of the streams by their current key: a merge of any number of groups. */
static void heap_down(struct source **h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		struct source *t;

		if (l < n && key_cmp(h[l]->key, h[l]->klen, h[m]->key, h[m]->klen) < 0)
			m = l;
		if (l + 1 < n && key_cmp(h[l + 1]->key, h[l + 1]->klen, h[m]->key, h[m]->klen) < 0)
			m = l + 1;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/*
 * Findings written AUDIT_BATCH rows per statement: a register that matches nothing makes
 * two million of them, and one INSERT per row costs twice as much.  The rows' text is
 * copied into one buffer, reused.
 */
#define AUDIT_BATCH STORE_AUDIT_BATCH

struct batch {
	sqlite3_stmt *one, *many;   /* STORE_Q_AUDIT_ADD_*: one row, and AUDIT_BATCH */
	int64_t n[AUDIT_BATCH];
	size_t off[AUDIT_BATCH], len[AUDIT_BATCH];
	size_t count;
	struct cs_buf text;
};

static int batch_open(struct store *st, struct batch *b, enum store_query_id one,
		      enum store_query_id many, struct cs_error *err)
{
	memset(b, 0, sizeof(*b));
	return audit_prepare(st, one, &b->one, err) < 0 || audit_prepare(st, many, &b->many, err) < 0 ? -1 : 0;
}

static void batch_close(struct batch *b)
{
	sqlite3_finalize(b->one);
	sqlite3_finalize(b->many);
	buf_release(&b->text);
	memset(b, 0, sizeof(*b));
}

/* Writes the rows held: AUDIT_BATCH of them in one statement, fewer one by one. */
static int batch_flush(struct store *st, struct batch *b, struct cs_error *err)
{
	size_t i;
	int rc = SQLITE_DONE;

	if (b->count == AUDIT_BATCH) {
		for (i = 0; i < b->count; i++) {
			sqlite3_bind_int64(b->many, (int)(2 * i + 1), b->n[i]);
			sqlite3_bind_text(b->many, (int)(2 * i + 2), b->text.data + b->off[i],
					  (int)b->len[i], SQLITE_STATIC);
		}
		rc = sqlite3_step(b->many);
		sqlite3_reset(b->many);
	} else {
		for (i = 0; i < b->count && rc == SQLITE_DONE; i++) {
			sqlite3_bind_int64(b->one, 1, b->n[i]);
			sqlite3_bind_text(b->one, 2, b->text.data + b->off[i], (int)b->len[i],
					  SQLITE_STATIC);
			rc = sqlite3_step(b->one);
			sqlite3_reset(b->one);
		}
	}
	b->count = 0;
	buf_reset(&b->text);
	if (rc != SQLITE_DONE)
		return store_error(st, err, "audit");
	return 0;
}

static int batch_add(struct store *st, struct batch *b, int64_t n, const char *t, size_t len,
		     struct cs_error *err)
{
	b->n[b->count] = n;
	b->off[b->count] = b->text.len;
	b->len[b->count] = len;
	buf_append(&b->text, len ? t : "", len);
	if (!b->text.data)
		buf_putc(&b->text, '\0');  /* a first empty text still needs a buffer */
	if (b->text.oom)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	if (++b->count == AUDIT_BATCH)
		return batch_flush(st, b, err);
	return 0;
}

struct merge {
	struct store *st;
	struct audit_reader *r;
	struct source *src;      /* one per group read in order, and one for the sorted ones */
	size_t nsrc;
	int64_t *group_key, *snapshot_id;   /* per group ordinal */
	int64_t *clients, *unexpected;
	size_t ngroups;
	sqlite3_stmt *reg;
	struct batch unexpected_rows, gone_rows;
	struct cs_buf prev_id;   /* the register's previous ID, to catch a repeated one */
	int64_t prev_line;       /* and its line */
};

/* A failed step of the register: the reader's message when it was the file. */
static int register_error(struct merge *m, struct cs_error *err)
{
	if (m->r->failed)
		return -1;
	return store_error(m->st, err, "audit register");
}

/*
 * After a first repeated ID (prev_id at prev_line, seen again at the register's current
 * row): the rest of the sorted register, for the repeat with the earliest second line,
 * which is the one named.  The register cannot be read twice, so the scan goes on.
 */
static int report_duplicate(struct merge *m, struct cs_error *err)
{
	struct cs_buf best = CS_BUF_INIT;
	int64_t best_first = 0, best_again = INT64_MAX, first = m->prev_line, count = 1;
	char q[160];
	int rc;

	for (rc = SQLITE_ROW; rc == SQLITE_ROW; rc = sqlite3_step(m->reg)) {
		const char *id = (const char *)sqlite3_column_text(m->reg, 0);
		size_t len = (size_t)sqlite3_column_bytes(m->reg, 0);
		int64_t line = sqlite3_column_int64(m->reg, 1);

		/* sorted by ID then line: a run's first line is the first, its second the repeat */
		if (!key_cmp(id, len, m->prev_id.len ? m->prev_id.data : "", m->prev_id.len)) {
			if (++count == 2 && line < best_again) {
				best_again = line;
				best_first = first;
				buf_reset(&best);
				buf_append(&best, id, len);
			}
			continue;
		}
		buf_reset(&m->prev_id);
		buf_append(&m->prev_id, id, len);
		first = line;
		count = 1;
	}
	if (rc != SQLITE_DONE)
		register_error(m, err);
	else if (best.oom || m->prev_id.oom)
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	else {
		util_quote_bytes(best.len ? best.data : "", best.len, q, sizeof(q));
		cs_error_set(err, CS_ERR_RUNTIME, "audit: %s:%lld: '%s' repeats line %lld (each ID "
			     "must appear once)", m->r->path, (long long)best_again, q,
			     (long long)best_first);
	}
	buf_release(&best);
	return -1;
}

/*
 * One ordered pass over the register sorted by ID and the inventory merged by key: a key
 * below the register's current ID is unexpected; a register ID that no key equalled, once
 * passed, is missing.  Returns 0, -1, or 3 at a repeated register ID (prev_id, seen again at
 * the current row: report_duplicate goes on from there).
 */
static int merge_run(struct merge *m, struct cs_error *err)
{
	struct source **heap = NULL;
	size_t n = 0, i;
	int64_t t0 = util_mono_ms();
	int rrc, rc, matched = 0, ret = -1;

	if (!(heap = calloc(m->nsrc ? m->nsrc : 1, sizeof(*heap))))
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	rrc = sqlite3_step(m->reg);
	if (rrc != SQLITE_ROW && rrc != SQLITE_DONE) {
		register_error(m, err);
		goto out;
	}
	log_msg(LOG_DEBUG, NULL, "audit: register of %" PRId64 " ID(s) read and sorted in %"
		PRId64 " ms", m->r->reg->ids, util_mono_ms() - t0);
	if (!m->r->reg->ids) {
		cs_error_set(err, CS_ERR_RUNTIME, "audit: %s: the register is empty (no IDs%s)",
			     m->r->path, m->r->column ? " below the header" : "; '#' lines are comments");
		goto out;
	}
	t0 = util_mono_ms();
	for (i = 0; i < m->nsrc; i++) {
		rc = source_step(&m->src[i]);
		if (rc < 0) {
			store_error(m->st, err, "audit");
			goto out;
		}
		if (rc == 1)
			heap[n++] = &m->src[i];
	}
	for (i = n / 2; i-- > 0;)
		heap_down(heap, n, i);
	log_msg(LOG_DEBUG, NULL, "audit: inventory streams opened in %" PRId64 " ms",
		util_mono_ms() - t0);
	while (rrc == SQLITE_ROW || n) {
		const char *id = rrc == SQLITE_ROW ? (const char *)sqlite3_column_text(m->reg, 0) : NULL;
		size_t idlen = id ? (size_t)sqlite3_column_bytes(m->reg, 0) : 0;
		int c = !id ? 1 : !n ? -1 : key_cmp(id, idlen, heap[0]->key, heap[0]->klen);

		if (c >= 0) {
			struct source *x = heap[0];

			m->clients[x->ord]++;
			if (c == 0) {
				matched = 1;
			} else {
				m->unexpected[x->ord]++;
				if (batch_add(m->st, &m->unexpected_rows, m->group_key[x->ord], x->client,
					      x->clen, err) < 0)
					goto out;
			}
			rc = source_step(x);
			if (rc < 0) {
				store_error(m->st, err, "audit");
				goto out;
			}
			if (rc == 0)
				heap[0] = heap[--n];
			heap_down(heap, n, 0);
			continue;
		}
		if (!matched && batch_add(m->st, &m->gone_rows, sqlite3_column_int64(m->reg, 1), id,
					  idlen, err) < 0)
			goto out;
		matched = 0;
		m->prev_line = sqlite3_column_int64(m->reg, 1);
		buf_reset(&m->prev_id);
		buf_append(&m->prev_id, id, idlen);
		if (m->prev_id.oom) {
			cs_error_set(err, CS_ERR_NOMEM, "out of memory");
			goto out;
		}
		rrc = sqlite3_step(m->reg);
		if (rrc == SQLITE_ROW &&
		    !key_cmp((const char *)sqlite3_column_text(m->reg, 0),
			     (size_t)sqlite3_column_bytes(m->reg, 0),
			     m->prev_id.len ? m->prev_id.data : "", m->prev_id.len)) {
			ret = 3;
			goto out;
		}
	}
	if (rrc != SQLITE_DONE) {
		register_error(m, err);
		goto out;
	}
	ret = 0;
out:
	free(heap);
	return ret;
}

/* The streams: per group in client ID order when that is key order, else one sorted. */
static int merge_open(struct merge *m, int by_device, struct cs_error *err)
{
	sqlite3_stmt *fl = NULL, *set = NULL;
	size_t i, nsorted = 0;
	int ret = -1;

	if (!(m->src = calloc(m->ngroups + 1, sizeof(*m->src))))
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	if (by_device && (audit_prepare(m->st, STORE_Q_AUDIT_GROUP_FIRST_LAST, &fl, err) < 0 ||
			  audit_prepare(m->st, STORE_Q_AUDIT_SET_BY_KEY, &set, err) < 0))
		goto out;
	for (i = 0; i < m->ngroups; i++) {
		struct source *x;
		size_t prefix = 0;

		if (by_device) {
			const char *a, *b, *at;
			size_t alen, blen;

			sqlite3_bind_int64(fl, 1, m->group_key[i]);
			sqlite3_bind_int64(fl, 2, m->snapshot_id[i]);
			if (sqlite3_step(fl) != SQLITE_ROW) {
				store_error(m->st, err, "audit");
				goto out;
			}
			a = (const char *)sqlite3_column_text(fl, 0);
			alen = (size_t)sqlite3_column_bytes(fl, 0);
			b = (const char *)sqlite3_column_text(fl, 1);
			blen = (size_t)sqlite3_column_bytes(fl, 1);
			at = a ? device_part(a, alen) : NULL;
			/* every ID between two that share "GroupID@@@" shares it too */
			if (a && b && at && blen >= (size_t)(at - a) && !memcmp(a, b, (size_t)(at - a))) {
				prefix = (size_t)(at - a);
			} else if (a) {
				sqlite3_reset(fl);
				sqlite3_bind_int64(set, 1, (int64_t)i);
				if (sqlite3_step(set) != SQLITE_DONE) {
					store_error(m->st, err, "audit");
					goto out;
				}
				sqlite3_reset(set);
				nsorted++;
				continue;
			}
			sqlite3_reset(fl);
		}
		x = &m->src[m->nsrc++];
		x->ord = i;
		x->prefix = prefix;
		if (audit_prepare(m->st, STORE_Q_AUDIT_GROUP_BY_CLIENT, &x->s, err) < 0)
			goto out;
		sqlite3_bind_int64(x->s, 1, m->group_key[i]);
		sqlite3_bind_int64(x->s, 2, m->snapshot_id[i]);
	}
	if (nsorted) {
		struct source *x = &m->src[m->nsrc++];

		log_msg(LOG_DEBUG, NULL, "audit: %zu group(s) with client IDs not in device ID order: "
			"sorting them", nsorted);
		x->sorted = 1;
		if (audit_prepare(m->st, STORE_Q_AUDIT_BY_KEY, &x->s, err) < 0)
			goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(fl);
	sqlite3_finalize(set);
	return ret;
}

int audit_add_group(struct store *st, int64_t group_key, int64_t snapshot_id,
		    struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (audit_prepare(st, STORE_Q_AUDIT_ADD_GROUP, &s, err) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, group_key);
	sqlite3_bind_int64(s, 2, snapshot_id);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return store_error(st, err, "audit");
	return 0;
}

int audit_compare(struct store *st, const struct audit_register *reg, int by_device,
		  struct cs_error *err)
{
	struct merge m;
	sqlite3_stmt *s = NULL;
	size_t i;
	int ret = -1, rc;

	memset(&m, 0, sizeof(m));
	m.st = st;
	m.r = reg->reader;
	m.r->err = err;
	if (audit_prepare(st, STORE_Q_AUDIT_GROUP_COUNT, &s, err) < 0)
		return -1;
	rc = sqlite3_step(s);
	m.ngroups = rc == SQLITE_ROW ? (size_t)sqlite3_column_int64(s, 0) : 0;
	sqlite3_finalize(s);
	s = NULL;
	if (rc != SQLITE_ROW)
		return store_error(st, err, "audit");
	m.group_key = calloc(m.ngroups + 1, sizeof(*m.group_key));
	m.snapshot_id = calloc(m.ngroups + 1, sizeof(*m.snapshot_id));
	m.clients = calloc(m.ngroups + 1, sizeof(*m.clients));
	m.unexpected = calloc(m.ngroups + 1, sizeof(*m.unexpected));
	if (!m.group_key || !m.snapshot_id || !m.clients || !m.unexpected) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (audit_prepare(st, STORE_Q_AUDIT_GROUPS, &s, err) < 0)
		goto out;
	for (i = 0; i < m.ngroups && sqlite3_step(s) == SQLITE_ROW; i++) {
		m.group_key[i] = sqlite3_column_int64(s, 0);
		m.snapshot_id[i] = sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	s = NULL;
	if (audit_prepare(st, STORE_Q_AUDIT_REGISTER_BY_ID, &m.reg, err) < 0 ||
	    batch_open(st, &m.unexpected_rows, STORE_Q_AUDIT_ADD_UNEXPECTED,
		       STORE_Q_AUDIT_ADD_UNEXPECTED_BATCH, err) < 0 ||
	    batch_open(st, &m.gone_rows, STORE_Q_AUDIT_ADD_GONE,
		       STORE_Q_AUDIT_ADD_GONE_BATCH, err) < 0 ||
	    merge_open(&m, by_device, err) < 0)
		goto out;
	rc = merge_run(&m, err);
	if (rc == 3)
		rc = report_duplicate(&m, err);
	if (rc < 0 || batch_flush(st, &m.unexpected_rows, err) < 0 ||
	    batch_flush(st, &m.gone_rows, err) < 0)
		goto out;
	if (audit_prepare(st, STORE_Q_AUDIT_SET_COUNTS, &s, err) < 0)
		goto out;
	for (i = 0; i < m.ngroups; i++) {
		sqlite3_bind_int64(s, 1, (int64_t)i);
		sqlite3_bind_int64(s, 2, m.clients[i]);
		sqlite3_bind_int64(s, 3, m.unexpected[i]);
		if (sqlite3_step(s) != SQLITE_DONE) {
			store_error(st, err, "audit");
			goto out;
		}
		sqlite3_reset(s);
	}
	ret = 0;
out:
	sqlite3_finalize(s);
	for (i = 0; i < m.nsrc; i++)
		sqlite3_finalize(m.src[i].s);
	free(m.src);
	sqlite3_finalize(m.reg);
	batch_close(&m.unexpected_rows);
	batch_close(&m.gone_rows);
	buf_release(&m.prev_id);
	free(m.group_key);
	free(m.snapshot_id);
	free(m.clients);
	free(m.unexpected);
	return ret;
}

int audit_group_counts(struct store *st, int64_t group_key, int64_t *clients,
		       int64_t *unexpected, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*clients = *unexpected = 0;
	if (audit_prepare(st, STORE_Q_AUDIT_GROUP_COUNTS, &s, err) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, group_key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*clients = sqlite3_column_int64(s, 0);
		*unexpected = sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_error(st, err, "audit");
	return 0;
}

int audit_missing_count(struct store *st, int64_t *missing, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*missing = 0;
	if (audit_prepare(st, STORE_Q_AUDIT_MISSING_COUNT, &s, err) < 0)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*missing = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return store_error(st, err, "audit");
	return 0;
}

static int stream(struct store *st, sqlite3_stmt *s, audit_id_cb cb, void *arg,
		  struct cs_error *err)
{
	int rc, stop = 0;

	while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW)
		stop = cb(arg, (const char *)sqlite3_column_text(s, 0),
			  (size_t)sqlite3_column_bytes(s, 0), sqlite3_column_int64(s, 1));
	sqlite3_finalize(s);
	if (stop)
		return stop;
	if (rc != SQLITE_DONE)
		return store_error(st, err, "audit");
	return 0;
}

int audit_unexpected(struct store *st, int64_t group_key, audit_id_cb cb, void *arg,
		     struct cs_error *err)
{
	sqlite3_stmt *s = NULL;

	if (audit_prepare(st, STORE_Q_AUDIT_UNEXPECTED, &s, err) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, group_key);
	return stream(st, s, cb, arg, err);
}

int audit_missing(struct store *st, audit_id_cb cb, void *arg, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;

	if (audit_prepare(st, STORE_Q_AUDIT_MISSING, &s, err) < 0)
		return -1;
	return stream(st, s, cb, arg, err);
}

void audit_end(struct store *st, struct audit_register *reg)
{
	audit_register_close(reg);
	/* the temporary tables go with the read transaction */
	store_rollback(st);
}
