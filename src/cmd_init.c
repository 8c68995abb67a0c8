/*
 * cmd_init.c - `credsync init [--region R]... [--all-regions] [--groups-all] [--output FILE]
 * [--force]`: from credentials to a working config in one command.
 *
 * It resolves the credentials as every command does, asks ListInstances in each region and
 * ListGroupId for each instance found (discover.c: the crawl's retry rules), and writes a
 * commented config with the defaults of config/example.yaml.  A region or an instance that
 * fails is reported on stdout and left out; the others are written.  The text is validated
 * with the config loader before it is written, atomically and mode 0600, and an existing file
 * is never replaced without --force.
 *
 * Endpoints: https://onsmqtt.REGION.aliyuncs.com, or $CREDSYNC_ENDPOINT_TEMPLATE with each
 * "{region}" replaced (tests: http://{region}.localhost:PORT, served by credsync-sim); with
 * the template the config records each instance's endpoint, so that it syncs where init
 * looked.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomic.h"
#include "cli.h"
#include "creds.h"
#include "discover.h"
#include "regions.h"
#include "util.h"

struct init_instance {
	const struct api_instance *api;  /* borrowed from its region's listing */
	const char *region;              /* the region it was found in ... */
	size_t region_index;             /* ... as an index of init_args.regions */
	const char *endpoint;            /* borrowed: that region's */
	const struct discovered *groups; /* borrowed: its ListGroupId */
};

struct init_args {
	const char **regions;      /* owned array, borrowed strings */
	size_t nregions;
	int all_regions;
	int groups_all;
	int force;
	const char *output;
};

static struct http_client *signal_http;

static void on_signal(int sig)
{
	if (cli_stop_signal)
		_exit(128 + sig);
	cli_stop_signal = sig;
	if (signal_http)
		http_wakeup(signal_http);
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* $XDG_*_HOME/credsync/NAME (fallback ~/FALLBACK/credsync/NAME), malloc'd, or NULL. */
static char *xdg_path(const char *var, const char *fallback, const char *name)
{
	const char *base = getenv(var), *home = getenv("HOME");
	struct cs_buf b = CS_BUF_INIT;

	if (base && *base == '/')
		buf_printf(&b, "%s/credsync/%s", base, name);
	else if (home && *home)
		buf_printf(&b, "%s/%s/credsync/%s", home, fallback, name);
	else
		return NULL;
	return buf_detach(&b);
}

/* Where the config goes: --output, -c, $CREDSYNC_CONFIG, else the system file for root and
 * the user's file for anyone else (both are in the search order, so later commands find it
 * from any directory). */
static char *output_path(const struct init_args *a, const struct cli_globals *g)
{
	const char *env = getenv("CREDSYNC_CONFIG");

	if (a->output)
		return strdup(a->output);
	if (g->config_path)
		return strdup(g->config_path);
	if (env && *env)
		return strdup(env);
	if (geteuid() == 0)
		return strdup("/etc/credsync/config.yaml");
	return xdg_path("XDG_CONFIG_HOME", ".config", "config.yaml");
}

static char *database_path(const struct cli_globals *g)
{
	if (g->db_path)
		return strdup(g->db_path);
	if (geteuid() == 0)
		return strdup("/var/lib/credsync/credsync.db");
	return xdg_path("XDG_DATA_HOME", ".local/share", "credsync.db");
}

/* Creates the directories above path that are missing, with mode. */
static int make_parents(const char *path, mode_t mode, struct cs_error *err)
{
	char tmp[PATH_MAX];
	char *p;

	if (strlen(path) >= sizeof(tmp))
		return cs_error_set(err, CS_ERR_RUNTIME, "init: path too long: %s", path);
	strcpy(tmp, path);
	for (p = tmp + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return cs_error_set(err, CS_ERR_RUNTIME, "init: cannot create %s: %s", tmp,
					    strerror(errno));
		*p = '/';
	}
	return 0;
}

/* A YAML scalar: plain when it is unmistakably a string, else double-quoted with escapes
 * (a service-supplied id must load back exactly as it was listed). */
static void put_scalar(struct cs_buf *b, const char *s)
{
	static const char *const special[] = { "y", "n", "yes", "no", "true", "false", "on",
					       "off", "null", NULL };
	const unsigned char *p;
	int plain = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '/';
	size_t i, len = strlen(s);

	/* no space, '#', quote or flow character can occur; a ':' never ends the scalar */
	for (p = (const unsigned char *)s; plain && *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@/:", *p))
			plain = 0;
	if (plain && s[len - 1] == ':')
		plain = 0;
	for (i = 0; plain && special[i]; i++)
		if (!strcasecmp(s, special[i]))
			plain = 0;
	if (plain) {
		buf_puts(b, s);
		return;
	}
	buf_putc(b, '"');
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_printf(b, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			buf_printf(b, "\\x%02x", *p);
		else
			buf_putc(b, (char)*p);
	}
	buf_putc(b, '"');
}

/* Text from the service inside a comment: one line, printable, bounded. */
static void put_comment_text(struct cs_buf *b, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i < 120; i++)
		buf_putc(b, (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i]);
	if (s[i])
		buf_puts(b, "...");
}

/* config/example.yaml, embedded at build time (cmake/embed_text.cmake). */
extern const char example_yaml[];

/* Every key of config/example.yaml after its database and credentials and before its
 * instances: the defaults, with their comments, exactly as the example documents them. */
static void put_example_settings(struct cs_buf *b)
{
	const char *start = strstr(example_yaml, "\ncredentials:\n");
	const char *end = strstr(example_yaml, "\ninstances:\n");

	if (!start || !end || end < start) {
		/* the example changed shape: the loader check below still guards the file */
		buf_puts(b, "\n");
		return;
	}
	/* skip the credentials mapping: its key line and the indented lines under it */
	start = strchr(start + 1, '\n') + 1;
	while (*start == ' ')
		start = strchr(start, '\n') + 1;
	buf_append(b, start, (size_t)(end - start) + 1);
}

/* A profile name worth writing: printable, one line. */
static int printable_line(const char *p)
{
	for (; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

static void put_header(struct cs_buf *b, const struct init_args *a, const char *database,
		       const struct creds *creds)
{
	const char *profile = getenv("ALIBABA_CLOUD_PROFILE");
	char now[32];
	time_t t = time(NULL);
	struct tm tm;
	size_t i;

	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	buf_printf(b, "# credsync configuration, written by `credsync init` at %s.\n", now);
	buf_puts(b, "# Instances from ListInstances in ");
	for (i = 0; i < a->nregions; i++)
		buf_printf(b, "%s%s", i ? ", " : "", a->regions[i]);
	buf_printf(b, ";\n# groups from ListGroupId%s.  Every other key has its default; see "
		   "credsync(1)\n# and config/example.yaml.\n",
		   a->groups_all ? " (listed again at every sync: groups: all)" : "");
	buf_puts(b,
		 "#\n"
		 "# Credentials are not kept here: credsync reads ALIBABA_CLOUD_ACCESS_KEY_ID and\n"
		 "# ALIBABA_CLOUD_ACCESS_KEY_SECRET (and ALIBABA_CLOUD_SECURITY_TOKEN for STS), then\n"
		 "# ALICLOUD_ACCESS_KEY / ALICLOUD_SECRET_KEY, then the profile below from\n"
		 "# ~/.alibabacloud/credentials or ~/.aliyun/config.json (files must be chmod 600).\n");
	buf_puts(b, "# init used the credentials from ");
	put_comment_text(b, creds->source);
	buf_puts(b, ".\n\n");
	buf_puts(b, "# The SQLite inventory.  Created (mode 0600) by the first sync; -d DB overrides "
		 "it.\ndatabase: ");
	put_scalar(b, database);
	buf_puts(b, "\n\n");
	if (profile && *profile && printable_line(profile)) {
		/* the profile init read its credentials from, so that sync reads the same one */
		buf_puts(b, "credentials:\n  profile: ");
		put_scalar(b, profile);
		buf_puts(b, "                # from ALIBABA_CLOUD_PROFILE at init\n");
	} else {
		buf_puts(b, "# credentials:\n"
			 "#   profile: default          # or ALIBABA_CLOUD_PROFILE\n");
	}
	put_example_settings(b);
	buf_puts(b, "instances:\n");
}

/* One instance: written when its groups are known (or groups: all was asked and the
 * listing works), else written as a comment saying why, so the user can finish it. */
static int put_instance(struct cs_buf *b, const struct init_instance *in, int groups_all,
			int with_endpoint)
{
	const struct api_instance *api = in->api;
	const char *c = "";
	size_t k;
	const struct discovered *g = in->groups;
	int usable = !g->failed && (groups_all || g->ngroups > 0);

	buf_puts(b, "  # ");
	if (*api->name) {
		buf_putc(b, '"');
		put_comment_text(b, api->name);
		buf_puts(b, "\": ");
	}
	buf_puts(b, *api->type ? "" : "an instance");
	put_comment_text(b, api->type);
	if (*api->status) {
		buf_puts(b, ", status ");
		put_comment_text(b, api->status);
	}
	buf_printf(b, ", listed in %s\n", in->region);
	if (!usable) {
		buf_puts(b, "  # not enabled: ");
		if (g->failed) {
			buf_puts(b, "ListGroupId answered ");
			put_comment_text(b, g->code);
			buf_puts(b, "; list its groups by hand (or allow mq:ListGroupId)\n");
		} else {
			buf_puts(b, "ListGroupId lists no group yet\n");
		}
		c = "# ";
	}
	buf_printf(b, "  %s- id: ", c);
	put_scalar(b, api->id);
	buf_printf(b, "\n  %s  region: %s\n", c, in->region);
	if (with_endpoint) {
		buf_printf(b, "  %s  endpoint: ", c);
		put_scalar(b, in->endpoint);
		buf_puts(b, "   # from $" REGIONS_TEMPLATE_ENV "\n");
	}
	if (groups_all) {
		buf_printf(b, "  %s  groups: all               # every group ListGroupId lists, "
			   "asked each run\n", c);
	} else if (!usable) {
		buf_printf(b, "  %s  groups: [GID_example]\n", c);
	} else {
		buf_printf(b, "  %s  groups:                   # from ListGroupId; `groups: all` "
			   "asks at every sync\n", c);
		for (k = 0; k < g->ngroups; k++) {
			buf_printf(b, "  %s    - ", c);
			put_scalar(b, g->groups[k]);
			buf_putc(b, '\n');
		}
	}
	return usable;
}

enum { O_REGION = 0x2501, O_ALL_REGIONS, O_GROUPS_ALL, O_FORCE };

static int on_option(void *arg, int c, const char *v, struct cs_error *err)
{
	struct init_args *a = arg;
	const char **list;
	size_t i;

	switch (c) {
	case O_REGION:
		if (!regions_valid(v))
			return cs_error_set(err, CS_ERR_USAGE,
					    "init: --region expects a region name like "
					    "cn-hangzhou, not '%s'", v);
		for (i = 0; i < a->nregions; i++)
			if (!strcmp(a->regions[i], v))
				return 0;
		list = realloc(a->regions, (a->nregions + 1) * sizeof(*list));
		if (!list)
			return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		a->regions = list;
		a->regions[a->nregions++] = v;
		break;
	case O_ALL_REGIONS:
		a->all_regions = 1;
		break;
	case O_GROUPS_ALL:
		a->groups_all = 1;
		break;
	case O_FORCE:
		a->force = 1;
		break;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct cli_globals *g, struct init_args *a,
		      struct cs_error *err)
{
	static const struct option longopts[] = {
		{ "region", required_argument, NULL, O_REGION },
		{ "all-regions", no_argument, NULL, O_ALL_REGIONS },
		{ "groups-all", no_argument, NULL, O_GROUPS_ALL },
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, O_FORCE },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_options o = { "init", 0, "o:", longopts, on_option, a };
	struct cli_common common;
	size_t i;
	int rc;

	rc = cli_parse_options(&o, argc, argv, g, &common, err);
	a->output = common.output;
	cli_common_release(&common);
	if (rc != 0)
		return rc;
	if (a->all_regions) {
		for (i = 0; regions_known[i]; i++)
			;
		free(a->regions);
		a->regions = malloc(i * sizeof(*a->regions));
		if (!a->regions)
			return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		memcpy(a->regions, regions_known, i * sizeof(*a->regions));
		a->nregions = i;
	}
	if (!a->nregions)
		return cs_error_set(err, CS_ERR_USAGE,
				    "init: name the regions to look in: --region R (repeatable) or "
				    "--all-regions");
	return 0;
}

/* Prints the commands to run next, with -c when the default search would not find path. */
static void print_next(const char *path)
{
	char *found = config_find(NULL);
	char a[PATH_MAX], b[PATH_MAX];
	int same = found && realpath(found, a) && realpath(path, b) && !strcmp(a, b);
	const char *env = getenv("CREDSYNC_CONFIG");

	free(found);
	printf("next:\n");
	if (same && !(env && *env)) {
		printf("  credsync check --online\n  credsync sync\n");
	} else {
		struct cs_buf q = CS_BUF_INIT;

		/* quoted for a POSIX shell when it needs to be */
		if (strspn(path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+")
		    == strlen(path)) {
			buf_puts(&q, path);
		} else {
			const char *p;

			buf_putc(&q, '\'');
			for (p = path; *p; p++)
				if (*p == '\'')
					buf_puts(&q, "'\\''");
				else
					buf_putc(&q, *p);
			buf_putc(&q, '\'');
		}
		printf("  credsync -c %s check --online\n  credsync -c %s sync\n", buf_str(&q),
		       buf_str(&q));
		buf_release(&q);
	}
}

int cmd_init(int argc, char **argv, struct cli_globals *g, struct cs_error *err)
{
	struct init_args a;
	struct creds creds;
	struct cfg_settings s;
	struct http_client *http = NULL;
	struct discovered_instances *found = NULL;
	struct init_instance *insts = NULL;
	struct cfg_instance *cis = NULL;
	struct discovered *groups = NULL;
	char **endpoints = NULL;
	struct config *check = NULL;
	struct cs_error verr = { CS_ERR_NONE, "" };
	struct atomic_file af;
	struct cs_buf text = CS_BUF_INIT, ep = CS_BUF_INIT;
	struct stat sb;
	const char *tmpl = getenv(REGIONS_TEMPLATE_ENV);
	char *out = NULL, *database = NULL;
	size_t i, j, k, ninst = 0, cap = 0, written = 0;
	int ret, rc, failed = 0;

	memset(&a, 0, sizeof(a));
	memset(&creds, 0, sizeof(creds));
	memset(&af, 0, sizeof(af));
	ret = parse_args(argc, argv, g, &a, err);
	if (ret != 0)
		goto cleanup;
	ret = -1;
	cli_setup_logging(g);
	if (tmpl && !*tmpl)
		tmpl = NULL;
	out = output_path(&a, g);
	database = database_path(g);
	if (!out || !database) {
		cs_error_set(err, CS_ERR_USAGE, "init: no home directory: pass --output FILE and -d DB");
		goto cleanup;
	}
	/* refused before anything is asked of the service */
	if (!a.force && lstat(out, &sb) == 0) {
		cs_error_set(err, CS_ERR_USAGE, "init: %s exists; pass --force to replace it", out);
		goto cleanup;
	}
	rc = creds_resolve(&creds, NULL, err);
	creds_wipe_environment();
	if (rc < 0)
		goto cleanup;
	config_settings_default(&s);
	found = calloc(a.nregions, sizeof(*found));
	if (!found) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto cleanup;
	}
	if (http_client_new(&http, err) < 0)
		goto cleanup;
	signal_http = http;
	install_signals();

	endpoints = calloc(a.nregions, sizeof(*endpoints));
	if (!endpoints) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < a.nregions; i++) {
		buf_reset(&ep);
		if (regions_endpoint(&ep, tmpl, a.regions[i], err) < 0)
			goto cleanup;
		if (!(endpoints[i] = strdup(buf_str(&ep)))) {
			cs_error_set(err, CS_ERR_NOMEM, "out of memory");
			goto cleanup;
		}
	}
	/* every region at once, then every instance's groups at once */
	if (discover_instances(a.regions, (const char *const *)endpoints, a.nregions, &s, http,
			       &creds, &cli_stop_signal, found, err) < 0)
		goto cleanup;
	for (i = 0; i < a.nregions; i++) {
		for (j = 0; j < found[i].n; j++) {
			struct init_instance *in;

			for (k = 0; k < ninst; k++)
				if (!strcmp(insts[k].api->id, found[i].instances[j].id))
					break;
			if (k < ninst)
				continue;   /* an endpoint that answers for several regions */
			if (ninst == cap) {
				struct init_instance *v;

				cap = cap ? 2 * cap : 8;
				v = realloc(insts, cap * sizeof(*v));
				if (!v) {
					cs_error_set(err, CS_ERR_NOMEM, "out of memory");
					goto cleanup;
				}
				insts = v;
			}
			in = &insts[ninst];
			memset(in, 0, sizeof(*in));
			in->api = &found[i].instances[j];
			in->region = a.regions[i];
			in->region_index = i;
			in->endpoint = endpoints[i];
			ninst++;
		}
	}
	if (ninst) {
		cis = calloc(ninst, sizeof(*cis));
		groups = calloc(ninst, sizeof(*groups));
		if (!cis || !groups) {
			cs_error_set(err, CS_ERR_NOMEM, "out of memory");
			goto cleanup;
		}
		for (k = 0; k < ninst; k++) {
			cis[k].id = (char *)insts[k].api->id;
			cis[k].endpoint = (char *)insts[k].endpoint;
			cis[k].s = s;
		}
		if (discover_groups(cis, ninst, http, &creds, &cli_stop_signal, groups, err) < 0)
			goto cleanup;
		for (k = 0; k < ninst; k++)
			insts[k].groups = &groups[k];
	}
	for (i = 0; i < a.nregions; i++) {
		if (found[i].failed) {
			printf("%s: FAILED: ListInstances: %s: %s\n", a.regions[i], found[i].code,
			       found[i].message);
			failed++;
			continue;
		}
		if (!found[i].n) {
			printf("%s: no instance\n", a.regions[i]);
			continue;
		}
		printf("%s: %zu instance(s)\n", a.regions[i], found[i].n);
		for (k = 0; k < ninst; k++) {
			const struct init_instance *in = &insts[k];

			if (in->region_index != i)
				continue;
			if (in->groups->failed) {
				printf("  %s: FAILED: ListGroupId: %s: %s\n", in->api->id,
				       in->groups->code, in->groups->message);
				failed++;
			} else {
				printf("  %s: %zu group(s)\n", in->api->id, in->groups->ngroups);
			}
		}
	}

	put_header(&text, &a, database, &creds);
	for (k = 0; k < ninst; k++) {
		if (k)
			buf_putc(&text, '\n');
		written += (size_t)put_instance(&text, &insts[k], a.groups_all, tmpl != NULL);
	}
	if (text.oom) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto cleanup;
	}
	if (!written) {
		cs_error_set(err, CS_ERR_RUNTIME, "init: %s in the region(s) asked; nothing written",
			     ninst ? "no instance whose groups could be listed"
			     : failed ? "no instance could be listed" : "no MQTT instance");
		goto cleanup;
	}
	/* what is written must load: checked before the file exists */
	if (config_load_string(&check, out, buf_str(&text), text.len, &verr) < 0) {
		cs_error_set(err, CS_ERR_RUNTIME, "init: the config would not load (a bug): %s",
			     verr.msg);
		goto cleanup;
	}
	if (make_parents(out, geteuid() == 0 ? 0755 : 0700, err) < 0 ||
	    make_parents(database, 0700, err) < 0 ||
	    atomic_open(&af, out, 0600, err) < 0)
		goto cleanup;
	fwrite(buf_str(&text), 1, text.len, af.f);
	if (atomic_commit_mode(&af, a.force, err) < 0)
		goto cleanup;
	printf("wrote %s (mode 0600): %zu instance(s)", out, written);
	if (written < ninst)
		printf(", %zu more commented out", ninst - written);
	putchar('\n');
	print_next(out);
	ret = failed ? CMD_FAILED : CMD_OK;
cleanup:
	fflush(stdout);
	signal_http = NULL;
	atomic_abort(&af);
	config_free(check);
	if (groups)
		for (k = 0; k < ninst; k++)
			discovered_release(&groups[k]);
	free(groups);
	free(cis);
	free(insts);
	if (endpoints)
		for (i = 0; i < a.nregions; i++)
			free(endpoints[i]);
	free(endpoints);
	if (found)
		for (i = 0; i < a.nregions; i++)
			discovered_instances_release(&found[i]);
	free(found);
	http_client_free(http);
	creds_release(&creds);
	buf_release(&text);
	buf_release(&ep);
	free(out);
	free(database);
	free(a.regions);
	return ret;
}
