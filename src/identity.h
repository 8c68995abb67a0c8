/*
 * identity.h - the identities of one run: the top-level `credentials` (or the default chain)
 * and every instance's own `credentials` map, each distinct map resolved once and shared by
 * every instance that names it.  An instance whose identity cannot be resolved keeps an empty
 * one with the reason, so only its groups fail.
 */
#ifndef CREDSYNC_IDENTITY_H
#define CREDSYNC_IDENTITY_H

#include <stddef.h>

#include "config.h"
#include "creds.h"
#include "error.h"

struct identity {
	struct creds c;           /* access_key_id NULL when it could not be resolved */
	char key[2048];           /* the map, canonical, to find the same one again */
};

struct identities {
	struct creds *top;        /* owned; NULL when no selected instance needs it */
	struct creds *top_base;   /* owned; the base of a top-level role_arn */
	struct identity *v;       /* owned, room for one per instance, so pointers stay */
	size_t n;
	size_t *of_inst;          /* per cfg instance: index into v, or (size_t)-1 for top */
	const struct config *cfg;
};

/* Resolves the identities the instances need (only: instance ids, none = all).  Fails (-1,
 * CS_ERR_CREDENTIALS) only when the top-level identity is needed and cannot be resolved. */
int identities_resolve(struct identities *ids, const struct config *cfg, const char **only,
		       size_t nonly, struct cs_error *err);

/* The identity of inst (a crawl_opts.creds_for).  Never NULL after identities_resolve. */
struct creds *identities_for(void *ids, const struct cfg_instance *inst);

/* The resolved identities (top first), each once, into out[0..max).  Returns the count. */
size_t identities_list(const struct identities *ids, const struct creds **out, size_t max);

/* Wipes and frees every identity of the run; ids itself is the caller's. */
void identities_release(struct identities *ids);

#endif
