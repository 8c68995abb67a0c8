/*
 * creds_int.h - what creds.c (the chain, the profiles, refresh) and creds_fetch.c (the HTTP
 * calls to the metadata service, STS and a credentials URI) share.  Not for other modules.
 */
#ifndef CREDSYNC_CREDS_INT_H
#define CREDSYNC_CREDS_INT_H

#include <stdint.h>

#include "creds.h"

#define CREDS_DEFAULT_METADATA "http://100.100.100.200"
#define CREDS_DEFAULT_STS "https://sts.aliyuncs.com"
#define CREDS_IMDS_TIMEOUT_MS 1000   /* connect, and again for the answer (IDENTITY.md) */
#define CREDS_STS_CONNECT_MS 3000
#define CREDS_STS_TIMEOUT_MS 10000
#define CREDS_STS_ATTEMPTS 4         /* throttled or transient STS answers, per fetch */

struct creds_provider {
	enum creds_kind kind;
	char *role_name;          /* ecs_ram_role: NULL to discover */
	char *role_arn;           /* ram_role_arn, oidc_role_arn */
	char *session_name;
	char *external_id;
	char *policy;
	int64_t duration_s;
	char *oidc_provider_arn;
	char *oidc_token_file;
	char *uri;                /* credentials_uri */
	char *sts_url;            /* base URL of STS */
	struct creds *base;       /* ram_role_arn: the identity AssumeRole is signed with */
	int own_base;             /* base is ours to release */
};

/* Fresh credentials from p into out (the three strings and expiration; out was empty).
 * Returns 0, or -1 with err saying which service answered what. */
int creds_fetch(struct creds_provider *p, struct creds *out, struct cs_error *err);

/* The metadata service's base URL: $CREDSYNC_METADATA_ENDPOINT or the default. */
const char *creds_metadata_endpoint(void);

/* Checks a URL of an identity service: https, or plain http only to loopback (and the
 * metadata default, which is plain http by nature).  Returns 0 or -1 with err set. */
int creds_check_url(const char *what, const char *url, struct cs_error *err);

/* Sets c's three strings (copies); token may be NULL.  Returns 0 or -1 (err, c released). */
int creds_set(struct creds *c, const char *id, const char *secret, const char *token,
	      struct cs_error *err);

/* Cleanses and frees s. */
void creds_wipe_free(char *s);

#endif
