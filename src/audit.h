/*
 * audit.h - comparing the inventory with an expected list (an asset register): the register
 * is sorted by SQLite as it is read from the file and merged with the inventory read in its
 * key order, so neither side is ever held in memory, whatever its size.
 *
 * The register is a text file (one ID per line, '#' comments, blank lines skipped) or a CSV
 * file whose header names the column to use.  Treatments of awkward input, all tested:
 * a UTF-8 byte order mark at the start is skipped; CRLF line ends are accepted; leading and
 * trailing blanks of a text line are trimmed; CSV rows with an empty value are skipped and
 * counted.  Errors name FILE:LINE: an empty register, a CSV header without the column, a
 * repeated ID, bytes that are not UTF-8 (UTF-16 included), an unterminated quote, a line
 * longer than AUDIT_MAX_LINE.
 */
#ifndef CREDSYNC_AUDIT_H
#define CREDSYNC_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

#define AUDIT_MAX_LINE 65536

struct audit_register {
	int64_t ids;        /* distinct IDs loaded */
	int64_t skipped;    /* CSV rows whose column was empty */
	int64_t lines;      /* lines read */
	const char *path;   /* the register's name, for the messages */
	struct audit_reader *reader;  /* the file, read once as audit_compare sorts it */
};

/* Opens the register path for audit_compare, which reads it (once) as it sorts it; the
 * temporary tables are created.  column NULL: a text file; else a CSV file with a header
 * naming column, read here.  CS_ERR_RUNTIME naming FILE:LINE on bad input, here or from
 * audit_compare.  Release with audit_end even on failure. */
int audit_load_register(struct store *st, const char *path, const char *column,
			struct audit_register *reg, struct cs_error *err);

/* Adds a group's complete snapshot to the inventory side (once per group, after the
 * register is loaded), then audit_compare once. */
int audit_add_group(struct store *st, int64_t group_key, int64_t snapshot_id,
		    struct cs_error *err);
/* Compares the added groups with the register reg loaded: counts, unexpected clients and
 * missing entries.  by_device: a register entry matches a client whose device ID (after the
 * first "@@@") equals it, or whose whole ID does when it has no "@@@"; else only the whole
 * client ID.  CS_ERR_RUNTIME naming FILE:LINE on bad input (read here), when the register
 * repeats an ID, or when it holds none. */
int audit_compare(struct store *st, const struct audit_register *reg, int by_device,
		  struct cs_error *err);
/* Closes the register, drops the temporary tables and ends the read transaction; accepts
 * NULLs. */
void audit_end(struct store *st, struct audit_register *reg);

/* A group's counts: clients at its snapshot, and those not in the register. */
int audit_group_counts(struct store *st, int64_t group_key, int64_t *clients,
		       int64_t *unexpected, struct cs_error *err);
/* Register entries no selected group's client matches. */
int audit_missing_count(struct store *st, int64_t *missing, struct cs_error *err);

typedef int (*audit_id_cb)(void *arg, const char *id, size_t len, int64_t line);
/* Streams a group's unexpected client IDs, sorted (line 0). */
int audit_unexpected(struct store *st, int64_t group_key, audit_id_cb cb, void *arg,
		     struct cs_error *err);
/* Streams the missing register entries in register order, with their line numbers. */
int audit_missing(struct store *st, audit_id_cb cb, void *arg, struct cs_error *err);

#endif
