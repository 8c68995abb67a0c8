/*
 * plan.h - config -> the (instance, group) pairs a run crawls, in config order, after the
 * command line's --instance/--group selections and `groups: all` discovery.
 */
#ifndef CREDSYNC_PLAN_H
#define CREDSYNC_PLAN_H

#include <stddef.h>

#include "config.h"
#include "crawl.h"
#include "discover.h"
#include "error.h"

struct plan_filter {
	const char **instances;  /* --instance values; none: every instance */
	size_t ninstances;
	const char **groups;     /* --group values; none: every group */
	size_t ngroups;
};

/* Checks that every --instance names a configured instance (CS_ERR_USAGE otherwise). */
int plan_check_instances(const struct config *cfg, const struct plan_filter *f,
			 struct cs_error *err);

/* Builds the targets; disc[i] holds the discovered groups of cfg->instances[i] when it has
 * `groups: all`.  *out is malloc'd (free it); it points into cfg and disc.  A --group that
 * matches no selected instance's group is CS_ERR_USAGE. */
int plan_targets(const struct config *cfg, const struct plan_filter *f,
		 const struct discovered *disc, struct crawl_target **out, size_t *nout,
		 struct cs_error *err);

/* 1 when s is in list. */
int plan_in_list(const char **list, size_t n, const char *s);

#endif
