/* paging.c - the stop rules and guards of one walk; see paging.h. */
#include "paging.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A word at a time (splitmix64's mixer on each 8 bytes): an ID's hash is taken for every ID
 * of every page, and a byte-serial hash was the walk's hottest loop.  Only this process
 * compares these hashes, so the byte order of the words does not matter.  0 marks an
 * empty window slot, so it is never a hash. */
static uint64_t mix(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)len, w;

	for (; len >= 8; s += 8, len -= 8) {
		memcpy(&w, s, 8);
		h = mix(h ^ w);
	}
	if (len) {
		w = 0;
		memcpy(&w, s, len);
		h = mix(h ^ w ^ 0xff);
	}
	h = mix(h);
	return h ? h : 1;
}

void paging_init(struct paging_walk *w, int max_pages)
{
	memset(w, 0, sizeof(*w));
	w->max_pages = max_pages;
	w->max_total = -1;
}

void paging_release(struct paging_walk *w)
{
	free(w->window_mem);
	w->window_mem = w->window[0] = w->window[1] = NULL;
	free(w->bloom);
	w->bloom = NULL;
	w->bloom_bits = w->bloom_set = 0;
}

static int bloom_alloc(struct paging_walk *w, int64_t total)
{
	uint64_t want = total > 0 ? (uint64_t)total * 12 : 0, bits = PAGING_BLOOM_MIN_BITS;

	while (bits < want && bits < PAGING_BLOOM_MAX_BITS)
		bits <<= 1;
	if (!(w->bloom = calloc(bits / 64, sizeof(uint64_t))))
		return -1;
	w->bloom_bits = bits;
	return 0;
}

/* Adds h; returns 1 when all its bits were set already (probably seen). */
static int bloom_add(struct paging_walk *w, uint64_t h)
{
	uint64_t h1 = h, h2 = (h >> 32 | h << 32) * 0x9E3779B97F4A7C15ULL | 1, mask = w->bloom_bits - 1;
	int i, seen = 1;

	for (i = 0; i < 4; i++) {
		uint64_t bit = (h1 + (uint64_t)i * h2) & mask, *word = &w->bloom[bit >> 6];
		uint64_t m = (uint64_t)1 << (bit & 63);

		if (!(*word & m)) {
			*word |= m;
			w->bloom_set++;
			seen = 0;
		}
	}
	return seen;
}

/* Looks h up in one table; inserts it when insert is set.  Returns 1 when it was there. */
static int window_probe(uint64_t *t, uint64_t h, int insert)
{
	size_t i = (size_t)(h >> 17) & (PAGING_WINDOW_SLOTS - 1);

	for (;; i = (i + 1) & (PAGING_WINDOW_SLOTS - 1)) {
		if (t[i] == h)
			return 1;
		if (!t[i]) {
			if (insert)
				t[i] = h;
			return 0;
		}
	}
}

/* Adds a page's IDs to the window and the walk's filter; returns how many of them this walk
 * had not seen, -1 when out of memory. */
static int64_t window_add(struct paging_walk *w, const char *const *ids, const size_t *lens,
			  size_t n, int64_t total)
{
	int64_t fresh = 0, fresh_bloom = 0;
	int bloom_ok;
	size_t i;

	if (!w->bloom && bloom_alloc(w, total) < 0)
		return -1;
	/* judged on the state before this page: a filter half full no longer tells */
	bloom_ok = w->bloom_set * 2 <= w->bloom_bits;

	if (!w->window_mem) {
		if (!(w->window_mem = calloc(2 * PAGING_WINDOW_SLOTS, sizeof(uint64_t))))
			return -1;
		w->window[0] = w->window_mem;
		w->window[1] = w->window_mem + PAGING_WINDOW_SLOTS;
	}
	if (w->window_pages >= PAGING_WINDOW_PAGES) {
		uint64_t *t = w->window[1];

		w->window[1] = w->window[0];
		w->window[0] = t;
		memset(t, 0, PAGING_WINDOW_SLOTS * sizeof(uint64_t));
		w->window_pages = 0;
	}
	for (i = 0; i < n; i++) {
		uint64_t h = hash_bytes(ids[i], lens[i]);

		if (!window_probe(w->window[1], h, 0) && !window_probe(w->window[0], h, 1))
			fresh++;
		if (!bloom_add(w, h))
			fresh_bloom++;
	}
	w->window_pages++;
	/* an ID new to the window but in the filter was seen earlier in the walk */
	return bloom_ok && fresh_bloom < fresh ? fresh_bloom : fresh;
}

/* 1 when the walk returned tok before (remembering it otherwise). */
static int token_seen(struct paging_walk *w, const char *tok)
{
	uint64_t h = hash_bytes(tok, strlen(tok));
	size_t i, n = w->ntokens < PAGING_TOKEN_RING ? w->ntokens : PAGING_TOKEN_RING;

	for (i = 0; i < n; i++)
		if (w->tokens[i] == h)
			return 1;
	w->tokens[w->ntokens % PAGING_TOKEN_RING] = h;
	w->ntokens++;
	return 0;
}

static void loop(struct paging_decision *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void loop(struct paging_decision *d, const char *fmt, ...)
{
	va_list ap;

	d->next = PAGING_LOOP;
	va_start(ap, fmt);
	vsnprintf(d->why, sizeof(d->why), fmt, ap);
	va_end(ap);
}

int paging_page(struct paging_walk *w, const struct paging_page *p, int64_t page_no,
		int64_t default_size, struct paging_decision *d)
{
	int64_t items = (int64_t)(p->n + p->skipped), fresh, size, limit;
	int more, by_token = 0;

	memset(d, 0, sizeof(*d));
	if ((fresh = window_add(w, p->ids, p->lens, p->n, p->total)) < 0)
		return -1;
	w->pages++;
	if (p->total > w->max_total)
		w->max_total = p->total;
	size = p->page_size > 0 ? p->page_size : default_size;

	/* a full page of nothing new is the service repeating itself, whatever its token says;
	 * a short page of repeats may be data shifting under the walk, and only a run of pages
	 * without anything new is a loop */
	w->stalled = p->n && !fresh ? w->stalled + 1 : 0;
	if (p->n && !fresh && (items >= size || w->stalled >= PAGING_STALL_PAGES)) {
		loop(d, "page %" PRId64 " brought no client ID that this walk had not already seen "
		     "(%s); the service is repeating pages", page_no,
		     items >= size ? "a full page of repeats" : "several pages in a row");
		return 0;
	}
	if (items == 0) {
		more = 0;  /* an empty page ends the walk */
	} else if (p->next_token && *p->next_token &&
		   !(p->sent_token && !strcmp(p->sent_token, p->next_token))) {
		if (token_seen(w, p->next_token)) {
			loop(d, "the service returned a NextToken it had already returned in this walk "
			     "(page %" PRId64 ")", page_no);
			return 0;
		}
		more = by_token = 1;
	} else {
		/* by PageNo while pages come full and fewer than Total were seen; duplicates count
		 * here too: a short walk is caught by the tally against Total */
		more = items >= size && (w->max_total < 0 || p->known < w->max_total);
	}
	/* A walk far longer than Total allows is a service bug or a loop.  Total is the
	 * service's word, so max_pages bounds the walk whatever Total says. */
	limit = w->max_total >= 0 ? 2 * ((w->max_total + size - 1) / size) + 10 : INT64_MAX;
	if (limit > w->max_pages)
		limit = w->max_pages;
	if (more && w->pages >= limit) {
		loop(d, "paging did not end after %" PRId64 " pages (Total %" PRId64 ", PageSize %"
		     PRId64 ", max_pages %d)", w->pages, w->max_total, size, w->max_pages);
		return 0;
	}
	d->next = !more ? PAGING_END : by_token ? PAGING_MORE_BY_TOKEN : PAGING_MORE_BY_PAGENO;
	return 0;
}

enum paging_verdict paging_judge(int64_t total, int64_t distinct, int64_t duplicates,
				 int64_t skipped, int rewalked, int64_t tolerance)
{
	int64_t seen = distinct + skipped;

	if ((total < 0 || distinct == total) && !duplicates && !skipped)
		return PAGING_CONSISTENT;
	if (!rewalked)
		return PAGING_REWALK;
	if (total > 0 && (seen == 0 || total - seen > tolerance))
		return PAGING_INCOMPLETE;
	return PAGING_INCONSISTENT;
}
