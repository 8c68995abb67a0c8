/*
 * config.h - the YAML configuration of PRODUCT.md, loaded and validated in one pass.
 * (yamltree.c reads the YAML; config.c, config_value.c and config_instance.c check it.)
 *
 * config_load_* either returns a fully validated struct config (every instance's settings
 * resolved: defaults overlaid with the instance's own keys) or fails with a CS_ERR_CONFIG
 * error whose message starts "FILE:LINE:COLUMN: " and says what was expected.  Nothing is
 * created or written while loading.  The struct owns all its strings.
 */
#ifndef CREDSYNC_CONFIG_H
#define CREDSYNC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Limits that keep a hostile or mistaken file from costing unbounded memory or time. */
#define CFG_MAX_FILE_BYTES (1024 * 1024)
#define CFG_MAX_DEPTH 32

enum cfg_signature {
	CFG_SIG_V1 = 1,  /* HMAC-SHA1 query signing */
	CFG_SIG_V3 = 3,  /* ACS3-HMAC-SHA256 header signing */
};

enum cfg_rate_control {
	CFG_RATE_ADAPTIVE = 0, /* token bucket at qps, lowered on throttling (AIMD) */
	CFG_RATE_FIXED,        /* token bucket at qps, never adapted */
};

/* The keys that `defaults` sets and any instance may override. */
struct cfg_settings {
	int page_size;                 /* page_size: 1..100, default 100 */
	double qps;                    /* qps: > 0, default 100; the rate controller's ceiling */
	double qps_hard_cap;           /* qps_hard_cap: qps above it is refused, default 250 */
	int concurrency;               /* concurrency: 1..256, default 4 */
	int64_t connect_timeout_ms;    /* timeout.connect, default 5s */
	int64_t request_timeout_ms;    /* timeout.request, default 30s */
	int max_attempts;              /* retry.max_attempts: 1..100, default 8 */
	int64_t base_delay_ms;         /* retry.base_delay, default 1s */
	int64_t max_delay_ms;          /* retry.max_delay, default 30s */
	int64_t deadline_ms;           /* retry.deadline (the run deadline), default 15m */
	int retry_budget;              /* retry.budget: tokens, default 500 */
	enum cfg_signature signature;  /* signature: v1 | v3, default v3 */
	enum cfg_rate_control rate_control; /* rate_control: adaptive | fixed */
	char *ca_file;                 /* ca_file: owned; NULL = system bundle */
	/* consistency_tolerance: how far short of Total a walk may come and still complete
	 * (without recording removals): an absolute count (tolerance_count >= 0), or a
	 * percentage of Total (tolerance_count -1, tolerance_pct; at least 1 ID).  Default
	 * 0.1%. */
	int64_t tolerance_count;
	double tolerance_pct;
	int max_pages;                 /* max_pages: pages one walk of a group may take, default 100000 */
};

/* A `credentials` map: which identity signs (PRODUCT.md "Credentials").  Never a secret. */
struct cfg_credentials {
	int set;                       /* the map was given */
	char *profile;                 /* profile: of ~/.aliyun/config.json or ~/.alibabacloud/... */
	char *role_arn;                /* role_arn: assumed from profile, else the top level's */
	char *external_id;
	char *role_session_name;
	char *sts_endpoint;            /* a host or URL */
	char *policy;
	int64_t duration_ms;           /* duration: 15m..12h; 0 = default 1h */
	int line, column;
};

struct cfg_instance {
	char *id;            /* id: required, unique */
	char *region;        /* region: NULL when not given */
	char *endpoint;      /* endpoint, or https://onsmqtt.<region>.aliyuncs.com; always set */
	char **groups;       /* groups: owned list, NULL when groups_all */
	size_t ngroups;
	int groups_all;      /* groups: all */
	int endpoint_vpc;    /* endpoint_type: vpc (onsmqtt-vpc.<region>.aliyuncs.com) */
	struct cfg_credentials creds;  /* credentials: the instance's own identity (.set) */
	struct cfg_settings s;
	int line, column;    /* where the instance's mapping starts (1-based) */
};

struct config {
	char *path;                    /* the file's name as given, for messages */
	char *database;                /* database: NULL when not set (then -d is needed) */
	char *profile;                 /* credentials.profile: NULL when not set */
	struct cfg_credentials creds;  /* the top-level credentials map (profile also above) */
	char *metrics_file;            /* metrics_file: NULL when not set */
	int64_t checkpoint_max_age_ms; /* checkpoint_max_age, default 6h */
	int64_t finalize_max_age_ms;   /* finalize_max_age: an ended walk older than this is walked
					* again instead of finalized, default 5m */
	int64_t retention_keep_last;   /* retention.keep_last: 0 = not set */
	int64_t retention_keep_for_ms; /* retention.keep_for: 0 = not set; either set means
					* every successful sync prunes by this policy */
	struct cfg_settings defaults;
	struct cfg_instance *instances;
	size_t ninstances;
};

/* Loads and validates path.  On failure returns -1 with err set (CS_ERR_CONFIG, or
 * CS_ERR_RUNTIME when the file cannot be read) and *out NULL. */
int config_load_file(struct config **out, const char *path, struct cs_error *err);

/* The same from memory; name stands for the file in messages. */
int config_load_string(struct config **out, const char *name, const char *text, size_t len,
		       struct cs_error *err);

/* Frees cfg and every string it owns; NULL is fine. */
void config_free(struct config *cfg);

/* Sets the built-in defaults (used for `defaults` before the file's keys apply). */
void config_settings_default(struct cfg_settings *s);

/* The shortfall against total that s tolerates (see consistency_tolerance). */
int64_t config_tolerance(const struct cfg_settings *s, int64_t total);

/* Finds the config file by PRODUCT.md's order: explicit (from -c), $CREDSYNC_CONFIG,
 * ./credsync.yaml, $XDG_CONFIG_HOME/credsync/config.yaml (~/.config/...),
 * /etc/credsync/config.yaml.  Returns a malloc'd path, or NULL when none exists (explicit or
 * $CREDSYNC_CONFIG are returned even when missing, so the error names them). */
char *config_find(const char *explicit_path);

#endif
