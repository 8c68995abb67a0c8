/*
 * yamltree.c - libyaml events -> a tree of nodes with positions; see yamltree.h.
 *
 * The tree and its anchors belong to struct yamltree and are freed in one place.  An anchor
 * is registered only when its collection ends, so an alias inside the collection finds no
 * anchor and cannot make a cycle; weights count what aliases would expand to, so the limit
 * catches billion laughs without ever expanding anything.
 */
#include "yamltree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util.h"

#define ANCHOR_BUCKETS 1024

struct anchor {
	char *name;           /* owned */
	struct ynode *node;   /* borrowed from the tree's list */
	struct anchor *next;
};

struct open_collection {
	struct ynode *node;
	char *anchor;         /* owned; registered only when the collection ends, so that an
			       * alias can never point at its own ancestor (no cycles) */
};

struct yamltree {
	const char *name;     /* the file's name, for messages */
	const char *text;
	size_t len;
	struct cs_error *err;
	struct yamltree_limits lim;
	struct ynode *nodes;  /* every node, for freeing */
	struct anchor *anchors[ANCHOR_BUCKETS];
	struct open_collection *stack;  /* lim.max_depth entries */
	int depth;
	int documents;
	int done;
	size_t expanded;      /* nodes so far with aliases expanded */
	struct ynode *root;
};

/* ---- messages and node helpers ---- */

int yamltree_verror(struct cs_error *err, const char *name, int line, int column,
		    const char *fmt, va_list ap)
{
	char msg[900];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return cs_error_set(err, CS_ERR_CONFIG, "%s:%d:%d: %s", name, line, column, msg);
}

static int fail_at(struct yamltree *t, int line, int column, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail_at(struct yamltree *t, int line, int column, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	yamltree_verror(t->err, t->name, line, column, fmt, ap);
	va_end(ap);
	return -1;
}

static int nomem(struct yamltree *t)
{
	return cs_error_set(t->err, CS_ERR_NOMEM, "out of memory");
}

int ynode_is_null(const struct ynode *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
	size_t i;

	if (n->kind != YNODE_SCALAR || !n->plain)
		return 0;
	for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (!strcmp(n->value, nulls[i]))
			return 1;
	return 0;
}

int ynode_key_is(const struct ynode *k, const char *name)
{
	return k->kind == YNODE_SCALAR && k->len == strlen(name) && !memcmp(k->value, name, k->len);
}

const struct ynode *ynode_map_get(const struct ynode *map, const char *name)
{
	size_t i;

	for (i = 0; i + 1 < map->nitems; i += 2)
		if (ynode_key_is(map->items[i], name))
			return map->items[i + 1];
	return NULL;
}

/* The file's bytes go into messages escaped and cut, since they are untrusted. */
const char *yamltree_quote(const char *s, size_t len, char *out, size_t outlen)
{
	char q[YAMLTREE_QUOTE_MAX];

	util_quote_bytes(s, len, q, sizeof(q));
	snprintf(out, outlen, "'%s'", q);
	return out;
}

const char *ynode_describe(const struct ynode *n, char *out, size_t outlen)
{
	if (n->kind == YNODE_SEQUENCE)
		return n->nitems ? "a sequence" : "an empty sequence";
	if (n->kind == YNODE_MAPPING)
		return "a mapping";
	if (ynode_is_null(n))
		return "nothing";
	return yamltree_quote(n->value, n->len, out, outlen);
}

/* ---- pass 1: events to tree ---- */

static struct ynode *node_new(struct yamltree *t, enum ynode_kind kind, const yaml_mark_t *mark)
{
	struct ynode *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->kind = kind;
	n->line = (int)mark->line + 1;
	n->column = (int)mark->column + 1;
	n->weight = 1;
	n->next = t->nodes;
	t->nodes = n;
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
static int anchor_add(struct yamltree *t, const char *name, struct ynode *n)
{
	struct anchor *a = calloc(1, sizeof(*a));
	unsigned h = anchor_hash(name);

	if (!a || !(a->name = strdup(name))) {
		free(a);
		return nomem(t);
	}
	a->node = n;
	a->next = t->anchors[h];
	t->anchors[h] = a;
	return 0;
}

static struct ynode *anchor_find(struct yamltree *t, const char *name)
{
	struct anchor *a;

	for (a = t->anchors[anchor_hash(name)]; a; a = a->next)
		if (!strcmp(a->name, name))
			return a->node;
	return NULL;
}

/* Counts weight more nodes toward the expansion limit; line/column blame the event. */
static int count_nodes(struct yamltree *t, size_t weight, const yaml_mark_t *mark)
{
	if (weight > t->lim.max_nodes - t->expanded)
		return fail_at(t, (int)mark->line + 1, (int)mark->column + 1,
			       "aliases expand the configuration to more than %zu nodes "
			       "(expected fewer or smaller aliases)", t->lim.max_nodes);
	t->expanded += weight;
	return 0;
}

/* Hangs n under the open collection, or makes it the document's root. */
static int attach(struct yamltree *t, struct ynode *n)
{
	struct ynode *parent;
	struct ynode **items;

	if (!t->depth) {
		t->root = n;
		return 0;
	}
	parent = t->stack[t->depth - 1].node;
	if (parent->nitems == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;

		items = realloc(parent->items, cap * sizeof(*items));
		if (!items)
			return nomem(t);
		parent->items = items;
		parent->cap = cap;
	}
	parent->items[parent->nitems++] = n;
	return 0;
}

static int open_collection(struct yamltree *t, const yaml_event_t *ev, enum ynode_kind kind,
			   const yaml_char_t *anchor)
{
	struct ynode *n;
	char *name = NULL;

	if (t->depth == t->lim.max_depth)
		return fail_at(t, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			       "nesting deeper than %d levels (expected a flatter configuration)",
			       t->lim.max_depth);
	if (count_nodes(t, 1, &ev->start_mark) < 0)
		return -1;
	if (anchor && !(name = strdup((const char *)anchor)))
		return nomem(t);
	n = node_new(t, kind, &ev->start_mark);
	if (!n || attach(t, n) < 0) {
		free(name);
		return nomem(t);
	}
	t->stack[t->depth].node = n;
	t->stack[t->depth].anchor = name;
	t->depth++;
	return 0;
}

static int close_collection(struct yamltree *t)
{
	struct open_collection *top = &t->stack[--t->depth];
	struct ynode *n = top->node;
	char *name = top->anchor;
	size_t i;
	int ret = 0;

	/* every item is complete by now, and the total was bounded as they came */
	for (i = 0; i < n->nitems; i++)
		n->weight += n->items[i]->weight;
	top->anchor = NULL;
	if (name)
		ret = anchor_add(t, name, n);
	free(name);
	return ret;
}

static int add_scalar(struct yamltree *t, const yaml_event_t *ev)
{
	struct ynode *n;

	if (count_nodes(t, 1, &ev->start_mark) < 0)
		return -1;
	n = node_new(t, YNODE_SCALAR, &ev->start_mark);
	if (!n || !(n->value = malloc(ev->data.scalar.length + 1)))
		return nomem(t);
	memcpy(n->value, ev->data.scalar.value, ev->data.scalar.length);
	n->value[ev->data.scalar.length] = '\0';
	n->len = ev->data.scalar.length;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	if (ev->data.scalar.anchor && anchor_add(t, (const char *)ev->data.scalar.anchor, n) < 0)
		return -1;
	return attach(t, n);
}

static int add_alias(struct yamltree *t, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	struct ynode *target = anchor_find(t, name);
	char q[YAMLTREE_QUOTE_MAX];

	if (!target) {
		util_quote_bytes(name, strlen(name), q, sizeof(q));
		return fail_at(t, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			       "alias '*%s' names no anchor (expected '&%s' on a node before it, "
			       "not around it)", q, q);
	}
	if (count_nodes(t, target->weight, &ev->start_mark) < 0)
		return -1;
	return attach(t, target);
}

static int handle_event(struct yamltree *t, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_STREAM_END_EVENT:
		/* no document at all leaves root NULL: what that means is the caller's */
		t->done = 1;
		return 0;
	case YAML_DOCUMENT_START_EVENT:
		if (t->documents++)
			return fail_at(t, (int)ev->start_mark.line + 1,
				       (int)ev->start_mark.column + 1, "a second document starts "
				       "here (expected exactly one document)");
		return 0;
	case YAML_ALIAS_EVENT:
		return add_alias(t, ev);
	case YAML_SCALAR_EVENT:
		return add_scalar(t, ev);
	case YAML_SEQUENCE_START_EVENT:
		return open_collection(t, ev, YNODE_SEQUENCE, ev->data.sequence_start.anchor);
	case YAML_MAPPING_START_EVENT:
		return open_collection(t, ev, YNODE_MAPPING, ev->data.mapping_start.anchor);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return close_collection(t);
	default:
		return 0;
	}
}

/* The character at 0-based line/column, walking UTF-8, or -1 past the end. */
static int char_at(const struct yamltree *t, size_t line, size_t column)
{
	size_t i = 0;

	while (line && i < t->len)
		if (t->text[i++] == '\n')
			line--;
	while (column && i < t->len) {
		column--;
		i++;
		while (i < t->len && ((unsigned char)t->text[i] & 0xC0) == 0x80)
			i++;
	}
	return i < t->len ? (unsigned char)t->text[i] : -1;
}

static int parse_error(struct yamltree *t, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "invalid YAML", *hint = "";
	size_t i, line = 1, column = 1;

	if (p->error == YAML_MEMORY_ERROR)
		return nomem(t);
	if (p->error == YAML_READER_ERROR) {
		/* the reader knows only a byte offset */
		for (i = 0; i < p->problem_offset && i < t->len; i++) {
			if (t->text[i] == '\n') {
				line++;
				column = 1;
			} else {
				column++;
			}
		}
		if (p->problem_value != -1)
			return fail_at(t, (int)line, (int)column, "%s (0x%x)", problem,
				       (unsigned)p->problem_value);
		return fail_at(t, (int)line, (int)column, "%s", problem);
	}
	if (char_at(t, p->problem_mark.line, p->problem_mark.column) == '\t')
		hint = " (tabs cannot indent YAML; use spaces)";
	if (!p->context || (p->context_mark.line == p->problem_mark.line &&
			    p->context_mark.column == p->problem_mark.column))
		return fail_at(t, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
			       "%s%s%s%s", problem, p->context ? " " : "",
			       p->context ? p->context : "", hint);
	/* an unclosed quote or bracket is found far from where it opened: say where */
	return fail_at(t, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
		       "%s %s that started at line %zu, column %zu%s", problem, p->context,
		       p->context_mark.line + 1, p->context_mark.column + 1, hint);
}

static int build_tree(struct yamltree *t)
{
	yaml_parser_t parser;
	yaml_event_t event;
	int ret = -1;

	if (!yaml_parser_initialize(&parser))
		return nomem(t);
	yaml_parser_set_input_string(&parser, (const unsigned char *)t->text, t->len);
	while (!t->done) {
		int r;

		if (!yaml_parser_parse(&parser, &event)) {
			parse_error(t, &parser);
			goto out;
		}
		r = handle_event(t, &event);
		yaml_event_delete(&event);
		if (r < 0)
			goto out;
	}
	ret = 0;
out:
	yaml_parser_delete(&parser);
	return ret;
}

/* ---- public ---- */

int yamltree_load(struct yamltree **out, const char *name, const char *text, size_t len,
		  const struct yamltree_limits *lim, struct cs_error *err)
{
	struct yamltree *t;

	*out = NULL;
	/* the anchor table is too big to sit on a small thread's stack */
	t = calloc(1, sizeof(*t));
	if (!t || !(t->stack = calloc(lim->max_depth > 0 ? (size_t)lim->max_depth : 1,
				      sizeof(*t->stack)))) {
		free(t);
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	}
	t->name = name;
	t->text = text ? text : "";
	t->len = text ? len : 0;
	t->err = err;
	t->lim = *lim;
	if (build_tree(t) < 0) {
		yamltree_free(t);
		return -1;
	}
	*out = t;
	return 0;
}

const struct ynode *yamltree_root(const struct yamltree *t)
{
	return t->root;
}

void yamltree_free(struct yamltree *t)
{
	struct ynode *n, *next;
	size_t i;

	if (!t)
		return;
	for (n = t->nodes; n; n = next) {
		next = n->next;
		free(n->value);
		free(n->items);
		free(n);
	}
	for (i = 0; i < ANCHOR_BUCKETS; i++) {
		struct anchor *a, *an;

		for (a = t->anchors[i]; a; a = an) {
			an = a->next;
			free(a->name);
			free(a);
		}
	}
	while (t->depth > 0)
		free(t->stack[--t->depth].anchor);
	free(t->stack);
	free(t);
}
