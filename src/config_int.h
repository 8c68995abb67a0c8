/*
 * config_int.h - what config.c, config_value.c and config_instance.c share: the loader that
 * carries the file's name and the error, and the typed getters of the schema.
 *
 * Every getter checks one node of the yamltree, stores what it found, and on failure returns
 * -1 with a CS_ERR_CONFIG error "FILE:LINE:COLUMN: KEY: expected ..., got ..." blaming that
 * node (CS_ERR_NOMEM when memory ran out).  Strings stored are the struct config's own.
 */
#ifndef CREDSYNC_CONFIG_INT_H
#define CREDSYNC_CONFIG_INT_H

#include "config.h"
#include "yamltree.h"

struct cfg_loader {
	const char *name;         /* the file's name, for messages */
	struct cs_error *err;
};

/* The keys each mapping may hold (NULL-terminated), for cfg_check_keys and its hints. */
extern const char *const cfg_top_keys[];
extern const char *const cfg_settings_keys[];
extern const char *const cfg_instance_keys[];
extern const char *const cfg_credentials_keys[];
extern const char *const cfg_retention_keys[];

/* Sets the error "FILE:LINE:COLUMN: message" at line/column; returns -1. */
int cfg_fail_at(struct cfg_loader *ld, int line, int column, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Sets the error "FILE:LINE:COLUMN: message" at where n starts; returns -1. */
int cfg_fail(struct cfg_loader *ld, const struct ynode *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Sets CS_ERR_NOMEM "out of memory"; returns -1. */
int cfg_nomem(struct cfg_loader *ld);

/* 1 when s is one of the NULL-terminated list. */
int cfg_in_list(const char *const *list, const char *s);

/* 1 when every byte of s is in set. */
int cfg_check_charset(const char *s, const char *set);

/* Checks that map's keys are distinct names from keys; where ("in timeout") ends the
 * message, which suggests the key meant or where a misplaced key belongs.  0 or -1. */
int cfg_check_keys(struct cfg_loader *ld, const struct ynode *map, const char *const *keys,
		   const char *where);

/* 0 when n is a mapping, else -1 with "KEY: expected WHAT, got ...". */
int cfg_want_mapping(struct cfg_loader *ld, const struct ynode *n, const char *key,
		     const char *what);

/* A non-empty scalar without NUL bytes; *out borrows the node's value.  0 or -1. */
int cfg_get_string(struct cfg_loader *ld, const struct ynode *n, const char *key,
		   const char *what, const char **out);

/* As cfg_get_string, then replaces *dst (freed) with a copy.  0 or -1. */
int cfg_set_string(struct cfg_loader *ld, const struct ynode *n, const char *key,
		   const char *what, char **dst);

/* A plain decimal integer min..max (no 0x, 1e3, leading zeros) into *out.  0 or -1. */
int cfg_get_int(struct cfg_loader *ld, const struct ynode *n, const char *key, int min,
		int max, int *out);

/* A duration greater than 0 ("5s", "1h30m") in milliseconds into *out.  0 or -1. */
int cfg_get_duration(struct cfg_loader *ld, const struct ynode *n, const char *key,
		     int64_t *out);

/* Applies one key of struct cfg_settings (k its key node, v its value) to s.  Returns 1 when
 * applied, 0 when k is not a setting, or -1 with the error set. */
int cfg_apply_setting(struct cfg_loader *ld, const struct ynode *k, const struct ynode *v,
		      struct cfg_settings *s);

/* Copies src into dst, with its own ca_file.  0, or -1 (CS_ERR_NOMEM). */
int cfg_settings_copy(struct cfg_loader *ld, struct cfg_settings *dst,
		      const struct cfg_settings *src);

/* Frees what s owns (ca_file); s stays usable. */
void cfg_settings_release(struct cfg_settings *s);

/* Fills c from a `credentials` mapping (top level or an instance's).  0 or -1. */
int cfg_parse_credentials_map(struct cfg_loader *ld, const struct ynode *map,
			      struct cfg_credentials *c);

/* Fills cfg->instances from the `instances` sequence, each overlaying cfg->defaults, which
 * must be final; refuses duplicate ids.  0 or -1 (what was filled is config_free's). */
int cfg_parse_instances(struct cfg_loader *ld, const struct ynode *seq, struct config *cfg);

#endif
