/*
 * Target selection (plan.c): a config's instances and groups in config order, `groups: all`
 * taking the groups discovery listed, --instance/--group filters (repeated, duplicated, in
 * any order: the config's order wins), and the unknown names refused with their messages.
 */
#include <stdlib.h>

#include "buf.h"
#include "config.h"
#include "plan.h"
#include "test.h"

static const char yaml[] =
	"instances:\n"
	"  - id: mqtt-a\n"
	"    region: cn-hangzhou\n"
	"    groups: [GID_2, GID_1, GID_shared]\n"
	"  - id: mqtt-b\n"
	"    region: cn-hangzhou\n"
	"    groups: all\n"
	"  - id: mqtt-c\n"
	"    region: cn-shanghai\n"
	"    groups: [GID_shared, GID_c]\n";

#define MAXF 4

/* The targets as "inst/group,inst/group", or "ERR kind: message" (kind 2: CS_ERR_USAGE). */
static const char *plan(const struct config *cfg, const struct discovered *disc,
			const char *const *insts, const char *const *groups)
{
	static char out[1024];
	const char *fi[MAXF], *fg[MAXF];
	struct plan_filter f = { fi, 0, fg, 0 };
	struct crawl_target sentinel, *t = &sentinel;  /* plan_targets sets it NULL on failure */
	struct cs_error err = { 0 };
	struct cs_buf b = CS_BUF_INIT;
	size_t n = 99, i;

	for (; insts && insts[f.ninstances]; f.ninstances++)
		fi[f.ninstances] = insts[f.ninstances];
	for (; groups && groups[f.ngroups]; f.ngroups++)
		fg[f.ngroups] = groups[f.ngroups];
	if (plan_targets(cfg, &f, disc, &t, &n, &err) < 0) {
		CHECK(t == NULL);
		CHECK_INT(n, 0);
		snprintf(out, sizeof(out), "ERR %d: %s", (int)err.kind, err.msg);
		return out;
	}
	for (i = 0; i < n; i++) {
		size_t k;

		/* the targets point into cfg (and disc), nothing is copied */
		for (k = 0; k < cfg->ninstances && t[i].inst != &cfg->instances[k]; k++)
			;
		CHECK(k < cfg->ninstances);
		buf_printf(&b, "%s%s/%s", i ? "," : "", t[i].inst->id, t[i].group_id);
	}
	snprintf(out, sizeof(out), "%s", b.len ? buf_str(&b) : "");
	buf_release(&b);
	free(t);
	return out;
}

#define L(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_targets(void)
{
	static char *listed[] = { "GID_b1", "GID_b2", "GID_shared" };
	struct config *cfg = NULL;
	struct cs_error err = { 0 };
	struct discovered disc[3];
	const struct {
		const char *const *insts, *const *groups;
		const char *want;
	} cases[] = {
		/* everything, in config order; discovered groups where `groups: all` stands */
		{ NULL, NULL, "mqtt-a/GID_2,mqtt-a/GID_1,mqtt-a/GID_shared,mqtt-b/GID_b1,mqtt-b/GID_b2,"
			      "mqtt-b/GID_shared,mqtt-c/GID_shared,mqtt-c/GID_c" },
		/* --instance: the config's order, whatever the command line's */
		{ L("mqtt-c", "mqtt-a"), NULL,
		  "mqtt-a/GID_2,mqtt-a/GID_1,mqtt-a/GID_shared,mqtt-c/GID_shared,mqtt-c/GID_c" },
		{ L("mqtt-b"), NULL, "mqtt-b/GID_b1,mqtt-b/GID_b2,mqtt-b/GID_shared" },
		{ L("mqtt-a", "mqtt-a"), NULL, "mqtt-a/GID_2,mqtt-a/GID_1,mqtt-a/GID_shared" },
		/* --group: every selected instance that has it */
		{ NULL, L("GID_shared"), "mqtt-a/GID_shared,mqtt-b/GID_shared,mqtt-c/GID_shared" },
		{ NULL, L("GID_1", "GID_2"), "mqtt-a/GID_2,mqtt-a/GID_1" },
		{ NULL, L("GID_1", "GID_1"), "mqtt-a/GID_1" },
		{ NULL, L("GID_b2"), "mqtt-b/GID_b2" },          /* a discovered group */
		{ NULL, L("GID_c", "GID_b1"), "mqtt-b/GID_b1,mqtt-c/GID_c" },
		/* both */
		{ L("mqtt-b", "mqtt-c"), L("GID_shared"), "mqtt-b/GID_shared,mqtt-c/GID_shared" },
		{ L("mqtt-a"), L("GID_shared", "GID_1"), "mqtt-a/GID_1,mqtt-a/GID_shared" },
		/* unknown names */
		{ L("mqtt-zzz"), NULL, "ERR 2: no instance 'mqtt-zzz' in t.yaml" },
		{ L("mqtt-a", "mqtt-zzz"), NULL, "ERR 2: no instance 'mqtt-zzz' in t.yaml" },
		{ L("MQTT-A"), NULL, "ERR 2: no instance 'MQTT-A' in t.yaml" },      /* exact */
		{ L(""), NULL, "ERR 2: no instance '' in t.yaml" },
		{ NULL, L("GID_zzz"),
		  "ERR 2: group 'GID_zzz' is not configured for the selected instances" },
		{ NULL, L("gid_1"),
		  "ERR 2: group 'gid_1' is not configured for the selected instances" },
		{ NULL, L("GID_1", "GID_zzz"),
		  "ERR 2: group 'GID_zzz' is not configured for the selected instances" },
		/* a group of another instance than the selected ones */
		{ L("mqtt-c"), L("GID_1"),
		  "ERR 2: group 'GID_1' is not configured for the selected instances" },
		{ L("mqtt-a"), L("GID_b1"),
		  "ERR 2: group 'GID_b1' is not configured for the selected instances" },
		/* an unknown instance is reported before an unknown group */
		{ L("mqtt-zzz"), L("GID_zzz"), "ERR 2: no instance 'mqtt-zzz' in t.yaml" },
	};
	size_t i;

	CHECK(config_load_string(&cfg, "t.yaml", yaml, strlen(yaml), &err) == 0);
	if (!cfg) {
		fprintf(stderr, "config: %s\n", err.msg);
		return;
	}
	CHECK_INT(cfg->ninstances, 3);
	CHECK(cfg->instances[1].groups_all);
	memset(disc, 0, sizeof(disc));
	disc[1].groups = listed;
	disc[1].ngroups = 3;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = plan(cfg, disc, cases[i].insts, cases[i].groups);

		if (strcmp(got, cases[i].want))
			fprintf(stderr, "  case %zu\n", i);
		CHECK_STR(got, cases[i].want);
	}

	/* the discovered strings are used in place */
	{
		const char *fg[] = { "GID_b2" };
		struct plan_filter f = { NULL, 0, fg, 1 };
		struct crawl_target *t = NULL;
		size_t n = 0;

		CHECK(plan_targets(cfg, &f, disc, &t, &n, &err) == 0);
		CHECK_INT(n, 1);
		if (n == 1) {
			CHECK(t[0].group_id == listed[1]);
			CHECK(t[0].inst == &cfg->instances[1]);
		}
		free(t);
	}

	/* discovery failed (or found nothing) for the `groups: all` instance: it has no
	 * targets, and a --group only it could have had is unknown */
	disc[1].groups = NULL;
	disc[1].ngroups = 0;
	disc[1].failed = 1;
	CHECK_STR(plan(cfg, disc, NULL, NULL),
		  "mqtt-a/GID_2,mqtt-a/GID_1,mqtt-a/GID_shared,mqtt-c/GID_shared,mqtt-c/GID_c");
	CHECK_STR(plan(cfg, disc, L("mqtt-b"), NULL), "");
	CHECK_STR(plan(cfg, disc, NULL, L("GID_b1")),
		  "ERR 2: group 'GID_b1' is not configured for the selected instances");
	CHECK_STR(plan(cfg, disc, NULL, L("GID_shared")), "mqtt-a/GID_shared,mqtt-c/GID_shared");
	config_free(cfg);
}

static void test_check_instances(void)
{
	struct config *cfg = NULL;
	struct cs_error err = { 0 };
	const char *ok[] = { "mqtt-c", "mqtt-b", "mqtt-a", "mqtt-b" };
	const char *bad[] = { "mqtt-a", "mqtt-d", "mqtt-e" };
	struct plan_filter f = { ok, 4, NULL, 0 };

	CHECK(config_load_string(&cfg, "conf/t.yaml", yaml, strlen(yaml), &err) == 0);
	if (!cfg)
		return;
	CHECK_INT(plan_check_instances(cfg, &f, &err), 0);
	CHECK_INT(err.kind, CS_ERR_NONE);
	f.ninstances = 0;
	CHECK_INT(plan_check_instances(cfg, &f, &err), 0);
	/* the first unknown one is named, with the config file */
	f.instances = bad;
	f.ninstances = 3;
	CHECK_INT(plan_check_instances(cfg, &f, &err), -1);
	CHECK_INT(err.kind, CS_ERR_USAGE);
	CHECK_STR(err.msg, "no instance 'mqtt-d' in conf/t.yaml");
	config_free(cfg);
}

static void test_in_list(void)
{
	const char *l[] = { "a", "bb", "" };

	CHECK_INT(plan_in_list(l, 3, "a"), 1);
	CHECK_INT(plan_in_list(l, 3, "bb"), 1);
	CHECK_INT(plan_in_list(l, 3, ""), 1);
	CHECK_INT(plan_in_list(l, 3, "b"), 0);
	CHECK_INT(plan_in_list(l, 3, "A"), 0);
	CHECK_INT(plan_in_list(l, 2, ""), 0);    /* only the first n */
	CHECK_INT(plan_in_list(NULL, 0, "a"), 0); /* an empty list holds nothing */
}

int main(void)
{
	test_targets();
	test_check_instances();
	test_in_list();
	TEST_DONE();
}
