/*
 * stage_codec.h - the format of a staged page (cs_stage.ids): the page's client IDs as a
 * JSON array of strings, in crawl order.  JSON, so that SQL can read a page too (json_each,
 * when finalizing sorts the IDs); written and read back in C on the fast paths.  An ID is
 * any bytes: '"', '\\', \n, \t and \r get their short escapes, the other bytes below 0x20
 * and 0x7f get \u00XX, every other byte (UTF-8 or not) passes through unchanged.
 */
#ifndef CREDSYNC_STAGE_CODEC_H
#define CREDSYNC_STAGE_CODEC_H

#include <stddef.h>

#include "buf.h"

/* Appends ids[0..n) (lens[i] bytes each) to page as one staged page; page->oom on failure. */
void stage_encode(struct cs_buf *page, const char *const *ids, const size_t *lens, size_t n);

/* Decodes the next ID of the page text [*pp, end) into key and advances *pp past it.
 * Returns 1 with an ID, 0 at the end of the page, -1 when the text is no page as
 * stage_encode writes it (or key ran out of memory). */
int stage_decode_next(const char **pp, const char *end, struct cs_buf *key);

#endif
