/* log.c - stderr diagnostics in text or JSON lines; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "buf.h"

static enum log_level threshold = LOG_WARN;
static enum log_format format = LOG_TEXT;
static FILE *stream;
static void (*hook_before)(void *);
static void (*hook_after)(void *);
static void *hook_arg;

static const char *const level_names[] = { "error", "warning", "info", "debug", "trace" };

void log_setup(enum log_level t, enum log_format f, FILE *out)
{
	threshold = t;
	format = f;
	stream = out;
}

enum log_level log_threshold(void)
{
	return threshold;
}

int log_enabled(enum log_level level)
{
	return level <= threshold;
}

void log_set_hook(void (*before)(void *), void (*after)(void *), void *arg)
{
	hook_before = before;
	hook_after = after;
	hook_arg = arg;
}

void log_json_escape(struct cs_buf *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '"': buf_puts(out, "\\\""); break;
		case '\\': buf_puts(out, "\\\\"); break;
		case '\n': buf_puts(out, "\\n"); break;
		case '\r': buf_puts(out, "\\r"); break;
		case '\t': buf_puts(out, "\\t"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				buf_printf(out, "\\u%04x", c);
			else
				buf_putc(out, (char)c);
		}
	}
}

static void json_field(struct cs_buf *b, const char *name, const char *value)
{
	buf_printf(b, ",\"%s\":\"", name);
	log_json_escape(b, value);
	buf_putc(b, '"');
}

void log_msg(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
{
	struct cs_buf line = CS_BUF_INIT;
	char msg[2048];
	FILE *out = stream ? stream : stderr;
	va_list ap;

	if (level > threshold)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (format == LOG_JSON) {
		struct timeval tv;
		struct tm tm;
		char ts[40];

		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		buf_printf(&line, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\"", ts,
			   (long)(tv.tv_usec / 1000), level_names[level]);
		json_field(&line, "msg", msg);
		if (ctx) {
			if (ctx->run)
				buf_printf(&line, ",\"run\":%lld", (long long)ctx->run);
			if (ctx->instance)
				json_field(&line, "instance", ctx->instance);
			if (ctx->group)
				json_field(&line, "group", ctx->group);
			if (ctx->page)
				buf_printf(&line, ",\"page\":%lld", (long long)ctx->page);
			if (ctx->request_id)
				json_field(&line, "request_id", ctx->request_id);
			if (ctx->code)
				json_field(&line, "code", ctx->code);
		}
		buf_puts(&line, "}\n");
	} else {
		buf_printf(&line, "credsync: %s: ", level_names[level]);
		if (ctx && ctx->instance && ctx->group)
			buf_printf(&line, "%s/%s: ", ctx->instance, ctx->group);
		else if (ctx && ctx->instance)
			buf_printf(&line, "%s: ", ctx->instance);
		buf_puts(&line, msg);
		buf_putc(&line, '\n');
	}
	if (hook_before)
		hook_before(hook_arg);
	if (!line.oom)
		fwrite(line.data, 1, line.len, out);
	fflush(out);
	if (hook_after)
		hook_after(hook_arg);
	buf_release(&line);
}
