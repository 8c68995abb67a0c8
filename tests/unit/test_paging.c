/* test_paging.c - every stop rule of API.md, every paging style and every guard of
 * paging.c, as tables of walks: each row is a sequence of pages and the decision expected
 * after the last one; then the verdicts on a walk's tally. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paging.h"
#include "test.h"

/* A page as written in the tables: IDs first..first+n-1 ("G@@@<k>"), Total, echoed size,
 * NextToken (NULL: absent), skipped IDs. */
struct pg {
	int first, n;
	int64_t total;
	int64_t size;
	const char *token;
	int skipped;
};

struct walk_case {
	const char *name;
	int max_pages;
	struct pg pages[8];
	size_t npages;
	enum paging_next want;      /* after the last page; the ones before must be MORE_* */
	const char *why;            /* part of the PAGING_LOOP message */
};

#define P(...) { __VA_ARGS__ }
static const struct walk_case walks[] = {
	{ "an empty first page ends the walk", 100, { P(0, 0, 0, 100, NULL, 0) }, 1, PAGING_END, NULL },
	{ "an empty page ends it even with a token", 100, { P(0, 0, 5, 100, "t1", 0) }, 1, PAGING_END, NULL },
	{ "a usable token continues", 100, { P(0, 3, 10, 100, "t1", 0) }, 1, PAGING_MORE_BY_TOKEN, NULL },
	{ "the token just sent again: by PageNo, page full", 100,
	  { P(0, 100, 300, 100, "t1", 0), P(100, 100, 300, 100, "t1", 0) }, 2, PAGING_MORE_BY_PAGENO, NULL },
	{ "an empty token: by PageNo while full and short of Total", 100,
	  { P(0, 100, 250, 100, "", 0) }, 1, PAGING_MORE_BY_PAGENO, NULL },
	{ "no token, full page, Total reached: end", 100,
	  { P(0, 100, 200, 100, NULL, 0), P(100, 100, 200, 100, NULL, 0) }, 2, PAGING_END, NULL },
	{ "no token, short page: end", 100, { P(0, 40, 200, 100, NULL, 0) }, 1, PAGING_END, NULL },
	{ "no token, full page, no Total: go on", 100, { P(0, 100, -1, 100, NULL, 0) }, 1,
	  PAGING_MORE_BY_PAGENO, NULL },
	{ "the echoed PageSize decides what full is", 100, { P(0, 50, 500, 50, NULL, 0) }, 1,
	  PAGING_MORE_BY_PAGENO, NULL },
	{ "skipped IDs count as items", 100, { P(0, 98, 500, 100, NULL, 2) }, 1, PAGING_MORE_BY_PAGENO, NULL },
	{ "a token seen before in the walk", 100,
	  { P(0, 10, 100, 10, "a", 0), P(10, 10, 100, 10, "b", 0), P(20, 10, 100, 10, "a", 0) }, 3,
	  PAGING_LOOP, "already returned" },
	{ "the same full page again with a fresh token", 100,
	  { P(0, 100, 999999999999LL, 100, "t1", 0), P(0, 100, 999999999999LL, 100, "t2", 0) }, 2,
	  PAGING_LOOP, "a full page of repeats" },
	{ "one short page of repeats is data shifting, not a loop", 100,
	  { P(0, 100, 101, 100, "t1", 0), P(99, 1, 101, 100, "t2", 0) }, 2, PAGING_MORE_BY_TOKEN, NULL },
	{ "three short pages of repeats in a row", 100,
	  { P(0, 50, 1000, 100, "t1", 0), P(0, 10, 1000, 100, "t2", 0), P(10, 10, 1000, 100, "t3", 0),
	    P(20, 10, 1000, 100, "t4", 0) }, 4, PAGING_LOOP, "several pages in a row" },
	{ "within the bound Total allows (2 x 2 + 10 pages), the walk goes on", 100,
	  { P(0, 1, 2, 1, "t1", 0), P(1, 1, 2, 1, "t2", 0), P(2, 1, 2, 1, "t3", 0), P(3, 1, 2, 1, "t4", 0),
	    P(4, 1, 2, 1, "t5", 0), P(5, 1, 2, 1, "t6", 0), P(6, 1, 2, 1, "t7", 0), P(7, 1, 2, 1, "t8", 0) },
	  8, PAGING_MORE_BY_TOKEN, NULL },
	{ "max_pages bounds a walk whatever Total says", 3,
	  { P(0, 100, 999999999999LL, 100, "t1", 0), P(100, 100, 999999999999LL, 100, "t2", 0),
	    P(200, 100, 999999999999LL, 100, "t3", 0) }, 3, PAGING_LOOP, "max_pages 3" },
};

static int walk_one(const struct walk_case *c, struct paging_decision *d)
{
	struct paging_walk w;
	char names[100][16];
	const char *ids[100];
	size_t lens[100], i;
	int k, bad = 0;
	int64_t known = 0;
	const char *sent = NULL;

	paging_init(&w, c->max_pages);
	for (i = 0; i < c->npages; i++) {
		const struct pg *p = &c->pages[i];
		struct paging_page pp;

		for (k = 0; k < p->n; k++) {
			snprintf(names[k], sizeof(names[k]), "G@@@%d", p->first + k);
			ids[k] = names[k];
			lens[k] = strlen(names[k]);
		}
		known += p->n + p->skipped;
		pp = (struct paging_page){ ids, lens, (size_t)p->n, (size_t)p->skipped, p->total,
					   p->size, p->token, sent, known };
		CHECK(paging_page(&w, &pp, (int64_t)i + 1, 100, d) == 0);
		if (i + 1 < c->npages && d->next != PAGING_MORE_BY_TOKEN && d->next != PAGING_MORE_BY_PAGENO) {
			fprintf(stderr, "%s: stopped early at page %zu (%d: %s)\n", c->name, i + 1,
				(int)d->next, d->why);
			bad = 1;
		}
		sent = d->next == PAGING_MORE_BY_TOKEN ? p->token : NULL;
	}
	paging_release(&w);
	return bad;
}

static void test_walks(void)
{
	size_t i;

	for (i = 0; i < sizeof(walks) / sizeof(walks[0]); i++) {
		const struct walk_case *c = &walks[i];
		struct paging_decision d;

		CHECK(walk_one(c, &d) == 0);
		if (d.next != c->want)
			fprintf(stderr, "walk \"%s\": decision %d, want %d (%s)\n", c->name, (int)d.next,
				(int)c->want, d.why);
		CHECK_INT(d.next, c->want);
		if (c->why)
			CHECK_CONTAINS(d.why, c->why);
	}
}

/* Feeds pages of 100 IDs (page k holds first_of(k)..+99) and returns the decision after
 * the last. */
static enum paging_next feed(struct paging_walk *w, int npages, int (*first_of)(int), int64_t total)
{
	static char names[100][16];
	const char *ids[100];
	size_t lens[100];
	struct paging_decision d = { PAGING_END, "" };
	int page, k;

	for (page = 1; page <= npages; page++) {
		struct paging_page pp;

		for (k = 0; k < 100; k++) {
			snprintf(names[k], sizeof(names[k]), "G@@@%d", first_of(page) + k);
			ids[k] = names[k];
			lens[k] = strlen(names[k]);
		}
		pp = (struct paging_page){ ids, lens, 100, 0, total, 100, NULL, NULL, (int64_t)page * 100 };
		CHECK(paging_page(w, &pp, page, 100, &d) == 0);
		if (d.next == PAGING_LOOP)
			break;
	}
	return d.next;
}

static int fresh_pages(int page) { return (page - 1) * 100; }
static int cycle_of_40(int page) { return ((page - 1) % 40) * 100; }
static int repeat_first_at_1000(int page) { return page == 1000 ? 0 : (page - 1) * 100; }

/* "Seen in this walk" is the whole walk: a cycle of 40 distinct pages, longer than the
 * window, is a loop at its first repeat; a walk of new pages is not, however long. */
static void test_whole_walk(void)
{
	struct paging_walk w;

	paging_init(&w, 100000);
	CHECK_INT(feed(&w, 2000, fresh_pages, 999999999999LL), PAGING_MORE_BY_PAGENO);
	paging_release(&w);
	paging_init(&w, 100000);
	CHECK_INT(feed(&w, 41, cycle_of_40, 999999999999LL), PAGING_LOOP);
	CHECK_INT(w.pages, 41);
	paging_release(&w);
	/* no Total to size it by: the filter (its smallest, 64 KiB) fills past half
	 * by page 1000, stops being asked, and a repeat from far back goes unseen while the
	 * walk goes on; max_pages stays the bound */
	paging_init(&w, 100000);
	CHECK_INT(feed(&w, 1000, repeat_first_at_1000, -1), PAGING_MORE_BY_PAGENO);
	CHECK(w.bloom_set * 2 > w.bloom_bits);
	paging_release(&w);
	paging_release(&w); /* twice is harmless */
}

/* A walk far longer than Total allows (2 x ceil(Total / PageSize) + 10 pages) is a loop. */
static void test_total_bound(void)
{
	struct paging_walk w;
	struct paging_decision d;
	char name[16], tok[16];
	const char *ids[1] = { name };
	size_t lens[1];
	int page;

	paging_init(&w, 1000);
	for (page = 1; page <= 14; page++) {
		struct paging_page pp;

		snprintf(name, sizeof(name), "G@@@%d", page);
		snprintf(tok, sizeof(tok), "t%d", page);
		lens[0] = strlen(name);
		pp = (struct paging_page){ ids, lens, 1, 0, 2, 1, tok, NULL, page };
		CHECK(paging_page(&w, &pp, page, 1, &d) == 0);
		if (page < 14)
			CHECK_INT(d.next, PAGING_MORE_BY_TOKEN);
	}
	CHECK_INT(d.next, PAGING_LOOP);
	CHECK_CONTAINS(d.why, "did not end after 14 pages (Total 2");
	paging_release(&w);
}

static void test_verdicts(void)
{
	static const struct {
		int64_t total, distinct, duplicates, skipped;
		int rewalked;
		int64_t tolerance;
		enum paging_verdict want;
	} v[] = {
		{ 500, 500, 0, 0, 0, 1, PAGING_CONSISTENT },
		{ 500, 500, 0, 0, 1, 1, PAGING_CONSISTENT },
		{ -1, 7, 0, 0, 0, 1, PAGING_CONSISTENT },      /* no Total: nothing to check */
		{ 500, 499, 0, 0, 0, 1, PAGING_REWALK },       /* always walked once more first */
		{ 500, 500, 3, 0, 0, 1, PAGING_REWALK },
		{ 500, 0, 0, 0, 0, 1000, PAGING_REWALK },
		{ 500, 0, 0, 0, 1, 1000, PAGING_INCOMPLETE },  /* empty: never an inventory */
		{ 1, 0, 0, 0, 1, 1, PAGING_INCOMPLETE },
		{ 500, 499, 0, 0, 1, 1, PAGING_INCONSISTENT }, /* one short, within the tolerance */
		{ 500, 498, 0, 0, 1, 1, PAGING_INCOMPLETE },   /* two short, beyond it */
		{ 500, 498, 0, 0, 1, 2, PAGING_INCONSISTENT },
		{ 500, 499, 0, 0, 1, 0, PAGING_INCOMPLETE },   /* strict */
		{ 500, 501, 0, 0, 1, 0, PAGING_INCONSISTENT }, /* over Total: data added */
		{ 500, 500, 2, 0, 1, 0, PAGING_INCONSISTENT }, /* duplicates prove nothing removed */
		{ 500, 499, 0, 1, 1, 0, PAGING_INCONSISTENT }, /* a skipped ID is there, unseen */
		{ 0, 0, 0, 0, 0, 1, PAGING_CONSISTENT },       /* an empty group, as Total says */
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		enum paging_verdict got = paging_judge(v[i].total, v[i].distinct, v[i].duplicates,
						       v[i].skipped, v[i].rewalked, v[i].tolerance);

		if (got != v[i].want)
			fprintf(stderr, "verdict row %zu\n", i);
		CHECK_INT(got, v[i].want);
	}
}

int main(void)
{
	test_walks();
	test_whole_walk();
	test_total_bound();
	test_verdicts();
	printf("%d checks, %d failed\n", test_checks, test_failures);
	return test_failures != 0;
}
