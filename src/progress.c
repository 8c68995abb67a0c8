/* progress.c - the terminal progress display; see progress.h. */
#include "progress.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define MAX_LINES 8

struct group_view {
	const struct crawl_target *t;
	const struct crawl_result *r;
	int active;
	int64_t ids, total;
};

struct progress {
	FILE *f;
	struct group_view *g;
	size_t n;
	size_t done;
	int drawn;          /* lines currently on screen */
	int64_t last_draw;
	int64_t start;
};

static void clear_lines(struct progress *p)
{
	if (!p->drawn)
		return;
	/* up to the first line we drew, then erase to the end of the screen */
	fprintf(p->f, "\r\033[%dA\033[J", p->drawn);
	p->drawn = 0;
}

static void draw(struct progress *p)
{
	int64_t now = util_mono_ms();
	size_t i;
	int lines = 0, hidden = 0;

	clear_lines(p);
	p->done = 0;
	for (i = 0; i < p->n; i++)
		if (p->g[i].r && !p->g[i].active)
			p->done++;
	for (i = 0; i < p->n; i++) {
		const struct group_view *v = &p->g[i];
		double secs;
		double rate;
		char eta[32] = "", count[48];

		if (!v->active)
			continue;
		if (lines >= MAX_LINES) {
			hidden++;
			continue;
		}
		secs = (double)(now - v->r->started_ms) / 1000.0;
		rate = secs > 0.2 ? (double)v->r->pages / secs : 0;
		if (v->total > 0 && v->ids > 0 && v->ids < v->total && secs > 0.5)
			snprintf(eta, sizeof(eta), "  ETA %.0fs",
				 secs * (double)(v->total - v->ids) / (double)v->ids);
		if (v->total >= 0)
			snprintf(count, sizeof(count), "%" PRId64 "/%" PRId64, v->ids, v->total);
		else
			snprintf(count, sizeof(count), "%" PRId64, v->ids);
		fprintf(p->f, "%s/%s  page %" PRId64 "  %s IDs  %.1f pages/s  %" PRId64 " retries%s\n",
			v->t->inst->id, v->t->group_id, v->r->pages, count, rate, v->r->retries, eta);
		lines++;
	}
	fprintf(p->f, "%zu of %zu groups done%s", p->done, p->n, hidden ? " (more running)" : "");
	fprintf(p->f, "\n");
	lines++;
	fflush(p->f);
	p->drawn = lines;
	p->last_draw = now;
}

static void before_log(void *arg)
{
	clear_lines(arg);
}

static void after_log(void *arg)
{
	draw(arg);
}

int progress_new(struct progress **out, FILE *f, const struct crawl_target *targets, size_t n)
{
	struct progress *p = calloc(1, sizeof(*p));
	size_t i;

	*out = NULL;
	if (!p)
		return -1;
	p->g = calloc(n ? n : 1, sizeof(*p->g));
	if (!p->g) {
		free(p);
		return -1;
	}
	p->f = f;
	p->n = n;
	p->start = util_mono_ms();
	for (i = 0; i < n; i++)
		p->g[i].t = &targets[i];
	log_set_hook(before_log, after_log, p);
	*out = p;
	return 0;
}

void progress_update(void *arg, const struct crawl_target *t, const struct crawl_result *r,
		     int active, int64_t ids, int64_t total)
{
	struct progress *p = arg;
	size_t i;

	for (i = 0; i < p->n; i++) {
		struct group_view *v = &p->g[i];

		if (v->t != t)
			continue;
		v->r = r;
		v->active = active;
		v->ids = ids;
		v->total = total;
		break;
	}
	if (util_mono_ms() - p->last_draw >= 100 || !active)
		draw(p);
}

void progress_free(struct progress *p)
{
	if (!p)
		return;
	log_set_hook(NULL, NULL, NULL);
	clear_lines(p);
	fflush(p->f);
	free(p->g);
	free(p);
}
