/*
 * writer.h - the crawl's store writer: a thread that owns the store connection while a
 * crawl runs, so that pages keep arriving while SQLite stages them or finalizes a group.
 *
 * The crawl hands over operations in order and the writer runs them in that order, each in
 * the transaction it had when the crawl ran them itself: a page with its checkpoint (pages
 * queued together share one transaction), a finalize with the run's counts, a failure with
 * the run's counts.  So a kill -9 at any instant leaves what it left before: the last
 * committed checkpoint, and either the old or the new state of a finalized group.  What is
 * queued is bounded (WRITER_MAX_QUEUED_BYTES of IDs): a submit waits while the writer is that
 * far behind, so memory stays constant however fast the network is.
 *
 * Ownership: between writer_start and writer_stop nobody else touches the store.  Each job
 * is a slot; the writer keeps its own copy of the slot's snapshot (the staging state of the
 * store lives there), the crawl keeps its walk.  Results (a snapshot begun, a verdict, a
 * failure recorded) come back as completions; the writer calls notify after posting one, so
 * the crawl's poll wakes.  The first database error stops the writer: later submits fail
 * with it, and what was queued is dropped, as the transaction it would have been part of.
 */
#ifndef CREDSYNC_WRITER_H
#define CREDSYNC_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "paging.h"
#include "store.h"

#define WRITER_MAX_QUEUED_BYTES ((size_t)512 << 10)

struct writer;

/* The run's counters each transaction writes into the run row (store_run_progress); the
 * group counts are the writer's own (what it committed). */
struct writer_counts {
	int64_t requests, retries, throttled;
};

/* What the crawl knows of its walk, persisted with a page as the group's checkpoint. */
struct writer_walk {
	int64_t page_no;
	const char *next_token;     /* copied */
	int64_t pages;
	int64_t staged_ids;
	int64_t total_reported;
	int rewalked;
	int64_t read_first, read_last;
};

enum writer_done_kind {
	WRITER_BEGUN,      /* a snapshot was begun (or resumed): snap */
	WRITER_FINALIZED,  /* a finalize was judged: verdict, tally (committed when consistent
			    * or inconsistent, undone otherwise) */
	WRITER_FAILED,     /* a failure was recorded: snap.snapshot_id */
};

struct writer_done {
	enum writer_done_kind kind;
	size_t slot;
	struct store_snap snap;      /* WRITER_BEGUN: the receiver owns snap.cs.next_token */
	enum paging_verdict verdict;
	struct store_tally tally;
	int64_t ms;                  /* how long the finalize took */
};

/* Starts the writer thread on st for nslots jobs.  notify(arg) is called (from the writer
 * thread) after each completion and on failure; it must be thread-safe. */
int writer_start(struct writer **out, struct store *st, size_t nslots, int64_t run_id,
		 void (*notify)(void *), void *arg, struct cs_error *err);

/* Begins (or resumes, by policy) the snapshot of slot's group in the run: WRITER_BEGUN. */
int writer_begin(struct writer *w, size_t slot, const char *instance_id, const char *group_id,
		 const struct store_resume *policy, struct cs_error *err);

/* Stages a page of IDs as page number seq of the walk, then (checkpoint) persists walk as
 * the group's checkpoint in the same transaction. */
int writer_page(struct writer *w, size_t slot, int64_t seq, const char *const *ids,
		const size_t *lens, size_t n, int checkpoint, const struct writer_walk *walk,
		const struct writer_counts *counts, struct cs_error *err);

/* Merges the walk, judges the tally (paging_judge with these figures) and commits the
 * snapshot (consistent or not) or undoes the merge: WRITER_FINALIZED. */
int writer_finalize(struct writer *w, size_t slot, int64_t total, int64_t skipped,
		    int64_t tolerance, const struct writer_counts *counts, struct cs_error *err);

/* Forgets the walk's staged pages for a walk from page 1 and persists walk as the
 * checkpoint, in one transaction. */
int writer_restart(struct writer *w, size_t slot, const struct writer_walk *walk,
		   struct cs_error *err);

/* Records the slot's snapshot as failed (begun first, keeping any checkpoint, if the slot
 * never began): WRITER_FAILED. */
int writer_fail(struct writer *w, size_t slot, const char *instance_id, const char *group_id,
		const char *code, const char *message, const char *request_id,
		int keep_checkpoint, const struct writer_counts *counts, struct cs_error *err);

/* The next completion, 1 and *d; 0 when none is waiting. */
int writer_next_done(struct writer *w, struct writer_done *d);

/* 0 while the writer is sound; -1 with its error once a database operation failed. */
int writer_status(struct writer *w, struct cs_error *err);

/* Waits until everything submitted has run (or been dropped after a failure). */
void writer_drain(struct writer *w);

/* Runs what is queued, stops the thread and frees the writer (and completions not taken);
 * the store is the caller's again.  NULL is accepted. */
void writer_stop(struct writer *w);

#endif
