/*
 * The YAML configuration: a full valid file read back field by field, the defaults overlay,
 * a table of broken files each with the exact position and the gist of its message, the
 * endpoint policy of endpoint.c on its own, the size, depth and alias limits, loading from
 * disk and the search order of config_find.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "endpoint.h"
#include "test.h"

/* one valid instance, for files whose error is elsewhere (4 lines) */
#define INST "instances:\n  - id: a\n    region: cn-hangzhou\n    groups: all\n"
#define BAD_QPS "defaults:\n  qps: 0\n" INST

static struct config *load(const char *yaml, struct cs_error *err)
{
	struct config *cfg = NULL;

	cs_error_clear(err);
	if (config_load_string(&cfg, "t.yaml", yaml, strlen(yaml), err) < 0) {
		CHECK(cfg == NULL);
		return NULL;
	}
	return cfg;
}

static void test_full(void)
{
	static const char yaml[] =
		"database: /var/lib/credsync/credsync.db\n"
		"credentials:\n"
		"  profile: ops\n"
		"metrics_file: /var/lib/credsync/metrics.prom\n"
		"checkpoint_max_age: 1h30m\n"
		"defaults:\n"
		"  page_size: \"50\"\n"
		"  qps: 2.5\n"
		"  concurrency: 8\n"
		"  timeout: { connect: 2s, request: 1m }\n"
		"  retry: { max_attempts: 5, base_delay: 250ms, max_delay: 10s, deadline: 30m,"
		" budget: 100 }\n"
		"  signature: v1\n"
		"  rate_control: fixed\n"
		"  ca_file: /etc/ssl/ca.pem\n"
		"instances:\n"
		"  - id: mqtt-cn-0pp1ldu0s0b\n"            /* line 16 */
		"    region: cn-hangzhou\n"
		"    groups: [GID_meters, \"GID_gateways\"]\n"
		"  - id: mqtt-cn-local\n"                  /* line 19 */
		"    endpoint: HTTP://127.0.0.1:18080/\n"
		"    region: cn-shanghai\n"
		"    groups: all\n"
		"    page_size: '10'\n"
		"    qps: 100\n"
		"    concurrency: 256\n"
		"    signature: v3\n"
		"    rate_control: adaptive\n"
		"    ca_file: /tmp/ca.pem\n"
		"    timeout: { request: 5s }\n"
		"    retry:\n"
		"      max_delay: 1m\n"
		"  - id: v6.host_1\n"                      /* line 32 */
		"    endpoint: https://[::1]:8443\n"
		"    groups:\n"
		"      - GID-a\n"
		"retention: { keep_last: 30, keep_for: 90d }\n";
	struct cs_error err;
	struct config *cfg = load(yaml, &err);
	const struct cfg_instance *in;
	const struct cfg_settings *d;

	CHECK(cfg != NULL);
	if (!cfg) {
		fprintf(stderr, "  %s\n", err.msg);
		return;
	}
	CHECK_STR(cfg->path, "t.yaml");
	CHECK_STR(cfg->database, "/var/lib/credsync/credsync.db");
	CHECK_STR(cfg->profile, "ops");
	CHECK_STR(cfg->metrics_file, "/var/lib/credsync/metrics.prom");
	CHECK_INT(cfg->checkpoint_max_age_ms, 90 * 60 * 1000);
	CHECK_INT(cfg->retention_keep_last, 30);
	CHECK_INT(cfg->retention_keep_for_ms, 90LL * 86400 * 1000);

	d = &cfg->defaults;
	CHECK_INT(d->page_size, 50);
	CHECK(d->qps == 2.5);
	CHECK_INT(d->concurrency, 8);
	CHECK_INT(d->connect_timeout_ms, 2000);
	CHECK_INT(d->request_timeout_ms, 60000);
	CHECK_INT(d->max_attempts, 5);
	CHECK_INT(d->base_delay_ms, 250);
	CHECK_INT(d->max_delay_ms, 10000);
	CHECK_INT(d->deadline_ms, 30 * 60 * 1000);
	CHECK_INT(d->retry_budget, 100);
	CHECK_INT(d->signature, CFG_SIG_V1);
	CHECK_INT(d->rate_control, CFG_RATE_FIXED);
	CHECK_STR(d->ca_file, "/etc/ssl/ca.pem");

	CHECK_INT(cfg->ninstances, 3);
	if (cfg->ninstances != 3)
		goto out;

	/* the first takes every default and derives its endpoint from the region */
	in = &cfg->instances[0];
	CHECK_STR(in->id, "mqtt-cn-0pp1ldu0s0b");
	CHECK_STR(in->region, "cn-hangzhou");
	CHECK_STR(in->endpoint, "https://onsmqtt.cn-hangzhou.aliyuncs.com");
	CHECK_INT(in->groups_all, 0);
	CHECK_INT(in->ngroups, 2);
	if (in->ngroups == 2) {
		CHECK_STR(in->groups[0], "GID_meters");
		CHECK_STR(in->groups[1], "GID_gateways");
	}
	CHECK_INT(in->line, 16);
	CHECK_INT(in->column, 5);
	CHECK_INT(in->s.page_size, 50);
	CHECK(in->s.qps == 2.5);
	CHECK_INT(in->s.concurrency, 8);
	CHECK_INT(in->s.connect_timeout_ms, 2000);
	CHECK_INT(in->s.request_timeout_ms, 60000);
	CHECK_INT(in->s.max_attempts, 5);
	CHECK_INT(in->s.base_delay_ms, 250);
	CHECK_INT(in->s.max_delay_ms, 10000);
	CHECK_INT(in->s.deadline_ms, 30 * 60 * 1000);
	CHECK_INT(in->s.retry_budget, 100);
	CHECK_INT(in->s.signature, CFG_SIG_V1);
	CHECK_INT(in->s.rate_control, CFG_RATE_FIXED);
	CHECK_STR(in->s.ca_file, "/etc/ssl/ca.pem");
	/* its own copy, not the defaults' */
	CHECK(in->s.ca_file != d->ca_file);

	/* the second overrides everything; the endpoint wins over the region, which is kept */
	in = &cfg->instances[1];
	CHECK_STR(in->id, "mqtt-cn-local");
	CHECK_STR(in->region, "cn-shanghai");
	CHECK_STR(in->endpoint, "http://127.0.0.1:18080");
	CHECK_INT(in->groups_all, 1);
	CHECK(in->groups == NULL);
	CHECK_INT(in->ngroups, 0);
	CHECK_INT(in->line, 19);
	CHECK_INT(in->s.page_size, 10);
	CHECK(in->s.qps == 100);
	CHECK_INT(in->s.concurrency, 256);
	CHECK_INT(in->s.signature, CFG_SIG_V3);
	CHECK_INT(in->s.rate_control, CFG_RATE_ADAPTIVE);
	CHECK_STR(in->s.ca_file, "/tmp/ca.pem");
	CHECK_INT(in->s.connect_timeout_ms, 2000);
	CHECK_INT(in->s.request_timeout_ms, 5000);
	CHECK_INT(in->s.max_attempts, 5);
	CHECK_INT(in->s.base_delay_ms, 250);
	CHECK_INT(in->s.max_delay_ms, 60000);
	CHECK_INT(in->s.deadline_ms, 30 * 60 * 1000);
	CHECK_INT(in->s.retry_budget, 100);

	in = &cfg->instances[2];
	CHECK_STR(in->id, "v6.host_1");
	CHECK(in->region == NULL);
	CHECK_STR(in->endpoint, "https://[::1]:8443");
	CHECK_INT(in->ngroups, 1);
	if (in->ngroups == 1)
		CHECK_STR(in->groups[0], "GID-a");
	CHECK_INT(in->line, 32);
out:
	config_free(cfg);
}

static void test_builtin_defaults(void)
{
	struct cfg_settings s;
	struct cs_error err;
	struct config *cfg;

	config_settings_default(&s);
	CHECK_INT(s.page_size, 100);
	CHECK(s.qps == 100);
	CHECK(s.qps_hard_cap == 250);
	CHECK_INT(s.tolerance_count, -1);
	CHECK(s.tolerance_pct == 0.1);
	CHECK_INT(s.max_pages, 100000);
	CHECK_INT(config_tolerance(&s, 500), 1);
	CHECK_INT(config_tolerance(&s, 50000), 50);
	s.tolerance_count = 0;
	CHECK_INT(config_tolerance(&s, 50000), 0);
	s.tolerance_count = -1;
	CHECK_INT(s.concurrency, 4);
	CHECK_INT(s.connect_timeout_ms, 5000);
	CHECK_INT(s.request_timeout_ms, 30000);
	CHECK_INT(s.max_attempts, 8);
	CHECK_INT(s.base_delay_ms, 1000);
	CHECK_INT(s.max_delay_ms, 30000);
	CHECK_INT(s.deadline_ms, 15 * 60 * 1000);
	CHECK_INT(s.retry_budget, 500);
	CHECK_INT(s.signature, CFG_SIG_V3);
	CHECK_INT(s.rate_control, CFG_RATE_ADAPTIVE);
	CHECK(s.ca_file == NULL);

	/* the smallest file: everything optional takes its default */
	cfg = load(INST, &err);
	CHECK(cfg != NULL);
	if (!cfg)
		return;
	CHECK(cfg->database == NULL);
	CHECK(cfg->profile == NULL);
	CHECK(cfg->metrics_file == NULL);
	CHECK_INT(cfg->checkpoint_max_age_ms, 6 * 3600 * 1000);
	CHECK_INT(cfg->ninstances, 1);
	CHECK_INT(cfg->instances[0].s.page_size, 100);
	CHECK_INT(cfg->instances[0].s.retry_budget, 500);
	CHECK(cfg->instances[0].s.ca_file == NULL);
	CHECK_STR(cfg->instances[0].endpoint, "https://onsmqtt.cn-hangzhou.aliyuncs.com");
	config_free(cfg);
	config_free(NULL);
}

static void test_defaults_after_instances(void)
{
	static const char yaml[] =
		INST
		"defaults:\n"
		"  page_size: 7\n"
		"  signature: v1\n";
	struct cs_error err;
	struct config *cfg = load(yaml, &err);

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	CHECK_INT(cfg->instances[0].s.page_size, 7);
	CHECK_INT(cfg->instances[0].s.signature, CFG_SIG_V1);
	config_free(cfg);
}

static void test_nested_overlay(void)
{
	static const char yaml[] =
		"defaults:\n"
		"  timeout: { connect: 3s, request: 40s }\n"
		"  retry: { max_attempts: 5, base_delay: 2s, max_delay: 20s, deadline: 1h,"
		" budget: 50 }\n"
		"instances:\n"
		"  - id: a\n"
		"    region: cn-hangzhou\n"
		"    groups: all\n"
		"    retry: { max_attempts: 3 }\n"
		"    timeout:\n"
		"      connect: 1s\n"
		"  - id: b\n"
		"    region: cn-beijing\n"
		"    groups: [GID_x]\n";
	struct cs_error err;
	struct config *cfg = load(yaml, &err);
	const struct cfg_settings *s;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	s = &cfg->instances[0].s;
	CHECK_INT(s->max_attempts, 3);
	CHECK_INT(s->base_delay_ms, 2000);
	CHECK_INT(s->max_delay_ms, 20000);
	CHECK_INT(s->deadline_ms, 3600 * 1000);
	CHECK_INT(s->retry_budget, 50);
	CHECK_INT(s->connect_timeout_ms, 1000);
	CHECK_INT(s->request_timeout_ms, 40000);
	s = &cfg->instances[1].s;
	CHECK_INT(s->max_attempts, 5);
	CHECK_INT(s->connect_timeout_ms, 3000);
	CHECK_STR(cfg->instances[1].endpoint, "https://onsmqtt.cn-beijing.aliyuncs.com");
	config_free(cfg);
}

/* Aliases share the anchored node; a small one used a few times is fine. */
static void test_aliases(void)
{
	static const char yaml[] =
		"defaults:\n"
		"  retry: &r { max_attempts: 2 }\n"
		"instances:\n"
		"  - id: a\n"
		"    region: &reg cn-hangzhou\n"
		"    groups: &g [GID_1, GID_2]\n"
		"    retry: *r\n"
		"  - id: b\n"
		"    region: *reg\n"
		"    groups: *g\n";
	struct cs_error err;
	struct config *cfg = load(yaml, &err);

	CHECK(cfg != NULL);
	if (!cfg) {
		fprintf(stderr, "  %s\n", err.msg);
		return;
	}
	CHECK_INT(cfg->instances[0].s.max_attempts, 2);
	CHECK_STR(cfg->instances[1].region, "cn-hangzhou");
	CHECK_INT(cfg->instances[1].ngroups, 2);
	if (cfg->instances[1].ngroups == 2)
		CHECK_STR(cfg->instances[1].groups[1], "GID_2");
	/* each instance owns its copies */
	CHECK(cfg->instances[0].groups[0] != cfg->instances[1].groups[0]);
	config_free(cfg);
}

struct bad {
	const char *what;
	const char *yaml;
	const char *prefix;    /* exact start of the message */
	const char *fragment;  /* somewhere in it */
};

static const struct bad bad_configs[] = {
	{ "unknown top-level key", "databse: x\n" INST,
	  "t.yaml:1:1: ", "unknown key 'databse' at the top level (did you mean 'database'?)" },
	{ "unknown key without a near match", "colour: red\n" INST,
	  "t.yaml:1:1: ", "unknown key 'colour' at the top level (expected one of: database, "
	  "credentials, defaults, instances, metrics_file, checkpoint_max_age, finalize_max_age, "
	  "retention)" },
	{ "misspelt page_size", "defaults:\n  page_sise: 10\n" INST,
	  "t.yaml:2:3: ", "unknown key 'page_sise' in defaults (did you mean 'page_size'?)" },
	{ "misspelt key in an instance", INST "    regoin: cn-beijing\n",
	  "t.yaml:5:5: ", "unknown key 'regoin' in instance 'a' (did you mean 'region'?)" },
	{ "unknown key in retry", "defaults:\n  retry: { attempts: 3 }\n" INST,
	  "t.yaml:2:12: ", "unknown key 'attempts' in retry (expected one of: max_attempts" },
	{ "setting at the top level", "page_size: 10\n" INST,
	  "t.yaml:1:1: ", "key 'page_size' does not belong at the top level (expected it under "
	  "defaults or an instance)" },
	{ "instance key in defaults", "defaults:\n  groups: all\n" INST,
	  "t.yaml:2:3: ", "key 'groups' does not belong in defaults (expected it in an instance)" },
	{ "merge key", "defaults:\n  <<: {qps: 1}\n" INST,
	  "t.yaml:2:3: ", "merge keys ('<<') are not supported in defaults" },
	{ "duplicate key", "defaults:\n  qps: 1\n  qps: 2\n" INST,
	  "t.yaml:3:3: ", "duplicate key 'qps' in defaults (first set at line 2, column 3)" },
	{ "duplicate top-level key", INST "instances: []\n",
	  "t.yaml:5:1: ", "duplicate key 'instances' at the top level (first set at line 1" },
	{ "page_size 0", "defaults:\n  page_size: 0\n" INST,
	  "t.yaml:2:14: ", "page_size: '0' is out of range (expected an integer 1..100)" },
	{ "page_size 101", "defaults:\n  page_size: 101\n" INST,
	  "t.yaml:2:14: ", "page_size: '101' is out of range (expected an integer 1..100)" },
	{ "page_size huge", "defaults:\n  page_size: 99999999999999999999999\n" INST,
	  "t.yaml:2:14: ", "is out of range (expected an integer 1..100)" },
	{ "page_size abc", "defaults:\n  page_size: \"abc\"\n" INST,
	  "t.yaml:2:14: ", "page_size: expected an integer 1..100, got 'abc'" },
	{ "page_size 1.5", "defaults:\n  page_size: 1.5\n" INST,
	  "t.yaml:2:14: ", "page_size: expected an integer 1..100, got '1.5'" },
	{ "page_size 0x10", "defaults:\n  page_size: 0x10\n" INST,
	  "t.yaml:2:14: ", "page_size: expected an integer 1..100, got '0x10'" },
	{ "page_size 1e3", "defaults:\n  page_size: 1e3\n" INST,
	  "t.yaml:2:14: ", "got '1e3'" },
	{ "page_size 010", "defaults:\n  page_size: 010\n" INST,
	  "t.yaml:2:14: ", "without leading zeros, got '010'" },
	{ "page_size a sequence", "defaults:\n  page_size: [1]\n" INST,
	  "t.yaml:2:14: ", "page_size: expected an integer 1..100, got a sequence" },
	{ "page_size a mapping", "defaults:\n  page_size: {a: 1}\n" INST,
	  "t.yaml:2:14: ", "page_size: expected an integer 1..100, got a mapping" },
	{ "page_size empty", "defaults:\n  page_size:\n" INST,
	  "t.yaml:2:13: ", "page_size: expected an integer 1..100, got nothing" },
	{ "qps 0", "defaults:\n  qps: 0\n" INST,
	  "t.yaml:2:8: ", "qps: '0' is out of range (expected a number greater than 0 and at "
	  "most 10000)" },
	{ "qps negative", "defaults:\n  qps: -2.5\n" INST,
	  "t.yaml:2:8: ", "qps: '-2.5' is out of range" },
	{ "qps too high", "defaults:\n  qps: 10000.5\n" INST,
	  "t.yaml:2:8: ", "qps: '10000.5' is out of range" },
	{ "qps not a number", "defaults:\n  qps: fast\n" INST,
	  "t.yaml:2:8: ", "qps: expected a number greater than 0 and at most 10000, got 'fast'" },
	{ "qps above the hard cap", "defaults:\n  qps: 300\n" INST,
	  "t.yaml:4:5: ", "instance 'a': qps 300 is above qps_hard_cap 250" },
	{ "qps above a lowered hard cap", "defaults:\n  qps_hard_cap: 50\n" INST,
	  "t.yaml:4:5: ", "instance 'a': qps 100 is above qps_hard_cap 50" },
	{ "qps_hard_cap not a number", "defaults:\n  qps_hard_cap: lots\n" INST,
	  "t.yaml:2:17: ", "qps_hard_cap: expected a number" },
	{ "tolerance words", "defaults:\n  consistency_tolerance: some\n" INST,
	  "t.yaml:2:26: ", "consistency_tolerance: expected an integer" },
	{ "tolerance over 100%", "defaults:\n  consistency_tolerance: 101%\n" INST,
	  "t.yaml:2:26: ", "consistency_tolerance: expected a count of IDs" },
	{ "tolerance bare percent", "defaults:\n  consistency_tolerance: \"%\"\n" INST,
	  "t.yaml:2:26: ", "consistency_tolerance: expected an integer" },
	{ "max_pages 0", "defaults:\n  max_pages: 0\n" INST,
	  "t.yaml:2:14: ", "max_pages: '0' is out of range" },
	{ "finalize_max_age words", "finalize_max_age: soon\n" INST,
	  "t.yaml:1:19: ", "finalize_max_age" },
	{ "concurrency 0", "defaults:\n  concurrency: 0\n" INST,
	  "t.yaml:2:16: ", "concurrency: '0' is out of range (expected an integer 1..256)" },
	{ "retry budget too big", "defaults:\n  retry: { budget: 1000001 }\n" INST,
	  "t.yaml:2:20: ", "retry.budget: '1000001' is out of range (expected an integer "
	  "1..1000000)" },
	{ "bad duration", "defaults:\n  timeout: { connect: 5 seconds }\n" INST,
	  "t.yaml:2:23: ", "timeout.connect: expected a duration like 5s, 250ms or 10m, got "
	  "'5 seconds'" },
	{ "zero duration", "defaults:\n  timeout: { request: 0s }\n" INST,
	  "t.yaml:2:23: ", "timeout.request: '0s' is out of range (expected a duration greater "
	  "than 0)" },
	{ "timeout not a mapping", "defaults:\n  timeout: 5s\n" INST,
	  "t.yaml:2:12: ", "timeout: expected a mapping like { connect: 5s, request: 30s }, "
	  "got '5s'" },
	{ "max_delay below base_delay", "defaults:\n  retry: { base_delay: 10s, max_delay: 5s }\n"
	  INST, "t.yaml:2:40: ", "retry.max_delay 5s is less than retry.base_delay 10s (expected "
	  "max_delay >= base_delay)" },
	{ "base_delay raised above inherited max_delay", INST "    retry: { base_delay: 1m }\n",
	  "t.yaml:5:26: ", "retry.max_delay 30s is less than retry.base_delay 1m" },
	{ "retention not a mapping", "retention: 30\n" INST,
	  "t.yaml:1:12: ", "retention: expected a mapping like { keep_last: 30, keep_for: 90d }" },
	{ "retention empty", "retention: {}\n" INST,
	  "t.yaml:1:12: ", "retention: expected keep_last, keep_for or both" },
	{ "retention misspelt key", "retention:\n  keep_lats: 3\n" INST,
	  "t.yaml:2:3: ", "unknown key 'keep_lats' in retention (did you mean 'keep_last'?)" },
	{ "retention keep_last zero", "retention: { keep_last: 0 }\n" INST,
	  "t.yaml:1:25: ", "retention.keep_last: '0' is out of range (expected an integer 1..1000000)" },
	{ "retention keep_for not a duration", "retention:\n  keep_for: 3 months\n" INST,
	  "t.yaml:2:13: ", "retention.keep_for: expected a duration like 5s, 250ms or 10m" },
	{ "checkpoint_max_age not a duration", "checkpoint_max_age: 6 hours\n" INST,
	  "t.yaml:1:21: ", "checkpoint_max_age: expected a duration like 5s, 250ms or 10m" },
	{ "signature v2", "defaults:\n  signature: v2\n" INST,
	  "t.yaml:2:14: ", "signature: expected v1 or v3, got 'v2'" },
	{ "rate_control bogus", "defaults:\n  rate_control: bogus\n" INST,
	  "t.yaml:2:17: ", "rate_control: expected adaptive or fixed, got 'bogus'" },
	{ "database empty", "database: ''\n" INST,
	  "t.yaml:1:11: ", "database: expected a database path, got ''" },
	{ "database a list", "database: [a]\n" INST,
	  "t.yaml:1:11: ", "database: expected a database path, got a sequence" },
	{ "defaults not a mapping", "defaults: [qps]\n" INST,
	  "t.yaml:1:11: ", "defaults: expected a mapping of settings" },
	{ "credentials with an unknown key", "credentials:\n  profile: a\n  key_id: x\n" INST,
	  "t.yaml:3:3: ", "unknown key 'key_id' in credentials (expected one of: profile, role_arn" },
	{ "a secret in credentials", "credentials:\n  access_key_secret: x\n" INST,
	  "t.yaml:2:3: ", "credentials: access_key_secret does not belong in this file" },
	{ "credentials role_arn not an ARN", "credentials:\n  role_arn: reader\n" INST,
	  "t.yaml:2:13: ", "credentials.role_arn: expected a role ARN" },
	{ "credentials duration too short", "credentials:\n  role_arn: acs:ram::1:role/r\n"
	  "  duration: 5m\n" INST, "t.yaml:3:13: ", "credentials.duration: expected 15m..12h" },
	{ "credentials external_id without role", "credentials:\n  profile: a\n"
	  "  external_id: x\n" INST, "t.yaml:2:3: ", "external_id, role_session_name, duration, "
	  "sts_endpoint and policy need role_arn" },
	{ "endpoint_type bogus", "instances:\n  - id: a\n    region: cn-hangzhou\n"
	  "    endpoint_type: private\n    groups: all\n", "t.yaml:4:20: ",
	  "endpoint_type: expected public or vpc, got 'private'" },
	{ "credentials not a mapping", "credentials: default\n" INST,
	  "t.yaml:1:14: ", "credentials: expected a mapping like { profile: default }, got "
	  "'default'" },
	{ "missing instances", "database: x\n",
	  "t.yaml:1:1: ", "missing 'instances' (expected a list of instances" },
	{ "empty instances list", "instances: []\n",
	  "t.yaml:1:12: ", "instances: expected a list of at least one instance, got an empty "
	  "sequence" },
	{ "instances not a sequence", "instances: {id: a}\n",
	  "t.yaml:1:12: ", "instances: expected a list of at least one instance, got a mapping" },
	{ "instances empty", "instances:\n",
	  "t.yaml:1:11: ", "got nothing" },
	{ "instance not a mapping", "instances:\n  - mqtt-a\n",
	  "t.yaml:2:5: ", "instances: expected each instance to be a mapping with id and region "
	  "or endpoint, got 'mqtt-a'" },
	{ "instance without id", "instances:\n  - region: cn-hangzhou\n    groups: all\n",
	  "t.yaml:2:5: ", "instance #1 has no id (expected id: INSTANCE_ID" },
	{ "duplicate instance id", INST "  - id: a\n    region: cn-beijing\n    groups: all\n",
	  "t.yaml:5:9: ", "duplicate instance id 'a' (first used at line 2, column 9)" },
	{ "bad id chars", "instances:\n  - id: mqtt/a\n    region: cn-hangzhou\n    groups: all\n",
	  "t.yaml:2:9: ", "id: expected letters, digits, '_', '.' and '-', got 'mqtt/a'" },
	{ "empty id", "instances:\n  - id: \"\"\n    region: cn-hangzhou\n    groups: all\n",
	  "t.yaml:2:9: ", "id: expected an instance id, got ''" },
	{ "neither region nor endpoint", "instances:\n  - id: a\n    groups: all\n",
	  "t.yaml:2:5: ", "instance 'a' has neither region nor endpoint" },
	{ "bad region", "instances:\n  - id: a\n    region: CN_Hangzhou\n    groups: all\n",
	  "t.yaml:3:13: ", "region: expected a region like cn-hangzhou (lower-case letters, "
	  "digits and '-'), got 'CN_Hangzhou'" },
	{ "no groups", "instances:\n  - id: a\n    region: cn-hangzhou\n",
	  "t.yaml:2:5: ", "instance 'a' has no groups (expected groups: all or a list" },
	{ "endpoint ftp", "instances:\n  - id: a\n    endpoint: ftp://example.com\n    groups: all\n",
	  "t.yaml:3:15: ", "endpoint: expected an http:// or https:// URL, got 'ftp://example.com'" },
	{ "endpoint http to a remote host",
	  "instances:\n  - id: a\n    endpoint: http://example.com:8080\n    groups: all\n",
	  "t.yaml:3:15: ", "plain http:// to 'example.com' is not allowed: TLS is required for "
	  "non-loopback hosts" },
	{ "endpoint http to 10.0.0.1",
	  "instances:\n  - id: a\n    endpoint: http://10.0.0.1\n    groups: all\n",
	  "t.yaml:3:15: ", "TLS is required for non-loopback hosts" },
	{ "endpoint with a path",
	  "instances:\n  - id: a\n    endpoint: https://example.com/api/v1\n    groups: all\n",
	  "t.yaml:3:15: ", "endpoint: unexpected path '/api/v1' (expected only "
	  "scheme://host[:port])" },
	{ "endpoint port 70000",
	  "instances:\n  - id: a\n    endpoint: https://example.com:70000\n    groups: all\n",
	  "t.yaml:3:15: ", "endpoint: port '70000' is out of range (expected 1..65535)" },
	{ "endpoint port 0",
	  "instances:\n  - id: a\n    endpoint: https://example.com:0\n    groups: all\n",
	  "t.yaml:3:15: ", "endpoint: port '0' is out of range" },
	{ "endpoint port not a number",
	  "instances:\n  - id: a\n    endpoint: https://example.com:http\n    groups: all\n",
	  "t.yaml:3:15: ", "endpoint: expected ':' and a port number after the host, got ':http'" },
	{ "endpoint without host",
	  "instances:\n  - id: a\n    endpoint: https://:443\n    groups: all\n",
	  "t.yaml:3:15: ", "endpoint: expected a host name after the scheme" },
	{ "endpoint bad host",
	  "instances:\n  - id: a\n    endpoint: https://exa_mple.com\n    groups: all\n",
	  "t.yaml:3:15: ", "endpoint: expected a host name or address, got 'exa_mple.com'" },
	{ "endpoint bad IPv4",
	  "instances:\n  - id: a\n    endpoint: https://300.1.1.1\n    groups: all\n",
	  "t.yaml:3:15: ", "endpoint: expected an IPv4 address, got '300.1.1.1'" },
	{ "endpoint bad IPv6",
	  "instances:\n  - id: a\n    endpoint: https://[::g]\n    groups: all\n",
	  "t.yaml:3:15: ", "endpoint: expected an IPv6 address in brackets, got '[::g]'" },
	{ "endpoint with a query",
	  "instances:\n  - id: a\n    endpoint: https://example.com/?token=s3cr3t\n"
	  "    groups: all\n",
	  "t.yaml:3:15: ", "endpoint: a query string is not allowed" },
	{ "endpoint with a fragment",
	  "instances:\n  - id: a\n    endpoint: https://example.com#x\n    groups: all\n",
	  "t.yaml:3:15: ", "endpoint: a fragment is not allowed" },
	{ "groups empty list", "instances:\n  - id: a\n    region: cn-hangzhou\n    groups: []\n",
	  "t.yaml:4:13: ", "groups: expected all or a list of group ids, got an empty sequence" },
	{ "groups some", "instances:\n  - id: a\n    region: cn-hangzhou\n    groups: some\n",
	  "t.yaml:4:13: ", "groups: expected all or a list of group ids, got 'some'" },
	{ "groups a mapping",
	  "instances:\n  - id: a\n    region: cn-hangzhou\n    groups: {GID_a: 1}\n",
	  "t.yaml:4:13: ", "groups: expected all or a list of group ids, got a mapping" },
	{ "all inside the list",
	  "instances:\n  - id: a\n    region: cn-hangzhou\n    groups: [GID_a, all]\n",
	  "t.yaml:4:21: ", "groups: 'all' cannot be listed with groups" },
	{ "duplicate group",
	  "instances:\n  - id: a\n    region: cn-hangzhou\n    groups:\n      - GID_a\n"
	  "      - GID_b\n      - GID_a\n",
	  "t.yaml:7:9: ", "duplicate group 'GID_a' (first listed at line 5, column 9)" },
	{ "group with a space",
	  "instances:\n  - id: a\n    region: cn-hangzhou\n    groups: [\"GID a\"]\n",
	  "t.yaml:4:14: ", "group 'GID a' contains a space or a non-printable character "
	  "(expected printable ASCII without spaces)" },
	{ "empty group",
	  "instances:\n  - id: a\n    region: cn-hangzhou\n    groups: [GID_a, '']\n",
	  "t.yaml:4:21: ", "groups: expected a group id, got ''" },
	{ "group a list",
	  "instances:\n  - id: a\n    region: cn-hangzhou\n    groups: [[GID_a]]\n",
	  "t.yaml:4:14: ", "groups: expected a group id, got a sequence" },
	{ "too-long group",
	  "instances:\n  - id: a\n    region: cn-hangzhou\n    groups:\n"
	  "      - GID_0123456789012345678901234567890123456789012345678901234567890\n",
	  "t.yaml:5:9: ", "characters long (expected at most 64)" },
	{ "33 levels of nesting",
	  "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
	  "t.yaml:1:33: ", "nesting deeper than 32 levels" },
	{ "32 levels are not too deep, just not a config",
	  "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
	  "t.yaml:1:1: ", "expected a mapping with 'instances' at the top level, got a sequence" },
	{ "unclosed quote", "database: \"/var/lib\n" INST,
	  "t.yaml:6:1: ", "found unexpected end of stream while scanning a quoted scalar that "
	  "started at line 1, column 11" },
	{ "bad indentation", "defaults:\n  page_size: 1\n qps: 2\n" INST,
	  "t.yaml:3:2: ", "did not find expected key while parsing a block mapping" },
	{ "unclosed flow sequence", "database: [a, b\n" INST,
	  "t.yaml:2:10: ", "did not find expected ',' or ']' while parsing a flow sequence "
	  "that started at line 1, column 11" },
	{ "tab indentation", "instances:\n\t- id: a\n",
	  "t.yaml:2:1: ", "found character that cannot start any token while scanning for the "
	  "next token (tabs cannot indent YAML; use spaces)" },
	{ "invalid UTF-8", "database: \xff\n" INST,
	  "t.yaml:1:11: ", "invalid leading UTF-8 octet" },
	{ "empty file", "", "t.yaml: ", "empty configuration, expected a mapping with 'instances'" },
	{ "only a comment", "# nothing yet\n", "t.yaml: ", "empty configuration" },
	{ "a plain scalar document", "hello\n",
	  "t.yaml:1:1: ", "expected a mapping with 'instances' at the top level, got 'hello'" },
	{ "an empty document", "---\n",
	  "t.yaml:2:1: ", "expected a mapping with 'instances' at the top level, got nothing" },
	{ "two documents", INST "---\n" INST,
	  "t.yaml:5:1: ", "a second document starts here (expected exactly one document)" },
	{ "top level a sequence", "- id: a\n",
	  "t.yaml:1:1: ", "expected a mapping with 'instances' at the top level, got a sequence" },
	{ "key not a scalar", "[a]: 1\n" INST,
	  "t.yaml:1:1: ", "expected a key name at the top level, got a sequence" },
	{ "alias without anchor", "database: *db\n" INST,
	  "t.yaml:1:11: ", "alias '*db' names no anchor" },
	{ "alias to its own ancestor", "defaults: &d\n  retry: *d\n" INST,
	  "t.yaml:2:10: ", "alias '*d' names no anchor" },
	{ "billion laughs",
	  "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
	  "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
	  "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
	  "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
	  "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
	  "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
	  "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
	  "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n",
	  "t.yaml:6:32: ", "aliases expand the configuration to more than 1048576 nodes" },
};

static void test_bad_configs(void)
{
	size_t i, n = sizeof(bad_configs) / sizeof(bad_configs[0]);

	CHECK(n >= 30);
	for (i = 0; i < n; i++) {
		const struct bad *b = &bad_configs[i];
		struct cs_error err;
		struct config *cfg = load(b->yaml, &err);
		int ok = cfg == NULL && err.kind == CS_ERR_CONFIG &&
			 !strncmp(err.msg, b->prefix, strlen(b->prefix)) &&
			 strstr(err.msg, b->fragment) && !strchr(err.msg, '\n');

		CHECK(ok);
		if (!ok)
			fprintf(stderr, "  bad config \"%s\"\n   got: %s\n  want: %s...%s...\n",
				b->what, cfg ? "(loaded)" : err.msg, b->prefix, b->fragment);
		config_free(cfg);
	}
}

/* Secrets a user might paste into a URL stay out of the message. */
static void test_endpoint_secrets(void)
{
	struct cs_error err;

	CHECK(load("instances:\n  - id: a\n    endpoint: https://user:hunter2@example.com\n"
		   "    groups: all\n", &err) == NULL);
	CHECK_CONTAINS(err.msg, "t.yaml:3:15: endpoint: a user name or password in the URL is "
		       "not allowed");
	CHECK(!strstr(err.msg, "hunter2"));
	CHECK(load("instances:\n  - id: a\n    endpoint: https://example.com/?token=s3cr3t\n"
		   "    groups: all\n", &err) == NULL);
	CHECK(!strstr(err.msg, "s3cr3t"));
}

static void test_endpoints_accepted(void)
{
	static const struct { const char *in, *want; } cases[] = {
		{ "https://example.com", "https://example.com" },
		{ "https://example.com/", "https://example.com" },
		{ "https://onsmqtt.cn-hangzhou.aliyuncs.com:443",
		  "https://onsmqtt.cn-hangzhou.aliyuncs.com:443" },
		{ "http://localhost:8080", "http://localhost:8080" },
		{ "http://127.0.0.2", "http://127.0.0.2" },
		{ "http://[::1]:18080/", "http://[::1]:18080" },
		{ "https://10.1.2.3:65535", "https://10.1.2.3:65535" },
		{ "https://[2001:db8::1]", "https://[2001:db8::1]" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cs_buf b = CS_BUF_INIT;
		struct cs_error err;
		struct config *cfg;

		buf_printf(&b, "instances:\n  - id: a\n    endpoint: %s\n    groups: all\n",
			   cases[i].in);
		cfg = load(buf_str(&b), &err);
		CHECK(cfg != NULL);
		if (cfg)
			CHECK_STR(cfg->instances[0].endpoint, cases[i].want);
		else
			fprintf(stderr, "  %s: %s\n", cases[i].in, err.msg);
		config_free(cfg);
		buf_release(&b);
	}
}

/* endpoint_policy_check alone: the one rule that config.c and http.c both apply. */
static void test_endpoint_policy(void)
{
	static const struct {
		const char *url;
		const char *want_url, *want_authority, *want_host, *want_protocols;
		int port, tls, loopback;
		enum endpoint_host_kind kind;
	} ok[] = {
		{ "http://127.0.0.1:18080", "http://127.0.0.1:18080", "127.0.0.1:18080",
		  "127.0.0.1", "http", 18080, 0, 1, ENDPOINT_HOST_IPV4 },
		{ "http://127.9.8.7/", "http://127.9.8.7", "127.9.8.7", "127.9.8.7", "http", 0, 0,
		  1, ENDPOINT_HOST_IPV4 },
		{ "http://[::1]:8443", "http://[::1]:8443", "[::1]:8443", "[::1]", "http", 8443, 0,
		  1, ENDPOINT_HOST_IPV6 },
		{ "HTTP://localhost", "http://localhost", "localhost", "localhost", "http", 0, 0, 1,
		  ENDPOINT_HOST_NAME },
		{ "http://cn-hangzhou.localhost:9000", "http://cn-hangzhou.localhost:9000",
		  "cn-hangzhou.localhost:9000", "cn-hangzhou.localhost", "http", 9000, 0, 1,
		  ENDPOINT_HOST_NAME },
		{ "https://onsmqtt.cn-hangzhou.aliyuncs.com", "https://onsmqtt.cn-hangzhou.aliyuncs.com",
		  "onsmqtt.cn-hangzhou.aliyuncs.com", "onsmqtt.cn-hangzhou.aliyuncs.com", "https", 0,
		  1, 0, ENDPOINT_HOST_NAME },
		{ "HTTPS://Example.COM:443/", "https://Example.COM:443", "Example.COM:443",
		  "Example.COM", "https", 443, 1, 0, ENDPOINT_HOST_NAME },
		{ "https://10.1.2.3", "https://10.1.2.3", "10.1.2.3", "10.1.2.3", "https", 0, 1, 0,
		  ENDPOINT_HOST_IPV4 },
		{ "https://[2001:db8::1]:1", "https://[2001:db8::1]:1", "[2001:db8::1]:1",
		  "[2001:db8::1]", "https", 1, 1, 0, ENDPOINT_HOST_IPV6 },
		{ "https://127.0.0.1", "https://127.0.0.1", "127.0.0.1", "127.0.0.1", "https", 0, 1,
		  1, ENDPOINT_HOST_IPV4 },
	};
	static const struct { const char *url, *msg; } bad[] = {
		/* plain http leaves loopback: refused whatever else is right */
		{ "http://example.com", "endpoint: plain http:// to 'example.com' is not allowed: "
		  "TLS is required for non-loopback hosts" },
		{ "http://10.0.0.1:80", "endpoint: plain http:// to '10.0.0.1' is not allowed" },
		{ "http://128.0.0.1", "endpoint: plain http:// to '128.0.0.1' is not allowed" },
		{ "http://[::2]", "endpoint: plain http:// to '[::2]' is not allowed" },
		{ "http://localhost.example.com", "endpoint: plain http:// to "
		  "'localhost.example.com' is not allowed" },
		{ "http://evillocalhost", "endpoint: plain http:// to 'evillocalhost' is not" },
		{ "http://onsmqtt.cn-hangzhou.aliyuncs.com", "TLS is required for non-loopback" },
		/* other schemes, or none */
		{ "ftp://example.com", "endpoint: expected an http:// or https:// URL, got "
		  "'ftp://example.com'" },
		{ "file:///etc/passwd", "endpoint: expected an http:// or https:// URL" },
		{ "gopher://127.0.0.1", "endpoint: expected an http:// or https:// URL" },
		{ "example.com", "endpoint: expected an http:// or https:// URL, got 'example.com'" },
		{ "https:/example.com", "endpoint: expected an http:// or https:// URL" },
		{ "", "endpoint: expected an http:// or https:// URL, got ''" },
		/* anything but scheme://host[:port] */
		{ "https://user:pw@example.com", "endpoint: a user name or password in the URL is "
		  "not allowed (expected only scheme://host[:port])" },
		{ "http://user@127.0.0.1", "endpoint: a user name or password in the URL" },
		{ "https://example.com/v1", "endpoint: unexpected path '/v1' (expected only "
		  "scheme://host[:port])" },
		{ "https://example.com/?a=b", "endpoint: a query string is not allowed" },
		{ "https://example.com?a=b", "endpoint: a query string is not allowed" },
		{ "https://example.com#top", "endpoint: a fragment is not allowed" },
		{ "https://", "endpoint: expected a host name after the scheme, got 'https://'" },
		{ "https://:443", "endpoint: expected a host name after the scheme" },
		{ "https://exa_mple.com", "endpoint: expected a host name or address, got "
		  "'exa_mple.com'" },
		{ "https://-a.example.com", "endpoint: expected a host name or address" },
		{ "https://a..b", "endpoint: expected a host name or address" },
		{ "https://999.1.1.1", "endpoint: expected an IPv4 address, got '999.1.1.1'" },
		{ "https://1.2.3", "endpoint: expected an IPv4 address, got '1.2.3'" },
		{ "https://[::g]", "endpoint: expected an IPv6 address in brackets, got '[::g]'" },
		{ "https://[::1", "endpoint: expected an IPv6 address in brackets" },
		{ "https://example.com:", "endpoint: expected ':' and a port number after the "
		  "host, got ':'" },
		{ "https://example.com:8a", "endpoint: expected ':' and a port number after the host" },
		{ "https://[::1]x", "endpoint: expected ':' and a port number after the host, got "
		  "'x'" },
		{ "https://example.com:0", "endpoint: port '0' is out of range (expected 1..65535)" },
		{ "https://example.com:65536", "endpoint: port '65536' is out of range" },
		{ "https://example.com:1234567", "endpoint: expected ':' and a port number" },
	};
	struct endpoint_info info;
	struct cs_error err;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cs_error_clear(&err);
		CHECK_INT(endpoint_policy_check(ok[i].url, &info, &err), 0);
		if (err.kind != CS_ERR_NONE) {
			fprintf(stderr, "  %s: %s\n", ok[i].url, err.msg);
			continue;
		}
		CHECK_STR(info.url, ok[i].want_url);
		CHECK_STR(info.authority, ok[i].want_authority);
		CHECK_STR(info.host, ok[i].want_host);
		CHECK_STR(info.curl_protocols, ok[i].want_protocols);
		CHECK_INT(info.port, ok[i].port);
		CHECK_INT(info.tls, ok[i].tls);
		CHECK_INT(info.loopback, ok[i].loopback);
		CHECK_INT(info.host_kind, ok[i].kind);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cs_error_clear(&err);
		CHECK_INT(endpoint_policy_check(bad[i].url, &info, &err), -1);
		CHECK_INT(err.kind, CS_ERR_CONFIG);
		CHECK_CONTAINS(err.msg, bad[i].msg);
		/* a message starts with what it is about, never with the URL */
		CHECK(!strncmp(err.msg, "endpoint: ", 10));
	}
	/* secrets in a URL stay out of the message */
	cs_error_clear(&err);
	CHECK(endpoint_policy_check("https://u:hunter2@example.com", &info, &err) < 0);
	CHECK(!strstr(err.msg, "hunter2"));
	cs_error_clear(&err);
	CHECK(endpoint_policy_check("https://example.com/?token=s3cr3t", &info, &err) < 0);
	CHECK(!strstr(err.msg, "s3cr3t"));
	cs_error_clear(&err);
	CHECK(endpoint_policy_check("https://example.com#s3cr3t", &info, &err) < 0);
	CHECK(!strstr(err.msg, "s3cr3t"));
	/* a host longer than any name is refused, not cut */
	{
		struct cs_buf b = CS_BUF_INIT;

		buf_puts(&b, "https://");
		for (i = 0; i < 300; i++)
			buf_puts(&b, "a");
		cs_error_clear(&err);
		CHECK(endpoint_policy_check(buf_str(&b), &info, &err) < 0);
		CHECK_CONTAINS(err.msg, "endpoint: expected a host name or address");
		buf_release(&b);
	}
}

static void test_too_large(void)
{
	size_t len = CFG_MAX_FILE_BYTES + 1;
	char *big = malloc(len + 1);
	struct config *cfg = NULL;
	struct cs_error err;

	CHECK(big != NULL);
	if (!big)
		return;
	/* a valid file padded with a comment, so only the size is wrong */
	memset(big, '#', len);
	memcpy(big, INST, strlen(INST));
	big[len] = '\0';
	cs_error_clear(&err);
	CHECK(config_load_string(&cfg, "t.yaml", big, len, &err) < 0);
	CHECK(cfg == NULL);
	CHECK_INT(err.kind, CS_ERR_CONFIG);
	CHECK_STR(err.msg, "t.yaml: configuration is 1048577 bytes (expected at most 1048576)");
	/* exactly the limit is fine */
	cs_error_clear(&err);
	CHECK(config_load_string(&cfg, "t.yaml", big, len - 1, &err) == 0);
	config_free(cfg);
	free(big);
}

static int write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		return -1;
	if (fwrite(text, 1, len, f) != len) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}

static void test_load_file(const char *dir)
{
	char path[PATH_MAX];
	struct config *cfg = NULL;
	struct cs_error err;
	char *big;
	size_t len = CFG_MAX_FILE_BYTES + 10;

	snprintf(path, sizeof(path), "%s/missing.yaml", dir);
	cs_error_clear(&err);
	CHECK(config_load_file(&cfg, path, &err) < 0);
	CHECK(cfg == NULL);
	CHECK_INT(err.kind, CS_ERR_CONFIG);
	CHECK_CONTAINS(err.msg, "cannot read ");
	CHECK_CONTAINS(err.msg, path);
	CHECK_CONTAINS(err.msg, strerror(ENOENT));

	cs_error_clear(&err);
	CHECK(config_load_file(&cfg, dir, &err) < 0);
	CHECK_CONTAINS(err.msg, "cannot read ");

	snprintf(path, sizeof(path), "%s/ok.yaml", dir);
	CHECK(write_file(path, INST, strlen(INST)) == 0);
	cs_error_clear(&err);
	CHECK(config_load_file(&cfg, path, &err) == 0);
	if (cfg) {
		CHECK_STR(cfg->path, path);
		CHECK_STR(cfg->instances[0].id, "a");
	}
	config_free(cfg);
	cfg = NULL;

	/* messages name the file as given */
	snprintf(path, sizeof(path), "%s/bad.yaml", dir);
	CHECK(write_file(path, BAD_QPS, strlen(BAD_QPS)) == 0);
	cs_error_clear(&err);
	CHECK(config_load_file(&cfg, path, &err) < 0);
	CHECK(!strncmp(err.msg, path, strlen(path)));
	CHECK_CONTAINS(err.msg, "bad.yaml:2:8: qps:");

	big = malloc(len);
	CHECK(big != NULL);
	if (big) {
		memset(big, '#', len);
		snprintf(path, sizeof(path), "%s/big.yaml", dir);
		CHECK(write_file(path, big, len) == 0);
		cs_error_clear(&err);
		CHECK(config_load_file(&cfg, path, &err) < 0);
		CHECK_CONTAINS(err.msg, "big.yaml: configuration is 1048586 bytes (expected at most "
			       "1048576)");
		free(big);
	}
}

static void touch(const char *path)
{
	CHECK(write_file(path, "", 0) == 0);
}

/* config_find's order: -c, $CREDSYNC_CONFIG, ./credsync.yaml, $XDG_CONFIG_HOME (or
 * ~/.config), /etc. */
static void test_find(const char *dir)
{
	char cwd[PATH_MAX], path[PATH_MAX], home[256], xdg[256], want[PATH_MAX];
	char *found;
	int etc = access("/etc/credsync/config.yaml", F_OK) == 0;

	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	snprintf(home, sizeof(home), "%s/home", dir);
	snprintf(xdg, sizeof(xdg), "%s/xdg", dir);
	CHECK(mkdir(home, 0700) == 0);
	CHECK(mkdir(xdg, 0700) == 0);
	CHECK(chdir(dir) == 0);
	setenv("HOME", home, 1);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("CREDSYNC_CONFIG");

	/* nothing anywhere: /etc or nothing */
	found = config_find(NULL);
	if (etc)
		CHECK_STR(found, "/etc/credsync/config.yaml");
	else
		CHECK(found == NULL);
	free(found);

	/* ~/.config when XDG_CONFIG_HOME is unset, empty, or relative */
	snprintf(path, sizeof(path), "%s/.config", home);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/.config/credsync", home);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(want, sizeof(want), "%s/.config/credsync/config.yaml", home);
	touch(want);
	found = config_find(NULL);
	CHECK_STR(found, want);
	free(found);
	setenv("XDG_CONFIG_HOME", "", 1);
	found = config_find(NULL);
	CHECK_STR(found, want);
	free(found);
	setenv("XDG_CONFIG_HOME", "relative/dir", 1);
	found = config_find(NULL);
	CHECK_STR(found, want);
	free(found);

	/* $XDG_CONFIG_HOME replaces ~/.config; a missing file there falls through to /etc */
	setenv("XDG_CONFIG_HOME", xdg, 1);
	found = config_find(NULL);
	if (etc)
		CHECK_STR(found, "/etc/credsync/config.yaml");
	else
		CHECK(found == NULL);
	free(found);
	snprintf(path, sizeof(path), "%s/credsync", xdg);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(want, sizeof(want), "%s/credsync/config.yaml", xdg);
	touch(want);
	found = config_find(NULL);
	CHECK_STR(found, want);
	free(found);

	/* ./credsync.yaml beats the XDG file */
	touch("credsync.yaml");
	found = config_find(NULL);
	CHECK_STR(found, "./credsync.yaml");
	free(found);

	/* $CREDSYNC_CONFIG beats that, even when it does not exist; empty means unset */
	setenv("CREDSYNC_CONFIG", "/nonexistent/env.yaml", 1);
	found = config_find(NULL);
	CHECK_STR(found, "/nonexistent/env.yaml");
	free(found);
	found = config_find("");
	CHECK_STR(found, "/nonexistent/env.yaml");
	free(found);
	setenv("CREDSYNC_CONFIG", "", 1);
	found = config_find(NULL);
	CHECK_STR(found, "./credsync.yaml");
	free(found);

	/* -c beats everything, even when it does not exist */
	setenv("CREDSYNC_CONFIG", "/nonexistent/env.yaml", 1);
	found = config_find("/nonexistent/explicit.yaml");
	CHECK_STR(found, "/nonexistent/explicit.yaml");
	free(found);

	unsetenv("CREDSYNC_CONFIG");
	unsetenv("XDG_CONFIG_HOME");
	CHECK(chdir(cwd) == 0);
}

static void remove_tree(const char *dir)
{
	static const char *const files[] = {
		"ok.yaml", "bad.yaml", "big.yaml", "credsync.yaml",
		"home/.config/credsync/config.yaml", "home/.config/credsync", "home/.config", "home",
		"xdg/credsync/config.yaml", "xdg/credsync", "xdg",
	};
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		remove(path);
	}
	CHECK(rmdir(dir) == 0);
}

/* Per-instance credentials and VPC endpoints (PRODUCT.md's example). */
static void test_instance_credentials(void)
{
	static const char yaml[] =
		"credentials:\n  profile: default\n"
		"instances:\n"
		"  - id: a\n    region: cn-hangzhou\n    groups: all\n"
		"  - id: b\n    region: cn-shanghai\n    endpoint_type: vpc\n    groups: all\n"
		"    credentials:\n      role_arn: acs:ram::1234567890123456:role/credsync-reader\n"
		"      external_id: audit-2026\n      role_session_name: credsync\n"
		"      duration: 1h\n"
		"  - id: c\n    region: cn-beijing\n    groups: all\n"
		"    credentials: { profile: account-c }\n";
	struct cs_error err;
	struct config *cfg = load(yaml, &err);

	CHECK(cfg != NULL);
	if (!cfg) {
		fprintf(stderr, "  %s\n", err.msg);
		return;
	}
	CHECK(cfg->creds.set && !strcmp(cfg->profile, "default"));
	CHECK(!cfg->instances[0].creds.set);
	CHECK(!strcmp(cfg->instances[0].endpoint, "https://onsmqtt.cn-hangzhou.aliyuncs.com"));
	CHECK(!strcmp(cfg->instances[1].endpoint, "https://onsmqtt-vpc.cn-shanghai.aliyuncs.com"));
	CHECK(cfg->instances[1].creds.set && !cfg->instances[1].creds.profile);
	CHECK(!strcmp(cfg->instances[1].creds.role_arn,
		      "acs:ram::1234567890123456:role/credsync-reader"));
	CHECK(!strcmp(cfg->instances[1].creds.external_id, "audit-2026"));
	CHECK(cfg->instances[1].creds.duration_ms == 3600000);
	CHECK(!strcmp(cfg->instances[2].creds.profile, "account-c"));
	config_free(cfg);
}

int main(void)
{
	char dir[] = "/tmp/credsync-test-config-XXXXXX";

	test_instance_credentials();
	test_full();
	test_builtin_defaults();
	test_defaults_after_instances();
	test_nested_overlay();
	test_aliases();
	test_bad_configs();
	test_endpoint_secrets();
	test_endpoints_accepted();
	test_endpoint_policy();
	test_too_large();
	CHECK(mkdtemp(dir) != NULL);
	test_load_file(dir);
	test_find(dir);
	remove_tree(dir);
	TEST_DONE();
}
