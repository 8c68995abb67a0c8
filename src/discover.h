/*
 * discover.h - `groups: all`: an instance's groups from ListGroupId, asked once per run.
 *
 * ListGroupId is limited to 10 calls/s per account, so calls go through their own rate
 * limiter and retry throttling like the crawl does.  A group the database knows for the
 * instance that the listing no longer has is reported (a warning), never silently dropped.
 */
#ifndef CREDSYNC_DISCOVER_H
#define CREDSYNC_DISCOVER_H

#include <stddef.h>
#include <stdint.h>

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
 * out[i].failed); -1 is returned for credential rejections (CS_ERR_CREDENTIALS) and
 * database errors. */
int discover_all(const struct config *cfg, const char **only, size_t nonly,
		 struct http_client *http, const struct creds *creds, struct store *st,
		 int64_t run_id, struct discovered *out, struct cs_error *err);

/* The same with each instance's own identity from creds_for(arg, inst) (renewed first); an
 * identity that cannot sign fails that instance with CredentialsUnavailable. */
int discover_all_for(const struct config *cfg, const char **only, size_t nonly,
		     struct http_client *http,
		     struct creds *(*creds_for)(void *arg, const struct cfg_instance *inst),
		     void *arg, const struct creds *creds, struct store *st, int64_t run_id,
		     struct discovered *out, struct cs_error *err);

/* Lists one instance's groups (used by discover_all and `check`). */
int discover_instance(const struct cfg_instance *inst, struct http_client *http,
		      const struct creds *creds, struct discovered *out, struct cs_error *err);

void discovered_release(struct discovered *d);

#endif
