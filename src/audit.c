/*
 * audit.c - the register and the comparison of audit.h, in temporary tables:
 *   temp.audit_expected (line, id)           the register, unique on id
 *   temp.audit_held (group_key, client_id, key, unexpected)
 *                                            each selected group's clients at its snapshot,
 *                                            in group then client order (rowid), key being
 *                                            what the register is matched against
 *   temp.audit_range (group_key, first, last) each group's rowid range in audit_held
 *   temp.audit_gone (line, id)               register entries nobody holds
 * SQLite sorts and merges on disk (temp_store = FILE), so memory stays flat.  Everything runs
 * in one read transaction: the inventory cannot change half-way, and nothing is written to
 * the database itself.
 */
#include "audit.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"

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
	    exec1(st, "CREATE TEMP TABLE audit_expected (line INTEGER PRIMARY KEY, id TEXT NOT NULL)",
		  err) < 0 ||
	    exec1(st, "CREATE TEMP TABLE audit_held (group_key INTEGER NOT NULL, client_id TEXT NOT "
		  "NULL, key TEXT NOT NULL, unexpected INTEGER NOT NULL)", err) < 0 ||
	    exec1(st, "CREATE TEMP TABLE audit_range (group_key INTEGER PRIMARY KEY, first INTEGER,"
		  " last INTEGER)", err) < 0 ||
	    exec1(st, "CREATE TEMP TABLE audit_gone (line INTEGER PRIMARY KEY, id TEXT NOT NULL)",
		  err) < 0 ||
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
	/* the index is built by one sort, faster than a million ordered inserts */
	if (sqlite3_exec(store_db(st), "CREATE UNIQUE INDEX temp.audit_expected_id ON "
			 "audit_expected (id)", NULL, NULL, NULL) != SQLITE_OK) {
		if ((sqlite3_errcode(store_db(st)) & 0xff) == SQLITE_CONSTRAINT)
			report_duplicate(st, path, err);
		else
			store_error(st, err, "audit register");
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

int audit_add_group(struct store *st, int64_t group_key, int64_t snapshot_id, int by_device,
		    struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	/* in the interval key's order, so each group's rows are sorted by client ID by rowid */
	if (prepare(st,
		    by_device
		    ? "INSERT INTO temp.audit_held (group_key, client_id, key, unexpected)"
		      " SELECT ?1, client_id, k, NOT EXISTS (SELECT 1 FROM temp.audit_expected e"
		      "  WHERE e.id = k) FROM (SELECT client_id, CASE WHEN instr(client_id, '@@@') > 0"
		      "  THEN substr(client_id, instr(client_id, '@@@') + 3) ELSE client_id END AS k"
		      "  FROM cs_interval WHERE group_key = ?1 AND from_snap <= ?2"
		      "  AND (to_snap IS NULL OR to_snap > ?2) ORDER BY client_id)"
		    : "INSERT INTO temp.audit_held (group_key, client_id, key, unexpected)"
		      " SELECT ?1, client_id, client_id, NOT EXISTS (SELECT 1 FROM temp.audit_expected e"
		      "  WHERE e.id = client_id) FROM cs_interval WHERE group_key = ?1"
		      "  AND from_snap <= ?2 AND (to_snap IS NULL OR to_snap > ?2) ORDER BY client_id",
		    &s, err) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, group_key);
	sqlite3_bind_int64(s, 2, snapshot_id);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return store_error(st, err, "audit");
	if (prepare(st, "INSERT INTO temp.audit_range (group_key, first, last) SELECT ?1,"
		    " coalesce((SELECT max(last) FROM temp.audit_range), 0) + 1,"
		    " (SELECT coalesce(max(rowid), 0) FROM temp.audit_held)", &s, err) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, group_key);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return store_error(st, err, "audit");
	return 0;
}

int audit_compare(struct store *st, struct cs_error *err)
{
	if (exec1(st, "CREATE INDEX temp.audit_held_key ON audit_held (key)", err) < 0 ||
	    /* walked in ID order, so the lookups into the other index move forward through it
	     * (a merge, in effect) instead of jumping at random through a small page cache */
	    exec1(st, "INSERT INTO temp.audit_gone (line, id) SELECT line, id FROM temp.audit_expected e"
		  " INDEXED BY audit_expected_id"
		  " WHERE NOT EXISTS (SELECT 1 FROM temp.audit_held h WHERE h.key = e.id)"
		  " ORDER BY id", err) < 0)
		return -1;
	return 0;
}

int audit_group_counts(struct store *st, int64_t group_key, int64_t *clients,
		       int64_t *unexpected, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*clients = *unexpected = 0;
	if (prepare(st, "SELECT count(*), coalesce(sum(h.unexpected), 0) FROM temp.audit_range r"
		    " JOIN temp.audit_held h ON h.rowid BETWEEN r.first AND r.last"
		    " WHERE r.group_key = ?1", &s, err) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, group_key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*clients = sqlite3_column_int64(s, 0);
		*unexpected = sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
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

	if (prepare(st, "SELECT h.client_id, 0 FROM temp.audit_range r"
		    " JOIN temp.audit_held h ON h.rowid BETWEEN r.first AND r.last"
		    " WHERE r.group_key = ?1 AND h.unexpected ORDER BY h.rowid", &s, err) < 0)
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
