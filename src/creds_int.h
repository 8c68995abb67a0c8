/*
 * creds_int.h - what creds.c (the credentials object, the providers, renewal), creds_chain.c
 * (the chain, the profiles, `credentials` maps) and creds_fetch.c (the HTTP calls to the
 * metadata service, STS and a credentials URI) share.  Not for other modules.
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

/* Static credentials (copies) into the empty c, from source.  Returns 0 or -1 (err). */
int creds_set_static(struct creds *c, const char *id, const char *secret, const char *token,
		     const char *source, struct cs_error *err);

/*
 * Providers of temporary credentials: each sets up its provider in the empty out and fetches
 * the first credentials.  Returns 0, or -1 with err (out may hold the provider: release it).
 * NULL or empty optional strings mean the defaults (a session name from the host name, 3600
 * s, the STS endpoint of sts_ep, $ALIBABA_CLOUD_STS_ENDPOINT or the region).
 */
/* AssumeRole of arn signed with base; with own_base, base is out's (released even on
 * failure). */
int creds_make_role_arn(struct creds *out, struct creds *base, int own_base, const char *arn,
			const char *session, const char *ext, const char *policy,
			int64_t duration, const char *sts_ep, const char *region, int vpc,
			const char *source, struct cs_error *err);
/* AssumeRoleWithOIDC of arn with the token read from token_file at every fetch. */
int creds_make_oidc(struct creds *out, const char *arn, const char *provider_arn,
		    const char *token_file, const char *session, int64_t duration,
		    const char *sts_ep, const char *region, const char *source,
		    struct cs_error *err);
/* The ECS RAM role (role NULL: the one the metadata service names). */
int creds_make_ecs(struct creds *out, const char *role, const char *source,
		   struct cs_error *err);
/* A credentials URI. */
int creds_make_uri(struct creds *out, const char *uri, const char *source,
		   struct cs_error *err);

/* The value of the environment variable name, or NULL when unset or empty. */
const char *creds_env_nonempty(const char *name);
/* 1 when the environment variable name is "true" (any case). */
int creds_env_true(const char *name);

#endif
