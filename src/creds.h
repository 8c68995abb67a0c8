/*
 * creds.h - the AccessKey, found where users already keep it, held in memory only.
 *
 * The resolved secret lives in a struct creds for the run and is cleansed by creds_release;
 * nothing here writes it anywhere or puts it in an error message.
 */
#ifndef CREDSYNC_CREDS_H
#define CREDSYNC_CREDS_H

#include "error.h"

struct creds {
	char *access_key_id;      /* owned */
	char *access_key_secret;  /* owned, cleansed on release */
	char *security_token;     /* owned, cleansed on release; NULL without STS */
	char source[512];         /* where they came from, for `check` and messages */
};

/* Resolves credentials: ALIBABA_CLOUD_* then ALICLOUD_* environment variables, then the
 * profile (argument, else $ALIBABA_CLOUD_PROFILE, else "default") from
 * ~/.alibabacloud/credentials ($ALIBABA_CLOUD_CREDENTIALS_FILE), then ~/.aliyun/config.json.
 * Fails with CS_ERR_CREDENTIALS saying what was tried. */
int creds_resolve(struct creds *out, const char *profile, struct cs_error *err);

void creds_release(struct creds *c);

#endif
