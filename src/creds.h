/*
 * creds.h - the identity credsync signs with, found where users already keep it, held in
 * memory only: a static AccessKey, or temporary credentials from the ECS metadata service,
 * STS AssumeRole (signed by another identity), AssumeRoleWithOIDC or a credentials URI.
 *
 * Temporary credentials carry an expiration; creds_fresh renews them before it comes, and the
 * three strings are always replaced together.  Secrets live in struct creds for the run and are
 * cleansed by creds_release; nothing here writes them anywhere or puts them in a message.
 *
 * The HTTP calls to the identity services are blocking libcurl easy transfers with short
 * timeouts (1 s + 1 s for the metadata service, 3 s + 10 s for STS) and at most
 * CREDS_STS_ATTEMPTS tries; they give up early once the stop flag (creds_set_stop) is set.
 */
#ifndef CREDSYNC_CREDS_H
#define CREDSYNC_CREDS_H

#include <signal.h>
#include <stdint.h>

#include "error.h"

/* Renewal failures in a row after which requests stop waiting for the next attempt. */
#define CREDS_RENEW_TRIES 4

enum creds_kind {
	CREDS_STATIC = 0,    /* access_key / sts: never renewed */
	CREDS_ECS,           /* ecs_ram_role */
	CREDS_ROLE_ARN,      /* ram_role_arn (and ChainableRamRoleArn) */
	CREDS_OIDC,          /* oidc_role_arn */
	CREDS_URI,           /* credentials_uri */
};

struct creds_provider;

struct creds {
	char *access_key_id;      /* owned */
	char *access_key_secret;  /* owned, cleansed on release */
	char *security_token;     /* owned, cleansed on release; NULL without STS */
	int64_t expiration;       /* wall clock seconds; 0: does not expire */
	int64_t obtained;         /* wall clock seconds of the last fetch */
	uint64_t generation;      /* bumped by every renewal */
	int64_t refreshes;        /* renewals so far */
	int64_t next_try_ms;      /* monotonic: no renewal attempt before this (backoff) */
	int failures;             /* renewal failures in a row */
	enum creds_kind kind;
	char last_error[512];     /* why the last renewal failed */
	char source[512];         /* where they came from, for `check` and messages */
	char identity[256];       /* kind and masked AccessKeyId, or role ARN: for the database */
	struct creds_provider *prov;  /* owned; NULL for static credentials */
};

/* What a `credentials` map of the config names (all optional, NULL when absent). */
struct creds_spec {
	const char *profile;
	const char *role_arn;
	const char *external_id;
	const char *role_session_name;
	int64_t duration_s;       /* 0: default 3600 */
	const char *sts_endpoint;
	const char *policy;
	const char *region;       /* with vpc and no sts_endpoint: sts-vpc.<region>.aliyuncs.com */
	int vpc;
};

/* Resolves credentials: with no profile named (argument or $ALIBABA_CLOUD_PROFILE) the default
 * chain of IDENTITY.md (environment, OIDC variables, ~/.aliyun/config.json,
 * ~/.alibabacloud/credentials, the ECS RAM role, a credentials URI); with one, the
 * environment AccessKey and then that profile.  Fails with CS_ERR_CREDENTIALS listing every
 * source tried and why it gave nothing. */
int creds_resolve(struct creds *out, const char *profile, struct cs_error *err);

/* Resolves a `credentials` map: spec->profile (else base) is the identity, and with
 * spec->role_arn a role assumed from it.  base (may be NULL when spec->profile is set) must
 * outlive out.  Fails with CS_ERR_CREDENTIALS. */
int creds_resolve_spec(struct creds *out, const struct creds_spec *spec, struct creds *base,
		       struct cs_error *err);

/* Makes c usable for the next request: renews temporary credentials when little of their
 * life is left (or force is set), retrying a failed renewal with backoff while the current
 * ones stay valid.  Returns 0, or -1 with err set when no valid credentials remain. */
int creds_fresh(struct creds *c, int force, struct cs_error *err);

/* "kind masked-id" or "kind role-arn" into out: safe to store and print. */
void creds_describe(const struct creds *c, char *out, size_t outlen);

/* The AccessKeyId with all but its first 4 and last 3 characters masked. */
void creds_mask_id(const char *id, char *out, size_t outlen);

/* Where the ECS RAM role provider would ask, and whether it is enabled: for `check`. */
void creds_metadata_status(char *out, size_t outlen);

/* The flag that makes identity-service calls give up (SIGINT/SIGTERM). */
void creds_set_stop(volatile sig_atomic_t *stop);

/* Wipes and frees what c holds (c itself is the caller's); NULL is accepted. */
void creds_release(struct creds *c);

/* Wipes the secret and token variables of the environment (ALIBABA_CLOUD_*, ALICLOUD_*) in
 * place and unsets them: once the identities are resolved, our copies are all we need, and
 * the environment block would keep them readable in /proc/PID/environ and in any core. */
void creds_wipe_environment(void);

#endif
