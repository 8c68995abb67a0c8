/*
 * report.h - rendering diffs and snapshot lists as text, JSON, CSV or one self-contained
 * HTML file.  Client IDs are written exactly in JSON and CSV (escaped per format), escaped for
 * HTML, and quoted C-style in text when they hold control characters.
 *
 * Diff IDs are streamed from the store while writing, so a report of a million changes does
 * not need a million IDs in memory.
 */
#ifndef CREDSYNC_REPORT_H
#define CREDSYNC_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "atomic.h"
#include "buf.h"
#include "error.h"
#include "history.h"
#include "store.h"

enum report_format {
	REPORT_TEXT,
	REPORT_JSON,
	REPORT_CSV,
	REPORT_HTML,
	REPORT_NDJSON,   /* one JSON object per line, for log pipelines and jq */
};

/* The allowed-format masks of the commands. */
#define REPORT_LISTS ((1u << REPORT_TEXT) | (1u << REPORT_JSON) | (1u << REPORT_CSV) | \
		      (1u << REPORT_NDJSON))
#define REPORT_ALL (REPORT_LISTS | (1u << REPORT_HTML))

/* "text", "json", "csv", "html", "ndjson" -> format; -1 when unknown or not in allowed (a bitmask of
 * 1 << format). */
int report_parse_format(const char *s, unsigned allowed);

enum diff_status {
	DIFF_OK,        /* both sides have a complete snapshot */
	DIFF_NO_FROM,   /* no complete snapshot for --from */
	DIFF_NO_TO,     /* no complete snapshot for --to (so none at all) */
};

struct diff_group {
	const struct group_row *g;
	enum diff_status status;
	int64_t from, to;        /* snapshot ids, 0 when none */
	int64_t added, removed;
};

struct diff_report {
	struct store *st;
	const char *from_text, *to_text;
	struct diff_group *groups;
	size_t n;
	int64_t added, removed;
	int color;               /* ANSI colour for text on a terminal */
	int64_t generated_epoch;
};

/* Writes the report to out.  Returns 0 or -1 (err set: database or write error). */
int report_diff(FILE *out, enum report_format fmt, const struct diff_report *r,
		struct cs_error *err);

/* Snapshot lists: begin, one call per row, end. */
struct snap_writer {
	FILE *out;
	enum report_format fmt;
	int64_t rows;
};
void report_snapshots_begin(struct snap_writer *w);
int report_snapshots_row(void *arg, const struct snap_row *row);
void report_snapshots_end(struct snap_writer *w);

/* Where a report goes: stdout, or FILE written atomically (-o). */
struct report_out {
	FILE *f;
	struct atomic_file af;
	int atomic;
};
/* Opens path (NULL: stdout).  0, or -1 with err set. */
int report_out_open(struct report_out *o, const char *path, struct cs_error *err);
/* Flushes stdout or commits the file (renamed into place); 0, or -1 with err set. */
int report_out_commit(struct report_out *o, struct cs_error *err);
/* Removes an uncommitted file; accepts one never opened or already committed. */
void report_out_abort(struct report_out *o);

/* Escapers, exposed for tests. */
void report_csv_field(struct cs_buf *out, const char *s, size_t len);
void report_html_escape(struct cs_buf *out, const char *s, size_t len);
void report_text_id(struct cs_buf *out, const char *s, size_t len);

/* Shared by the other reports (clients, history, audit). */
/* A JSON string of s (NUL-terminated; stored IDs never hold a NUL). */
void report_json_string(struct cs_buf *b, const char *s);
/* Writes b to out once it holds 64 KiB (always when force); 0, or -1 with err set. */
int report_flush(FILE *out, struct cs_buf *b, int force, struct cs_error *err);
/* The part of a client ID after its first "@@@"; NULL (and *dlen 0) when there is none. */
const char *report_device_part(const char *id, size_t len, size_t *dlen);
/* The head of a self-contained HTML page (CSP: no script, no external asset) up to and
 * including <body>; title is escaped. */
void report_html_begin(struct cs_buf *b, const char *title);

#endif
