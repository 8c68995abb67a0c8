/*
 * config_value.c - the typed values of credsync.yaml's schema: which keys a mapping may hold
 * (with a hint for a misspelt or misplaced one), strings, integers, rates, durations, and
 * the settings that `defaults` and an instance share.  See config_int.h.
 */
#include "config_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *const cfg_top_keys[] = {
	"database", "credentials", "defaults", "instances", "metrics_file", "checkpoint_max_age",
	"finalize_max_age", "retention", NULL,
};
const char *const cfg_settings_keys[] = {
	"page_size", "qps", "concurrency", "timeout", "retry", "signature", "rate_control",
	"ca_file", "consistency_tolerance", "max_pages", "qps_hard_cap", NULL,
};
const char *const cfg_instance_keys[] = {
	"id", "region", "endpoint", "groups", "page_size", "qps", "concurrency", "timeout",
	"retry", "signature", "rate_control", "ca_file", "consistency_tolerance", "max_pages",
	"qps_hard_cap", "credentials", "endpoint_type", NULL,
};
static const char *const cfg_instance_only_keys[] = {
	"id", "region", "endpoint", "groups", "endpoint_type", NULL,
};
const char *const cfg_credentials_keys[] = {
	"profile", "role_arn", "external_id", "role_session_name", "duration", "sts_endpoint",
	"policy", NULL,
};
const char *const cfg_retention_keys[] = { "keep_last", "keep_for", NULL };
static const char *const cfg_timeout_keys[] = { "connect", "request", NULL };
static const char *const cfg_retry_keys[] = {
	"max_attempts", "base_delay", "max_delay", "deadline", "budget", NULL,
};


/* ---- messages ---- */

int cfg_fail_at(struct cfg_loader *ld, int line, int column, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	yamltree_verror(ld->err, ld->name, line, column, fmt, ap);
	va_end(ap);
	return -1;
}

int cfg_fail(struct cfg_loader *ld, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	yamltree_verror(ld->err, ld->name, n->line, n->column, fmt, ap);
	va_end(ap);
	return -1;
}

int cfg_nomem(struct cfg_loader *ld)
{
	return cs_error_set(ld->err, CS_ERR_NOMEM, "out of memory");
}

/* ---- keys ---- */

int cfg_in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return 1;
	return 0;
}

int cfg_check_charset(const char *s, const char *set)
{
	return strspn(s, set) == strlen(s);
}

/* Optimal string alignment distance, case-insensitive, so that transposed letters and
 * wrong case count as the small slips they are. */
static int edit_distance(const char *a, const char *b)
{
	int d[65][33];
	size_t la = strlen(a), lb = strlen(b), i, j;

	if (la > 64 || lb > 32)
		return 99;
	for (i = 0; i <= la; i++)
		d[i][0] = (int)i;
	for (j = 0; j <= lb; j++)
		d[0][j] = (int)j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]);
			int cb = tolower((unsigned char)b[j - 1]);
			int v = d[i - 1][j - 1] + (ca != cb);

			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

/* Where a key that is valid somewhere else belongs, for a pointed hint. */
static const char *key_home(const char *key)
{
	if (cfg_in_list(cfg_top_keys, key))
		return "at the top level";
	if (cfg_in_list(cfg_settings_keys, key))
		return "under defaults or an instance";
	if (cfg_in_list(cfg_instance_only_keys, key))
		return "in an instance";
	if (cfg_in_list(cfg_timeout_keys, key))
		return "under timeout";
	if (cfg_in_list(cfg_retry_keys, key))
		return "under retry";
	if (cfg_in_list(cfg_credentials_keys, key))
		return "under credentials";
	return NULL;
}

static int unknown_key(struct cfg_loader *ld, const struct ynode *k, const char *const *keys,
		       const char *where)
{
	char q[YNODE_DESCRIBE_MAX], list[512];
	const char *best = NULL, *home;
	int best_d = 3;
	size_t i, used = 0;

	yamltree_quote(k->value, k->len, q, sizeof(q));
	if (!strcmp(k->value, "<<"))
		return cfg_fail(ld, k, "merge keys ('<<') are not supported %s (expected plain keys; "
				"share settings through defaults)", where);
	if (strlen(k->value) == k->len && (home = key_home(k->value)))
		return cfg_fail(ld, k, "key %s does not belong %s (expected it %s)", q, where, home);
	for (i = 0; keys[i]; i++) {
		int d = edit_distance(k->value, keys[i]);

		if (d < best_d && d < (int)k->len) {
			best_d = d;
			best = keys[i];
		}
	}
	if (best)
		return cfg_fail(ld, k, "unknown key %s %s (did you mean '%s'?)", q, where, best);
	list[0] = '\0';
	for (i = 0; keys[i]; i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 keys[i]);
	return cfg_fail(ld, k, "unknown key %s %s (expected one of: %s)", q, where, list);
}

/* Checks that map is a mapping whose keys are distinct names from keys.  Checking before
 * using the values means a misspelt key is reported even when its value is also wrong. */
int cfg_check_keys(struct cfg_loader *ld, const struct ynode *map, const char *const *keys,
		   const char *where)
{
	char q[YNODE_DESCRIBE_MAX];
	size_t i, j;

	for (i = 0; i + 1 < map->nitems; i += 2) {
		const struct ynode *k = map->items[i];

		if (k->kind != YNODE_SCALAR || ynode_is_null(k))
			return cfg_fail(ld, k, "expected a key name %s, got %s", where,
					ynode_describe(k, q, sizeof(q)));
		if (strlen(k->value) != k->len || !cfg_in_list(keys, k->value))
			return unknown_key(ld, k, keys, where);
		/* keys are known names, so this loop ends within the first few pairs */
		for (j = 0; j < i; j += 2)
			if (ynode_key_is(map->items[j], k->value))
				return cfg_fail(ld, k, "duplicate key %s %s (first set at line "
						"%d, column %d)",
						yamltree_quote(k->value, k->len, q, sizeof(q)),
						where, map->items[j]->line, map->items[j]->column);
	}
	return 0;
}

int cfg_want_mapping(struct cfg_loader *ld, const struct ynode *n, const char *key,
		     const char *what)
{
	char q[YNODE_DESCRIBE_MAX];

	if (n->kind == YNODE_MAPPING)
		return 0;
	return cfg_fail(ld, n, "%s: expected %s, got %s", key, what, ynode_describe(n, q, sizeof(q)));
}

/* A scalar that is present and not null; what names the expected value for the message. */
static int want_scalar(struct cfg_loader *ld, const struct ynode *n, const char *key,
			   const char *what)
{
	char q[YNODE_DESCRIBE_MAX];

	if (n->kind == YNODE_SCALAR && !ynode_is_null(n))
		return 0;
	return cfg_fail(ld, n, "%s: expected %s, got %s", key, what, ynode_describe(n, q, sizeof(q)));
}

/* A non-empty string without NUL bytes; *out borrows the node's value. */
int cfg_get_string(struct cfg_loader *ld, const struct ynode *n, const char *key,
		   const char *what, const char **out)
{
	char q[YNODE_DESCRIBE_MAX];

	if (want_scalar(ld, n, key, what) < 0)
		return -1;
	if (!n->len || strlen(n->value) != n->len)
		return cfg_fail(ld, n, "%s: expected %s, got %s", key, what,
				ynode_describe(n, q, sizeof(q)));
	*out = n->value;
	return 0;
}

int cfg_set_string(struct cfg_loader *ld, const struct ynode *n, const char *key,
		   const char *what, char **dst)
{
	const char *s;
	char *copy;

	if (cfg_get_string(ld, n, key, what, &s) < 0)
		return -1;
	if (!(copy = strdup(s)))
		return cfg_nomem(ld);
	free(*dst);
	*dst = copy;
	return 0;
}

/* Plain decimal digits only (quoted is fine): YAML's 0x10, 1e3, 010 (octal in YAML 1.1)
 * or 100.0 would each mean something different to a different reader. */
int cfg_get_int(struct cfg_loader *ld, const struct ynode *n, const char *key, int min, int max,
		int *out)
{
	char what[64], q[YNODE_DESCRIBE_MAX];
	const char *p;
	long long v = 0;
	int neg;

	snprintf(what, sizeof(what), "an integer %d..%d", min, max);
	if (want_scalar(ld, n, key, what) < 0)
		return -1;
	p = n->value;
	neg = *p == '-';
	p += neg;
	if (!isdigit((unsigned char)*p) || strspn(p, "0123456789") != strlen(p) ||
	    strlen(n->value) != n->len)
		return cfg_fail(ld, n, "%s: expected %s, got %s", key, what,
				ynode_describe(n, q, sizeof(q)));
	if (p[0] == '0' && p[1])
		return cfg_fail(ld, n, "%s: expected %s without leading zeros, got %s", key, what,
				ynode_describe(n, q, sizeof(q)));
	for (; *p && v <= INT32_MAX; p++)
		v = v * 10 + (*p - '0');
	if (neg)
		v = -v;
	if (v < min || v > max)
		return cfg_fail(ld, n, "%s: %s is out of range (expected %s)", key,
				ynode_describe(n, q, sizeof(q)), what);
	*out = (int)v;
	return 0;
}

/* A decimal like 20 or 2.5, parsed by hand so that the locale's decimal point cannot
 * change what a file means. */
static int get_qps(struct cfg_loader *ld, const struct ynode *n, const char *key, double *out)
{
	static const char what[] = "a number greater than 0 and at most 10000";
	char q[YNODE_DESCRIBE_MAX];
	const char *p;
	double v = 0, scale = 1;
	int digits = 0, neg;

	if (want_scalar(ld, n, key, what) < 0)
		return -1;
	p = n->value;
	neg = *p == '-';
	p += neg;
	for (; isdigit((unsigned char)*p); p++, digits++)
		v = v * 10 + (*p - '0');
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++, digits++) {
			scale /= 10;
			v += (*p - '0') * scale;
		}
	}
	if (!digits || *p || strlen(n->value) != n->len)
		return cfg_fail(ld, n, "%s: expected %s, got %s", key, what,
				ynode_describe(n, q, sizeof(q)));
	if (neg)
		v = -v;
	if (!(v > 0) || v > 10000)
		return cfg_fail(ld, n, "%s: %s is out of range (expected %s)", key,
				ynode_describe(n, q, sizeof(q)), what);
	*out = v;
	return 0;
}

int cfg_get_duration(struct cfg_loader *ld, const struct ynode *n, const char *key,
		     int64_t *out)
{
	static const char what[] = "a duration like 5s, 250ms or 10m";
	char q[YNODE_DESCRIBE_MAX];
	int64_t ms;

	if (want_scalar(ld, n, key, what) < 0)
		return -1;
	if (strlen(n->value) != n->len || util_parse_duration(n->value, &ms) < 0)
		return cfg_fail(ld, n, "%s: expected %s, got %s", key, what,
				ynode_describe(n, q, sizeof(q)));
	if (ms <= 0)
		return cfg_fail(ld, n, "%s: %s is out of range (expected a duration greater than 0)",
				key, ynode_describe(n, q, sizeof(q)));
	*out = ms;
	return 0;
}

/* One of two words; *which is 0 for a, 1 for b. */
static int get_choice(struct cfg_loader *ld, const struct ynode *n, const char *key,
		      const char *a, const char *b, int *which)
{
	char what[64], q[YNODE_DESCRIBE_MAX];

	snprintf(what, sizeof(what), "%s or %s", a, b);
	if (want_scalar(ld, n, key, what) < 0)
		return -1;
	if (!strcmp(n->value, a) && strlen(a) == n->len) {
		*which = 0;
		return 0;
	}
	if (!strcmp(n->value, b) && strlen(b) == n->len) {
		*which = 1;
		return 0;
	}
	return cfg_fail(ld, n, "%s: expected %s, got %s", key, what, ynode_describe(n, q, sizeof(q)));
}

static int apply_timeout(struct cfg_loader *ld, const struct ynode *map, struct cfg_settings *s)
{
	size_t i;

	if (cfg_want_mapping(ld, map, "timeout",
			     "a mapping like { connect: 5s, request: 30s }") < 0 ||
	    cfg_check_keys(ld, map, cfg_timeout_keys, "in timeout") < 0)
		return -1;
	for (i = 0; i + 1 < map->nitems; i += 2) {
		const struct ynode *k = map->items[i], *v = map->items[i + 1];
		int r;

		if (ynode_key_is(k, "connect"))
			r = cfg_get_duration(ld, v, "timeout.connect", &s->connect_timeout_ms);
		else
			r = cfg_get_duration(ld, v, "timeout.request", &s->request_timeout_ms);
		if (r < 0)
			return -1;
	}
	return 0;
}

static int apply_retry(struct cfg_loader *ld, const struct ynode *map, struct cfg_settings *s)
{
	const struct ynode *blame;
	char base[32], max[32];
	size_t i;

	if (cfg_want_mapping(ld, map, "retry",
			     "a mapping like { max_attempts: 8, max_delay: 30s }") < 0 ||
	    cfg_check_keys(ld, map, cfg_retry_keys, "in retry") < 0)
		return -1;
	for (i = 0; i + 1 < map->nitems; i += 2) {
		const struct ynode *k = map->items[i], *v = map->items[i + 1];
		int r;

		if (ynode_key_is(k, "max_attempts"))
			r = cfg_get_int(ld, v, "retry.max_attempts", 1, 100, &s->max_attempts);
		else if (ynode_key_is(k, "base_delay"))
			r = cfg_get_duration(ld, v, "retry.base_delay", &s->base_delay_ms);
		else if (ynode_key_is(k, "max_delay"))
			r = cfg_get_duration(ld, v, "retry.max_delay", &s->max_delay_ms);
		else if (ynode_key_is(k, "deadline"))
			r = cfg_get_duration(ld, v, "retry.deadline", &s->deadline_ms);
		else
			r = cfg_get_int(ld, v, "retry.budget", 1, 1000000, &s->retry_budget);
		if (r < 0)
			return -1;
	}
	if (s->max_delay_ms >= s->base_delay_ms)
		return 0;
	/* what was inherited was consistent, so one of this mapping's keys broke it */
	blame = ynode_map_get(map, "max_delay");
	if (!blame)
		blame = ynode_map_get(map, "base_delay");
	if (!blame)
		blame = map;
	util_format_duration(s->base_delay_ms, base, sizeof(base));
	util_format_duration(s->max_delay_ms, max, sizeof(max));
	return cfg_fail(ld, blame, "retry.max_delay %s is less than retry.base_delay %s "
			"(expected max_delay >= base_delay)", max, base);
}

/* consistency_tolerance: a count of IDs ("0", "25") or a percentage of Total ("0.5%"). */
static int get_tolerance(struct cfg_loader *ld, const struct ynode *n, struct cfg_settings *s)
{
	const char *what = "a count of IDs like 10, or a percentage of Total like 0.5%";
	char q[YNODE_DESCRIBE_MAX], *end = NULL;
	double pct;
	int count;

	if (want_scalar(ld, n, "consistency_tolerance", what) < 0)
		return -1;
	if (n->len > 1 && n->value[n->len - 1] == '%') {
		pct = strtod(n->value, &end);
		if (end != n->value + n->len - 1 || !isdigit((unsigned char)n->value[0]) ||
		    !(pct >= 0 && pct <= 100))
			return cfg_fail(ld, n, "consistency_tolerance: expected %s "
					"(0%%..100%%), got %s",
					what, ynode_describe(n, q, sizeof(q)));
		s->tolerance_count = -1;
		s->tolerance_pct = pct;
		return 0;
	}
	if (cfg_get_int(ld, n, "consistency_tolerance", 0, 1000000000, &count) < 0)
		return -1;
	s->tolerance_count = count;
	return 0;
}

/* Applies one settings key to s.  Returns 1 when done, 0 when key is not a setting, or -1
 * with the error set. */
int cfg_apply_setting(struct cfg_loader *ld, const struct ynode *k, const struct ynode *v,
		      struct cfg_settings *s)
{
	int which, r;

	if (ynode_key_is(k, "page_size")) {
		r = cfg_get_int(ld, v, "page_size", 1, 100, &s->page_size);
	} else if (ynode_key_is(k, "qps")) {
		r = get_qps(ld, v, "qps", &s->qps);
	} else if (ynode_key_is(k, "concurrency")) {
		r = cfg_get_int(ld, v, "concurrency", 1, 256, &s->concurrency);
	} else if (ynode_key_is(k, "timeout")) {
		r = apply_timeout(ld, v, s);
	} else if (ynode_key_is(k, "retry")) {
		r = apply_retry(ld, v, s);
	} else if (ynode_key_is(k, "signature")) {
		r = get_choice(ld, v, "signature", "v1", "v3", &which);
		if (!r)
			s->signature = which ? CFG_SIG_V3 : CFG_SIG_V1;
	} else if (ynode_key_is(k, "rate_control")) {
		r = get_choice(ld, v, "rate_control", "adaptive", "fixed", &which);
		if (!r)
			s->rate_control = which ? CFG_RATE_FIXED : CFG_RATE_ADAPTIVE;
	} else if (ynode_key_is(k, "ca_file")) {
		r = cfg_set_string(ld, v, "ca_file", "a path to a CA bundle", &s->ca_file);
	} else if (ynode_key_is(k, "consistency_tolerance")) {
		r = get_tolerance(ld, v, s);
	} else if (ynode_key_is(k, "qps_hard_cap")) {
		r = get_qps(ld, v, "qps_hard_cap", &s->qps_hard_cap);
	} else if (ynode_key_is(k, "max_pages")) {
		r = cfg_get_int(ld, v, "max_pages", 1, 10000000, &s->max_pages);
	} else {
		return 0;
	}
	return r < 0 ? -1 : 1;
}

void cfg_settings_release(struct cfg_settings *s)
{
	free(s->ca_file);
	s->ca_file = NULL;
}

int cfg_settings_copy(struct cfg_loader *ld, struct cfg_settings *dst,
		      const struct cfg_settings *src)
{
	*dst = *src;
	if (src->ca_file && !(dst->ca_file = strdup(src->ca_file)))
		return cfg_nomem(ld);
	return 0;
}
