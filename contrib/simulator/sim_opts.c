/*
 * sim_opts.c - credsync-sim's command line: the usage text, parsing every option into
 * struct sim_options with its checks (ranges, fault specs and their rate sums, regions,
 * denials, roles), and releasing what parsing allocated.
 *
 * It calls only sim_fault_classify (sim_api.c, which owns the fault table) and the core's
 * duration parser.
 */
#include "sim.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char usage_text[] =
	"usage: credsync-sim [OPTIONS]\n"
	"\n"
	"A stand-in for Alibaba Cloud's OnsMqtt API (ListDeviceCredentialClientId, ListGroupId,\n"
	"ListInstances)\n"
	"for credsync's tests, demo and benchmarks.  It verifies v1 and v3 signatures and\n"
	"answers with the service's error codes.\n"
	"\n"
	"Server:\n"
	"  --listen HOST:PORT      address to serve on (default 127.0.0.1:0; port 0 picks one)\n"
	"  --port-file PATH        write \"PORT\\n\" there (atomically) once accepting connections\n"
	"  --verbose               log every RPC request to stderr\n"
	"Credentials:\n"
	"  --access-key-id ID      the one valid AccessKeyId (default testid)\n"
	"  --access-key-secret S   its secret (default $CREDSYNC_SIM_ACCESS_KEY_SECRET, else\n"
	"                          testsecret; prefer the variable: argv is visible to all)\n"
	"  --security-token TOKEN  require exactly this STS token on every request\n"
	"  --max-skew SECONDS      accepted clock skew of Timestamp / x-acs-date (default 900;\n"
	"                          a duration such as 15m also works)\n"
	"Data:\n"
	"  --dataset FILE          JSON {\"instances\": {\"ID\": {\"groups\": {\"GID\": [IDs]}}}}\n"
	"  --instances N --groups N --devices N\n"
	"                          generate mqtt-sim-1..N, GID_sim_1..N in each instance and\n"
	"                          GID_sim_G@@@dev-0000001..N in each group (default 1, 2, 10)\n"
	"  --seed N                seed of the random choices (faults, churn, mutations)\n"
	"  --regions R1,R2,...     instances (sorted by id) are in these regions in turn\n"
	"                          (default: all in " SIM_DEFAULT_REGION "). A request sent to\n"
	"                          REGION.localhost or onsmqtt.REGION.aliyuncs.com sees only\n"
	"                          that region's instances; one to 127.0.0.1 sees them all\n"
	"Paging (ListDeviceCredentialClientId):\n"
	"  --page-cap N            serve at most N IDs per page; PageSize echoes the cap\n"
	"  --last-token MODE       NextToken of the last page: absent (default), empty, same\n"
	"  --no-token              never return NextToken; page by PageNo only\n"
	"  --total-as-number       Total as a JSON number instead of a string\n"
	"  --churn-during-crawl P  before each page that continues a walk, with probability P\n"
	"                          the group loses one random ID and gains a new one\n"
	"Faults and limits:\n"
	"  --fault CODE=RATE[@INSTANCE[/GROUP]]\n"
	"                          repeatable; one draw per request picks at most one fault.\n"
	"                          CODE: SystemOverFlow, ApplyTokenOverFlow, InternalError,\n"
	"                          Throttling[.User|.Api], ServiceUnavailable, any other error\n"
	"                          Code (HTTP 400), or reset, timeout, truncated, garbage, html\n"
	"  --qps N                 server-wide request rate; above it 500 SystemOverFlow\n"
	"  --bucket RATE[:BURST]   per source address and API, a token bucket of RATE/s\n"
	"                          holding BURST (default RATE); empty: SystemOverFlow\n"
	"  --throttle-status N     HTTP status of SystemOverFlow from the limits (default 500;\n"
	"                          the service now answers 403)\n"
	"  --block-above RATE      a source sending above RATE/s (over a second) is blocked:\n"
	"                          every request 403 Forbidden.IpBlocked for --block-for\n"
	"  --block-for DURATION    how long a block lasts (default 60s); /_sim/stats: blocks\n"
	"  --list-group-qps N      ListGroupId rate (default 10; 0 for none)\n"
	"  --deny ACTION[@SCOPE]   ACTION answers 403 Forbidden.RAM (in region or instance\n"
	"                          SCOPE only, when given); repeatable\n"
	"  --latency MS            delay every RPC response\n"
	"  --hang MS               how long the timeout fault hangs (default 30000)\n"
	"  --retry-after MS        send x-acs-retry-after on throttling responses\n"
	"Identity services (same listener; see README):\n"
	"  --role ARN[#EXTERNALID] a role STS AssumeRole / AssumeRoleWithOIDC may assume\n"
	"                          (repeatable; default acs:ram::1234567890123456:role/credsync-reader)\n"
	"  --deny-role ARN         a role that exists but the caller may not assume (NoPermission)\n"
	"  --oidc-token-file PATH  AssumeRoleWithOIDC accepts only this file's current contents\n"
	"  --credential-lifetime S issued temporary credentials live S seconds (default: the\n"
	"                          DurationSeconds asked, 6h from the metadata service)\n"
	"  --imds MODE             metadata service: both (default), v2-only (refuse IMDSv1),\n"
	"                          v1-only (no token PUT)\n"
	"  --imds-role NAME        the role attached to the \"instance\" (default credsync-ecs;\n"
	"                          \"\" for none)\n"
	"\n"
	"Control (unsigned): POST /_sim/mutate?add=N&remove=N[&instance=I][&group=G],\n"
	"GET /_sim/stats, POST /_sim/reset-stats, GET /_sim/dump,\n"
	"GET /_sim/credentials-uri[?mode=garbage|fail|missing|past],\n"
	"POST /_sim/identity-fail?count=N&code=CODE, POST /_sim/expire-all, GET /_sim/issued.\n"
	"\n"
	"Exit status: 0 after SIGTERM or SIGINT, 64 usage error, 65 invalid dataset,\n"
	"66 unreadable dataset, 1 any other failure.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("credsync-sim: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(see credsync-sim --help)\n", stderr);
	return -1;
}

static int parse_long(const char *opt, const char *arg, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max)
		return usage_error("%s: expected an integer from %ld to %ld, got '%s'", opt, min,
				   max, arg);
	*out = v;
	return 0;
}

static int parse_double(const char *opt, const char *arg, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v >= min && v <= max))
		return usage_error("%s: expected a number from %g to %g, got '%s'", opt, min, max,
				   arg);
	*out = v;
	return 0;
}

/* Milliseconds as a plain integer, or a duration such as "250ms" or "2s". */
static int parse_ms(const char *opt, const char *arg, int64_t *out)
{
	long v;

	if (arg[0] >= '0' && arg[0] <= '9' && strspn(arg, "0123456789") == strlen(arg)) {
		if (parse_long(opt, arg, 0, 86400000L, &v) < 0)
			return -1;
		*out = v;
		return 0;
	}
	if (util_parse_duration(arg, out) < 0 || *out > 86400000LL)
		return usage_error("%s: expected milliseconds (or a duration like 250ms, 5s) up to "
				   "a day, got '%s'", opt, arg);
	return 0;
}

static int parse_listen(const char *arg, struct sim_options *o)
{
	const char *colon, *host = arg;
	size_t hlen;
	long port;

	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');

		if (!close || close[1] != ':')
			return usage_error("--listen: expected [IPV6]:PORT, got '%s'", arg);
		host = arg + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(arg, ':');
		if (!colon)
			return usage_error("--listen: expected HOST:PORT, got '%s'", arg);
		hlen = (size_t)(colon - arg);
	}
	if (!hlen)
		return usage_error("--listen: the host is empty in '%s'", arg);
	if (parse_long("--listen port", colon + 1, 0, 65535, &port) < 0)
		return -1;
	free(o->listen_host);
	o->listen_host = strndup(host, hlen);
	o->listen_port = (unsigned)port;
	return o->listen_host ? 0 : usage_error("out of memory");
}

static int parse_fault(const char *arg, struct sim_options *o)
{
	struct sim_fault f = { 0 };
	const char *eq = strchr(arg, '='), *at;
	struct sim_fault *grown;
	char rate[64];
	size_t rlen;

	if (!eq)
		return usage_error("--fault: expected CODE=RATE[@INSTANCE[/GROUP]], got '%s'", arg);
	at = strchr(eq, '@');
	rlen = at ? (size_t)(at - eq - 1) : strlen(eq + 1);
	if (rlen >= sizeof(rate))
		return usage_error("--fault: rate too long in '%s'", arg);
	memcpy(rate, eq + 1, rlen);
	rate[rlen] = '\0';
	if (parse_double("--fault rate", rate, 0.0, 1.0, &f.rate) < 0)
		return -1;
	f.code = strndup(arg, (size_t)(eq - arg));
	if (!f.code)
		return usage_error("out of memory");
	if (sim_fault_classify(&f) < 0) {
		usage_error("--fault: '%s' is not a valid code (letters, digits, '.', '_', '-')",
			    f.code);
		goto fail;
	}
	if (at) {
		const char *slash = strchr(at + 1, '/');

		f.instance = slash ? strndup(at + 1, (size_t)(slash - at - 1)) : strdup(at + 1);
		f.group = slash ? strdup(slash + 1) : NULL;
		if (!f.instance || (slash && !f.group) || !*f.instance || (f.group && !*f.group)) {
			usage_error("--fault: expected @INSTANCE or @INSTANCE/GROUP in '%s'", arg);
			goto fail;
		}
	}
	grown = realloc(o->faults, (o->nfaults + 1) * sizeof(*o->faults));
	if (!grown) {
		usage_error("out of memory");
		goto fail;
	}
	o->faults = grown;
	o->faults[o->nfaults++] = f;
	return 0;
fail:
	free(f.code);
	free(f.instance);
	free(f.group);
	return -1;
}

/* The rates that can strike one request must not add up to more than 1.  A request for
 * INSTANCE/GROUP is exposed to the unscoped faults, INSTANCE's and INSTANCE/GROUP's. */
static int check_fault_sums(const struct sim_options *o)
{
	size_t i, j;

	for (i = 0; i <= o->nfaults; i++) {
		const struct sim_fault *scope = i < o->nfaults ? &o->faults[i] : NULL;
		double sum = 0;

		for (j = 0; j < o->nfaults; j++) {
			const struct sim_fault *f = &o->faults[j];

			if (f->instance && (!scope || !scope->instance ||
					    strcmp(f->instance, scope->instance)))
				continue;
			if (f->group && (!scope || !scope->group || strcmp(f->group, scope->group)))
				continue;
			sum += f->rate;
		}
		if (sum > 1.0 + 1e-9) {
			if (!scope || !scope->instance)
				return usage_error("--fault: the unscoped rates add up to %g, more than 1",
						   sum);
			return usage_error("--fault: the rates for requests to %s%s%s add up to %g, "
					   "more than 1", scope->instance, scope->group ? "/" : "",
					   scope->group ? scope->group : "", sum);
		}
	}
	return 0;
}

enum {
	OPT_LISTEN = 256, OPT_PORT_FILE, OPT_KEY_ID, OPT_KEY_SECRET, OPT_TOKEN, OPT_DATASET,
	OPT_INSTANCES, OPT_GROUPS, OPT_DEVICES, OPT_SEED, OPT_FAULT, OPT_QPS, OPT_LATENCY,
	OPT_HANG, OPT_RETRY_AFTER, OPT_LAST_TOKEN, OPT_NO_TOKEN, OPT_PAGE_CAP, OPT_TOTAL_NUMBER,
	OPT_MAX_SKEW, OPT_CHURN, OPT_LIST_GROUP_QPS, OPT_VERBOSE, OPT_HELP, OPT_ROLE,
	OPT_DENY_ROLE, OPT_OIDC_FILE, OPT_CRED_LIFETIME, OPT_IMDS, OPT_IMDS_ROLE,
	OPT_BUCKET, OPT_THROTTLE_STATUS, OPT_BLOCK_ABOVE, OPT_BLOCK_FOR, OPT_REGIONS, OPT_DENY,
};

static const struct option long_options[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "port-file", required_argument, NULL, OPT_PORT_FILE },
	{ "access-key-id", required_argument, NULL, OPT_KEY_ID },
	{ "access-key-secret", required_argument, NULL, OPT_KEY_SECRET },
	{ "security-token", required_argument, NULL, OPT_TOKEN },
	{ "dataset", required_argument, NULL, OPT_DATASET },
	{ "instances", required_argument, NULL, OPT_INSTANCES },
	{ "groups", required_argument, NULL, OPT_GROUPS },
	{ "devices", required_argument, NULL, OPT_DEVICES },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "fault", required_argument, NULL, OPT_FAULT },
	{ "qps", required_argument, NULL, OPT_QPS },
	{ "bucket", required_argument, NULL, OPT_BUCKET },
	{ "throttle-status", required_argument, NULL, OPT_THROTTLE_STATUS },
	{ "block-above", required_argument, NULL, OPT_BLOCK_ABOVE },
	{ "block-for", required_argument, NULL, OPT_BLOCK_FOR },
	{ "latency", required_argument, NULL, OPT_LATENCY },
	{ "hang", required_argument, NULL, OPT_HANG },
	{ "retry-after", required_argument, NULL, OPT_RETRY_AFTER },
	{ "last-token", required_argument, NULL, OPT_LAST_TOKEN },
	{ "no-token", no_argument, NULL, OPT_NO_TOKEN },
	{ "page-cap", required_argument, NULL, OPT_PAGE_CAP },
	{ "total-as-number", no_argument, NULL, OPT_TOTAL_NUMBER },
	{ "max-skew", required_argument, NULL, OPT_MAX_SKEW },
	{ "churn-during-crawl", required_argument, NULL, OPT_CHURN },
	{ "list-group-qps", required_argument, NULL, OPT_LIST_GROUP_QPS },
	{ "regions", required_argument, NULL, OPT_REGIONS },
	{ "deny", required_argument, NULL, OPT_DENY },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "role", required_argument, NULL, OPT_ROLE },
	{ "deny-role", required_argument, NULL, OPT_DENY_ROLE },
	{ "oidc-token-file", required_argument, NULL, OPT_OIDC_FILE },
	{ "credential-lifetime", required_argument, NULL, OPT_CRED_LIFETIME },
	{ "imds", required_argument, NULL, OPT_IMDS },
	{ "imds-role", required_argument, NULL, OPT_IMDS_ROLE },
	{ NULL, 0, NULL, 0 },
};

static int parse_regions(const char *arg, struct sim_options *o)
{
	const char *p = arg;

	while (*p) {
		size_t len = strcspn(p, ",");
		char **v;

		if (!len || len > 63 || strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-") < len)
			return usage_error("--regions: expected a comma-separated list of region "
					   "names like cn-hangzhou, got '%s'", arg);
		v = realloc(o->regions, (o->nregions + 1) * sizeof(*v));
		if (!v)
			return usage_error("out of memory");
		o->regions = v;
		if (!(v[o->nregions] = strndup(p, len)))
			return usage_error("out of memory");
		o->nregions++;
		p += len;
		if (*p == ',')
			p++;
	}
	if (!o->nregions)
		return usage_error("--regions: expected at least one region");
	return 0;
}

static int parse_deny(const char *arg, struct sim_options *o)
{
	const char *at = strchr(arg, '@');
	struct sim_deny *v;
	size_t len = at ? (size_t)(at - arg) : strlen(arg);

	if (!len || (at && !at[1]))
		return usage_error("--deny: expected ACTION[@REGION|@INSTANCE], got '%s'", arg);
	v = realloc(o->denies, (o->ndenies + 1) * sizeof(*v));
	if (!v)
		return usage_error("out of memory");
	o->denies = v;
	v[o->ndenies].action = strndup(arg, len);
	v[o->ndenies].scope = at ? strdup(at + 1) : NULL;
	if (!v[o->ndenies].action || (at && !v[o->ndenies].scope)) {
		free(v[o->ndenies].action);
		free(v[o->ndenies].scope);
		return usage_error("out of memory");
	}
	o->ndenies++;
	return 0;
}

int sim_options_parse(int argc, char **argv, struct sim_options *o)
{
	int c, generated = 0;
	int64_t ms;
	long v;

	o->listen_host = strdup("127.0.0.1");
	o->key_id = "testid";
	o->key_secret = getenv("CREDSYNC_SIM_ACCESS_KEY_SECRET");
	if (!o->key_secret || !*o->key_secret)
		o->key_secret = "testsecret";
	o->instances = 1;
	o->groups = 2;
	o->devices = 10;
	o->hang_ms = 30000;
	o->retry_after_ms = -1;
	o->max_skew_s = 900;
	o->list_group_qps = 10;
	o->throttle_status = 500;
	o->block_for_ms = 60 * 1000;
	o->imds_role = "credsync-ecs";
	if (!o->listen_host)
		return usage_error("out of memory");

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			if (parse_listen(optarg, o) < 0)
				return -1;
			break;
		case OPT_PORT_FILE:
			o->port_file = optarg;
			break;
		case OPT_KEY_ID:
			if (!*optarg)
				return usage_error("--access-key-id: must not be empty");
			o->key_id = optarg;
			break;
		case OPT_KEY_SECRET:
			if (!*optarg)
				return usage_error("--access-key-secret: must not be empty");
			o->key_secret = optarg;
			break;
		case OPT_TOKEN:
			if (!*optarg)
				return usage_error("--security-token: must not be empty");
			o->security_token = optarg;
			break;
		case OPT_DATASET:
			o->dataset = optarg;
			break;
		case OPT_INSTANCES:
			if (parse_long("--instances", optarg, 1, 100000, &o->instances) < 0)
				return -1;
			generated = 1;
			break;
		case OPT_GROUPS:
			if (parse_long("--groups", optarg, 0, 1000000, &o->groups) < 0)
				return -1;
			generated = 1;
			break;
		case OPT_DEVICES:
			if (parse_long("--devices", optarg, 0, SIM_MAX_IDS, &o->devices) < 0)
				return -1;
			generated = 1;
			break;
		case OPT_SEED: {
			char *end;

			errno = 0;
			o->seed = strtoull(optarg, &end, 10);
			o->seed_set = 1;
			if (errno || end == optarg || *end || *optarg == '-')
				return usage_error("--seed: expected a non-negative integer, got '%s'",
						   optarg);
			break;
		}
		case OPT_FAULT:
			if (parse_fault(optarg, o) < 0)
				return -1;
			break;
		case OPT_BUCKET: {
			char rate[64], *colon;

			snprintf(rate, sizeof(rate), "%s", optarg);
			if ((colon = strchr(rate, ':')))
				*colon++ = '\0';
			if (parse_double("--bucket rate", rate, 0, 1e7, &o->bucket_rate) < 0 ||
			    (colon && parse_double("--bucket burst", colon, 1, 1e7, &o->bucket_burst) < 0))
				return -1;
			break;
		}
		case OPT_THROTTLE_STATUS: {
			long status;

			if (parse_long("--throttle-status", optarg, 400, 599, &status) < 0)
				return -1;
			o->throttle_status = (unsigned)status;
			break;
		}
		case OPT_BLOCK_ABOVE:
			if (parse_double("--block-above", optarg, 0, 1e7, &o->block_above) < 0)
				return -1;
			break;
		case OPT_BLOCK_FOR:
			if (util_parse_duration(optarg, &o->block_for_ms) < 0) {
				fprintf(stderr, "credsync-sim: --block-for expects a duration like 60s\n");
				return -1;
			}
			break;
		case OPT_QPS:
			if (parse_double("--qps", optarg, 0, 1e7, &o->qps) < 0)
				return -1;
			break;
		case OPT_REGIONS:
			if (parse_regions(optarg, o) < 0)
				return -1;
			break;
		case OPT_DENY:
			if (parse_deny(optarg, o) < 0)
				return -1;
			break;
		case OPT_LIST_GROUP_QPS:
			if (parse_double("--list-group-qps", optarg, 0, 1e7, &o->list_group_qps) < 0)
				return -1;
			break;
		case OPT_LATENCY:
			if (parse_ms("--latency", optarg, &o->latency_ms) < 0)
				return -1;
			break;
		case OPT_HANG:
			if (parse_ms("--hang", optarg, &o->hang_ms) < 0)
				return -1;
			break;
		case OPT_RETRY_AFTER:
			if (parse_ms("--retry-after", optarg, &o->retry_after_ms) < 0)
				return -1;
			break;
		case OPT_LAST_TOKEN:
			if (!strcmp(optarg, "absent"))
				o->last_token = SIM_LAST_TOKEN_ABSENT;
			else if (!strcmp(optarg, "empty"))
				o->last_token = SIM_LAST_TOKEN_EMPTY;
			else if (!strcmp(optarg, "same"))
				o->last_token = SIM_LAST_TOKEN_SAME;
			else
				return usage_error("--last-token: expected absent, empty or same, got '%s'",
						   optarg);
			break;
		case OPT_NO_TOKEN:
			o->no_token = 1;
			break;
		case OPT_PAGE_CAP:
			if (parse_long("--page-cap", optarg, 1, 100, &o->page_cap) < 0)
				return -1;
			break;
		case OPT_TOTAL_NUMBER:
			o->total_as_number = 1;
			break;
		case OPT_MAX_SKEW:
			if (strspn(optarg, "0123456789") == strlen(optarg) && *optarg) {
				if (parse_long("--max-skew", optarg, 0, 31L * 86400, &v) < 0)
					return -1;
				o->max_skew_s = v;
			} else if (util_parse_duration(optarg, &ms) == 0 && ms <= 31LL * 86400000) {
				o->max_skew_s = ms / 1000;
			} else {
				return usage_error("--max-skew: expected seconds or a duration (15m) up to "
						   "31 days, got '%s'", optarg);
			}
			break;
		case OPT_CHURN:
			if (parse_double("--churn-during-crawl", optarg, 0.0, 1.0, &o->churn) < 0)
				return -1;
			break;
		case OPT_VERBOSE:
			o->verbose = 1;
			break;
		case OPT_ROLE:
		case OPT_DENY_ROLE: {
			char ***list = c == OPT_ROLE ? &o->roles : &o->denied_roles;
			size_t *n = c == OPT_ROLE ? &o->nroles : &o->ndenied;
			char **grown = realloc(*list, (*n + 1) * sizeof(**list));

			if (!*optarg)
				return usage_error("%s: must not be empty", argv[optind - 1]);
			if (!grown)
				return usage_error("out of memory");
			*list = grown;
			grown[(*n)++] = optarg;
			break;
		}
		case OPT_OIDC_FILE:
			o->oidc_token_file = optarg;
			break;
		case OPT_CRED_LIFETIME:
			if (parse_long("--credential-lifetime", optarg, 1, 43200, &v) < 0)
				return -1;
			o->cred_lifetime_s = v;
			break;
		case OPT_IMDS:
			if (!strcmp(optarg, "both"))
				o->imds = SIM_IMDS_BOTH;
			else if (!strcmp(optarg, "v2-only"))
				o->imds = SIM_IMDS_V2_ONLY;
			else if (!strcmp(optarg, "v1-only"))
				o->imds = SIM_IMDS_V1_ONLY;
			else
				return usage_error("--imds: expected both, v2-only or v1-only, got '%s'",
						   optarg);
			break;
		case OPT_IMDS_ROLE:
			o->imds_role = optarg;
			break;
		case 'h':
		case OPT_HELP:
			fputs(usage_text, stdout);
			return 1;
		case ':':
			return usage_error("%s: needs an argument", argv[optind - 1]);
		default:
			if (optopt && optopt < 256)
				return usage_error("unknown option '-%c'", optopt);
			return usage_error("unknown option '%s' (or it needs an argument)",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!o->nroles) {
		static char default_role[] = "acs:ram::1234567890123456:role/credsync-reader";

		o->roles = malloc(sizeof(*o->roles));
		if (!o->roles)
			return usage_error("out of memory");
		o->roles[o->nroles++] = default_role;
	}
	if (o->dataset && generated)
		return usage_error("--dataset and --instances/--groups/--devices exclude each other");
	if ((double)o->instances * (double)o->groups * (double)o->devices > SIM_MAX_IDS)
		return usage_error("%ld instances x %ld groups x %ld devices is more than %d client IDs",
				   o->instances, o->groups, o->devices, SIM_MAX_IDS);
	return check_fault_sums(o);
}

void sim_options_release(struct sim_options *o)
{
	size_t i;

	for (i = 0; i < o->nfaults; i++) {
		free(o->faults[i].code);
		free(o->faults[i].instance);
		free(o->faults[i].group);
	}
	free(o->faults);
	for (i = 0; i < o->nregions; i++)
		free(o->regions[i]);
	free(o->regions);
	for (i = 0; i < o->ndenies; i++) {
		free(o->denies[i].action);
		free(o->denies[i].scope);
	}
	free(o->denies);
	free(o->listen_host);
	free(o->roles);
	free(o->denied_roles);
}
