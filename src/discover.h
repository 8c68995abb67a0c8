/*
 * discover.h - `groups: all`: an instance's groups from ListGroupId, asked once per run; and
 * for `credsync init`, a region's instances from ListInstances.  Both listings go through
 * one retry loop with the crawl's rules: what an answer means is answer.h's (the crawl's
 * own judgement), backoff and x-acs-retry-after are retry.h's, ^C (stop) and
 * retry.deadline end it, and waiting is http_poll's.
 *
 * ListGroupId is limited to 10 calls/s per account, so calls go through their own rate
 * limiter and retry throttling like the crawl does.  A group the database knows for the
 * instance that the listing no longer has is reported (a warning), never silently dropped.
 */
#ifndef CREDSYNC_DISCOVER_H
#define CREDSYNC_DISCOVER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"

#include "config.h"
#include "creds.h"
#include "error.h"
#include "http.h"
#include "store.h"

#define DISCOVER_QPS 10.0

struct discovered {
	char **groups;       /* owned, sorted */
	size_t ngroups;
	int failed;          /* the listing failed; code/message say why */
	char code[128];
	char message[768];
};

/* Lists the groups of every instance with `groups: all` (restricted to only[] when nonly).
 * out has one entry per cfg->instances.  A failed listing fails only that instance (see
 * out[i].failed); -1 is returned for credential rejections (CS_ERR_CREDENTIALS), database
 * errors and *stop becoming non-zero (CS_ERR_INTERRUPTED; stop may be NULL).  The listings
 * share one limiter at DISCOVER_QPS and stop at each instance's retry.deadline. */
int discover_all(const struct config *cfg, const char **only, size_t nonly,
		 struct http_client *http, const struct creds *creds, struct store *st,
		 int64_t run_id, volatile sig_atomic_t *stop, struct discovered *out,
		 struct cs_error *err);

/* The same with each instance's own identity from creds_for(arg, inst) (renewed first); an
 * identity that cannot sign fails that instance with CredentialsUnavailable. */
int discover_all_for(const struct config *cfg, const char **only, size_t nonly,
		     struct http_client *http,
		     struct creds *(*creds_for)(void *arg, const struct cfg_instance *inst),
		     void *arg, const struct creds *creds, struct store *st, int64_t run_id,
		     volatile sig_atomic_t *stop, struct discovered *out, struct cs_error *err);

/* Lists one instance's groups (used by discover_all and `check`). */
int discover_instance(const struct cfg_instance *inst, struct http_client *http,
		      const struct creds *creds, volatile sig_atomic_t *stop,
		      struct discovered *out, struct cs_error *err);

/* Lists the groups of n instances concurrently (insts[0]'s concurrency at once, 10 calls/s);
 * out[i] for insts[i].  -1 for rejected credentials and for *stop becoming non-zero
 * (CS_ERR_INTERRUPTED; stop may be NULL). */
int discover_groups(const struct cfg_instance *insts, size_t n, struct http_client *http,
		    const struct creds *creds, volatile sig_atomic_t *stop, struct discovered *out,
		    struct cs_error *err);

/* Frees what d holds and empties it; NULL is accepted. */
void discovered_release(struct discovered *d);

struct discovered_instances {
	struct api_instance *instances;  /* owned */
	size_t n;
	int failed;          /* the listing failed; code/message say why */
	char code[128];
	char message[768];
};

/* Lists the instances ListInstances shows at endpoints[i] (regions[i] names it in
 * messages) for n regions concurrently, with s's timeouts, concurrency and retry rules.
 * out[i] for regions[i]; a failed listing sets out[i].failed.  -1 for rejected credentials
 * (CS_ERR_CREDENTIALS) and for *stop becoming non-zero (CS_ERR_INTERRUPTED). */
int discover_instances(const char *const *regions, const char *const *endpoints, size_t n,
		       const struct cfg_settings *s, struct http_client *http,
		       const struct creds *creds, volatile sig_atomic_t *stop,
		       struct discovered_instances *out, struct cs_error *err);

/* Frees what d holds and empties it; NULL is accepted. */
void discovered_instances_release(struct discovered_instances *d);

#endif
