/*
 * identity.c - one run's identities (identity.h): the top level resolved through the chain,
 * the instances' maps deduplicated by their canonical text.
 */
#include "identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int selected(const char *id, const char **only, size_t nonly)
{
	size_t i;

	if (!nonly)
		return 1;
	for (i = 0; i < nonly; i++)
		if (!strcmp(only[i], id))
			return 1;
	return 0;
}

/* The instance's map needs the top-level identity (no map, or a role without a profile). */
static int needs_top(const struct cfg_instance *inst)
{
	return !inst->creds.set || !inst->creds.profile;
}

static void spec_of(const struct cfg_credentials *c, const struct cfg_instance *inst,
		    struct creds_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->profile = c->profile;
	s->role_arn = c->role_arn;
	s->external_id = c->external_id;
	s->role_session_name = c->role_session_name;
	s->duration_s = c->duration_ms / 1000;
	s->sts_endpoint = c->sts_endpoint;
	s->policy = c->policy;
	if (inst) {
		s->region = inst->region;
		s->vpc = inst->endpoint_vpc;
	}
}

static void key_of(const struct creds_spec *s, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s\x1f%s\x1f%s\x1f%s\x1f%lld\x1f%s\x1f%s\x1f%s\x1f%d",
		 s->profile ? s->profile : "", s->role_arn ? s->role_arn : "",
		 s->external_id ? s->external_id : "", s->role_session_name ? s->role_session_name : "",
		 (long long)s->duration_s, s->sts_endpoint ? s->sts_endpoint : "",
		 s->policy ? s->policy : "", s->vpc && s->region ? s->region : "", s->vpc);
}

static int resolve_top(struct identities *ids, const struct config *cfg, struct cs_error *err)
{
	struct creds_spec spec;

	ids->top = calloc(1, sizeof(*ids->top));
	if (!ids->top)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	if (!cfg->creds.role_arn)
		return creds_resolve(ids->top, cfg->profile, err);
	/* a top-level role: assumed from the profile (or the chain), like an instance's */
	ids->top_base = calloc(1, sizeof(*ids->top_base));
	if (!ids->top_base)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	if (creds_resolve(ids->top_base, cfg->profile, err) < 0)
		return -1;
	spec_of(&cfg->creds, NULL, &spec);
	spec.profile = NULL;
	return creds_resolve_spec(ids->top, &spec, ids->top_base, err);
}

int identities_resolve(struct identities *ids, const struct config *cfg, const char **only,
		       size_t nonly, struct cs_error *err)
{
	size_t i, k, ninst = cfg->ninstances;
	int need_top = 0;

	memset(ids, 0, sizeof(*ids));
	ids->cfg = cfg;
	ids->v = calloc(ninst ? ninst : 1, sizeof(*ids->v));
	ids->of_inst = calloc(ninst ? ninst : 1, sizeof(*ids->of_inst));
	if (!ids->v || !ids->of_inst)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	for (i = 0; i < ninst; i++) {
		ids->of_inst[i] = (size_t)-1;
		if (selected(cfg->instances[i].id, only, nonly) && needs_top(&cfg->instances[i]))
			need_top = 1;
	}
	if (need_top && resolve_top(ids, cfg, err) < 0)
		return -1;
	for (i = 0; i < ninst; i++) {
		const struct cfg_instance *inst = &cfg->instances[i];
		struct creds_spec spec;
		struct cs_error e = { 0 };
		char key[sizeof(ids->v[0].key)];

		if (!inst->creds.set || !selected(inst->id, only, nonly))
			continue;
		spec_of(&inst->creds, inst, &spec);
		key_of(&spec, key, sizeof(key));
		for (k = 0; k < ids->n && strcmp(ids->v[k].key, key); k++)
			;
		ids->of_inst[i] = k;
		if (k < ids->n)
			continue; /* the same map as an earlier instance: the same identity */
		snprintf(ids->v[k].key, sizeof(ids->v[k].key), "%s", key);
		ids->n++;
		if (creds_resolve_spec(&ids->v[k].c, &spec, ids->top, &e) == 0) {
			log_msg(LOG_DEBUG, NULL, "instance %s: credentials from %s (%s)", inst->id,
				ids->v[k].c.source, ids->v[k].c.identity);
			continue;
		}
		if (e.kind == CS_ERR_INTERRUPTED || e.kind == CS_ERR_NOMEM) {
			cs_error_set(err, e.kind, "%s", e.msg);
			return -1;
		}
		/* only this identity's groups fail; the reason travels with it */
		creds_release(&ids->v[k].c);
		snprintf(ids->v[k].c.last_error, sizeof(ids->v[k].c.last_error), "%s", e.msg);
		snprintf(ids->v[k].c.identity, sizeof(ids->v[k].c.identity), "%s",
			 spec.role_arn ? spec.role_arn : spec.profile ? spec.profile : "?");
		log_msg(LOG_ERROR, NULL, "instance %s: %s", inst->id, e.msg);
	}
	return 0;
}

struct creds *identities_for(void *arg, const struct cfg_instance *inst)
{
	struct identities *ids = arg;
	size_t i = (size_t)(inst - ids->cfg->instances);

	if (i < ids->cfg->ninstances && ids->of_inst[i] != (size_t)-1)
		return &ids->v[ids->of_inst[i]].c;
	return ids->top;
}

size_t identities_list(const struct identities *ids, const struct creds **out, size_t max)
{
	size_t i, n = 0;

	if (ids->top && ids->top->access_key_id && n < max)
		out[n++] = ids->top;
	for (i = 0; i < ids->n && n < max; i++)
		if (ids->v[i].c.access_key_id)
			out[n++] = &ids->v[i].c;
	return n;
}

void identities_release(struct identities *ids)
{
	size_t i;

	for (i = 0; i < ids->n; i++)
		creds_release(&ids->v[i].c);
	free(ids->v);
	free(ids->of_inst);
	if (ids->top) {
		creds_release(ids->top);
		free(ids->top);
	}
	if (ids->top_base) {
		creds_release(ids->top_base);
		free(ids->top_base);
	}
	memset(ids, 0, sizeof(*ids));
}
