/*
 * sim_util.c - the helpers every other simulator file shares, so that none of them has to
 * call back into the file that calls it: random draws and clocks, a request's parameters,
 * headers and region, the error body and RequestIds, the counter maps and JSON strings.
 *
 * The bottom of the call graph (see sim.h): it calls only sim_sign.c's percent-encoding.
 */
#include "sim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- random draws and clocks ---- */

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t sim_rand(struct sim_server *s)
{
	uint64_t *x = s->rng, r = rotl(x[1] * 5, 7) * 9, t = x[1] << 17;

	x[2] ^= x[0];
	x[3] ^= x[1];
	x[1] ^= x[2];
	x[0] ^= x[3];
	x[2] ^= t;
	x[3] = rotl(x[3], 45);
	return r;
}

double sim_rand_unit(struct sim_server *s)
{
	return (double)(sim_rand(s) >> 11) * (1.0 / 9007199254740992.0);
}

int64_t sim_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void sim_sleep_ms(struct sim_server *s, int64_t ms)
{
	int64_t end = sim_now_us() + ms * 1000;

	/* in slices, so SIGTERM does not wait for a 30 s hang to end */
	while (!atomic_load(&s->stopping)) {
		int64_t left = end - sim_now_us();
		struct timespec ts;

		if (left <= 0)
			break;
		if (left > 50000)
			left = 50000;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000;
		nanosleep(&ts, NULL);
	}
}

/* ---- request parameters and headers ---- */

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

const char *sim_param(const struct sim_req *r, const char *name)
{
	uint32_t h = name_hash(name);
	size_t i;

	for (i = 0; i < r->nparams; i++)
		if (r->param_hash[i] == h && !strcmp(r->params[i].name, name))
			return r->params[i].value;
	return NULL;
}

const char *sim_param_repeated(const struct sim_req *r)
{
	size_t i, j;

	for (i = 0; i < r->nparams; i++)
		for (j = i + 1; j < r->nparams; j++)
			if (r->param_hash[i] == r->param_hash[j] &&
			    !strcmp(r->params[i].name, r->params[j].name))
				return r->params[i].name;
	return NULL;
}

int sim_add_param(struct sim_req *r, const char *name, const char *value)
{
	if (r->nparams == SIM_MAX_PARAMS) {
		r->too_many_params = 1;
		return -1;
	}
	r->params[r->nparams].name = name;
	r->params[r->nparams].value = value;
	r->param_hash[r->nparams] = name_hash(name);
	r->nparams++;
	return 0;
}

const char *sim_header(const struct sim_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

int sim_req_region(const struct sim_req *r, char *out, size_t outlen)
{
	const char *h = sim_header(r, "Host"), *end, *dot;
	size_t len;

	if (!h || !outlen)
		return 0;
	end = h + strcspn(h, ":");
	len = (size_t)(end - h);
	if (len > 10 && !strncasecmp(end - 10, ".localhost", 10)) {
		dot = memchr(h, '.', len);
		len = (size_t)(dot - h);
	} else if (len > 13 && !strncasecmp(end - 13, ".aliyuncs.com", 13)) {
		const char *start = !strncasecmp(h, "onsmqtt.", 8) ? h + 8
				    : !strncasecmp(h, "onsmqtt-vpc.", 12) ? h + 12 : NULL;

		if (!start || start >= end - 13)
			return 0;
		h = start;
		len = (size_t)(end - 13 - start);
	} else {
		return 0;
	}
	if (!len || len >= outlen)
		return 0;
	memcpy(out, h, len);
	out[len] = '\0';
	return 1;
}

/* ---- errors and request ids ---- */

void sim_error(struct sim_req *r, struct sim_reply *rep, unsigned status, const char *code,
	       const char *fmt, ...)
{
	struct cs_buf msg = CS_BUF_INIT;
	va_list ap;
	int n;

	/* the arguments may point into r->tmp or r->tmp2, never into r->out */
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n >= 0) {
		char *p = malloc((size_t)n + 1);

		if (p) {
			va_start(ap, fmt);
			vsnprintf(p, (size_t)n + 1, fmt, ap);
			va_end(ap);
			buf_append(&msg, p, (size_t)n);
			free(p);
		}
	}
	buf_reset(&r->out);
	buf_puts(&r->out, "{\"RequestId\":\"");
	buf_puts(&r->out, r->request_id);
	buf_puts(&r->out, "\",\"HostId\":\"" SIM_HOST_ID "\",\"Code\":");
	sim_json_str(&r->out, code);
	buf_puts(&r->out, ",\"Message\":");
	sim_json_str(&r->out, buf_str(&msg));
	buf_puts(&r->out, ",\"Recommend\":\"https://api.aliyun.com/troubleshoot?q=");
	sim_sign_encode(&r->out, code, strlen(code));
	buf_puts(&r->out, "\"}");
	buf_release(&msg);
	rep->status = status;
	rep->code = code;
	rep->content_type = "application/json;charset=utf-8";
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void put_hex(char *p, uint64_t v, int digits)
{
	static const char hx[] = "0123456789ABCDEF";

	while (digits--) {
		p[digits] = hx[v & 15];
		v >>= 4;
	}
}

void sim_new_request_id(struct sim_server *s, char out[37])
{
	/* splitmix64 is a bijection, so distinct sequence numbers give distinct ids */
	uint64_t hi = s->reqid_hi, lo = splitmix64(atomic_fetch_add(&s->reqid_seq, 1));

	put_hex(out, hi >> 32, 8);
	out[8] = '-';
	put_hex(out + 9, hi >> 16, 4);
	out[13] = '-';
	put_hex(out + 14, hi, 4);
	out[18] = '-';
	put_hex(out + 19, lo >> 48, 4);
	out[23] = '-';
	put_hex(out + 24, lo, 12);
	out[36] = '\0';
}

void sim_throttled(struct sim_server *s, struct sim_req *r, struct sim_reply *rep,
		   unsigned status, const char *code, const char *msg)
{
	sim_error(r, rep, status, code, "%s", msg);
	rep->throttled = 1;
	rep->retry_after_ms = s->opt->retry_after_ms;
}

/* ---- counters ---- */

void sim_counter_add(struct sim_counters *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		if (!strncmp(c->v[i].name, name, sizeof(c->v[i].name) - 1) &&
		    strlen(name) < sizeof(c->v[i].name)) {
			c->v[i].n++;
			return;
		}
	}
	/* clients choose Action names: keep their number bounded, the last slot for the rest */
	if (c->n == SIM_MAX_COUNTERS - 1 && strcmp(name, "(other)")) {
		sim_counter_add(c, "(other)");
		return;
	}
	snprintf(c->v[c->n].name, sizeof(c->v[c->n].name), "%s", name);
	c->v[c->n].n = 1;
	c->n++;
}

/* ---- JSON strings ---- */

/* Writes s as a JSON string, after a comma when asked.  Most IDs are short and need no
 * escaping: they are gathered on the stack and go in with one append. */
static void json_put(struct cs_buf *out, const char *s, int comma)
{
	static const char hx[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s, *run;
	char tmp[256];
	size_t n = 0;

	if (comma)
		tmp[n++] = ',';
	tmp[n++] = '"';
	while (*p >= 0x20 && *p != '"' && *p != '\\' && n < sizeof(tmp) - 1)
		tmp[n++] = (char)*p++;
	if (!*p) {
		tmp[n++] = '"';
		buf_append(out, tmp, n);
		return;
	}
	buf_append(out, tmp, n);
	for (run = p; *p; p++) {
		if (*p >= 0x20 && *p != '"' && *p != '\\')
			continue;
		buf_append(out, run, (size_t)(p - run));
		if (*p == '"') {
			buf_append(out, "\\\"", 2);
		} else if (*p == '\\') {
			buf_append(out, "\\\\", 2);
		} else {
			char esc[6] = { '\\', 'u', '0', '0', hx[*p >> 4], hx[*p & 15] };

			buf_append(out, esc, 6);
		}
		run = p + 1;
	}
	buf_append(out, run, (size_t)(p - run));
	buf_putc(out, '"');
}

void sim_json_str(struct cs_buf *out, const char *s)
{
	json_put(out, s, 0);
}

void sim_json_item(struct cs_buf *out, size_t *count, const char *s)
{
	json_put(out, s, (*count)++ > 0);
}
