/*
 * config.c - credsync.yaml: libyaml events -> a small node tree -> a validated struct config.
 *
 * Two passes keep each simple.  The first turns libyaml's event stream into a tree of
 * scalars, sequences and mappings that remembers where every node was written, and enforces
 * the limits (size, depth, one document, alias expansion).  The second walks that tree
 * against the schema of PRODUCT.md and fills struct config, so every message can name the
 * line and column of the node at fault.  The tree and its anchors belong to struct loader and
 * are freed in one place; struct config holds only its own copies.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "buf.h"
#include "util.h"

/* An alias-free file of CFG_MAX_FILE_BYTES cannot hold more nodes than it has bytes, so more
 * than that can only come from aliases multiplying each other (billion laughs).  The tree
 * itself never grows with aliases, but instances copy their groups, so the bound matters. */
#define CFG_MAX_EXPANDED_NODES ((size_t)CFG_MAX_FILE_BYTES)
#define CFG_MAX_GROUP_LEN 64
#define ANCHOR_BUCKETS 1024
#define QUOTE_MAX 80

enum node_kind { NODE_SCALAR, NODE_SEQUENCE, NODE_MAPPING };

struct node {
	enum node_kind kind;
	int line, column;    /* 1-based, where the node starts */
	int plain;           /* scalar written without quotes: only then can it mean null */
	char *value;         /* scalar: owned, NUL-terminated */
	size_t len;          /* scalar: bytes in value, which may hold a NUL from "\0" */
	struct node **items; /* owned array of borrowed nodes; a mapping alternates key, value */
	size_t nitems;
	size_t cap;
	size_t weight;       /* nodes this one stands for with aliases expanded */
	struct node *next;   /* every node is on the loader's list, which alone frees them */
};

struct anchor {
	char *name;          /* owned */
	struct node *node;   /* borrowed from the loader's list */
	struct anchor *next;
};

struct open_collection {
	struct node *node;
	char *anchor;        /* owned; registered only when the collection ends, so that an
			      * alias can never point at its own ancestor (no cycles) */
};

struct loader {
	const char *name;    /* the file's name, for messages */
	const char *text;
	size_t len;
	struct cs_error *err;
	struct node *nodes;  /* every node, for freeing */
	struct anchor *anchors[ANCHOR_BUCKETS];
	struct open_collection stack[CFG_MAX_DEPTH];
	int depth;
	int documents;
	int done;
	size_t expanded;     /* nodes so far with aliases expanded */
	struct node *root;
};

static const char *const top_keys[] = {
	"database", "credentials", "defaults", "instances", "metrics_file", "checkpoint_max_age",
	"finalize_max_age", "retention", NULL,
};
static const char *const settings_keys[] = {
	"page_size", "qps", "concurrency", "timeout", "retry", "signature", "rate_control",
	"ca_file", "consistency_tolerance", "max_pages", "qps_hard_cap", NULL,
};
static const char *const instance_keys[] = {
	"id", "region", "endpoint", "groups", "page_size", "qps", "concurrency", "timeout",
	"retry", "signature", "rate_control", "ca_file", "consistency_tolerance", "max_pages",
	"qps_hard_cap", "credentials", "endpoint_type", NULL,
};
static const char *const instance_only_keys[] = {
	"id", "region", "endpoint", "groups", "endpoint_type", NULL,
};
static const char *const credentials_keys[] = {
	"profile", "role_arn", "external_id", "role_session_name", "duration", "sts_endpoint",
	"policy", NULL,
};
static const char *const retention_keys[] = { "keep_last", "keep_for", NULL };
static const char *const timeout_keys[] = { "connect", "request", NULL };
static const char *const retry_keys[] = {
	"max_attempts", "base_delay", "max_delay", "deadline", "budget", NULL,
};

static int check_hard_caps(struct loader *ld, const struct config *cfg);

/* ---- messages ---- */

static int vfail_at(struct loader *ld, int line, int column, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static int vfail_at(struct loader *ld, int line, int column, const char *fmt, va_list ap)
{
	char msg[900];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return cs_error_set(ld->err, CS_ERR_CONFIG, "%s:%d:%d: %s", ld->name, line, column, msg);
}

static int fail_at(struct loader *ld, int line, int column, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail_at(struct loader *ld, int line, int column, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(ld, line, column, fmt, ap);
	va_end(ap);
	return -1;
}

static int fail(struct loader *ld, const struct node *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct loader *ld, const struct node *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(ld, n->line, n->column, fmt, ap);
	va_end(ap);
	return -1;
}

static int nomem(struct loader *ld)
{
	return cs_error_set(ld->err, CS_ERR_NOMEM, "out of memory");
}

static int is_null(const struct node *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
	size_t i;

	if (n->kind != NODE_SCALAR || !n->plain)
		return 0;
	for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (!strcmp(n->value, nulls[i]))
			return 1;
	return 0;
}

/* The file's bytes go into messages escaped and cut, since they are untrusted. */
static const char *quote(const char *s, size_t len, char *out, size_t outlen)
{
	char q[QUOTE_MAX];

	util_quote_bytes(s, len, q, sizeof(q));
	snprintf(out, outlen, "'%s'", q);
	return out;
}

/* What a node is, for "got ...": out must hold QUOTE_MAX + 2 bytes. */
static const char *describe(const struct node *n, char *out, size_t outlen)
{
	if (n->kind == NODE_SEQUENCE)
		return n->nitems ? "a sequence" : "an empty sequence";
	if (n->kind == NODE_MAPPING)
		return "a mapping";
	if (is_null(n))
		return "nothing";
	return quote(n->value, n->len, out, outlen);
}

/* ---- pass 1: events to tree ---- */

static struct node *node_new(struct loader *ld, enum node_kind kind, const yaml_mark_t *mark)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->kind = kind;
	n->line = (int)mark->line + 1;
	n->column = (int)mark->column + 1;
	n->weight = 1;
	n->next = ld->nodes;
	ld->nodes = n;
	return n;
}

static unsigned anchor_hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % ANCHOR_BUCKETS;
}

/* A later anchor of the same name shadows the earlier one, as YAML says. */
static int anchor_add(struct loader *ld, const char *name, struct node *n)
{
	struct anchor *a = calloc(1, sizeof(*a));
	unsigned h = anchor_hash(name);

	if (!a || !(a->name = strdup(name))) {
		free(a);
		return nomem(ld);
	}
	a->node = n;
	a->next = ld->anchors[h];
	ld->anchors[h] = a;
	return 0;
}

static struct node *anchor_find(struct loader *ld, const char *name)
{
	struct anchor *a;

	for (a = ld->anchors[anchor_hash(name)]; a; a = a->next)
		if (!strcmp(a->name, name))
			return a->node;
	return NULL;
}

/* Counts weight more nodes toward the expansion limit; line/column blame the event. */
static int count_nodes(struct loader *ld, size_t weight, const yaml_mark_t *mark)
{
	if (weight > CFG_MAX_EXPANDED_NODES - ld->expanded)
		return fail_at(ld, (int)mark->line + 1, (int)mark->column + 1,
			       "aliases expand the configuration to more than %zu nodes "
			       "(expected fewer or smaller aliases)", CFG_MAX_EXPANDED_NODES);
	ld->expanded += weight;
	return 0;
}

/* Hangs n under the open collection, or makes it the document's root. */
static int attach(struct loader *ld, struct node *n)
{
	struct node *parent;
	struct node **items;

	if (!ld->depth) {
		ld->root = n;
		return 0;
	}
	parent = ld->stack[ld->depth - 1].node;
	if (parent->nitems == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;

		items = realloc(parent->items, cap * sizeof(*items));
		if (!items)
			return nomem(ld);
		parent->items = items;
		parent->cap = cap;
	}
	parent->items[parent->nitems++] = n;
	return 0;
}

static int open_collection(struct loader *ld, const yaml_event_t *ev, enum node_kind kind,
			   const yaml_char_t *anchor)
{
	struct node *n;
	char *name = NULL;

	if (ld->depth == CFG_MAX_DEPTH)
		return fail_at(ld, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			       "nesting deeper than %d levels (expected a flatter configuration)",
			       CFG_MAX_DEPTH);
	if (count_nodes(ld, 1, &ev->start_mark) < 0)
		return -1;
	if (anchor && !(name = strdup((const char *)anchor)))
		return nomem(ld);
	n = node_new(ld, kind, &ev->start_mark);
	if (!n || attach(ld, n) < 0) {
		free(name);
		return nomem(ld);
	}
	ld->stack[ld->depth].node = n;
	ld->stack[ld->depth].anchor = name;
	ld->depth++;
	return 0;
}

static int close_collection(struct loader *ld)
{
	struct open_collection *top = &ld->stack[--ld->depth];
	struct node *n = top->node;
	char *name = top->anchor;
	size_t i;
	int ret = 0;

	/* every item is complete by now, and the total was bounded as they came */
	for (i = 0; i < n->nitems; i++)
		n->weight += n->items[i]->weight;
	top->anchor = NULL;
	if (name)
		ret = anchor_add(ld, name, n);
	free(name);
	return ret;
}

static int add_scalar(struct loader *ld, const yaml_event_t *ev)
{
	struct node *n;

	if (count_nodes(ld, 1, &ev->start_mark) < 0)
		return -1;
	n = node_new(ld, NODE_SCALAR, &ev->start_mark);
	if (!n || !(n->value = malloc(ev->data.scalar.length + 1)))
		return nomem(ld);
	memcpy(n->value, ev->data.scalar.value, ev->data.scalar.length);
	n->value[ev->data.scalar.length] = '\0';
	n->len = ev->data.scalar.length;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	if (ev->data.scalar.anchor && anchor_add(ld, (const char *)ev->data.scalar.anchor, n) < 0)
		return -1;
	return attach(ld, n);
}

static int add_alias(struct loader *ld, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	struct node *target = anchor_find(ld, name);
	char q[QUOTE_MAX];

	if (!target) {
		util_quote_bytes(name, strlen(name), q, sizeof(q));
		return fail_at(ld, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			       "alias '*%s' names no anchor (expected '&%s' on a node before it, "
			       "not around it)", q, q);
	}
	if (count_nodes(ld, target->weight, &ev->start_mark) < 0)
		return -1;
	return attach(ld, target);
}

static int handle_event(struct loader *ld, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_STREAM_END_EVENT:
		ld->done = 1;
		if (!ld->documents)
			return cs_error_set(ld->err, CS_ERR_CONFIG,
					    "%s: empty configuration, expected a mapping with "
					    "'instances'", ld->name);
		return 0;
	case YAML_DOCUMENT_START_EVENT:
		if (ld->documents++)
			return fail_at(ld, (int)ev->start_mark.line + 1,
				       (int)ev->start_mark.column + 1, "a second document starts "
				       "here (expected exactly one document)");
		return 0;
	case YAML_ALIAS_EVENT:
		return add_alias(ld, ev);
	case YAML_SCALAR_EVENT:
		return add_scalar(ld, ev);
	case YAML_SEQUENCE_START_EVENT:
		return open_collection(ld, ev, NODE_SEQUENCE, ev->data.sequence_start.anchor);
	case YAML_MAPPING_START_EVENT:
		return open_collection(ld, ev, NODE_MAPPING, ev->data.mapping_start.anchor);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return close_collection(ld);
	default:
		return 0;
	}
}

/* The character at 0-based line/column, walking UTF-8, or -1 past the end. */
static int char_at(const struct loader *ld, size_t line, size_t column)
{
	size_t i = 0;

	while (line && i < ld->len)
		if (ld->text[i++] == '\n')
			line--;
	while (column && i < ld->len) {
		column--;
		i++;
		while (i < ld->len && ((unsigned char)ld->text[i] & 0xC0) == 0x80)
			i++;
	}
	return i < ld->len ? (unsigned char)ld->text[i] : -1;
}

static int parse_error(struct loader *ld, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "invalid YAML", *hint = "";
	size_t i, line = 1, column = 1;

	if (p->error == YAML_MEMORY_ERROR)
		return nomem(ld);
	if (p->error == YAML_READER_ERROR) {
		/* the reader knows only a byte offset */
		for (i = 0; i < p->problem_offset && i < ld->len; i++) {
			if (ld->text[i] == '\n') {
				line++;
				column = 1;
			} else {
				column++;
			}
		}
		if (p->problem_value != -1)
			return fail_at(ld, (int)line, (int)column, "%s (0x%x)", problem,
				       (unsigned)p->problem_value);
		return fail_at(ld, (int)line, (int)column, "%s", problem);
	}
	if (char_at(ld, p->problem_mark.line, p->problem_mark.column) == '\t')
		hint = " (tabs cannot indent YAML; use spaces)";
	if (!p->context || (p->context_mark.line == p->problem_mark.line &&
			    p->context_mark.column == p->problem_mark.column))
		return fail_at(ld, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
			       "%s%s%s%s", problem, p->context ? " " : "",
			       p->context ? p->context : "", hint);
	/* an unclosed quote or bracket is found far from where it opened: say where */
	return fail_at(ld, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
		       "%s %s that started at line %zu, column %zu%s", problem, p->context,
		       p->context_mark.line + 1, p->context_mark.column + 1, hint);
}

static int build_tree(struct loader *ld)
{
	yaml_parser_t parser;
	yaml_event_t event;
	int ret = -1;

	if (!yaml_parser_initialize(&parser))
		return nomem(ld);
	yaml_parser_set_input_string(&parser, (const unsigned char *)ld->text, ld->len);
	while (!ld->done) {
		int r;

		if (!yaml_parser_parse(&parser, &event)) {
			parse_error(ld, &parser);
			goto out;
		}
		r = handle_event(ld, &event);
		yaml_event_delete(&event);
		if (r < 0)
			goto out;
	}
	ret = 0;
out:
	yaml_parser_delete(&parser);
	return ret;
}

static void loader_release(struct loader *ld)
{
	struct node *n, *next;
	size_t i;

	for (n = ld->nodes; n; n = next) {
		next = n->next;
		free(n->value);
		free(n->items);
		free(n);
	}
	for (i = 0; i < ANCHOR_BUCKETS; i++) {
		struct anchor *a, *an;

		for (a = ld->anchors[i]; a; a = an) {
			an = a->next;
			free(a->name);
			free(a);
		}
	}
	while (ld->depth > 0)
		free(ld->stack[--ld->depth].anchor);
}

/* ---- pass 2: tree to struct config ---- */

static int key_is(const struct node *k, const char *name)
{
	return k->kind == NODE_SCALAR && k->len == strlen(name) && !memcmp(k->value, name, k->len);
}

static struct node *map_get(const struct node *map, const char *name)
{
	size_t i;

	for (i = 0; i + 1 < map->nitems; i += 2)
		if (key_is(map->items[i], name))
			return map->items[i + 1];
	return NULL;
}

static int in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return 1;
	return 0;
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
	if (in_list(top_keys, key))
		return "at the top level";
	if (in_list(settings_keys, key))
		return "under defaults or an instance";
	if (in_list(instance_only_keys, key))
		return "in an instance";
	if (in_list(timeout_keys, key))
		return "under timeout";
	if (in_list(retry_keys, key))
		return "under retry";
	if (in_list(credentials_keys, key))
		return "under credentials";
	return NULL;
}

static int unknown_key(struct loader *ld, const struct node *k, const char *const *keys,
		       const char *where)
{
	char q[QUOTE_MAX + 2], list[512];
	const char *best = NULL, *home;
	int best_d = 3;
	size_t i, used = 0;

	quote(k->value, k->len, q, sizeof(q));
	if (!strcmp(k->value, "<<"))
		return fail(ld, k, "merge keys ('<<') are not supported %s (expected plain keys; "
			    "share settings through defaults)", where);
	if (strlen(k->value) == k->len && (home = key_home(k->value)))
		return fail(ld, k, "key %s does not belong %s (expected it %s)", q, where, home);
	for (i = 0; keys[i]; i++) {
		int d = edit_distance(k->value, keys[i]);

		if (d < best_d && d < (int)k->len) {
			best_d = d;
			best = keys[i];
		}
	}
	if (best)
		return fail(ld, k, "unknown key %s %s (did you mean '%s'?)", q, where, best);
	list[0] = '\0';
	for (i = 0; keys[i]; i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 keys[i]);
	return fail(ld, k, "unknown key %s %s (expected one of: %s)", q, where, list);
}

/* Checks that map is a mapping whose keys are distinct names from keys.  Checking before
 * using the values means a misspelt key is reported even when its value is also wrong. */
static int check_keys(struct loader *ld, const struct node *map, const char *const *keys,
		      const char *where)
{
	char q[QUOTE_MAX + 2];
	size_t i, j;

	for (i = 0; i + 1 < map->nitems; i += 2) {
		const struct node *k = map->items[i];

		if (k->kind != NODE_SCALAR || is_null(k))
			return fail(ld, k, "expected a key name %s, got %s", where,
				    describe(k, q, sizeof(q)));
		if (strlen(k->value) != k->len || !in_list(keys, k->value))
			return unknown_key(ld, k, keys, where);
		/* keys are known names, so this loop ends within the first few pairs */
		for (j = 0; j < i; j += 2)
			if (key_is(map->items[j], k->value))
				return fail(ld, k, "duplicate key %s %s (first set at line "
					    "%d, column %d)", quote(k->value, k->len, q, sizeof(q)),
					    where, map->items[j]->line, map->items[j]->column);
	}
	return 0;
}

static int want_mapping(struct loader *ld, const struct node *n, const char *key,
			const char *what)
{
	char q[QUOTE_MAX + 2];

	if (n->kind == NODE_MAPPING)
		return 0;
	return fail(ld, n, "%s: expected %s, got %s", key, what, describe(n, q, sizeof(q)));
}

/* A scalar that is present and not null; what names the expected value for the message. */
static int want_scalar(struct loader *ld, const struct node *n, const char *key,
		       const char *what)
{
	char q[QUOTE_MAX + 2];

	if (n->kind == NODE_SCALAR && !is_null(n))
		return 0;
	return fail(ld, n, "%s: expected %s, got %s", key, what, describe(n, q, sizeof(q)));
}

/* A non-empty string without NUL bytes; *out borrows the node's value. */
static int get_string(struct loader *ld, const struct node *n, const char *key,
		      const char *what, const char **out)
{
	char q[QUOTE_MAX + 2];

	if (want_scalar(ld, n, key, what) < 0)
		return -1;
	if (!n->len || strlen(n->value) != n->len)
		return fail(ld, n, "%s: expected %s, got %s", key, what, describe(n, q, sizeof(q)));
	*out = n->value;
	return 0;
}

static int set_string(struct loader *ld, const struct node *n, const char *key,
		      const char *what, char **dst)
{
	const char *s;
	char *copy;

	if (get_string(ld, n, key, what, &s) < 0)
		return -1;
	if (!(copy = strdup(s)))
		return nomem(ld);
	free(*dst);
	*dst = copy;
	return 0;
}

/* Plain decimal digits only (quoted is fine): YAML's 0x10, 1e3, 010 (octal in YAML 1.1)
 * or 100.0 would each mean something different to a different reader. */
static int get_int(struct loader *ld, const struct node *n, const char *key, int min, int max,
		   int *out)
{
	char what[64], q[QUOTE_MAX + 2];
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
		return fail(ld, n, "%s: expected %s, got %s", key, what, describe(n, q, sizeof(q)));
	if (p[0] == '0' && p[1])
		return fail(ld, n, "%s: expected %s without leading zeros, got %s", key, what,
			    describe(n, q, sizeof(q)));
	for (; *p && v <= INT32_MAX; p++)
		v = v * 10 + (*p - '0');
	if (neg)
		v = -v;
	if (v < min || v > max)
		return fail(ld, n, "%s: %s is out of range (expected %s)", key,
			    describe(n, q, sizeof(q)), what);
	*out = (int)v;
	return 0;
}

/* A decimal like 20 or 2.5, parsed by hand so that the locale's decimal point cannot
 * change what a file means. */
static int get_qps(struct loader *ld, const struct node *n, const char *key, double *out)
{
	static const char what[] = "a number greater than 0 and at most 10000";
	char q[QUOTE_MAX + 2];
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
		return fail(ld, n, "%s: expected %s, got %s", key, what, describe(n, q, sizeof(q)));
	if (neg)
		v = -v;
	if (!(v > 0) || v > 10000)
		return fail(ld, n, "%s: %s is out of range (expected %s)", key,
			    describe(n, q, sizeof(q)), what);
	*out = v;
	return 0;
}

static int get_duration(struct loader *ld, const struct node *n, const char *key,
			int64_t *out)
{
	static const char what[] = "a duration like 5s, 250ms or 10m";
	char q[QUOTE_MAX + 2];
	int64_t ms;

	if (want_scalar(ld, n, key, what) < 0)
		return -1;
	if (strlen(n->value) != n->len || util_parse_duration(n->value, &ms) < 0)
		return fail(ld, n, "%s: expected %s, got %s", key, what, describe(n, q, sizeof(q)));
	if (ms <= 0)
		return fail(ld, n, "%s: %s is out of range (expected a duration greater than 0)",
			    key, describe(n, q, sizeof(q)));
	*out = ms;
	return 0;
}

/* One of two words; *which is 0 for a, 1 for b. */
static int get_choice(struct loader *ld, const struct node *n, const char *key,
		      const char *a, const char *b, int *which)
{
	char what[64], q[QUOTE_MAX + 2];

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
	return fail(ld, n, "%s: expected %s, got %s", key, what, describe(n, q, sizeof(q)));
}

static int apply_timeout(struct loader *ld, const struct node *map, struct cfg_settings *s)
{
	size_t i;

	if (want_mapping(ld, map, "timeout",
			 "a mapping like { connect: 5s, request: 30s }") < 0 ||
	    check_keys(ld, map, timeout_keys, "in timeout") < 0)
		return -1;
	for (i = 0; i + 1 < map->nitems; i += 2) {
		const struct node *k = map->items[i], *v = map->items[i + 1];
		int r;

		if (key_is(k, "connect"))
			r = get_duration(ld, v, "timeout.connect", &s->connect_timeout_ms);
		else
			r = get_duration(ld, v, "timeout.request", &s->request_timeout_ms);
		if (r < 0)
			return -1;
	}
	return 0;
}

static int apply_retry(struct loader *ld, const struct node *map, struct cfg_settings *s)
{
	const struct node *blame;
	char base[32], max[32];
	size_t i;

	if (want_mapping(ld, map, "retry",
			 "a mapping like { max_attempts: 8, max_delay: 30s }") < 0 ||
	    check_keys(ld, map, retry_keys, "in retry") < 0)
		return -1;
	for (i = 0; i + 1 < map->nitems; i += 2) {
		const struct node *k = map->items[i], *v = map->items[i + 1];
		int r;

		if (key_is(k, "max_attempts"))
			r = get_int(ld, v, "retry.max_attempts", 1, 100, &s->max_attempts);
		else if (key_is(k, "base_delay"))
			r = get_duration(ld, v, "retry.base_delay", &s->base_delay_ms);
		else if (key_is(k, "max_delay"))
			r = get_duration(ld, v, "retry.max_delay", &s->max_delay_ms);
		else if (key_is(k, "deadline"))
			r = get_duration(ld, v, "retry.deadline", &s->deadline_ms);
		else
			r = get_int(ld, v, "retry.budget", 1, 1000000, &s->retry_budget);
		if (r < 0)
			return -1;
	}
	if (s->max_delay_ms >= s->base_delay_ms)
		return 0;
	/* what was inherited was consistent, so one of this mapping's keys broke it */
	blame = map_get(map, "max_delay");
	if (!blame)
		blame = map_get(map, "base_delay");
	if (!blame)
		blame = map;
	util_format_duration(s->base_delay_ms, base, sizeof(base));
	util_format_duration(s->max_delay_ms, max, sizeof(max));
	return fail(ld, blame, "retry.max_delay %s is less than retry.base_delay %s "
		    "(expected max_delay >= base_delay)", max, base);
}

/* consistency_tolerance: a count of IDs ("0", "25") or a percentage of Total ("0.5%"). */
static int get_tolerance(struct loader *ld, const struct node *n, struct cfg_settings *s)
{
	const char *what = "a count of IDs like 10, or a percentage of Total like 0.5%";
	char q[QUOTE_MAX + 2], *end = NULL;
	double pct;
	int count;

	if (want_scalar(ld, n, "consistency_tolerance", what) < 0)
		return -1;
	if (n->len > 1 && n->value[n->len - 1] == '%') {
		pct = strtod(n->value, &end);
		if (end != n->value + n->len - 1 || !isdigit((unsigned char)n->value[0]) ||
		    !(pct >= 0 && pct <= 100))
			return fail(ld, n, "consistency_tolerance: expected %s (0%%..100%%), got %s",
				    what, describe(n, q, sizeof(q)));
		s->tolerance_count = -1;
		s->tolerance_pct = pct;
		return 0;
	}
	if (get_int(ld, n, "consistency_tolerance", 0, 1000000000, &count) < 0)
		return -1;
	s->tolerance_count = count;
	return 0;
}

/* Applies one settings key to s.  Returns 1 when done, 0 when key is not a setting, or -1
 * with the error set. */
static int apply_setting(struct loader *ld, const struct node *k, const struct node *v,
			 struct cfg_settings *s)
{
	int which, r;

	if (key_is(k, "page_size")) {
		r = get_int(ld, v, "page_size", 1, 100, &s->page_size);
	} else if (key_is(k, "qps")) {
		r = get_qps(ld, v, "qps", &s->qps);
	} else if (key_is(k, "concurrency")) {
		r = get_int(ld, v, "concurrency", 1, 256, &s->concurrency);
	} else if (key_is(k, "timeout")) {
		r = apply_timeout(ld, v, s);
	} else if (key_is(k, "retry")) {
		r = apply_retry(ld, v, s);
	} else if (key_is(k, "signature")) {
		r = get_choice(ld, v, "signature", "v1", "v3", &which);
		if (!r)
			s->signature = which ? CFG_SIG_V3 : CFG_SIG_V1;
	} else if (key_is(k, "rate_control")) {
		r = get_choice(ld, v, "rate_control", "adaptive", "fixed", &which);
		if (!r)
			s->rate_control = which ? CFG_RATE_FIXED : CFG_RATE_ADAPTIVE;
	} else if (key_is(k, "ca_file")) {
		r = set_string(ld, v, "ca_file", "a path to a CA bundle", &s->ca_file);
	} else if (key_is(k, "consistency_tolerance")) {
		r = get_tolerance(ld, v, s);
	} else if (key_is(k, "qps_hard_cap")) {
		r = get_qps(ld, v, "qps_hard_cap", &s->qps_hard_cap);
	} else if (key_is(k, "max_pages")) {
		r = get_int(ld, v, "max_pages", 1, 10000000, &s->max_pages);
	} else {
		return 0;
	}
	return r < 0 ? -1 : 1;
}

static void settings_release(struct cfg_settings *s)
{
	free(s->ca_file);
	s->ca_file = NULL;
}

static int settings_copy(struct loader *ld, struct cfg_settings *dst,
			 const struct cfg_settings *src)
{
	*dst = *src;
	if (src->ca_file && !(dst->ca_file = strdup(src->ca_file)))
		return nomem(ld);
	return 0;
}

struct named {
	const char *name;
	const struct node *node;
	size_t index;
};

static int cmp_named(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Finds the earliest entry that repeats an earlier one, by sorting rather than comparing
 * every pair, since a hostile file may list many.  Returns 1 and sets *first and *again to
 * the first occurrence and that repeat, 0 when all differ, or -1 when out of memory. */
static int find_duplicate(struct named *v, size_t n, struct named *first, struct named *again)
{
	struct named *sorted;
	size_t i, run = 0;
	int found = 0;

	if (n < 2)
		return 0;
	sorted = malloc(n * sizeof(*sorted));
	if (!sorted)
		return -1;
	memcpy(sorted, v, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_named);
	for (i = 1; i < n; i++) {
		if (strcmp(sorted[i].name, sorted[run].name)) {
			run = i;
			continue;
		}
		/* sorted[i - 1] is the earliest repeat of this name when i - 1 == run */
		if (i - 1 == run && (!found || sorted[i].index < again->index)) {
			*first = sorted[run];
			*again = sorted[i];
			found = 1;
		}
	}
	free(sorted);
	return found;
}

static int parse_credentials_map(struct loader *ld, const struct node *map,
				 struct cfg_credentials *c)
{
	static const char *const secrets[] = { "access_key_id", "access_key_secret",
					       "security_token", "sts_token", NULL };
	const struct node *v;
	size_t i;

	if (want_mapping(ld, map, "credentials", "a mapping like { profile: default }") < 0)
		return -1;
	for (i = 0; i + 1 < map->nitems; i += 2)
		if (map->items[i]->kind == NODE_SCALAR && in_list(secrets, map->items[i]->value))
			return fail(ld, map->items[i], "credentials: %s does not belong in this file: "
				    "keys, secrets and tokens stay in the environment or a profile "
				    "(name it with profile:)", map->items[i]->value);
	if (check_keys(ld, map, credentials_keys, "in credentials") < 0)
		return -1;
	c->set = 1;
	c->line = map->line;
	c->column = map->column;
	if ((v = map_get(map, "profile")) &&
	    set_string(ld, v, "credentials.profile", "a profile name", &c->profile) < 0)
		return -1;
	if ((v = map_get(map, "role_arn"))) {
		if (set_string(ld, v, "credentials.role_arn", "a role ARN like "
			       "acs:ram::1234567890123456:role/NAME", &c->role_arn) < 0)
			return -1;
		if (strncmp(c->role_arn, "acs:ram::", 9) || !strstr(c->role_arn, ":role/"))
			return fail(ld, v, "credentials.role_arn: expected a role ARN like "
				    "acs:ram::1234567890123456:role/NAME, got '%s'", c->role_arn);
	}
	if ((v = map_get(map, "external_id")) &&
	    set_string(ld, v, "credentials.external_id", "a string", &c->external_id) < 0)
		return -1;
	if ((v = map_get(map, "role_session_name")) &&
	    set_string(ld, v, "credentials.role_session_name", "a session name",
		       &c->role_session_name) < 0)
		return -1;
	if ((v = map_get(map, "sts_endpoint")) &&
	    set_string(ld, v, "credentials.sts_endpoint", "a host or URL", &c->sts_endpoint) < 0)
		return -1;
	if ((v = map_get(map, "policy")) &&
	    set_string(ld, v, "credentials.policy", "a JSON policy", &c->policy) < 0)
		return -1;
	if ((v = map_get(map, "duration"))) {
		if (get_duration(ld, v, "credentials.duration", &c->duration_ms) < 0)
			return -1;
		if (c->duration_ms < 15 * 60000LL || c->duration_ms > 12 * 3600000LL)
			return fail(ld, v, "credentials.duration: expected 15m..12h (STS "
				    "DurationSeconds 900..43200)");
	}
	if (!c->profile && !c->role_arn)
		return fail(ld, map, "credentials: expected profile, role_arn or both");
	if (!c->role_arn && (c->external_id || c->role_session_name || c->duration_ms ||
			     c->sts_endpoint || c->policy))
		return fail(ld, map, "credentials: external_id, role_session_name, duration, "
			    "sts_endpoint and policy need role_arn");
	return 0;
}

static int parse_credentials(struct loader *ld, const struct node *map, struct config *cfg)
{
	if (parse_credentials_map(ld, map, &cfg->creds) < 0)
		return -1;
	if (cfg->creds.profile && !(cfg->profile = strdup(cfg->creds.profile)))
		return nomem(ld);
	return 0;
}

/* retention: { keep_last: N, keep_for: DURATION }: the policy of `prune`, applied after
 * every sync; with both, a snapshot is kept while either rule keeps it. */
static int parse_retention(struct loader *ld, const struct node *map, struct config *cfg)
{
	const struct node *v;
	int n;

	if (want_mapping(ld, map, "retention",
			 "a mapping like { keep_last: 30, keep_for: 90d }") < 0 ||
	    check_keys(ld, map, retention_keys, "in retention") < 0)
		return -1;
	if (!map_get(map, "keep_last") && !map_get(map, "keep_for"))
		return fail(ld, map, "retention: expected keep_last, keep_for or both (an empty "
			    "policy would keep everything; remove the key instead)");
	v = map_get(map, "keep_last");
	if (v) {
		if (get_int(ld, v, "retention.keep_last", 1, 1000000, &n) < 0)
			return -1;
		cfg->retention_keep_last = n;
	}
	v = map_get(map, "keep_for");
	if (v && get_duration(ld, v, "retention.keep_for", &cfg->retention_keep_for_ms) < 0)
		return -1;
	return 0;
}

static int parse_defaults(struct loader *ld, const struct node *map, struct config *cfg)
{
	size_t i;

	if (want_mapping(ld, map, "defaults",
			 "a mapping of settings like { page_size: 100 }") < 0 ||
	    check_keys(ld, map, settings_keys, "in defaults") < 0)
		return -1;
	for (i = 0; i + 1 < map->nitems; i += 2)
		if (apply_setting(ld, map->items[i], map->items[i + 1], &cfg->defaults) < 0)
			return -1;
	return 0;
}

static int check_charset(const char *s, const char *set)
{
	return strspn(s, set) == strlen(s);
}

static int check_hostname(const char *h, size_t len)
{
	size_t i, label = 0;

	if (len > 253)
		return 0;
	for (i = 0; i <= len; i++) {
		char c = i < len ? h[i] : '.';

		if (c == '.') {
			if (!label || h[i - 1] == '-')
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)c) || c == '-') {
			if ((!label && c == '-') || ++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return 1;
}

static int parse_endpoint(struct loader *ld, const struct node *n, char **out)
{
	static const char shape[] = "expected only scheme://host[:port]";
	char q[QUOTE_MAX + 2], host[260];
	const char *s, *rest, *tail, *p;
	size_t alen, hlen, len;
	int tls, port = 0;
	struct in_addr a4;
	struct in6_addr a6;

	if (get_string(ld, n, "endpoint", "a URL like https://HOST[:PORT]", &s) < 0)
		return -1;
	if (!strncasecmp(s, "https://", 8)) {
		tls = 1;
		rest = s + 8;
	} else if (!strncasecmp(s, "http://", 7)) {
		tls = 0;
		rest = s + 7;
	} else {
		return fail(ld, n, "endpoint: expected an http:// or https:// URL, got %s",
			    describe(n, q, sizeof(q)));
	}
	alen = strcspn(rest, "/?#");
	tail = rest + alen;
	/* user:password@ would put a secret in the config and in messages: never quote it */
	if (memchr(rest, '@', alen))
		return fail(ld, n, "endpoint: a user name or password in the URL is not allowed "
			    "(%s)", shape);
	if (*tail == '/' && tail[1]) {
		size_t plen = strcspn(tail, "?#");

		if (plen > 1)
			return fail(ld, n, "endpoint: unexpected path %s (%s)",
				    quote(tail, plen, q, sizeof(q)), shape);
		tail += plen;
	}
	/* a query or fragment may carry a token, so it is named but not quoted */
	if (*tail == '?')
		return fail(ld, n, "endpoint: a query string is not allowed (%s)", shape);
	if (*tail == '#')
		return fail(ld, n, "endpoint: a fragment is not allowed (%s)", shape);
	if (rest[0] == '[') {
		/* host keeps its brackets: util_host_is_loopback wants it as in the URL */
		p = memchr(rest, ']', alen);
		hlen = p ? (size_t)(p - rest) + 1 : alen;
		if (p && hlen < sizeof(host)) {
			memcpy(host, rest + 1, hlen - 2);
			host[hlen - 2] = '\0';
		}
		if (!p || hlen >= sizeof(host) || inet_pton(AF_INET6, host, &a6) != 1)
			return fail(ld, n, "endpoint: expected an IPv6 address in brackets, got %s",
				    quote(rest, hlen, q, sizeof(q)));
		memcpy(host, rest, hlen);
		host[hlen] = '\0';
	} else {
		p = memchr(rest, ':', alen);
		hlen = p ? (size_t)(p - rest) : alen;
		if (!hlen)
			return fail(ld, n, "endpoint: expected a host name after the scheme, got %s",
				    describe(n, q, sizeof(q)));
		if (hlen >= sizeof(host) || !check_hostname(rest, hlen))
			return fail(ld, n, "endpoint: expected a host name or address, got %s",
				    quote(rest, hlen, q, sizeof(q)));
		memcpy(host, rest, hlen);
		host[hlen] = '\0';
		/* all digits and dots is an IPv4 address or nothing: no 999.1.1.1 hosts */
		if (check_charset(host, "0123456789.") && inet_pton(AF_INET, host, &a4) != 1)
			return fail(ld, n, "endpoint: expected an IPv4 address, got %s",
				    quote(host, hlen, q, sizeof(q)));
	}
	if (hlen < alen) {
		const char *ps = rest + hlen;
		size_t plen = alen - hlen;

		if (*ps != ':' || plen < 2 || plen > 6 || strspn(ps + 1, "0123456789") != plen - 1)
			return fail(ld, n, "endpoint: expected ':' and a port number after the host, "
				    "got %s", quote(ps, plen, q, sizeof(q)));
		for (p = ps + 1; p < ps + plen; p++)
			port = port * 10 + (*p - '0');
		if (port < 1 || port > 65535)
			return fail(ld, n, "endpoint: port %s is out of range (expected 1..65535)",
				    quote(ps + 1, plen - 1, q, sizeof(q)));
	}
	if (!tls && !util_host_is_loopback(host))
		return fail(ld, n, "endpoint: plain http:// to %s is not allowed: TLS is required "
			    "for non-loopback hosts (expected https://, or http:// only to "
			    "localhost, *.localhost, 127.0.0.0/8 or [::1])",
			    quote(host, strlen(host), q, sizeof(q)));
	/* stored without the trailing slash and with the scheme in lower case, so that
	 * "https://" + host can be compared and joined with paths as is */
	len = (size_t)(rest - s) + alen;
	if (!(*out = malloc(len + 1)))
		return nomem(ld);
	snprintf(*out, len + 1, "%s%.*s", tls ? "https://" : "http://", (int)alen, rest);
	return 0;
}

static int parse_groups(struct loader *ld, const struct node *n, struct cfg_instance *inst)
{
	static const char what[] = "all or a list of group ids";
	char q[QUOTE_MAX + 2], q2[QUOTE_MAX + 2];
	struct named *names = NULL, first, again;
	size_t i;
	int ret = -1, dup;

	if (n->kind == NODE_SCALAR && !is_null(n) && !strcmp(n->value, "all") && n->len == 3) {
		inst->groups_all = 1;
		return 0;
	}
	if (n->kind != NODE_SEQUENCE || !n->nitems)
		return fail(ld, n, "groups: expected %s, got %s", what, describe(n, q, sizeof(q)));
	inst->groups = calloc(n->nitems, sizeof(*inst->groups));
	names = calloc(n->nitems, sizeof(*names));
	if (!inst->groups || !names) {
		nomem(ld);
		goto out;
	}
	inst->ngroups = n->nitems;
	for (i = 0; i < n->nitems; i++) {
		const struct node *g = n->items[i];
		size_t j;

		if (g->kind != NODE_SCALAR || is_null(g) || !g->len) {
			fail(ld, g, "groups: expected a group id, got %s",
			     describe(g, q, sizeof(q)));
			goto out;
		}
		if (!strcmp(g->value, "all") && g->len == 3) {
			fail(ld, g, "groups: 'all' cannot be listed with groups (expected "
			     "groups: all on its own, or only group ids)");
			goto out;
		}
		if (g->len > CFG_MAX_GROUP_LEN) {
			fail(ld, g, "group %s is %zu characters long (expected at most %d)",
			     describe(g, q, sizeof(q)), g->len, CFG_MAX_GROUP_LEN);
			goto out;
		}
		for (j = 0; j < g->len; j++) {
			unsigned char c = (unsigned char)g->value[j];

			if (c <= 0x20 || c >= 0x7f) {
				fail(ld, g, "group %s contains a space or a non-printable character "
				     "(expected printable ASCII without spaces)",
				     describe(g, q, sizeof(q)));
				goto out;
			}
		}
		if (!(inst->groups[i] = strdup(g->value))) {
			nomem(ld);
			goto out;
		}
		names[i].name = inst->groups[i];
		names[i].node = g;
		names[i].index = i;
	}
	dup = find_duplicate(names, n->nitems, &first, &again);
	if (dup < 0) {
		nomem(ld);
		goto out;
	}
	if (dup) {
		fail(ld, again.node, "duplicate group %s (first listed at line %d, column %d)",
		     quote(again.name, strlen(again.name), q2, sizeof(q2)), first.node->line,
		     first.node->column);
		goto out;
	}
	ret = 0;
out:
	free(names);
	return ret;
}

static int parse_instance(struct loader *ld, const struct node *map, size_t index,
			  const struct config *cfg, struct cfg_instance *inst)
{
	char where[QUOTE_MAX + 32], q[QUOTE_MAX + 2];
	const struct node *id, *endpoint = NULL, *groups = NULL;
	const char *s;
	size_t i;

	if (map->kind != NODE_MAPPING)
		return fail(ld, map, "instances: expected each instance to be a mapping with id "
			    "and region or endpoint, got %s", describe(map, q, sizeof(q)));
	inst->line = map->line;
	inst->column = map->column;
	id = map_get(map, "id");
	if (id && id->kind == NODE_SCALAR && !is_null(id) && id->len)
		snprintf(where, sizeof(where), "in instance %s",
			 quote(id->value, id->len, q, sizeof(q)));
	else
		snprintf(where, sizeof(where), "in instance #%zu", index + 1);
	if (check_keys(ld, map, instance_keys, where) < 0)
		return -1;
	if (!id)
		return fail(ld, map, "instance #%zu has no id (expected id: INSTANCE_ID, like "
			    "mqtt-cn-0pp1ldu0s0b)", index + 1);
	if (get_string(ld, id, "id", "an instance id", &s) < 0)
		return -1;
	if (!check_charset(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"))
		return fail(ld, id, "id: expected letters, digits, '_', '.' and '-', got %s",
			    describe(id, q, sizeof(q)));
	if (!(inst->id = strdup(s)) || settings_copy(ld, &inst->s, &cfg->defaults) < 0)
		return nomem(ld);
	for (i = 0; i + 1 < map->nitems; i += 2) {
		const struct node *k = map->items[i], *v = map->items[i + 1];
		int r = apply_setting(ld, k, v, &inst->s);

		if (r < 0)
			return -1;
		if (r)
			continue;
		if (key_is(k, "region")) {
			if (get_string(ld, v, "region", "a region like cn-hangzhou", &s) < 0)
				return -1;
			/* the region becomes a label of the endpoint's host name, so it must be
			 * one: at most 63 characters, no '-' at either end (found by fuzz_config) */
			if (!check_charset(s, "abcdefghijklmnopqrstuvwxyz0123456789-") ||
			    !check_hostname(s, strlen(s)))
				return fail(ld, v, "region: expected a region like cn-hangzhou "
					    "(lower-case letters, digits and '-'), got %s",
					    describe(v, q, sizeof(q)));
			if (!(inst->region = strdup(s)))
				return nomem(ld);
		} else if (key_is(k, "endpoint")) {
			endpoint = v;
		} else if (key_is(k, "groups")) {
			groups = v;
		} else if (key_is(k, "credentials")) {
			if (parse_credentials_map(ld, v, &inst->creds) < 0)
				return -1;
		} else if (key_is(k, "endpoint_type")) {
			if (get_string(ld, v, "endpoint_type", "public or vpc", &s) < 0)
				return -1;
			if (!strcmp(s, "vpc"))
				inst->endpoint_vpc = 1;
			else if (strcmp(s, "public"))
				return fail(ld, v, "endpoint_type: expected public or vpc, got %s",
					    describe(v, q, sizeof(q)));
		}
	}
	if (endpoint && parse_endpoint(ld, endpoint, &inst->endpoint) < 0)
		return -1;
	if (!endpoint && !inst->region)
		return fail(ld, map, "instance %s has neither region nor endpoint (expected "
			    "region: cn-hangzhou or endpoint: https://HOST)",
			    quote(inst->id, strlen(inst->id), q, sizeof(q)));
	if (!groups)
		return fail(ld, map, "instance %s has no groups (expected groups: all or a list "
			    "of group ids)", quote(inst->id, strlen(inst->id), q, sizeof(q)));
	if (parse_groups(ld, groups, inst) < 0)
		return -1;
	if (!inst->endpoint) {
		struct cs_buf b = CS_BUF_INIT;

		buf_printf(&b, "https://onsmqtt%s.%s.aliyuncs.com", inst->endpoint_vpc ? "-vpc" : "",
			   inst->region);
		if (!(inst->endpoint = buf_detach(&b)))
			return nomem(ld);
	}
	return 0;
}

static int parse_instances(struct loader *ld, const struct node *seq, struct config *cfg)
{
	char q[QUOTE_MAX + 2];
	struct named *ids = NULL, first, again;
	size_t i;
	int ret = -1, dup;

	if (seq->kind != NODE_SEQUENCE || !seq->nitems)
		return fail(ld, seq, "instances: expected a list of at least one instance, got %s",
			    describe(seq, q, sizeof(q)));
	cfg->instances = calloc(seq->nitems, sizeof(*cfg->instances));
	ids = calloc(seq->nitems, sizeof(*ids));
	if (!cfg->instances || !ids) {
		nomem(ld);
		goto out;
	}
	cfg->ninstances = seq->nitems;
	for (i = 0; i < seq->nitems; i++) {
		if (parse_instance(ld, seq->items[i], i, cfg, &cfg->instances[i]) < 0)
			goto out;
		ids[i].name = cfg->instances[i].id;
		ids[i].node = map_get(seq->items[i], "id");
		ids[i].index = i;
	}
	dup = find_duplicate(ids, seq->nitems, &first, &again);
	if (dup < 0) {
		nomem(ld);
		goto out;
	}
	if (dup) {
		fail(ld, again.node, "duplicate instance id %s (first used at line %d, column %d)",
		     quote(again.name, strlen(again.name), q, sizeof(q)), first.node->line,
		     first.node->column);
		goto out;
	}
	ret = 0;
out:
	free(ids);
	return ret;
}

static int load_tree(struct loader *ld, struct config *cfg)
{
	const struct node *root = ld->root, *v;
	char q[QUOTE_MAX + 2];
	size_t i;

	if (!root)
		return cs_error_set(ld->err, CS_ERR_CONFIG, "%s: empty configuration, expected a "
				    "mapping with 'instances'", ld->name);
	if (root->kind != NODE_MAPPING)
		return fail(ld, root, "expected a mapping with 'instances' at the top level, got %s",
			    describe(root, q, sizeof(q)));
	if (check_keys(ld, root, top_keys, "at the top level") < 0)
		return -1;
	/* in file order, except that instances wait until defaults are known */
	for (i = 0; i + 1 < root->nitems; i += 2) {
		const struct node *k = root->items[i];
		int r = 0;

		v = root->items[i + 1];
		if (key_is(k, "database"))
			r = set_string(ld, v, "database", "a database path", &cfg->database);
		else if (key_is(k, "credentials"))
			r = parse_credentials(ld, v, cfg);
		else if (key_is(k, "defaults"))
			r = parse_defaults(ld, v, cfg);
		else if (key_is(k, "metrics_file"))
			r = set_string(ld, v, "metrics_file", "a path", &cfg->metrics_file);
		else if (key_is(k, "checkpoint_max_age"))
			r = get_duration(ld, v, "checkpoint_max_age", &cfg->checkpoint_max_age_ms);
		else if (key_is(k, "finalize_max_age"))
			r = get_duration(ld, v, "finalize_max_age", &cfg->finalize_max_age_ms);
		else if (key_is(k, "retention"))
			r = parse_retention(ld, v, cfg);
		if (r < 0)
			return -1;
	}
	v = map_get(root, "instances");
	if (!v)
		return fail(ld, root, "missing 'instances' (expected a list of instances, each "
			    "with id, region or endpoint, and groups)");
	if (parse_instances(ld, v, cfg) < 0)
		return -1;
	return check_hard_caps(ld, cfg);
}

/*
 * The service blocks a source IP above 300 calls a second per API: no setting of qps may
 * pass qps_hard_cap silently.  Checked once every instance's settings are resolved, at the
 * instance that would pass it.
 */
static int check_hard_caps(struct loader *ld, const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->ninstances; i++) {
		const struct cfg_instance *inst = &cfg->instances[i];

		if (inst->s.qps > inst->s.qps_hard_cap)
			return fail_at(ld, inst->line, inst->column,
				       "instance '%s': qps %g is above qps_hard_cap %g (the service "
				       "blocks a source IP above 300 calls a second per API); lower qps, "
				       "or raise qps_hard_cap explicitly if this endpoint allows more",
				       inst->id, inst->s.qps, inst->s.qps_hard_cap);
	}
	return 0;
}

/* ---- public ---- */

/* Fills s with the built-in defaults of PRODUCT.md; s->ca_file is set to NULL without
 * freeing what was there, so s must not own a string yet. */
void config_settings_default(struct cfg_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->page_size = 100;
	s->qps = 100;
	s->qps_hard_cap = 250;
	s->concurrency = 4;
	s->connect_timeout_ms = 5 * 1000;
	s->request_timeout_ms = 30 * 1000;
	s->max_attempts = 8;
	s->base_delay_ms = 1000;
	s->max_delay_ms = 30 * 1000;
	s->deadline_ms = 15 * 60 * 1000;
	s->retry_budget = 500;
	s->signature = CFG_SIG_V3;
	s->rate_control = CFG_RATE_ADAPTIVE;
	s->ca_file = NULL;
	s->tolerance_count = -1;
	s->tolerance_pct = 0.1;
	s->max_pages = 100000;
}

int64_t config_tolerance(const struct cfg_settings *s, int64_t total)
{
	int64_t t;

	if (s->tolerance_count >= 0)
		return s->tolerance_count;
	t = (int64_t)((double)(total > 0 ? total : 0) * s->tolerance_pct / 100.0);
	return t > 1 ? t : 1;
}

/* On failure returns -1 with err set (CS_ERR_CONFIG, CS_ERR_NOMEM) and *out NULL; on success
 * *out is the caller's, freed with config_free.  text need not be NUL-terminated. */
int config_load_string(struct config **out, const char *name, const char *text, size_t len,
		       struct cs_error *err)
{
	struct loader *ld = NULL;
	struct config *cfg = NULL;
	int ret = -1;

	*out = NULL;
	if (!name)
		name = "(config)";
	if (len > CFG_MAX_FILE_BYTES)
		return cs_error_set(err, CS_ERR_CONFIG, "%s: configuration is %zu bytes "
				    "(expected at most %d)", name, len, CFG_MAX_FILE_BYTES);
	/* the anchor table and stack are too big to sit on a small thread's stack */
	ld = calloc(1, sizeof(*ld));
	cfg = calloc(1, sizeof(*cfg));
	if (!ld || !cfg || !(cfg->path = strdup(name))) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	ld->name = name;
	ld->text = text ? text : "";
	ld->len = text ? len : 0;
	ld->err = err;
	config_settings_default(&cfg->defaults);
	cfg->checkpoint_max_age_ms = 6 * 3600 * 1000;
	cfg->finalize_max_age_ms = 5 * 60 * 1000;
	if (build_tree(ld) < 0 || load_tree(ld, cfg) < 0)
		goto out;
	*out = cfg;
	cfg = NULL;
	ret = 0;
out:
	if (ld)
		loader_release(ld);
	free(ld);
	config_free(cfg);
	return ret;
}

/* Reads path whole and loads it.  Any failure to open or read it is a CS_ERR_CONFIG error
 * ("cannot read PATH: reason"), since a missing config is the operator's to fix (exit 78);
 * on failure *out is NULL. */
int config_load_file(struct config **out, const char *path, struct cs_error *err)
{
	struct cs_buf b = CS_BUF_INIT;
	char chunk[16384];
	struct stat st;
	FILE *f;
	size_t n;
	int ret = -1;

	*out = NULL;
	f = fopen(path, "rb");
	if (!f)
		return cs_error_set(err, CS_ERR_CONFIG, "cannot read %s: %s", path,
				    strerror(errno));
	if (fstat(fileno(f), &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			cs_error_set(err, CS_ERR_CONFIG, "cannot read %s: %s", path,
				     strerror(EISDIR));
			goto out;
		}
		/* refuse before reading a huge file into memory */
		if (S_ISREG(st.st_mode) && st.st_size > CFG_MAX_FILE_BYTES) {
			cs_error_set(err, CS_ERR_CONFIG, "%s: configuration is %lld bytes (expected "
				     "at most %d)", path, (long long)st.st_size, CFG_MAX_FILE_BYTES);
			goto out;
		}
	}
	/* a pipe or a growing file has no size up front: stop one byte past the limit */
	while (b.len <= CFG_MAX_FILE_BYTES && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	if (ferror(f)) {
		cs_error_set(err, CS_ERR_CONFIG, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (b.oom) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (b.len > CFG_MAX_FILE_BYTES) {
		cs_error_set(err, CS_ERR_CONFIG, "%s: configuration is more than %d bytes "
			     "(expected at most %d)", path, CFG_MAX_FILE_BYTES, CFG_MAX_FILE_BYTES);
		goto out;
	}
	ret = config_load_string(out, path, buf_str(&b), b.len, err);
out:
	fclose(f);
	buf_release(&b);
	return ret;
}

/* Frees cfg and every string it owns; NULL is fine. */
static void cfg_credentials_release(struct cfg_credentials *c)
{
	free(c->profile);
	free(c->role_arn);
	free(c->external_id);
	free(c->role_session_name);
	free(c->sts_endpoint);
	free(c->policy);
}

void config_free(struct config *cfg)
{
	size_t i, j;

	if (!cfg)
		return;
	for (i = 0; i < cfg->ninstances; i++) {
		struct cfg_instance *inst = &cfg->instances[i];

		free(inst->id);
		free(inst->region);
		free(inst->endpoint);
		for (j = 0; j < inst->ngroups; j++)
			free(inst->groups[j]);
		free(inst->groups);
		settings_release(&inst->s);
		cfg_credentials_release(&inst->creds);
	}
	free(cfg->instances);
	cfg_credentials_release(&cfg->creds);
	settings_release(&cfg->defaults);
	free(cfg->path);
	free(cfg->database);
	free(cfg->profile);
	free(cfg->metrics_file);
	free(cfg);
}

static char *exists_dup(const char *path)
{
	return access(path, F_OK) == 0 ? strdup(path) : NULL;
}

/* Returns a malloc'd path by PRODUCT.md's search order, or NULL when no candidate exists
 * (or memory ran out).  Only existence is checked: reading it is config_load_file's job. */
char *config_find(const char *explicit_path)
{
	const char *env, *home;
	struct cs_buf b = CS_BUF_INIT;
	char *p;

	if (explicit_path && *explicit_path)
		return strdup(explicit_path);
	env = getenv("CREDSYNC_CONFIG");
	if (env && *env)
		return strdup(env);
	if ((p = exists_dup("./credsync.yaml")))
		return p;
	/* the XDG spec says to ignore a relative XDG_CONFIG_HOME */
	env = getenv("XDG_CONFIG_HOME");
	home = getenv("HOME");
	if (env && env[0] == '/')
		buf_printf(&b, "%s/credsync/config.yaml", env);
	else if (home && *home)
		buf_printf(&b, "%s/.config/credsync/config.yaml", home);
	if (b.len && !b.oom && access(b.data, F_OK) == 0)
		return buf_detach(&b);
	buf_release(&b);
	return exists_dup("/etc/credsync/config.yaml");
}
