/*
 * config_instance.c - the `instances` list and `credentials` maps of credsync.yaml: ids,
 * regions, endpoints (by endpoint.h's policy), groups, and the identity each may sign with.
 * See config_int.h.
 */
#include "config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "endpoint.h"

#define CFG_MAX_GROUP_LEN 64

struct named {
	const char *name;
	const struct ynode *node;
	size_t index;
};

static int cmp_named(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Finds the earliest entry that repeats an earlier one, by sorting rather than comparing
 * every pair, since a hostile file may list many.  Returns 1 and sets *first and *again to
 * the first occurrence and that repeat, 0 when all differ, or -1 when out of memory. */
static int find_duplicate(struct named *v, size_t n, struct named *first, struct named *again)
{
	struct named *sorted;
	size_t i, run = 0;
	int found = 0;

	if (n < 2)
		return 0;
	sorted = malloc(n * sizeof(*sorted));
	if (!sorted)
		return -1;
	memcpy(sorted, v, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_named);
	for (i = 1; i < n; i++) {
		if (strcmp(sorted[i].name, sorted[run].name)) {
			run = i;
			continue;
		}
		/* sorted[i - 1] is the earliest repeat of this name when i - 1 == run */
		if (i - 1 == run && (!found || sorted[i].index < again->index)) {
			*first = sorted[run];
			*again = sorted[i];
			found = 1;
		}
	}
	free(sorted);
	return found;
}

int cfg_parse_credentials_map(struct cfg_loader *ld, const struct ynode *map,
			      struct cfg_credentials *c)
{
	static const char *const secrets[] = { "access_key_id", "access_key_secret",
					       "security_token", "sts_token", NULL };
	const struct ynode *v;
	size_t i;

	if (cfg_want_mapping(ld, map, "credentials", "a mapping like { profile: default }") < 0)
		return -1;
	for (i = 0; i + 1 < map->nitems; i += 2)
		if (map->items[i]->kind == YNODE_SCALAR && cfg_in_list(secrets, map->items[i]->value))
			return cfg_fail(ld, map->items[i], "credentials: %s does not belong in this "
					"file: keys, secrets and tokens stay in the environment or a "
					"profile (name it with profile:)", map->items[i]->value);
	if (cfg_check_keys(ld, map, cfg_credentials_keys, "in credentials") < 0)
		return -1;
	c->set = 1;
	c->line = map->line;
	c->column = map->column;
	if ((v = ynode_map_get(map, "profile")) &&
	    cfg_set_string(ld, v, "credentials.profile", "a profile name", &c->profile) < 0)
		return -1;
	if ((v = ynode_map_get(map, "role_arn"))) {
		if (cfg_set_string(ld, v, "credentials.role_arn", "a role ARN like "
				   "acs:ram::1234567890123456:role/NAME", &c->role_arn) < 0)
			return -1;
		if (strncmp(c->role_arn, "acs:ram::", 9) || !strstr(c->role_arn, ":role/"))
			return cfg_fail(ld, v, "credentials.role_arn: expected a role ARN like "
					"acs:ram::1234567890123456:role/NAME, got '%s'", c->role_arn);
	}
	if ((v = ynode_map_get(map, "external_id")) &&
	    cfg_set_string(ld, v, "credentials.external_id", "a string", &c->external_id) < 0)
		return -1;
	if ((v = ynode_map_get(map, "role_session_name")) &&
	    cfg_set_string(ld, v, "credentials.role_session_name", "a session name",
			   &c->role_session_name) < 0)
		return -1;
	if ((v = ynode_map_get(map, "sts_endpoint")) &&
	    cfg_set_string(ld, v, "credentials.sts_endpoint", "a host or URL", &c->sts_endpoint) < 0)
		return -1;
	if ((v = ynode_map_get(map, "policy")) &&
	    cfg_set_string(ld, v, "credentials.policy", "a JSON policy", &c->policy) < 0)
		return -1;
	if ((v = ynode_map_get(map, "duration"))) {
		if (cfg_get_duration(ld, v, "credentials.duration", &c->duration_ms) < 0)
			return -1;
		if (c->duration_ms < 15 * 60000LL || c->duration_ms > 12 * 3600000LL)
			return cfg_fail(ld, v, "credentials.duration: expected 15m..12h (STS "
					"DurationSeconds 900..43200)");
	}
	if (!c->profile && !c->role_arn)
		return cfg_fail(ld, map, "credentials: expected profile, role_arn or both");
	if (!c->role_arn && (c->external_id || c->role_session_name || c->duration_ms ||
			     c->sts_endpoint || c->policy))
		return cfg_fail(ld, map, "credentials: external_id, role_session_name, duration, "
				"sts_endpoint and policy need role_arn");
	return 0;
}

/* The endpoint policy is endpoint.c's, shared with http.c; its message gains the position. */
static int parse_endpoint(struct cfg_loader *ld, const struct ynode *n, char **out)
{
	struct cs_error perr = { CS_ERR_NONE, "" };
	struct endpoint_info info;
	const char *s;

	if (cfg_get_string(ld, n, "endpoint", "a URL like https://HOST[:PORT]", &s) < 0)
		return -1;
	if (endpoint_policy_check(s, &info, &perr) < 0)
		return cfg_fail(ld, n, "%s", perr.msg);
	if (!(*out = strdup(info.url)))
		return cfg_nomem(ld);
	return 0;
}

static int parse_groups(struct cfg_loader *ld, const struct ynode *n, struct cfg_instance *inst)
{
	static const char what[] = "all or a list of group ids";
	char q[YNODE_DESCRIBE_MAX], q2[YNODE_DESCRIBE_MAX];
	struct named *names = NULL, first, again;
	size_t i;
	int ret = -1, dup;

	if (n->kind == YNODE_SCALAR && !ynode_is_null(n) && !strcmp(n->value, "all") && n->len == 3) {
		inst->groups_all = 1;
		return 0;
	}
	if (n->kind != YNODE_SEQUENCE || !n->nitems)
		return cfg_fail(ld, n, "groups: expected %s, got %s", what,
				ynode_describe(n, q, sizeof(q)));
	inst->groups = calloc(n->nitems, sizeof(*inst->groups));
	names = calloc(n->nitems, sizeof(*names));
	if (!inst->groups || !names) {
		cfg_nomem(ld);
		goto out;
	}
	inst->ngroups = n->nitems;
	for (i = 0; i < n->nitems; i++) {
		const struct ynode *g = n->items[i];
		size_t j;

		if (g->kind != YNODE_SCALAR || ynode_is_null(g) || !g->len) {
			cfg_fail(ld, g, "groups: expected a group id, got %s",
				 ynode_describe(g, q, sizeof(q)));
			goto out;
		}
		if (!strcmp(g->value, "all") && g->len == 3) {
			cfg_fail(ld, g, "groups: 'all' cannot be listed with groups (expected "
				 "groups: all on its own, or only group ids)");
			goto out;
		}
		if (g->len > CFG_MAX_GROUP_LEN) {
			cfg_fail(ld, g, "group %s is %zu characters long (expected at most %d)",
				 ynode_describe(g, q, sizeof(q)), g->len, CFG_MAX_GROUP_LEN);
			goto out;
		}
		for (j = 0; j < g->len; j++) {
			unsigned char c = (unsigned char)g->value[j];

			if (c <= 0x20 || c >= 0x7f) {
				cfg_fail(ld, g, "group %s contains a space or a non-printable "
					 "character "
					 "(expected printable ASCII without spaces)",
					 ynode_describe(g, q, sizeof(q)));
				goto out;
			}
		}
		if (!(inst->groups[i] = strdup(g->value))) {
			cfg_nomem(ld);
			goto out;
		}
		names[i].name = inst->groups[i];
		names[i].node = g;
		names[i].index = i;
	}
	dup = find_duplicate(names, n->nitems, &first, &again);
	if (dup < 0) {
		cfg_nomem(ld);
		goto out;
	}
	if (dup) {
		cfg_fail(ld, again.node, "duplicate group %s (first listed at line %d, column %d)",
			 yamltree_quote(again.name, strlen(again.name), q2, sizeof(q2)),
			 first.node->line,
			 first.node->column);
		goto out;
	}
	ret = 0;
out:
	free(names);
	return ret;
}

static int parse_instance(struct cfg_loader *ld, const struct ynode *map, size_t index,
			  const struct config *cfg, struct cfg_instance *inst)
{
	char where[YAMLTREE_QUOTE_MAX + 32], q[YNODE_DESCRIBE_MAX];
	const struct ynode *id, *endpoint = NULL, *groups = NULL;
	const char *s;
	size_t i;

	if (map->kind != YNODE_MAPPING)
		return cfg_fail(ld, map, "instances: expected each instance to be a mapping with id "
				"and region or endpoint, got %s", ynode_describe(map, q, sizeof(q)));
	inst->line = map->line;
	inst->column = map->column;
	id = ynode_map_get(map, "id");
	if (id && id->kind == YNODE_SCALAR && !ynode_is_null(id) && id->len)
		snprintf(where, sizeof(where), "in instance %s",
			 yamltree_quote(id->value, id->len, q, sizeof(q)));
	else
		snprintf(where, sizeof(where), "in instance #%zu", index + 1);
	if (cfg_check_keys(ld, map, cfg_instance_keys, where) < 0)
		return -1;
	if (!id)
		return cfg_fail(ld, map, "instance #%zu has no id (expected id: INSTANCE_ID, like "
				"mqtt-cn-0pp1ldu0s0b)", index + 1);
	if (cfg_get_string(ld, id, "id", "an instance id", &s) < 0)
		return -1;
	if (!cfg_check_charset(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			       "0123456789_.-"))
		return cfg_fail(ld, id, "id: expected letters, digits, '_', '.' and '-', got %s",
				ynode_describe(id, q, sizeof(q)));
	if (!(inst->id = strdup(s)) || cfg_settings_copy(ld, &inst->s, &cfg->defaults) < 0)
		return cfg_nomem(ld);
	for (i = 0; i + 1 < map->nitems; i += 2) {
		const struct ynode *k = map->items[i], *v = map->items[i + 1];
		int r = cfg_apply_setting(ld, k, v, &inst->s);

		if (r < 0)
			return -1;
		if (r)
			continue;
		if (ynode_key_is(k, "region")) {
			if (cfg_get_string(ld, v, "region", "a region like cn-hangzhou", &s) < 0)
				return -1;
			/* the region becomes a label of the endpoint's host name, so it must be
			 * one: at most 63 characters, no '-' at either end (found by fuzz_config) */
			if (!cfg_check_charset(s, "abcdefghijklmnopqrstuvwxyz0123456789-") ||
			    !endpoint_hostname_valid(s, strlen(s)))
				return cfg_fail(ld, v, "region: expected a region like cn-hangzhou "
						"(lower-case letters, digits and '-'), got %s",
						ynode_describe(v, q, sizeof(q)));
			if (!(inst->region = strdup(s)))
				return cfg_nomem(ld);
		} else if (ynode_key_is(k, "endpoint")) {
			endpoint = v;
		} else if (ynode_key_is(k, "groups")) {
			groups = v;
		} else if (ynode_key_is(k, "credentials")) {
			if (cfg_parse_credentials_map(ld, v, &inst->creds) < 0)
				return -1;
		} else if (ynode_key_is(k, "endpoint_type")) {
			if (cfg_get_string(ld, v, "endpoint_type", "public or vpc", &s) < 0)
				return -1;
			if (!strcmp(s, "vpc"))
				inst->endpoint_vpc = 1;
			else if (strcmp(s, "public"))
				return cfg_fail(ld, v, "endpoint_type: expected public or vpc, "
						"got %s",
						ynode_describe(v, q, sizeof(q)));
		}
	}
	if (endpoint && parse_endpoint(ld, endpoint, &inst->endpoint) < 0)
		return -1;
	if (!endpoint && !inst->region)
		return cfg_fail(ld, map, "instance %s has neither region nor endpoint (expected "
				"region: cn-hangzhou or endpoint: https://HOST)",
				yamltree_quote(inst->id, strlen(inst->id), q, sizeof(q)));
	if (!groups)
		return cfg_fail(ld, map, "instance %s has no groups (expected groups: all or a list "
				"of group ids)",
				yamltree_quote(inst->id, strlen(inst->id), q, sizeof(q)));
	if (parse_groups(ld, groups, inst) < 0)
		return -1;
	if (!inst->endpoint) {
		struct cs_buf b = CS_BUF_INIT;

		buf_printf(&b, "https://onsmqtt%s.%s.aliyuncs.com", inst->endpoint_vpc ? "-vpc" : "",
			   inst->region);
		if (!(inst->endpoint = buf_detach(&b)))
			return cfg_nomem(ld);
	}
	return 0;
}

int cfg_parse_instances(struct cfg_loader *ld, const struct ynode *seq, struct config *cfg)
{
	char q[YNODE_DESCRIBE_MAX];
	struct named *ids = NULL, first, again;
	size_t i;
	int ret = -1, dup;

	if (seq->kind != YNODE_SEQUENCE || !seq->nitems)
		return cfg_fail(ld, seq, "instances: expected a list of at least one instance, "
				"got %s",
				ynode_describe(seq, q, sizeof(q)));
	cfg->instances = calloc(seq->nitems, sizeof(*cfg->instances));
	ids = calloc(seq->nitems, sizeof(*ids));
	if (!cfg->instances || !ids) {
		cfg_nomem(ld);
		goto out;
	}
	cfg->ninstances = seq->nitems;
	for (i = 0; i < seq->nitems; i++) {
		if (parse_instance(ld, seq->items[i], i, cfg, &cfg->instances[i]) < 0)
			goto out;
		ids[i].name = cfg->instances[i].id;
		ids[i].node = ynode_map_get(seq->items[i], "id");
		ids[i].index = i;
	}
	dup = find_duplicate(ids, seq->nitems, &first, &again);
	if (dup < 0) {
		cfg_nomem(ld);
		goto out;
	}
	if (dup) {
		cfg_fail(ld, again.node, "duplicate instance id %s (first used at line %d, "
			 "column %d)", yamltree_quote(again.name, strlen(again.name), q, sizeof(q)),
			 first.node->line,
			 first.node->column);
		goto out;
	}
	ret = 0;
out:
	free(ids);
	return ret;
}
