/*
 * writer.c - the crawl's store writer thread; see writer.h for the contract.
 *
 * One mutex guards the queue, the completions and the failure; the thread takes the whole
 * queue at once and runs it without the lock, so the crawl may queue more meanwhile.  Pages
 * taken together share one transaction (group commit: the further SQLite falls behind, the
 * fewer commits it pays for); every other operation is a transaction of its own.
 */
#include "writer.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "util.h"

enum op_kind {
	OP_BEGIN,
	OP_PAGE,
	OP_FINALIZE,
	OP_RESTART,
	OP_FAIL,
};

struct op {
	struct op *next;
	enum op_kind kind;
	size_t slot;
	size_t bytes;                /* counted against WRITER_MAX_QUEUED_BYTES */
	const char *instance_id, *group_id;
	struct store_resume policy;  /* OP_BEGIN */
	int64_t seq;                 /* OP_PAGE: the page's sequence number in the walk */
	size_t n;
	const char **ids;            /* OP_PAGE: into the op's own allocation */
	size_t *lens;
	int checkpoint;
	int has_walk;                /* OP_PAGE, OP_RESTART */
	struct writer_walk walk;     /* next_token owned (walk_token) */
	char *walk_token;
	int64_t total, skipped, tolerance; /* OP_FINALIZE */
	char *code, *message, *request_id; /* OP_FAIL */
	int keep_checkpoint;
	int has_counts;
	struct writer_counts counts;
};

struct done_node {
	struct done_node *next;
	struct writer_done d;
};

struct slot {
	struct store_snap snap;      /* the writer's copy: staging state included */
	int began;
};

struct writer {
	struct store *st;
	int64_t run_id;
	struct slot *slots;
	size_t nslots;
	void (*notify)(void *);
	void *notify_arg;
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t work;         /* the thread waits for operations */
	pthread_cond_t space;        /* a submit waits for room; writer_drain for idleness */
	struct op *head, *tail;
	size_t queued_bytes;
	int busy;                    /* the thread is running a batch */
	int idle;                    /* the thread waits for work: a submit must wake it */
	int stopping;
	int failed;
	struct cs_error err;
	struct done_node *done_head, *done_tail;
	/* the thread's own: the group counts it committed to the run row */
	int64_t groups_ok, groups_failed;
	struct writer_counts counts; /* the latest counters submitted */
};

static void op_free(struct op *o)
{
	if (!o)
		return;
	free(o->walk_token);
	free(o->code);
	free(o->message);
	free(o->request_id);
	free(o);
}

static void ops_free(struct op *o)
{
	while (o) {
		struct op *next = o->next;

		op_free(o);
		o = next;
	}
}

static char *dup_or_null(const char *s, int *oom)
{
	char *d;

	if (!s)
		return NULL;
	if (!(d = strdup(s)))
		*oom = 1;
	return d;
}

/* The walk's fields into the slot's snapshot (the staging state stays the store's). */
static int apply_walk(struct store_crawl_state *cs, const struct writer_walk *wk,
		      struct cs_error *err)
{
	char *tok = NULL;

	if (wk->next_token && !(tok = strdup(wk->next_token)))
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	free(cs->next_token);
	cs->next_token = tok;
	cs->page_no = wk->page_no;
	cs->pages = wk->pages;
	cs->staged_ids = wk->staged_ids;
	cs->total_reported = wk->total_reported;
	cs->rewalked = wk->rewalked;
	cs->read_first = wk->read_first;
	cs->read_last = wk->read_last;
	return 0;
}

static void post(struct writer *w, const struct writer_done *d)
{
	struct done_node *n = calloc(1, sizeof(*n));

	pthread_mutex_lock(&w->mu);
	if (!n) {
		if (!w->failed) {
			w->failed = 1;
			cs_error_set(&w->err, CS_ERR_NOMEM, "out of memory");
		}
	} else {
		n->d = *d;
		if (w->done_tail)
			w->done_tail->next = n;
		else
			w->done_head = n;
		w->done_tail = n;
	}
	pthread_mutex_unlock(&w->mu);
	if (w->notify)
		w->notify(w->notify_arg);
}

static int progress(struct writer *w, struct cs_error *err)
{
	struct store_run_stats rs = { NULL, w->groups_ok, w->groups_failed, w->counts.requests,
				      w->counts.retries, w->counts.throttled };

	return store_run_progress(w->st, w->run_id, &rs, err);
}

static int run_begin(struct writer *w, struct op *o, struct cs_error *err)
{
	struct slot *s = &w->slots[o->slot];
	struct writer_done d;

	store_snap_release(&s->snap);
	if (store_snapshot_begin(w->st, w->run_id, o->instance_id, o->group_id, &o->policy,
				 &s->snap, err) < 0)
		return -1;
	s->began = 1;
	memset(&d, 0, sizeof(d));
	d.kind = WRITER_BEGUN;
	d.slot = o->slot;
	d.snap = s->snap;
	d.snap.stage.last_id = (struct cs_buf)CS_BUF_INIT; /* the staging state stays here */
	if (s->snap.cs.next_token && !(d.snap.cs.next_token = strdup(s->snap.cs.next_token)))
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	post(w, &d);
	return 0;
}

/*
 * Pages queued together share a transaction, up to WRITER_BATCH_PAGES: the first few save
 * most of the commits, and a transaction that fails on a full disk has written no more than
 * that into the WAL, which leaves room to close the run as failed.
 */
#define WRITER_BATCH_PAGES 8

/* Consecutive pages from o on, in one transaction; *last is the last one run. */
static int run_pages(struct writer *w, struct op *o, struct op **last, struct cs_error *err)
{
	int n = 0;

	if (store_begin(w->st, err) < 0)
		return -1;
	for (; o; o = o->next) {
		struct slot *s = &w->slots[o->slot];

		s->snap.cs.pages = o->seq;
		if (store_stage_page(w->st, &s->snap, o->ids, o->lens, o->n, err) < 0 ||
		    apply_walk(&s->snap.cs, &o->walk, err) < 0 ||
		    (o->checkpoint && store_checkpoint(w->st, &s->snap, err) < 0))
			goto fail;
		if (o->has_counts)
			w->counts = o->counts;
		*last = o;
		if (!o->next || o->next->kind != OP_PAGE || ++n >= WRITER_BATCH_PAGES)
			break;
	}
	if (progress(w, err) < 0 || store_commit(w->st, err) < 0)
		goto fail;
	return 0;
fail:
	store_rollback(w->st);
	return -1;
}

static int run_finalize(struct writer *w, struct op *o, struct cs_error *err)
{
	struct slot *s = &w->slots[o->slot];
	int64_t t0 = util_mono_ms();
	struct writer_done d;

	memset(&d, 0, sizeof(d));
	d.kind = WRITER_FINALIZED;
	d.slot = o->slot;
	if (o->has_counts)
		w->counts = o->counts;
	if (store_finalize_begin(w->st, &s->snap, 0, &d.tally, err) < 0)
		return -1;
	d.verdict = paging_judge(o->total, d.tally.distinct, d.tally.duplicates, o->skipped,
				 s->snap.cs.rewalked, o->tolerance);
	switch (d.verdict) {
	case PAGING_REWALK:
	case PAGING_INCOMPLETE:
		/* the crawl walks again or fails the group; either way nothing is kept */
		store_finalize_abort(w->st);
		d.ms = util_mono_ms() - t0;
		post(w, &d);
		return 0;
	case PAGING_INCONSISTENT:
		if (d.tally.removed) {
			/* the walk proves no absence: merge again, keeping the absent */
			store_finalize_abort(w->st);
			if (store_finalize_begin(w->st, &s->snap, 1, &d.tally, err) < 0)
				return -1;
		}
		break;
	case PAGING_CONSISTENT:
		break;
	}
	w->groups_ok++;
	if (progress(w, err) < 0 ||
	    store_finalize_commit(w->st, &s->snap,
				  d.verdict == PAGING_CONSISTENT ? STORE_CONSISTENT : STORE_INCONSISTENT,
				  &d.tally, err) < 0) {
		w->groups_ok--;
		store_finalize_abort(w->st);
		return -1;
	}
	/* readers may hold the WAL back; a copy after each group keeps it short */
	if (store_wal_checkpoint(w->st, 0, err) < 0)
		return -1;
	d.ms = util_mono_ms() - t0;
	post(w, &d);
	return 0;
}

static int run_restart(struct writer *w, struct op *o, struct cs_error *err)
{
	struct slot *s = &w->slots[o->slot];

	if (store_begin(w->st, err) < 0)
		return -1;
	if (store_stage_clear(w->st, &s->snap, err) < 0 ||
	    apply_walk(&s->snap.cs, &o->walk, err) < 0 ||
	    store_checkpoint(w->st, &s->snap, err) < 0 || store_commit(w->st, err) < 0) {
		store_rollback(w->st);
		return -1;
	}
	return 0;
}

static int run_fail(struct writer *w, struct op *o, struct cs_error *err)
{
	struct slot *s = &w->slots[o->slot];
	struct writer_done d;

	if (o->has_counts)
		w->counts = o->counts;
	if (!s->began) {
		/* a job that never ran keeps any checkpoint it had for the next run */
		struct store_resume keep = { 0, INT64_MAX, INT64_MAX };

		store_snap_release(&s->snap);
		if (store_snapshot_begin(w->st, w->run_id, o->instance_id, o->group_id, &keep,
					 &s->snap, err) < 0)
			return -1;
		s->began = 1;
		o->keep_checkpoint = 1;
	}
	/* the run row's counts and the snapshot change in one transaction, so a killed run is
	 * repaired with exact counts */
	w->groups_failed++;
	if (store_begin(w->st, err) < 0 || progress(w, err) < 0 ||
	    store_snapshot_fail(w->st, &s->snap, o->code, o->message, o->request_id,
				o->keep_checkpoint, err) < 0 ||
	    store_commit(w->st, err) < 0) {
		w->groups_failed--;
		store_rollback(w->st);
		return -1;
	}
	memset(&d, 0, sizeof(d));
	d.kind = WRITER_FAILED;
	d.slot = o->slot;
	d.snap.snapshot_id = s->snap.snapshot_id;
	post(w, &d);
	return 0;
}

/* Runs a batch taken from the queue; returns the bytes it held. */
static size_t run_batch(struct writer *w, struct op *batch)
{
	struct cs_error err = { 0 };
	size_t bytes = 0;
	struct op *o, *last;
	int rc = 0;

	for (o = batch; o; o = o->next)
		bytes += o->bytes;
	for (o = batch; o && rc == 0; o = o->next) {
		switch (o->kind) {
		case OP_BEGIN:
			rc = run_begin(w, o, &err);
			break;
		case OP_PAGE:
			last = o;
			rc = run_pages(w, o, &last, &err);
			o = last;
			break;
		case OP_FINALIZE:
			rc = run_finalize(w, o, &err);
			break;
		case OP_RESTART:
			rc = run_restart(w, o, &err);
			break;
		case OP_FAIL:
			rc = run_fail(w, o, &err);
			break;
		}
	}
	if (rc < 0)
		log_msg(LOG_DEBUG, NULL, "the database writer stopped: %s", err.msg);
	ops_free(batch);
	if (rc < 0) {
		pthread_mutex_lock(&w->mu);
		if (!w->failed) {
			w->failed = 1;
			w->err = err;
		}
		/* what was queued behind the failure is dropped, as its transaction would be */
		ops_free(w->head);
		w->head = w->tail = NULL;
		pthread_mutex_unlock(&w->mu);
		if (w->notify)
			w->notify(w->notify_arg);
	}
	return bytes;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct op *batch;
		size_t bytes;

		while (!w->head && !w->stopping) {
			w->idle = 1;
			pthread_cond_wait(&w->work, &w->mu);
			w->idle = 0;
		}
		if (!w->head)
			break;
		batch = w->head;
		w->head = w->tail = NULL;
		w->busy = 1;
		pthread_mutex_unlock(&w->mu);
		bytes = run_batch(w, batch);
		pthread_mutex_lock(&w->mu);
		w->queued_bytes -= bytes < w->queued_bytes ? bytes : w->queued_bytes;
		if (w->failed)
			w->queued_bytes = 0;
		w->busy = 0;
		pthread_cond_broadcast(&w->space);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int writer_start(struct writer **out, struct store *st, size_t nslots, int64_t run_id,
		 void (*notify)(void *), void *arg, struct cs_error *err)
{
	struct writer *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	size_t i;

	*out = NULL;
	if (!w || !(w->slots = calloc(nslots ? nslots : 1, sizeof(*w->slots)))) {
		free(w);
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	}
	for (i = 0; i < nslots; i++)
		w->slots[i].snap.stage.last_id = (struct cs_buf)CS_BUF_INIT;
	w->st = st;
	w->run_id = run_id;
	w->nslots = nslots;
	w->notify = notify;
	w->notify_arg = arg;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->space, NULL);
	/* signals are the crawl's (cli.c's handler wakes its poll): the writer never takes one */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	w->started = pthread_create(&w->thread, NULL, writer_main, w) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!w->started) {
		writer_stop(w);
		return cs_error_set(err, CS_ERR_RUNTIME, "cannot start the database writer thread");
	}
	*out = w;
	return 0;
}

/* Queues o (freeing it on failure), waiting while the writer is too far behind. */
static int submit(struct writer *w, struct op *o, struct cs_error *err)
{
	pthread_mutex_lock(&w->mu);
	while (!w->failed && w->queued_bytes > 0 &&
	       w->queued_bytes + o->bytes > WRITER_MAX_QUEUED_BYTES)
		pthread_cond_wait(&w->space, &w->mu);
	if (w->failed) {
		*err = w->err;
		pthread_mutex_unlock(&w->mu);
		op_free(o);
		return -1;
	}
	if (w->tail)
		w->tail->next = o;
	else
		w->head = o;
	w->tail = o;
	w->queued_bytes += o->bytes;
	/* a busy thread takes the queue when its batch is done: no wake-up (and no system
	 * call) for each page */
	if (w->idle)
		pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static struct op *op_new(enum op_kind kind, size_t slot, size_t extra, struct cs_error *err)
{
	struct op *o = calloc(1, sizeof(*o) + extra);

	if (!o) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		return NULL;
	}
	o->kind = kind;
	o->slot = slot;
	o->bytes = sizeof(*o) + extra;
	return o;
}

static int set_walk(struct op *o, const struct writer_walk *walk, struct cs_error *err)
{
	int oom = 0;

	o->has_walk = 1;
	o->walk = *walk;
	o->walk_token = dup_or_null(walk->next_token, &oom);
	o->walk.next_token = o->walk_token;
	if (oom)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	return 0;
}

int writer_begin(struct writer *w, size_t slot, const char *instance_id, const char *group_id,
		 const struct store_resume *policy, struct cs_error *err)
{
	struct op *o = op_new(OP_BEGIN, slot, 0, err);

	if (!o)
		return -1;
	o->instance_id = instance_id;
	o->group_id = group_id;
	o->policy = *policy;
	return submit(w, o, err);
}

int writer_page(struct writer *w, size_t slot, int64_t seq, const char *const *ids,
		const size_t *lens, size_t n, int checkpoint, const struct writer_walk *walk,
		const struct writer_counts *counts, struct cs_error *err)
{
	size_t i, data = 0, head = n * (sizeof(char *) + sizeof(size_t));
	struct op *o;
	char *p;

	for (i = 0; i < n; i++)
		data += lens[i] + 1;
	/* one allocation: the op, the pointer and length arrays, then the IDs themselves */
	if (!(o = op_new(OP_PAGE, slot, head + data, err)))
		return -1;
	o->ids = (const char **)(o + 1);
	o->lens = (size_t *)(o->ids + n);
	p = (char *)(o->lens + n);
	for (i = 0; i < n; i++) {
		memcpy(p, ids[i], lens[i]);
		p[lens[i]] = '\0';
		o->ids[i] = p;
		o->lens[i] = lens[i];
		p += lens[i] + 1;
	}
	o->seq = seq;
	o->n = n;
	o->checkpoint = checkpoint;
	if (counts) {
		o->has_counts = 1;
		o->counts = *counts;
	}
	if (set_walk(o, walk, err) < 0) {
		op_free(o);
		return -1;
	}
	return submit(w, o, err);
}

int writer_finalize(struct writer *w, size_t slot, int64_t total, int64_t skipped,
		    int64_t tolerance, const struct writer_counts *counts, struct cs_error *err)
{
	struct op *o = op_new(OP_FINALIZE, slot, 0, err);

	if (!o)
		return -1;
	o->total = total;
	o->skipped = skipped;
	o->tolerance = tolerance;
	if (counts) {
		o->has_counts = 1;
		o->counts = *counts;
	}
	return submit(w, o, err);
}

int writer_restart(struct writer *w, size_t slot, const struct writer_walk *walk,
		   struct cs_error *err)
{
	struct op *o = op_new(OP_RESTART, slot, 0, err);

	if (!o)
		return -1;
	if (set_walk(o, walk, err) < 0) {
		op_free(o);
		return -1;
	}
	return submit(w, o, err);
}

int writer_fail(struct writer *w, size_t slot, const char *instance_id, const char *group_id,
		const char *code, const char *message, const char *request_id,
		int keep_checkpoint, const struct writer_counts *counts, struct cs_error *err)
{
	struct op *o = op_new(OP_FAIL, slot, 0, err);
	int oom = 0;

	if (!o)
		return -1;
	o->instance_id = instance_id;
	o->group_id = group_id;
	o->code = dup_or_null(code, &oom);
	o->message = dup_or_null(message, &oom);
	o->request_id = dup_or_null(request_id, &oom);
	o->keep_checkpoint = keep_checkpoint;
	if (counts) {
		o->has_counts = 1;
		o->counts = *counts;
	}
	if (oom) {
		op_free(o);
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	}
	return submit(w, o, err);
}

int writer_next_done(struct writer *w, struct writer_done *d)
{
	struct done_node *n;

	pthread_mutex_lock(&w->mu);
	n = w->done_head;
	if (n) {
		w->done_head = n->next;
		if (!w->done_head)
			w->done_tail = NULL;
	}
	pthread_mutex_unlock(&w->mu);
	if (!n)
		return 0;
	*d = n->d;
	free(n);
	return 1;
}

int writer_status(struct writer *w, struct cs_error *err)
{
	int failed;

	pthread_mutex_lock(&w->mu);
	failed = w->failed;
	if (failed)
		*err = w->err;
	pthread_mutex_unlock(&w->mu);
	return failed ? -1 : 0;
}

void writer_drain(struct writer *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->head || w->busy)
		pthread_cond_wait(&w->space, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

void writer_stop(struct writer *w)
{
	struct done_node *n, *next;
	size_t i;

	if (!w)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->stopping = 1;
		pthread_cond_signal(&w->work);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	ops_free(w->head);
	for (n = w->done_head; n; n = next) {
		next = n->next;
		if (n->d.kind == WRITER_BEGUN)
			free(n->d.snap.cs.next_token);
		free(n);
	}
	for (i = 0; i < w->nslots; i++)
		store_snap_release(&w->slots[i].snap);
	free(w->slots);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->space);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
