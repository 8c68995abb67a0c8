/*
 * paging.h - one group's walk, as pure decisions: API.md's stop rules and the guards that do
 * not take the service's word (its NextToken or Total) for anything, then the verdict on a
 * walk that ended.  The walk's state in, a decision out; no I/O and no clock, so every rule
 * is a table-driven unit test (tests/unit/test_paging.c).
 */
#ifndef CREDSYNC_PAGING_H
#define CREDSYNC_PAGING_H

#include <stddef.h>
#include <stdint.h>

#define PAGING_TOKEN_RING 64
/* The IDs of the last PAGING_WINDOW_PAGES..2*PAGING_WINDOW_PAGES pages are kept as 64-bit
 * hashes in two small open-addressing tables (the older dropped as the window moves):
 * 2 * PAGING_WINDOW_SLOTS * 8 bytes per walk in progress. */
#define PAGING_WINDOW_PAGES 16
#define PAGING_WINDOW_SLOTS 4096  /* > 2 * 16 pages * 100 IDs: under 40% full */
#define PAGING_STALL_PAGES 3      /* pages in a row without a new ID: a loop */
/*
 * "Seen in this walk" over the whole walk, not only the window: a Bloom filter of the
 * walk's IDs (4 hashes), sized at the first page from Total (12 bits per ID, between 64 KiB
 * and 4 MiB; Total only sizes it, it decides nothing).  A false "seen" for all of a page's
 * IDs is vanishingly rare while at most half its bits are set; past that (a group far
 * larger than its Total said) it is no longer asked and the window alone judges.
 */
#define PAGING_BLOOM_MIN_BITS ((uint64_t)1 << 19)
#define PAGING_BLOOM_MAX_BITS ((uint64_t)1 << 25)

struct paging_walk {
	int max_pages;               /* the ceiling of one walk (config max_pages) */
	int64_t pages;               /* pages of this walk so far */
	int64_t max_total;           /* the largest Total seen in this walk, -1 before one */
	int64_t stalled;             /* pages in a row that brought no new ID */
	uint64_t tokens[PAGING_TOKEN_RING]; /* hashes of this walk's NextTokens */
	size_t ntokens;
	uint64_t *window_mem;        /* owned: both tables, allocated at the first page */
	uint64_t *window[2];         /* [0] current, [1] previous */
	int64_t window_pages;        /* pages in window[0] */
	uint64_t *bloom;             /* owned: the walk's IDs, allocated at the first page */
	uint64_t bloom_bits;         /* a power of two */
	uint64_t bloom_set;          /* bits set */
};

/* One page as the service answered it. */
struct paging_page {
	const char *const *ids;      /* the client IDs kept (n of them) */
	const size_t *lens;
	size_t n;
	size_t skipped;              /* IDs refused (too long, not UTF-8): they count as items */
	int64_t total;               /* Total, -1 when absent */
	int64_t page_size;           /* the PageSize it echoed, <= 0 when absent */
	const char *next_token;      /* NULL when absent */
	const char *sent_token;      /* the NextToken of the request, NULL when none was sent */
	int64_t known;               /* IDs collected by the walk with this page (staged + skipped) */
};

enum paging_next {
	PAGING_MORE_BY_TOKEN,        /* ask for the next page with the NextToken returned */
	PAGING_MORE_BY_PAGENO,       /* ask for the next PageNo, without a token */
	PAGING_END,                  /* the walk ended normally: finalize */
	PAGING_LOOP,                 /* the service is looping: the group fails (PagingLoop) */
};

struct paging_decision {
	enum paging_next next;
	char why[256];               /* for PAGING_LOOP: what gave it away */
};

/* A new walk (also a re-walk); releases nothing: call paging_release first if it ran. */
void paging_init(struct paging_walk *w, int max_pages);
void paging_release(struct paging_walk *w);

/*
 * Decides what follows page p (page number page_no) of walk w, whose requests ask for
 * default_size IDs a page.  Returns 0 with *d filled, or -1 when out of memory.
 */
int paging_page(struct paging_walk *w, const struct paging_page *p, int64_t page_no,
		int64_t default_size, struct paging_decision *d);

/* The verdict on a walk that ended, from its tally against the service's Total. */
enum paging_verdict {
	PAGING_CONSISTENT,   /* every ID once, as many as Total: an inventory, removals included */
	PAGING_INCONSISTENT, /* close enough: additions recorded, removals wait */
	PAGING_REWALK,       /* off: walk the group once more before judging */
	PAGING_INCOMPLETE,   /* short of Total beyond the tolerance, or empty: no inventory */
};

/*
 * A walk proves removals only when what it collected adds up to Total exactly.  Off by
 * anything, the group is walked once more (data shifting under a walk is the usual cause);
 * the second walk's verdict stands: short of Total by more than tolerance, or empty while
 * Total says there is something, it is no inventory at all; over Total (data added under
 * the walk), short within the tolerance, or with duplicates or skipped IDs, what it did see
 * is recorded.  total < 0: the service gave none, and nothing can be checked against it.
 */
enum paging_verdict paging_judge(int64_t total, int64_t distinct, int64_t duplicates,
				 int64_t skipped, int rewalked, int64_t tolerance);

#endif
