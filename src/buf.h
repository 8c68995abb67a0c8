/*
 * buf.h - a growable byte buffer, always NUL-terminated.
 *
 * Allocation failure is sticky (buf->oom) so a run of appends needs one check at the end,
 * the way SQLite's sticky return codes work.
 */
#ifndef CREDSYNC_BUF_H
#define CREDSYNC_BUF_H

#include <stddef.h>

struct cs_buf {
	char *data;   /* owned; NULL until the first append */
	size_t len;
	size_t cap;
	int oom;      /* set once an allocation failed; later appends do nothing */
};

#define CS_BUF_INIT { NULL, 0, 0, 0 }

/* Appends len bytes (then a NUL the length does not count); on no memory sets b->oom. */
void buf_append(struct cs_buf *b, const void *data, size_t len);
/* buf_append of a string, of one character, of printf's output. */
void buf_puts(struct cs_buf *b, const char *s);
void buf_putc(struct cs_buf *b, char c);
void buf_printf(struct cs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The contents as a string: "" for an empty buffer, never NULL. */
const char *buf_str(const struct cs_buf *b);
void buf_reset(struct cs_buf *b);
/* Frees the storage; when wipe is set the bytes are cleansed first (secrets passed through). */
void buf_release(struct cs_buf *b);
void buf_release_wipe(struct cs_buf *b);
/* Takes the string out of the buffer (caller frees); the buffer is left empty. */
char *buf_detach(struct cs_buf *b);

#endif
