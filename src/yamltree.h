/*
 * yamltree.h - a YAML text as a small tree of nodes that remember where they were written.
 *
 * libyaml's event stream becomes scalars, sequences and mappings, each with its 1-based line
 * and column, so that a schema checker walking the tree can blame the node at fault.  Loading
 * enforces the limits a hostile text could otherwise abuse (nesting depth, one document,
 * alias expansion); aliases are resolved to the anchored node, which an alias can never be
 * an ancestor of, so the tree has no cycles.  It knows nothing of what the keys mean.
 * Every node belongs to the tree and is freed with it.
 */
#ifndef CREDSYNC_YAMLTREE_H
#define CREDSYNC_YAMLTREE_H

#include <stdarg.h>
#include <stddef.h>

#include "error.h"

/* Bytes of a quoted scalar in a message, and the buffer ynode_describe needs. */
#define YAMLTREE_QUOTE_MAX 80
#define YNODE_DESCRIBE_MAX (YAMLTREE_QUOTE_MAX + 2)

enum ynode_kind { YNODE_SCALAR, YNODE_SEQUENCE, YNODE_MAPPING };

struct ynode {
	enum ynode_kind kind;
	int line, column;     /* 1-based, where the node starts */
	int plain;            /* scalar written without quotes: only then can it mean null */
	char *value;          /* scalar: owned, NUL-terminated */
	size_t len;           /* scalar: bytes in value, which may hold a NUL from "\0" */
	struct ynode **items; /* owned array of borrowed nodes; a mapping alternates key, value */
	size_t nitems;
	size_t cap;
	size_t weight;        /* nodes this one stands for with aliases expanded */
	struct ynode *next;   /* every node is on the tree's list, which alone frees them */
};

struct yamltree_limits {
	int max_depth;        /* collections open at once; more is an error */
	size_t max_nodes;     /* nodes with aliases expanded (billion laughs); more is an error */
};

struct yamltree;

/* Parses text (len bytes, need not be NUL-terminated) into a tree; name stands for the file
 * in messages and must outlive the tree.  Returns 0 with *out the caller's (yamltree_free),
 * or -1 with *out NULL and err set: CS_ERR_CONFIG "NAME:LINE:COLUMN: ..." or CS_ERR_NOMEM. */
int yamltree_load(struct yamltree **out, const char *name, const char *text, size_t len,
		  const struct yamltree_limits *lim, struct cs_error *err);

/* The document's root, or NULL when the text holds no document (empty or only comments). */
const struct ynode *yamltree_root(const struct yamltree *t);

/* Frees the tree and every node in it; NULL is fine. */
void yamltree_free(struct yamltree *t);

/* Sets err (CS_ERR_CONFIG) to "NAME:LINE:COLUMN: " and the formatted message; returns -1. */
int yamltree_verror(struct cs_error *err, const char *name, int line, int column,
		    const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

/* 1 when n is a plain scalar that YAML reads as null ("", "~", "null", "Null", "NULL"). */
int ynode_is_null(const struct ynode *n);

/* 1 when k is a scalar equal to name, byte for byte (a NUL inside k never matches). */
int ynode_key_is(const struct ynode *k, const char *name);

/* The value of the first key called name in the mapping map, or NULL. */
const struct ynode *ynode_map_get(const struct ynode *map, const char *name);

/* Writes s (untrusted bytes) as 'TEXT', escaped and cut to YAMLTREE_QUOTE_MAX; returns out. */
const char *yamltree_quote(const char *s, size_t len, char *out, size_t outlen);

/* What n is, for "got ...": "a mapping", "nothing", a quoted scalar...  out must hold
 * YNODE_DESCRIBE_MAX bytes; the result is out or a string constant. */
const char *ynode_describe(const struct ynode *n, char *out, size_t outlen);

#endif
