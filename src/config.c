/*
 * config.c - credsync.yaml: a yamltree checked against the schema of PRODUCT.md into a
 * struct config.
 *
 * Two passes keep each simple.  yamltree.c turns the text into a tree of nodes that remember
 * where they were written and enforces the limits (size, depth, one document, alias
 * expansion).  This file, config_value.c and config_instance.c walk that tree against the
 * schema and fill struct config, so every message can name the line and column of the node
 * at fault.  The tree is freed in one place; struct config holds only its own copies.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "config_int.h"

/* An alias-free file of CFG_MAX_FILE_BYTES cannot hold more nodes than it has bytes, so more
 * than that can only come from aliases multiplying each other (billion laughs).  The tree
 * itself never grows with aliases, but instances copy their groups, so the bound matters. */
#define CFG_MAX_EXPANDED_NODES ((size_t)CFG_MAX_FILE_BYTES)

static int parse_credentials(struct cfg_loader *ld, const struct ynode *map, struct config *cfg)
{
	if (cfg_parse_credentials_map(ld, map, &cfg->creds) < 0)
		return -1;
	if (cfg->creds.profile && !(cfg->profile = strdup(cfg->creds.profile)))
		return cfg_nomem(ld);
	return 0;
}

/* retention: { keep_last: N, keep_for: DURATION }: the policy of `prune`, applied after
 * every sync; with both, a snapshot is kept while either rule keeps it. */
static int parse_retention(struct cfg_loader *ld, const struct ynode *map, struct config *cfg)
{
	const struct ynode *v;
	int n;

	if (cfg_want_mapping(ld, map, "retention",
			     "a mapping like { keep_last: 30, keep_for: 90d }") < 0 ||
	    cfg_check_keys(ld, map, cfg_retention_keys, "in retention") < 0)
		return -1;
	if (!ynode_map_get(map, "keep_last") && !ynode_map_get(map, "keep_for"))
		return cfg_fail(ld, map, "retention: expected keep_last, keep_for or both (an empty "
				"policy would keep everything; remove the key instead)");
	v = ynode_map_get(map, "keep_last");
	if (v) {
		if (cfg_get_int(ld, v, "retention.keep_last", 1, 1000000, &n) < 0)
			return -1;
		cfg->retention_keep_last = n;
	}
	v = ynode_map_get(map, "keep_for");
	if (v && cfg_get_duration(ld, v, "retention.keep_for", &cfg->retention_keep_for_ms) < 0)
		return -1;
	return 0;
}

static int parse_defaults(struct cfg_loader *ld, const struct ynode *map, struct config *cfg)
{
	size_t i;

	if (cfg_want_mapping(ld, map, "defaults",
			     "a mapping of settings like { page_size: 100 }") < 0 ||
	    cfg_check_keys(ld, map, cfg_settings_keys, "in defaults") < 0)
		return -1;
	for (i = 0; i + 1 < map->nitems; i += 2)
		if (cfg_apply_setting(ld, map->items[i], map->items[i + 1], &cfg->defaults) < 0)
			return -1;
	return 0;
}

/*
 * The service blocks a source IP above 300 calls a second per API: no setting of qps may
 * pass qps_hard_cap silently.  Checked once every instance's settings are resolved, at the
 * instance that would pass it.
 */
static int check_hard_caps(struct cfg_loader *ld, const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->ninstances; i++) {
		const struct cfg_instance *inst = &cfg->instances[i];

		if (inst->s.qps > inst->s.qps_hard_cap)
			return cfg_fail_at(ld, inst->line, inst->column, "instance '%s': qps %g is "
					   "above qps_hard_cap %g (the service blocks a source IP "
					   "above 300 calls a second per API); lower qps, or raise "
					   "qps_hard_cap explicitly if this endpoint allows more",
					   inst->id, inst->s.qps, inst->s.qps_hard_cap);
	}
	return 0;
}

static int load_tree(struct cfg_loader *ld, const struct ynode *root, struct config *cfg)
{
	const struct ynode *v;
	char q[YNODE_DESCRIBE_MAX];
	size_t i;

	if (!root)
		return cs_error_set(ld->err, CS_ERR_CONFIG, "%s: empty configuration, expected a "
				    "mapping with 'instances'", ld->name);
	if (root->kind != YNODE_MAPPING)
		return cfg_fail(ld, root, "expected a mapping with 'instances' at the top level, "
				"got %s",
				ynode_describe(root, q, sizeof(q)));
	if (cfg_check_keys(ld, root, cfg_top_keys, "at the top level") < 0)
		return -1;
	/* in file order, except that instances wait until defaults are known */
	for (i = 0; i + 1 < root->nitems; i += 2) {
		const struct ynode *k = root->items[i];
		int r = 0;

		v = root->items[i + 1];
		if (ynode_key_is(k, "database"))
			r = cfg_set_string(ld, v, "database", "a database path", &cfg->database);
		else if (ynode_key_is(k, "credentials"))
			r = parse_credentials(ld, v, cfg);
		else if (ynode_key_is(k, "defaults"))
			r = parse_defaults(ld, v, cfg);
		else if (ynode_key_is(k, "metrics_file"))
			r = cfg_set_string(ld, v, "metrics_file", "a path", &cfg->metrics_file);
		else if (ynode_key_is(k, "checkpoint_max_age"))
			r = cfg_get_duration(ld, v, "checkpoint_max_age",
					     &cfg->checkpoint_max_age_ms);
		else if (ynode_key_is(k, "finalize_max_age"))
			r = cfg_get_duration(ld, v, "finalize_max_age", &cfg->finalize_max_age_ms);
		else if (ynode_key_is(k, "retention"))
			r = parse_retention(ld, v, cfg);
		if (r < 0)
			return -1;
	}
	v = ynode_map_get(root, "instances");
	if (!v)
		return cfg_fail(ld, root, "missing 'instances' (expected a list of instances, each "
				"with id, region or endpoint, and groups)");
	if (cfg_parse_instances(ld, v, cfg) < 0)
		return -1;
	return check_hard_caps(ld, cfg);
}

/* ---- public ---- */

/* Fills s with the built-in defaults of PRODUCT.md; s->ca_file is set to NULL without
 * freeing what was there, so s must not own a string yet. */
void config_settings_default(struct cfg_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->page_size = 100;
	s->qps = 100;
	s->qps_hard_cap = 250;
	s->concurrency = 4;
	s->connect_timeout_ms = 5 * 1000;
	s->request_timeout_ms = 30 * 1000;
	s->max_attempts = 8;
	s->base_delay_ms = 1000;
	s->max_delay_ms = 30 * 1000;
	s->deadline_ms = 15 * 60 * 1000;
	s->retry_budget = 500;
	s->signature = CFG_SIG_V3;
	s->rate_control = CFG_RATE_ADAPTIVE;
	s->ca_file = NULL;
	s->tolerance_count = -1;
	s->tolerance_pct = 0.1;
	s->max_pages = 100000;
}

int64_t config_tolerance(const struct cfg_settings *s, int64_t total)
{
	int64_t t;

	if (s->tolerance_count >= 0)
		return s->tolerance_count;
	t = (int64_t)((double)(total > 0 ? total : 0) * s->tolerance_pct / 100.0);
	return t > 1 ? t : 1;
}

/* On failure returns -1 with err set (CS_ERR_CONFIG, CS_ERR_NOMEM) and *out NULL; on success
 * *out is the caller's, freed with config_free.  text need not be NUL-terminated. */
int config_load_string(struct config **out, const char *name, const char *text, size_t len,
		       struct cs_error *err)
{
	static const struct yamltree_limits lim = { CFG_MAX_DEPTH, CFG_MAX_EXPANDED_NODES };
	struct cfg_loader ld;
	struct yamltree *tree = NULL;
	struct config *cfg = NULL;
	int ret = -1;

	*out = NULL;
	if (!name)
		name = "(config)";
	ld.name = name;
	ld.err = err;
	if (len > CFG_MAX_FILE_BYTES)
		return cs_error_set(err, CS_ERR_CONFIG, "%s: configuration is %zu bytes "
				    "(expected at most %d)", name, len, CFG_MAX_FILE_BYTES);
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->path = strdup(name))) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	config_settings_default(&cfg->defaults);
	cfg->checkpoint_max_age_ms = 6 * 3600 * 1000;
	cfg->finalize_max_age_ms = 5 * 60 * 1000;
	if (yamltree_load(&tree, name, text, len, &lim, err) < 0 ||
	    load_tree(&ld, yamltree_root(tree), cfg) < 0)
		goto out;
	*out = cfg;
	cfg = NULL;
	ret = 0;
out:
	yamltree_free(tree);
	config_free(cfg);
	return ret;
}

/* Reads path whole and loads it.  Any failure to open or read it is a CS_ERR_CONFIG error
 * ("cannot read PATH: reason"), since a missing config is the operator's to fix (exit 78);
 * on failure *out is NULL. */
int config_load_file(struct config **out, const char *path, struct cs_error *err)
{
	struct cs_buf b = CS_BUF_INIT;
	char chunk[16384];
	struct stat st;
	FILE *f;
	size_t n;
	int ret = -1;

	*out = NULL;
	f = fopen(path, "rb");
	if (!f)
		return cs_error_set(err, CS_ERR_CONFIG, "cannot read %s: %s", path,
				    strerror(errno));
	if (fstat(fileno(f), &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			cs_error_set(err, CS_ERR_CONFIG, "cannot read %s: %s", path,
				     strerror(EISDIR));
			goto out;
		}
		/* refuse before reading a huge file into memory */
		if (S_ISREG(st.st_mode) && st.st_size > CFG_MAX_FILE_BYTES) {
			cs_error_set(err, CS_ERR_CONFIG, "%s: configuration is %lld bytes (expected "
				     "at most %d)", path, (long long)st.st_size, CFG_MAX_FILE_BYTES);
			goto out;
		}
	}
	/* a pipe or a growing file has no size up front: stop one byte past the limit */
	while (b.len <= CFG_MAX_FILE_BYTES && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	if (ferror(f)) {
		cs_error_set(err, CS_ERR_CONFIG, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (b.oom) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (b.len > CFG_MAX_FILE_BYTES) {
		cs_error_set(err, CS_ERR_CONFIG, "%s: configuration is more than %d bytes "
			     "(expected at most %d)", path, CFG_MAX_FILE_BYTES, CFG_MAX_FILE_BYTES);
		goto out;
	}
	ret = config_load_string(out, path, buf_str(&b), b.len, err);
out:
	fclose(f);
	buf_release(&b);
	return ret;
}

static void cfg_credentials_release(struct cfg_credentials *c)
{
	free(c->profile);
	free(c->role_arn);
	free(c->external_id);
	free(c->role_session_name);
	free(c->sts_endpoint);
	free(c->policy);
}

/* Frees cfg and every string it owns; NULL is fine. */
void config_free(struct config *cfg)
{
	size_t i, j;

	if (!cfg)
		return;
	for (i = 0; i < cfg->ninstances; i++) {
		struct cfg_instance *inst = &cfg->instances[i];

		free(inst->id);
		free(inst->region);
		free(inst->endpoint);
		for (j = 0; j < inst->ngroups; j++)
			free(inst->groups[j]);
		free(inst->groups);
		cfg_settings_release(&inst->s);
		cfg_credentials_release(&inst->creds);
	}
	free(cfg->instances);
	cfg_credentials_release(&cfg->creds);
	cfg_settings_release(&cfg->defaults);
	free(cfg->path);
	free(cfg->database);
	free(cfg->profile);
	free(cfg->metrics_file);
	free(cfg);
}

static char *exists_dup(const char *path)
{
	return access(path, F_OK) == 0 ? strdup(path) : NULL;
}

/* Returns a malloc'd path by PRODUCT.md's search order, or NULL when no candidate exists
 * (or memory ran out).  Only existence is checked: reading it is config_load_file's job. */
char *config_find(const char *explicit_path)
{
	const char *env, *home;
	struct cs_buf b = CS_BUF_INIT;
	char *p;

	if (explicit_path && *explicit_path)
		return strdup(explicit_path);
	env = getenv("CREDSYNC_CONFIG");
	if (env && *env)
		return strdup(env);
	if ((p = exists_dup("./credsync.yaml")))
		return p;
	/* the XDG spec says to ignore a relative XDG_CONFIG_HOME */
	env = getenv("XDG_CONFIG_HOME");
	home = getenv("HOME");
	if (env && env[0] == '/')
		buf_printf(&b, "%s/credsync/config.yaml", env);
	else if (home && *home)
		buf_printf(&b, "%s/.config/credsync/config.yaml", home);
	if (b.len && !b.oom && access(b.data, F_OK) == 0)
		return buf_detach(&b);
	buf_release(&b);
	return exists_dup("/etc/credsync/config.yaml");
}
