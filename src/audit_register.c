/*
 * audit_register.c - the register of `credsync audit` (see audit_int.h): a text file of one
 * ID a line ('#' comments) or a CSV file with a header naming the column, read once and
 * checked as it is read (UTF-8, BOM, CRLF, empty, over-long and repeated lines, each named
 * by its line), through the eponymous virtual table audit_register (id, line) that SQLite's
 * sorter consumes, so the register is never stored.
 */
#include "audit_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Runs the named query id, a statement without parameters, to its end. */
static int exec1(struct store *st, enum store_query_id id, struct cs_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (audit_prepare(st, id, &s, err) < 0)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return store_error(st, err, "audit");
	return 0;
}

/* ---- reading the register ---- */

/* A CSV record's fields as they end: the wanted one is kept. */
struct csv_field_sink {
	size_t want;             /* the column's index, or SIZE_MAX for the header */
	const char *name;        /* the header's column name */
	size_t index;            /* fields seen in this record */
	int found;               /* the wanted field was seen */
	struct cs_buf value;     /* the wanted field (or, for the header, the column list) */
};

static int bad(struct audit_reader *r, int64_t line, const char *fmt, const char *detail)
{
	return cs_error_set(r->err, CS_ERR_RUNTIME, "audit: %s:%lld: %s%s", r->path, (long long)line,
			    fmt, detail ? detail : "");
}

/* The first byte offset (1-based) where s stops being UTF-8, or 0 when all of it is. */
static size_t utf8_bad_at(const char *s, size_t len)
{
	size_t i = 0;

	if (util_utf8_valid(s, len))
		return 0;  /* the common case, in one call */
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;

		if (n > len - i || !util_utf8_valid(s + i, n))
			return i + 1;
		i += n;
	}
	return 0;
}

static int check_utf8(struct audit_reader *r, int64_t line, const char *s, size_t len)
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

/* Reads one line into r->line without its end; 0 at EOF with nothing read, 1 with a line.
 * Block reads and memchr: a million-line register is read in tens of milliseconds. */
static int read_line(struct audit_reader *r)
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

/* The next ID of a text register into r->id: 1, 0 at the end, -1 on bad input. */
static int next_text(struct audit_reader *r)
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
		r->reg->lines = line;
		if (!len || *s == '#')
			continue;
		r->id = s;
		r->id_len = len;
		r->id_line = line;
		return 1;
	}
	return rc;
}

/*
 * One CSV record (RFC 4180): its fields go to k as they end.  Returns 1 with a record, 2 for
 * a blank line, 0 at the end of the file, -1 on error.  *start is the record's first line.
 */

static int csv_record(struct audit_reader *r, struct csv_field_sink *k, int64_t *start)
{
	int c, quoted = 0, in_quotes = 0, after_quote = 0, any = 0;

	*start = r->line_no;
	k->index = 0;
	k->found = 0;
	buf_reset(&k->value);
	buf_reset(&r->line);
	/* a blank line is no record */
	c = getc_unlocked(r->f);
	if (c == '\r') {
		int d = getc_unlocked(r->f);

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
		c = getc_unlocked(r->f);
		if (c != EOF)
			any = 1;
		if (in_quotes) {
			if (c == EOF)
				return bad(r, *start, "a quoted field is never closed", NULL);
			if (c == '"') {
				int d = getc_unlocked(r->f);

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
				int d = getc_unlocked(r->f);

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

/* Reads the CSV header and finds the column in it. */
static int csv_header(struct audit_reader *r)
{
	int64_t start;
	int rc;

	while ((rc = csv_record(r, r->k, &start)) == 2)
		;
	if (rc == 0)
		return cs_error_set(r->err, CS_ERR_RUNTIME, "audit: %s: the register is empty (expected "
				    "a CSV header naming column '%s')", r->path, r->column);
	if (rc < 0)
		return -1;
	if (r->k->want == SIZE_MAX)
		return cs_error_set(r->err, CS_ERR_RUNTIME, "audit: %s:%lld: the header has no column "
				    "'%s' (columns: %s)", r->path, (long long)start, r->column,
				    buf_str(&r->k->value));
	return 0;
}

/* The next ID of a CSV register below its header, as next_text. */
static int next_csv(struct audit_reader *r)
{
	struct csv_field_sink *k = r->k;
	int64_t start;
	int rc;

	while ((rc = csv_record(r, k, &start)) >= 1) {
		r->reg->lines = r->line_no - 1;
		if (rc == 2)
			continue;
		if (!k->found) {
			char detail[64];

			snprintf(detail, sizeof(detail), " (the row has %zu field(s))", k->index);
			return cs_error_set(r->err, CS_ERR_RUNTIME, "audit: %s:%lld: no value for column "
					    "'%s'%s", r->path, (long long)start, r->column, detail);
		}
		if (!k->value.len) {
			r->reg->skipped++;
			continue;
		}
		if (k->value.oom)
			return cs_error_set(r->err, CS_ERR_NOMEM, "out of memory");
		r->id = k->value.data;
		r->id_len = k->value.len;
		r->id_line = start;
		return 1;
	}
	return rc;
}

/* The next ID of the register: 1 (r->id, r->id_len, r->id_line), 0 at the end, -1. */
static int reader_next(struct audit_reader *r)
{
	int rc = r->failed ? -1 : r->column ? next_csv(r) : next_text(r);

	if (rc < 0)
		r->failed = 1;
	else if (rc == 1)
		r->reg->ids++;
	return rc;
}

/*
 * The register as an eponymous virtual table, audit_register (id, line), read from the file
 * as SQLite scans it: sorting it by ID is then one pass of SQLite's sorter over the file, and
 * the register is never written to a table (a million inserts cost more than the sort).  It
 * can be scanned once.
 */
struct register_vtab {
	sqlite3_vtab base;
	struct audit_reader *r;
};

struct register_cursor {
	sqlite3_vtab_cursor base;
	int eof;
};

static int rv_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
		      sqlite3_vtab **out, char **errmsg)
{
	struct register_vtab *t;
	int rc;

	(void)argc;
	(void)argv;
	(void)errmsg;
	rc = sqlite3_declare_vtab(db, "CREATE TABLE x (id TEXT, line INTEGER)");
	if (rc != SQLITE_OK)
		return rc;
	if (!(t = sqlite3_malloc(sizeof(*t))))
		return SQLITE_NOMEM;
	memset(t, 0, sizeof(*t));
	t->r = aux;
	*out = &t->base;
	return SQLITE_OK;
}

static int rv_disconnect(sqlite3_vtab *vt)
{
	sqlite3_free(vt);
	return SQLITE_OK;
}

static int rv_best_index(sqlite3_vtab *vt, sqlite3_index_info *info)
{
	(void)vt;
	info->estimatedCost = 1e6;
	info->estimatedRows = 1000000;
	return SQLITE_OK;
}

static int rv_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out)
{
	struct register_cursor *c = sqlite3_malloc(sizeof(*c));

	(void)vt;
	if (!c)
		return SQLITE_NOMEM;
	memset(c, 0, sizeof(*c));
	*out = &c->base;
	return SQLITE_OK;
}

static int rv_close(sqlite3_vtab_cursor *cur)
{
	sqlite3_free(cur);
	return SQLITE_OK;
}

static int rv_next(sqlite3_vtab_cursor *cur)
{
	struct register_cursor *c = (struct register_cursor *)cur;
	struct audit_reader *r = ((struct register_vtab *)cur->pVtab)->r;
	int rc = reader_next(r);

	if (rc < 0) {
		/* the message is in r->err; SQLite's own is only a placeholder */
		sqlite3_free(cur->pVtab->zErrMsg);
		cur->pVtab->zErrMsg = sqlite3_mprintf("the register could not be read");
		return SQLITE_ERROR;
	}
	c->eof = rc == 0;
	return SQLITE_OK;
}

static int rv_filter(sqlite3_vtab_cursor *cur, int idx, const char *idx_str, int argc,
		     sqlite3_value **argv)
{
	struct audit_reader *r = ((struct register_vtab *)cur->pVtab)->r;

	(void)idx;
	(void)idx_str;
	(void)argc;
	(void)argv;
	if (r->scanned) {
		cs_error_set(r->err, CS_ERR_RUNTIME, "audit: %s: the register was read twice", r->path);
		r->failed = 1;
		return SQLITE_ERROR;
	}
	r->scanned = 1;
	return rv_next(cur);
}

static int rv_eof(sqlite3_vtab_cursor *cur)
{
	return ((struct register_cursor *)cur)->eof;
}

static int rv_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
	struct audit_reader *r = ((struct register_vtab *)cur->pVtab)->r;

	if (col == 0)  /* copied into the sorter's record before the next row is read */
		sqlite3_result_text(ctx, r->id, (int)r->id_len, SQLITE_STATIC);
	else
		sqlite3_result_int64(ctx, r->id_line);
	return SQLITE_OK;
}

static int rv_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
	*rowid = ((struct register_vtab *)cur->pVtab)->r->id_line;
	return SQLITE_OK;
}

static const sqlite3_module register_module = {
	.iVersion = 0,
	.xCreate = NULL,  /* eponymous only */
	.xConnect = rv_connect,
	.xBestIndex = rv_best_index,
	.xDisconnect = rv_disconnect,
	.xDestroy = rv_disconnect,
	.xOpen = rv_open,
	.xClose = rv_close,
	.xFilter = rv_filter,
	.xNext = rv_next,
	.xEof = rv_eof,
	.xColumn = rv_column,
	.xRowid = rv_rowid,
};

int audit_load_register(struct store *st, const char *path, const char *column,
			struct audit_register *reg, struct cs_error *err)
{
	struct audit_reader *r;
	unsigned char head[2] = { 0, 0 };

	memset(reg, 0, sizeof(*reg));
	reg->path = path;
	if (!(r = calloc(1, sizeof(*r))) || !(r->k = calloc(1, sizeof(*r->k)))) {
		free(r);
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	}
	reg->reader = r;
	r->path = path;
	r->line_no = 1;
	r->err = err;
	r->column = column;
	r->reg = reg;
	r->k->want = SIZE_MAX;
	r->k->name = column;
	if (!strcmp(path, "-"))
		r->f = stdin;
	else if (!(r->f = fopen(path, "rb")))
		return cs_error_set(err, CS_ERR_RUNTIME, "audit: cannot open the register %s: %s",
				    path, strerror(errno));
	/* UTF-16 is the one encoding a spreadsheet commonly picks that is not UTF-8; from a
	 * pipe (no rewind) it is still refused, as bytes that are not UTF-8 */
	if (r->f != stdin) {
		if (fread(head, 1, 2, r->f) == 2 &&
		    ((head[0] == 0xFF && head[1] == 0xFE) || (head[0] == 0xFE && head[1] == 0xFF)))
			return cs_error_set(err, CS_ERR_RUNTIME, "audit: %s:1: the register is UTF-16 (it "
					    "starts with a UTF-16 byte order mark); save it as UTF-8", path);
		rewind(r->f);
	}
	if (column && csv_header(r) < 0)
		return -1;
	/*
	 * The temporary tables need no rollback journal (they die with the transaction), and a
	 * larger page cache for them (8 MiB, within the 32 MiB budget) holds the findings.
	 */
	if (exec1(st, STORE_Q_AUDIT_TEMP_NO_JOURNAL, err) < 0 ||
	    exec1(st, STORE_Q_AUDIT_TEMP_CACHE, err) < 0 ||
	    store_read_begin(st, err) < 0 ||
	    exec1(st, STORE_Q_AUDIT_CREATE_GROUP, err) < 0 ||
	    exec1(st, STORE_Q_AUDIT_CREATE_UNEXPECTED, err) < 0 ||
	    exec1(st, STORE_Q_AUDIT_CREATE_GONE, err) < 0)
		return -1;
	if (store_create_module(st, "audit_register", &register_module, r, NULL) < 0)
		return store_error(st, err, "audit register");
	return 0;
}

void audit_register_close(struct audit_register *reg)
{
	struct audit_reader *r = reg ? reg->reader : NULL;

	if (!r)
		return;
	if (r->f && r->f != stdin)
		fclose(r->f);
	buf_release(&r->line);
	if (r->k)
		buf_release(&r->k->value);
	free(r->k);
	free(r);
	reg->reader = NULL;
}
