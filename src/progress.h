/*
 * progress.h - the live display of a sync on a terminal: one line per active group with
 * pages, IDs, rate, retries and an ETA from Total.  Only ever created when stderr is a
 * terminal (or --progress); log lines clear it and it redraws below them.
 */
#ifndef CREDSYNC_PROGRESS_H
#define CREDSYNC_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#include "crawl.h"

struct progress;

/* A progress display on f for the n targets (f a terminal; the caller decides). */
int progress_new(struct progress **out, FILE *f, const struct crawl_target *targets, size_t n);
/* The crawl observer callback (arg is the struct progress). */
void progress_update(void *arg, const struct crawl_target *t, const struct crawl_result *r,
		     int active, int64_t ids, int64_t total);
/* Clears the display and frees it; accepts NULL. */
void progress_free(struct progress *p);

#endif
