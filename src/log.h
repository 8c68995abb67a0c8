/*
 * log.h - diagnostics on stderr, as text for people or one JSON object per line for log
 * shippers.  Reports (diff, snapshots) never go through here: they go to stdout.
 *
 * The level threshold and format are process-wide (set once by main.c from -v/-q and
 * --log-format); everything else passes its context explicitly.
 */
#ifndef CREDSYNC_LOG_H
#define CREDSYNC_LOG_H

#include <stdint.h>
#include <stdio.h>

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
	LOG_TRACE = 4,
};

enum log_format {
	LOG_TEXT = 0,
	LOG_JSON,
};

/* Optional fields of a log line; zero/NULL fields are left out. */
struct log_ctx {
	int64_t run;
	const char *instance;
	const char *group;
	int64_t page;
	const char *request_id;
	const char *code;
};

/* Sets the threshold (messages above it are dropped), the format and the stream (NULL keeps
 * stderr). */
void log_setup(enum log_level threshold, enum log_format format, FILE *out);
enum log_level log_threshold(void);
int log_enabled(enum log_level level);

/* Writes one line.  The text form is "credsync: LEVEL: [instance/group: ]message"; the JSON
 * form has ts, level, msg and the set context fields. */
void log_msg(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Hook for the progress display: called before a line is written so it can clear its line,
 * and after, so it can redraw.  NULL removes it. */
void log_set_hook(void (*before)(void *), void (*after)(void *), void *arg);

/* Appends s to out as a JSON string body (no quotes), escaping per RFC 8259. */
struct cs_buf;
void log_json_escape(struct cs_buf *out, const char *s);

#endif
