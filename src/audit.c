/*
 * audit.c - the register and the comparison of audit.h, in temporary tables:
 *   temp.audit_expected (line, id)        the register in file order (appended: cheap)
 *   temp.audit_group (group_key, snapshot_id, ord, clients, unexpected)
 *                                         the groups added, and their counts once compared
 *   temp.audit_unexpected (group_key, client_id)  clients that are not in the register
 *   temp.audit_gone (line, id)            register entries nobody holds
 * The comparison is one merge in C of two ordered streams: the register sorted by ID (one
 * SQLite sort, which also brings a repeated ID next to its twin) and the groups' clients
 * read straight from cs_interval in its primary key's order, merged across groups by a
 * small heap.  Nothing of a million rows is held in memory: SQLite sorts on disk
 * (temp_store = FILE) and only findings are written.  Everything runs in one read
 * transaction: the inventory cannot change half-way, and nothing is written to the
 * database itself.
 */
#include "audit.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "util.h"

/* The temporary tables (see the top of the file); no index but the primary keys. */
static const char SQL_CREATE_EXPECTED[] =
	"CREATE TEMP TABLE audit_expected (line INTEGER PRIMARY KEY, id TEXT NOT NULL)";
static const char SQL_CREATE_GROUP[] =
	"CREATE TEMP TABLE audit_group (group_key INTEGER PRIMARY KEY, snapshot_id INTEGER NOT NULL,"
	" ord INTEGER NOT NULL, clients INTEGER NOT NULL DEFAULT 0,"
	" unexpected INTEGER NOT NULL DEFAULT 0)";
static const char SQL_CREATE_UNEXPECTED[] =
	"CREATE TEMP TABLE audit_unexpected (group_key INTEGER NOT NULL, client_id TEXT NOT NULL,"
	" PRIMARY KEY (group_key, client_id)) WITHOUT ROWID";
static const char SQL_CREATE_GONE[] =
	"CREATE TEMP TABLE audit_gone (line INTEGER NOT NULL, id TEXT NOT NULL)";

static int prepare(struct store *st, const char *sql, sqlite3_stmt **s, struct cs_error *err)
{
	if (sqlite3_prepare_v2(store_db(st), sql, -1, s, NULL) != SQLITE_OK)
		return store_error(st, err, "audit");
	return 0;
}

static int exec1(struct store *st, const char *sql, struct cs_error *err)
{
	if (sqlite3_exec(store_db(st), sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_error(st, err, "audit");
	return 0;
}

/* ---- reading the register ---- */

struct reader {
	FILE *f;
	const char *path;
	struct cs_buf line;      /* the current record's bytes (CSV: one field at a time) */
	int64_t line_no;         /* of the next character */
	char blk[65536];         /* text mode's read buffer: blk[pos, end) is unread */
	size_t pos, end;
	struct cs_error *err;
};

static int bad(struct reader *r, int64_t line, const char *fmt, const char *detail)
{
	return cs_error_set(r->err, CS_ERR_RUNTIME, "audit: %s:%lld: %s%s", r->path, (long long)line,
			    fmt, detail ? detail : "");
}

/* The first byte offset (1-based) where s stops being UTF-8, or 0 when all of it is. */
static size_t utf8_bad_at(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;

		if (n > len - i || !util_utf8_valid(s + i, n))
			return i + 1;
		i += n;
	}
	return 0;
}

static int check_utf8(struct reader *r, int64_t line, const char *s, size_t len)
{
	char detail[96];
	size_t at = utf8_bad_at(s, len);

	if (!at)
		return 0;
	snprintf(detail, sizeof(detail), "byte %zu (0x%02x) is not UTF-8 (the register must be "
		 "UTF-8 text%s)", at, (unsigned char)s[at - 1],
		 memchr(s, '\0', len) ? "; NUL bytes suggest UTF-16" : "");
	return bad(r, line, "", detail);
}

static int insert_id(struct store *st, sqlite3_stmt *ins, int64_t line, const char *id,
		     size_t len, struct audit_register *reg, struct cs_error *err)
{
	sqlite3_bind_int64(ins, 1, line);
	sqlite3_bind_text(ins, 2, id, (int)len, SQLITE_STATIC);  /* copied by the step */
	if (sqlite3_step(ins) != SQLITE_DONE) {
		sqlite3_reset(ins);
		sqlite3_clear_bindings(ins);
		return store_error(st, err, "audit register");
	}
	sqlite3_reset(ins);
	sqlite3_clear_bindings(ins);
	reg->ids++;
	return 0;
}

/* Reads one line into r->line without its end; 0 at EOF with nothing read, 1 with a line.
 * Block reads and memchr: a million-line register is read in tens of milliseconds. */
static int read_line(struct reader *r)
{
	int eof = 0;

	buf_reset(&r->line);
	for (;;) {
		char *nl;
		size_t n;

		if (r->pos == r->end) {
			r->pos = 0;
			r->end = fread(r->blk, 1, sizeof(r->blk), r->f);
			if (r->end == 0) {
				eof = 1;
				break;
			}
		}
		nl = memchr(r->blk + r->pos, '\n', r->end - r->pos);
		n = nl ? (size_t)(nl - (r->blk + r->pos)) : r->end - r->pos;
		buf_append(&r->line, r->blk + r->pos, n);
		r->pos += n + (nl ? 1 : 0);
		if (r->line.len > AUDIT_MAX_LINE)
			return bad(r, r->line_no, "line longer than 65536 bytes", NULL);
		if (nl)
			break;
	}
	if (ferror(r->f))
		return cs_error_set(r->err, CS_ERR_RUNTIME, "audit: %s: read error: %s", r->path,
				    strerror(errno));
	if (eof && !r->line.len)
		return 0;
	if (r->line.len && r->line.data[r->line.len - 1] == '\r')
		r->line.len--;  /* CRLF */
	return 1;
}

static int load_text(struct store *st, struct reader *r, sqlite3_stmt *ins,
		     struct audit_register *reg)
{
	int rc;

	while ((rc = read_line(r)) == 1) {
		int64_t line = r->line_no++;
		char *s = r->line.data;
		size_t len = r->line.len;

		if (r->line.oom)
			return cs_error_set(r->err, CS_ERR_NOMEM, "out of memory");
		if (line == 1 && len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) {
			s += 3;  /* a UTF-8 byte order mark */
			len -= 3;
		}
		if (check_utf8(r, line, s, len) < 0)
			return -1;
		while (len && (*s == ' ' || *s == '\t')) {
			s++;
			len--;
		}
		while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		reg->lines = line;
		if (!len || *s == '#')
			continue;
		if (insert_id(st, ins, line, s, len, reg, r->err) < 0)
			return -1;
	}
	return rc;
}

/*
 * One CSV record (RFC 4180): its fields go to cb as they end.  Returns 1 with a record, 0 at
 * the end of the file, -1 on error.  *start is the record's first line.
 */
struct csv_field_sink {
	size_t want;             /* the column's index, or SIZE_MAX for the header */
	const char *name;        /* the header's column name */
	size_t index;            /* fields seen in this record */
	int found;               /* the wanted field was seen */
	struct cs_buf value;     /* the wanted field (or, for the header, the column list) */
};

static int csv_record(struct reader *r, struct csv_field_sink *k, int64_t *start)
{
	int c, quoted = 0, in_quotes = 0, after_quote = 0, any = 0;

	*start = r->line_no;
	k->index = 0;
	k->found = 0;
	buf_reset(&k->value);
	buf_reset(&r->line);
	/* a blank line is no record */
	c = getc(r->f);
	if (c == '\r') {
		int d = getc(r->f);

		if (d == '\n')
			c = '\n';
		else if (d != EOF)
			ungetc(d, r->f);
	}
	if (c == '\n') {
		r->line_no++;
		return 2;
	}
	if (c != EOF)
		ungetc(c, r->f);
	for (;;) {
		c = getc(r->f);
		if (c != EOF)
			any = 1;
		if (in_quotes) {
			if (c == EOF)
				return bad(r, *start, "a quoted field is never closed", NULL);
			if (c == '"') {
				int d = getc(r->f);

				if (d == '"') {
					buf_putc(&r->line, '"');
					continue;
				}
				if (d != EOF)
					ungetc(d, r->f);
				in_quotes = 0;
				after_quote = 1;
				continue;
			}
			if (c == '\n')
				r->line_no++;
			buf_putc(&r->line, (char)c);
		} else if (c == ',' || c == '\n' || c == EOF || c == '\r') {
			if (c == '\r') {
				int d = getc(r->f);

				if (d != '\n') {
					if (d != EOF)
						ungetc(d, r->f);
					return bad(r, r->line_no, "a carriage return outside quotes that does "
						   "not end the line", NULL);
				}
				c = '\n';
			}
			if (c == EOF && !any)
				return 0;
			/* one field ends */
			if (r->line.oom)
				return cs_error_set(r->err, CS_ERR_NOMEM, "out of memory");
			if (check_utf8(r, *start, r->line.data ? r->line.data : "", r->line.len) < 0)
				return -1;
			if (k->want == SIZE_MAX) {
				const char *f = r->line.data ? r->line.data : "";
				size_t len = r->line.len;

				if (*start == 1 && k->index == 0 && len >= 3 && !memcmp(f, "\xEF\xBB\xBF", 3)) {
					f += 3;
					len -= 3;
				}
				if (!k->found && len == strlen(k->name) && !memcmp(f, k->name, len)) {
					k->found = 1;
					k->want = k->index;
				}
				if (k->value.len < 400) {
					buf_puts(&k->value, k->index ? ", " : "");
					buf_append(&k->value, f, len);
				}
			} else if (k->index == k->want) {
				buf_append(&k->value, r->line.data ? r->line.data : "", r->line.len);
				k->found = 1;
			}
			k->index++;
			buf_reset(&r->line);
			quoted = after_quote = 0;
			if (c == '\n')
				r->line_no++;
			if (c != ',')
				return 1;
		} else {
			if (after_quote)
				return bad(r, r->line_no, "a character after a closing quote (a quote inside "
					   "a quoted field is written twice: \"\")", NULL);
			if (c == '"' && !quoted && r->line.len == 0) {
				quoted = in_quotes = 1;
				continue;
			}
			buf_putc(&r->line, (char)c);
		}
		if (r->line.len > AUDIT_MAX_LINE)
			return bad(r, *start, "field longer than 65536 bytes", NULL);
	}
}

static int load_csv(struct store *st, struct reader *r, const char *column, sqlite3_stmt *ins,
		    struct audit_register *reg)
{
	struct csv_field_sink k = { SIZE_MAX, column, 0, 0, CS_BUF_INIT };
	int64_t start;
	int rc, ret = -1;

	while ((rc = csv_record(r, &k, &start)) == 2)
		;
	if (rc == 0) {
		cs_error_set(r->err, CS_ERR_RUNTIME, "audit: %s: the register is empty (expected a CSV "
			     "header naming column '%s')", r->path, column);
		goto out;
	}
	if (rc < 0)
		goto out;
	if (k.want == SIZE_MAX) {
		cs_error_set(r->err, CS_ERR_RUNTIME, "audit: %s:%lld: the header has no column '%s' "
			     "(columns: %s)", r->path, (long long)start, column, buf_str(&k.value));
		goto out;
	}
	while ((rc = csv_record(r, &k, &start)) >= 1) {
		reg->lines = r->line_no - 1;
		if (rc == 2)
			continue;
		if (!k.found) {
			char detail[64];

			snprintf(detail, sizeof(detail), " (the row has %zu field(s))", k.index);
			cs_error_set(r->err, CS_ERR_RUNTIME, "audit: %s:%lld: no value for column '%s'%s",
				     r->path, (long long)start, column, detail);
			goto out;
		}
		if (!k.value.len) {
			reg->skipped++;
			continue;
		}
		if (k.value.oom) {
			cs_error_set(r->err, CS_ERR_NOMEM, "out of memory");
			goto out;
		}
		if (insert_id(st, ins, start, k.value.data, k.value.len, reg, r->err) < 0)
			goto out;
	}
	ret = rc;
out:
	buf_release(&k.value);
	return ret;
}

/* After a failed unique index: the first repeated ID and both its lines, for the message. */
static int report_duplicate(struct store *st, const char *path, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	char q[160];

	if (exec1(st, "CREATE INDEX temp.audit_expected_dup ON audit_expected (id)", err) < 0 ||
	    prepare(st, "SELECT id, min(line), (SELECT min(line) FROM temp.audit_expected b"
		    "  WHERE b.id = a.id AND b.line > min(a.line)) AS again"
		    " FROM temp.audit_expected a GROUP BY id HAVING count(*) > 1"
		    " ORDER BY again LIMIT 1", &s, err) < 0)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW) {
		util_quote_bytes((const char *)sqlite3_column_text(s, 0),
				 (size_t)sqlite3_column_bytes(s, 0), q, sizeof(q));
		cs_error_set(err, CS_ERR_RUNTIME, "audit: %s:%lld: '%s' repeats line %lld (each ID "
			     "must appear once)", path, (long long)sqlite3_column_int64(s, 2), q,
			     (long long)sqlite3_column_int64(s, 1));
	} else {
		store_error(st, err, "audit register");
	}
	sqlite3_finalize(s);
	return -1;
}

int audit_load_register(struct store *st, const char *path, const char *column,
			struct audit_register *reg, struct cs_error *err)
{
	struct reader r;
	sqlite3_stmt *ins = NULL;
	unsigned char head[2] = { 0, 0 };
	int ret = -1, rc;

	memset(reg, 0, sizeof(*reg));
	reg->path = path;
	memset(&r, 0, sizeof(r));
	r.path = path;
	r.line_no = 1;
	r.err = err;
	if (!strcmp(path, "-"))
		r.f = stdin;
	else if (!(r.f = fopen(path, "rb")))
		return cs_error_set(err, CS_ERR_RUNTIME, "audit: cannot open the register %s: %s",
				    path, strerror(errno));
	/* UTF-16 is the one encoding a spreadsheet commonly picks that is not UTF-8; from a
	 * pipe (no rewind) it is still refused, as bytes that are not UTF-8 */
	if (r.f != stdin) {
		if (fread(head, 1, 2, r.f) == 2 &&
		    ((head[0] == 0xFF && head[1] == 0xFE) || (head[0] == 0xFE && head[1] == 0xFF))) {
			cs_error_set(err, CS_ERR_RUNTIME, "audit: %s:1: the register is UTF-16 (it starts "
				     "with a UTF-16 byte order mark); save it as UTF-8", path);
			goto out;
		}
		rewind(r.f);
	}
	/*
	 * The temporary tables need no rollback journal (they die with the transaction), and a
	 * larger page cache for them (8 MiB, within the 32 MiB budget) keeps the sorts that
	 * build their indexes mostly in memory.
	 */
	if (exec1(st, "PRAGMA temp.journal_mode = OFF", err) < 0 ||
	    exec1(st, "PRAGMA temp.cache_size = -8192", err) < 0 ||
	    exec1(st, "BEGIN", err) < 0 ||
	    exec1(st, SQL_CREATE_EXPECTED, err) < 0 || exec1(st, SQL_CREATE_GROUP, err) < 0 ||
	    exec1(st, SQL_CREATE_UNEXPECTED, err) < 0 || exec1(st, SQL_CREATE_GONE, err) < 0 ||
	    prepare(st, "INSERT INTO temp.audit_expected (line, id) VALUES (?1, ?2)", &ins, err) < 0)
		goto out;
	rc = column ? load_csv(st, &r, column, ins, reg) : load_text(st, &r, ins, reg);
	if (rc < 0)
		goto out;
	if (!reg->ids) {
		cs_error_set(err, CS_ERR_RUNTIME, "audit: %s: the register is empty (no IDs%s)", path,
			     column ? " below the header" : "; '#' lines are comments");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(ins);
	buf_release(&r.line);
	if (r.f && r.f != stdin)
		fclose(r.f);
	return ret;
}

/* ---- comparing ---- */

/*
 * One ordered stream of the inventory side: either one group's clients at its snapshot read
 * in the interval key's order (client ID, so no sort; by device the keys are then checked to
 * come in order too, which they do when the group's clients share one prefix before "@@@",
 * as Alibaba's GroupID@@@DeviceID IDs do), or every group's rows sorted by key (SQL_BY_KEY),
 * each row naming its group.
 */
struct source {
	sqlite3_stmt *s;
	int all_groups;          /* SQL_BY_KEY: column 0 key, 1 group ordinal, 2 client ID */
	int by_device;
	size_t ord;              /* the group's ordinal (one-group streams) */
	const char *key, *client;
	size_t klen, clen;
	struct cs_buf prev;      /* the previous key, to check the order (by device only) */
	int seen;                /* prev holds a key */
};

/* SQLite's BINARY order: bytes, then length. */
static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : alen < blen ? -1 : alen > blen;
}

/* What follows the first "@@@" of a client ID (what SQL_BY_KEY computes), or NULL. */
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

/* The next row of x: 1, 0 at its end, 2 when a one-group stream's keys go backwards. */
static int source_step(struct source *x)
{
	int rc = sqlite3_step(x->s);
	const char *at;

	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return -1;
	if (x->all_groups) {
		x->key = (const char *)sqlite3_column_text(x->s, 0);
		x->klen = (size_t)sqlite3_column_bytes(x->s, 0);
		x->ord = (size_t)sqlite3_column_int64(x->s, 1);
		x->client = (const char *)sqlite3_column_text(x->s, 2);
		x->clen = (size_t)sqlite3_column_bytes(x->s, 2);
		return 1;
	}
	x->client = (const char *)sqlite3_column_text(x->s, 0);
	x->clen = (size_t)sqlite3_column_bytes(x->s, 0);
	x->key = x->client;
	x->klen = x->clen;
	if (!x->by_device)
		return 1;  /* in client ID order by the primary key */
	at = device_part(x->client, x->clen);
	if (at) {
		x->key = at;
		x->klen = x->clen - (size_t)(at - x->client);
	}
	if (x->seen && key_cmp(x->key, x->klen, x->prev.len ? x->prev.data : "", x->prev.len) < 0)
		return 2;
	buf_reset(&x->prev);
	buf_append(&x->prev, x->key, x->klen);
	x->seen = 1;
	return x->prev.oom ? -1 : 1;
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

/* The SQL of the comparison, all of it here. */
static const char SQL_REGISTER_BY_ID[] =
	"SELECT id, line FROM temp.audit_expected ORDER BY id";
static const char SQL_GROUP_BY_CLIENT[] =
	"SELECT client_id FROM cs_interval WHERE group_key = ?1 AND from_snap <= ?2"
	" AND (to_snap IS NULL OR to_snap > ?2) ORDER BY client_id";
static const char SQL_BY_KEY[] =
	"SELECT CASE WHEN instr(i.client_id, '@@@') > 0"
	"  THEN substr(i.client_id, instr(i.client_id, '@@@') + 3) ELSE i.client_id END AS k,"
	" g.ord, i.client_id FROM temp.audit_group g JOIN cs_interval i"
	" ON i.group_key = g.group_key AND i.from_snap <= g.snapshot_id"
	" AND (i.to_snap IS NULL OR i.to_snap > g.snapshot_id) ORDER BY k";
static const char SQL_GROUPS[] =
	"SELECT group_key, snapshot_id FROM temp.audit_group ORDER BY ord";
static const char SQL_ADD_UNEXPECTED[] =
	"INSERT INTO temp.audit_unexpected (group_key, client_id) VALUES (?1, ?2)";
static const char SQL_ADD_GONE[] =
	"INSERT INTO temp.audit_gone (line, id) VALUES (?1, ?2)";
static const char SQL_SET_COUNTS[] =
	"UPDATE temp.audit_group SET clients = ?2, unexpected = ?3 WHERE ord = ?1";

struct merge {
	struct store *st;
	struct source *src;      /* one per group, or one for all of them */
	size_t nsrc;
	int64_t *group_key;      /* per group ordinal */
	int64_t *clients, *unexpected;
	size_t ngroups;
	sqlite3_stmt *reg, *add_unexpected, *add_gone;
	struct cs_buf prev_id;   /* the register's previous ID, to catch a repeated one */
};

static int add_row(struct store *st, sqlite3_stmt *s, int64_t n, const char *t, size_t len,
		   struct cs_error *err)
{
	int rc;

	sqlite3_bind_int64(s, 1, n);
	sqlite3_bind_text(s, 2, t, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_error(st, err, "audit");
	return 0;
}

/*
 * One ordered pass over the register sorted by ID and the inventory merged by key: a key
 * below the register's current ID is unexpected; a register ID that no key equalled, once
 * passed, is missing.  Returns 0, -1, 2 when a stream turned out unordered (nothing is
 * reported then: run again sorted), 3 on a repeated register ID.
 */
static int merge_run(struct merge *m, struct cs_error *err)
{
	struct source **heap = NULL;
	size_t n = 0, i;
	int rrc, rc, matched = 0, ret = -1;

	if (!(heap = calloc(m->nsrc ? m->nsrc : 1, sizeof(*heap))))
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	for (i = 0; i < m->nsrc; i++) {
		rc = source_step(&m->src[i]);
		if (rc == 2) {
			ret = 2;
			goto out;
		}
		if (rc < 0)
			goto sql_error;
		if (rc == 1)
			heap[n++] = &m->src[i];
	}
	for (i = n / 2; i-- > 0;)
		heap_down(heap, n, i);
	rrc = sqlite3_step(m->reg);
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
				if (add_row(m->st, m->add_unexpected, m->group_key[x->ord], x->client, x->clen,
					    err) < 0)
					goto out;
			}
			rc = source_step(x);
			if (rc == 2) {
				ret = 2;
				goto out;
			}
			if (rc < 0)
				goto sql_error;
			if (rc == 0)
				heap[0] = heap[--n];
			heap_down(heap, n, 0);
			continue;
		}
		if (!matched && add_row(m->st, m->add_gone, sqlite3_column_int64(m->reg, 1), id, idlen,
					err) < 0)
			goto out;
		matched = 0;
		buf_reset(&m->prev_id);
		buf_append(&m->prev_id, id, idlen);
		if (m->prev_id.oom) {
			cs_error_set(err, CS_ERR_NOMEM, "out of memory");
			goto out;
		}
		rrc = sqlite3_step(m->reg);
		if (rrc == SQLITE_ROW &&
		    !key_cmp((const char *)sqlite3_column_text(m->reg, 0),
			     (size_t)sqlite3_column_bytes(m->reg, 0), m->prev_id.data, m->prev_id.len)) {
			ret = 3;
			goto out;
		}
	}
	if (rrc != SQLITE_DONE)
		goto sql_error;
	ret = 0;
	goto out;
sql_error:
	store_error(m->st, err, "audit");
out:
	free(heap);
	return ret;
}

/* Finalizes the streams and forgets what a run found. */
static void merge_reset(struct merge *m)
{
	size_t i;

	for (i = 0; i < m->nsrc; i++) {
		sqlite3_finalize(m->src[i].s);
		buf_release(&m->src[i].prev);
	}
	free(m->src);
	m->src = NULL;
	m->nsrc = 0;
	sqlite3_reset(m->reg);
	for (i = 0; i < m->ngroups; i++)
		m->clients[i] = m->unexpected[i] = 0;
}

/* The streams of one run: per group in client ID order, or (sorted) one over all groups. */
static int merge_open(struct merge *m, int by_device, int sorted, struct cs_error *err)
{
	size_t i, n = sorted ? 1 : m->ngroups;
	sqlite3_stmt *g = NULL;

	if (!(m->src = calloc(n ? n : 1, sizeof(*m->src))))
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	m->nsrc = n;
	if (sorted) {
		m->src[0].all_groups = 1;
		return prepare(m->st, SQL_BY_KEY, &m->src[0].s, err);
	}
	if (prepare(m->st, SQL_GROUPS, &g, err) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		struct source *x = &m->src[i];

		if (sqlite3_step(g) != SQLITE_ROW || prepare(m->st, SQL_GROUP_BY_CLIENT, &x->s, err) < 0) {
			sqlite3_finalize(g);
			return x->s ? store_error(m->st, err, "audit") : -1;
		}
		x->ord = i;
		x->by_device = by_device;
		sqlite3_bind_int64(x->s, 1, sqlite3_column_int64(g, 0));
		sqlite3_bind_int64(x->s, 2, sqlite3_column_int64(g, 1));
	}
	sqlite3_finalize(g);
	return 0;
}

int audit_add_group(struct store *st, int64_t group_key, int64_t snapshot_id,
		    struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (prepare(st, "INSERT INTO temp.audit_group (group_key, snapshot_id, ord)"
		    " VALUES (?1, ?2, (SELECT count(*) FROM temp.audit_group))", &s, err) < 0)
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
	if (prepare(st, "SELECT count(*) FROM temp.audit_group", &s, err) < 0)
		return -1;
	rc = sqlite3_step(s);
	m.ngroups = rc == SQLITE_ROW ? (size_t)sqlite3_column_int64(s, 0) : 0;
	sqlite3_finalize(s);
	s = NULL;
	if (rc != SQLITE_ROW)
		return store_error(st, err, "audit");
	m.group_key = calloc(m.ngroups + 1, sizeof(*m.group_key));
	m.clients = calloc(m.ngroups + 1, sizeof(*m.clients));
	m.unexpected = calloc(m.ngroups + 1, sizeof(*m.unexpected));
	if (!m.group_key || !m.clients || !m.unexpected) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (prepare(st, SQL_GROUPS, &s, err) < 0)
		goto out;
	for (i = 0; i < m.ngroups && sqlite3_step(s) == SQLITE_ROW; i++)
		m.group_key[i] = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (prepare(st, SQL_REGISTER_BY_ID, &m.reg, err) < 0 ||
	    prepare(st, SQL_ADD_UNEXPECTED, &m.add_unexpected, err) < 0 ||
	    prepare(st, SQL_ADD_GONE, &m.add_gone, err) < 0 ||
	    merge_open(&m, by_device, 0, err) < 0)
		goto out;
	rc = merge_run(&m, err);
	if (rc == 2) {
		/* some group's device IDs are not in its client IDs' order: sort them all */
		log_msg(LOG_DEBUG, NULL, "audit: device IDs out of order; sorting them");
		merge_reset(&m);
		if (exec1(st, "DELETE FROM temp.audit_unexpected", err) < 0 ||
		    exec1(st, "DELETE FROM temp.audit_gone", err) < 0 ||
		    merge_open(&m, by_device, 1, err) < 0)
			goto out;
		rc = merge_run(&m, err);
	}
	if (rc == 3) {
		merge_reset(&m);
		sqlite3_finalize(m.reg);
		m.reg = NULL;
		report_duplicate(st, reg->path, err);
		goto out;
	}
	if (rc < 0)
		goto out;
	if (prepare(st, SQL_SET_COUNTS, &s, err) < 0)
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
	merge_reset(&m);
	sqlite3_finalize(m.reg);
	sqlite3_finalize(m.add_unexpected);
	sqlite3_finalize(m.add_gone);
	buf_release(&m.prev_id);
	free(m.group_key);
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
	if (prepare(st, "SELECT clients, unexpected FROM temp.audit_group WHERE group_key = ?1", &s,
		    err) < 0)
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
	if (prepare(st, "SELECT count(*) FROM temp.audit_gone", &s, err) < 0)
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

	if (prepare(st, "SELECT client_id, 0 FROM temp.audit_unexpected WHERE group_key = ?1"
		    " ORDER BY client_id", &s, err) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, group_key);
	return stream(st, s, cb, arg, err);
}

int audit_missing(struct store *st, audit_id_cb cb, void *arg, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;

	if (prepare(st, "SELECT id, line FROM temp.audit_gone ORDER BY line", &s, err) < 0)
		return -1;
	return stream(st, s, cb, arg, err);
}

void audit_end(struct store *st)
{
	/* the temporary tables go with the read transaction */
	if (st && sqlite3_get_autocommit(store_db(st)) == 0)
		sqlite3_exec(store_db(st), "ROLLBACK", NULL, NULL, NULL);
}
