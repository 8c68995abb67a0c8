/* plan.c - selecting the run's targets; see plan.h. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

int plan_in_list(const char **list, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return 1;
	return 0;
}

int plan_check_instances(const struct config *cfg, const struct plan_filter *f,
			 struct cs_error *err)
{
	size_t i, k;

	for (i = 0; i < f->ninstances; i++) {
		for (k = 0; k < cfg->ninstances; k++)
			if (!strcmp(cfg->instances[k].id, f->instances[i]))
				break;
		if (k == cfg->ninstances)
			return cs_error_set(err, CS_ERR_USAGE, "no instance '%s' in %s",
					    f->instances[i], cfg->path);
	}
	return 0;
}

int plan_targets(const struct config *cfg, const struct plan_filter *f,
		 const struct discovered *disc, struct crawl_target **out, size_t *nout,
		 struct cs_error *err)
{
	struct crawl_target *t = NULL;
	size_t n = 0, cap = 0, i, k;

	*out = NULL;
	*nout = 0;
	if (plan_check_instances(cfg, f, err) < 0)
		return -1;
	for (i = 0; i < cfg->ninstances; i++) {
		const struct cfg_instance *inst = &cfg->instances[i];
		char *const *groups = inst->groups_all ? disc[i].groups : inst->groups;
		size_t ngroups = inst->groups_all ? disc[i].ngroups : inst->ngroups;

		if (f->ninstances && !plan_in_list(f->instances, f->ninstances, inst->id))
			continue;
		for (k = 0; k < ngroups; k++) {
			if (f->ngroups && !plan_in_list(f->groups, f->ngroups, groups[k]))
				continue;
			if (n == cap) {
				struct crawl_target *p;

				cap = cap ? cap * 2 : 16;
				p = realloc(t, cap * sizeof(*p));
				if (!p) {
					free(t);
					return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
				}
				t = p;
			}
			t[n].inst = inst;
			t[n].group_id = groups[k];
			n++;
		}
	}
	for (i = 0; i < f->ngroups; i++) {
		for (k = 0; k < n && strcmp(t[k].group_id, f->groups[i]); k++)
			;
		if (k == n) {
			free(t);
			return cs_error_set(err, CS_ERR_USAGE,
					    "group '%s' is not configured for the selected instances",
					    f->groups[i]);
		}
	}
	*out = t;
	*nout = n;
	return 0;
}
