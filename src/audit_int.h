/*
 * audit_int.h - what the two files of the audit share: audit_register.c (reading the
 * register file: text or CSV, its checks, and the virtual table SQLite sorts it through)
 * and audit.c (the merge of the sorted register with the inventory, and the findings).
 */
#ifndef CREDSYNC_AUDIT_INT_H
#define CREDSYNC_AUDIT_INT_H

#include <stdint.h>
#include <stdio.h>
#include <sqlite3.h>

#include "audit.h"
#include "buf.h"

struct csv_field_sink;

struct audit_reader {
	FILE *f;
	const char *path;
	struct cs_buf line;      /* the current record's bytes (CSV: one field at a time) */
	int64_t line_no;         /* of the next character */
	char blk[65536];         /* text mode's read buffer: blk[pos, end) is unread */
	size_t pos, end;
	struct cs_error *err;
	/* what the virtual table reads next (reader_next) */
	const char *column;      /* CSV: the column; NULL: a text file */
	struct csv_field_sink *k;
	struct audit_register *reg;
	const char *id;          /* the current ID, and its line */
	size_t id_len;
	int64_t id_line;
	int scanned;             /* the file was read once (it cannot be read again) */
	int failed;              /* r->err says why */
};

/* A statement of its own for the store's named query id (the caller finalizes it). */
int audit_prepare(struct store *st, enum store_query_id id, sqlite3_stmt **s,
		  struct cs_error *err);
/* Closes the register's file and frees its reader (NULL and a closed register accepted). */
void audit_register_close(struct audit_register *reg);

#endif
