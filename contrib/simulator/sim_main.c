/*
 * sim_main.c - credsync-sim's command line, its HTTP server (libmicrohttpd, one thread per
 * connection) and the routing of each request to the RPC side (sim_api.c) or the control
 * endpoints (sim_ctl.c).  It owns the options, the server state's lifetime, the per-thread
 * request buffers and the port file.
 *
 * One thread per connection means a handler that sleeps (--latency, --hang) blocks only its
 * own connection, and lets each thread keep one request context whose buffers are reused
 * from request to request instead of allocated for each.
 */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define EX_OK 0
#define EX_FAIL 1
#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_NOINPUT 66

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

/* ---- small shared helpers ---- */

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t sim_rand(struct sim_server *s)
{
	uint64_t *x = s->rng, r = rotl(x[1] * 5, 7) * 9, t = x[1] << 17;

	x[2] ^= x[0];
	x[3] ^= x[1];
	x[1] ^= x[2];
	x[0] ^= x[3];
	x[2] ^= t;
	x[3] = rotl(x[3], 45);
	return r;
}

double sim_rand_unit(struct sim_server *s)
{
	return (double)(sim_rand(s) >> 11) * (1.0 / 9007199254740992.0);
}

int64_t sim_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void sim_sleep_ms(struct sim_server *s, int64_t ms)
{
	int64_t end = sim_now_us() + ms * 1000;

	/* in slices, so SIGTERM does not wait for a 30 s hang to end */
	while (!atomic_load(&s->stopping)) {
		int64_t left = end - sim_now_us();
		struct timespec ts;

		if (left <= 0)
			break;
		if (left > 50000)
			left = 50000;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000;
		nanosleep(&ts, NULL);
	}
}

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

const char *sim_param(const struct sim_req *r, const char *name)
{
	uint32_t h = name_hash(name);
	size_t i;

	for (i = 0; i < r->nparams; i++)
		if (r->param_hash[i] == h && !strcmp(r->params[i].name, name))
			return r->params[i].value;
	return NULL;
}

const char *sim_param_repeated(const struct sim_req *r)
{
	size_t i, j;

	for (i = 0; i < r->nparams; i++)
		for (j = i + 1; j < r->nparams; j++)
			if (r->param_hash[i] == r->param_hash[j] &&
			    !strcmp(r->params[i].name, r->params[j].name))
				return r->params[i].name;
	return NULL;
}

/* Appends one parameter.  Returns 0, or -1 when there are too many. */
static int add_param(struct sim_req *r, const char *name, const char *value)
{
	if (r->nparams == SIM_MAX_PARAMS) {
		r->too_many_params = 1;
		return -1;
	}
	r->params[r->nparams].name = name;
	r->params[r->nparams].value = value;
	r->param_hash[r->nparams] = name_hash(name);
	r->nparams++;
	return 0;
}

const char *sim_header(const struct sim_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

int sim_req_region(const struct sim_req *r, char *out, size_t outlen)
{
	const char *h = sim_header(r, "Host"), *end, *dot;
	size_t len;

	if (!h || !outlen)
		return 0;
	end = h + strcspn(h, ":");
	len = (size_t)(end - h);
	if (len > 10 && !strncasecmp(end - 10, ".localhost", 10)) {
		dot = memchr(h, '.', len);
		len = (size_t)(dot - h);
	} else if (len > 13 && !strncasecmp(end - 13, ".aliyuncs.com", 13)) {
		const char *start = !strncasecmp(h, "onsmqtt.", 8) ? h + 8
				    : !strncasecmp(h, "onsmqtt-vpc.", 12) ? h + 12 : NULL;

		if (!start || start >= end - 13)
			return 0;
		h = start;
		len = (size_t)(end - 13 - start);
	} else {
		return 0;
	}
	if (!len || len >= outlen)
		return 0;
	memcpy(out, h, len);
	out[len] = '\0';
	return 1;
}

/* ---- options ---- */

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

/* Returns 0 to run, 1 when --help was served, -1 on a usage error (already reported). */
static int parse_options(int argc, char **argv, struct sim_options *o)
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

static void options_release(struct sim_options *o)
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

/* ---- requests ---- */

static pthread_key_t req_key;

static void req_free(void *p)
{
	struct sim_req *r = p;

	buf_release(&r->body);
	buf_release(&r->form);
	buf_release(&r->out);
	buf_release(&r->tmp);
	buf_release(&r->tmp2);
	free(r);
}

/* The calling connection thread's request context, created on first use.  Only valid with
 * MHD_USE_THREAD_PER_CONNECTION: a thread serves one connection, one request at a time. */
static struct sim_req *req_for_thread(void)
{
	struct sim_req *r = pthread_getspecific(req_key);

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return NULL;
		if (pthread_setspecific(req_key, r)) {
			free(r);
			return NULL;
		}
	}
	return r;
}

static enum MHD_Result add_query_param(void *cls, enum MHD_ValueKind kind, const char *key,
				       const char *value)
{
	return add_param(cls, key, value ? value : "") < 0 ? MHD_NO : MHD_YES;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes application/x-www-form-urlencoded in place: '+' is a space, %XX a byte. */
static void form_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '+') {
			*o++ = ' ';
		} else if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			*o++ = (char)(hexval(s[1]) << 4 | hexval(s[2]));
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* Adds the parameters of a form body (a copy in r->form; the raw body stays for v3). */
static void add_form_params(struct sim_req *r)
{
	const char *ct = sim_header(r, "Content-Type");
	char *p;

	if (!r->body.len || !ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33))
		return;
	buf_reset(&r->form);
	buf_append(&r->form, r->body.data, r->body.len);
	if (r->form.oom)
		return;
	for (p = r->form.data; p && *p;) {
		char *amp = strchr(p, '&'), *eq;

		if (amp)
			*amp = '\0';
		eq = strchr(p, '=');
		if (eq)
			*eq = '\0';
		if (*p) {
			form_decode(p);
			if (eq)
				form_decode(eq + 1);
			if (add_param(r, p, eq ? eq + 1 : "") < 0)
				return;
		}
		p = amp ? amp + 1 : NULL;
	}
}

static enum MHD_Result send_reply(struct sim_server *s, struct sim_req *r,
				  const struct sim_reply *rep, int rpc)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int64_t delay = rep->delay_ms + (rpc ? s->opt->latency_ms : 0);

	if (delay > 0)
		sim_sleep_ms(s, delay);
	if (!rep->status)
		return MHD_NO;  /* reset and timeout faults: close without a word */
	/* PERSISTENT is safe: the buffer belongs to this connection's thread and is not touched
	 * again before the next request on the connection, which comes after this response */
	resp = MHD_create_response_from_buffer(r->out.len, r->out.data ? r->out.data : (char *)"",
					       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	if (rep->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rep->content_type);
	if (rpc)
		MHD_add_response_header(resp, "x-acs-request-id", r->request_id);
	if (rep->retry_after_ms >= 0) {
		char v[32];

		snprintf(v, sizeof(v), "%lld", (long long)rep->retry_after_ms);
		MHD_add_response_header(resp, "x-acs-retry-after", v);
	}
	ret = MHD_queue_response(r->conn, rep->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct sim_server *s = cls;
	struct sim_req *r = *con_cls;
	struct sim_reply rep = { .retry_after_ms = -1 };
	int rpc;

	if (!r) {
		/* first call: headers only; the body (if any) follows in later calls */
		r = req_for_thread();
		if (!r)
			return MHD_NO;
		r->conn = conn;
		r->method = method;
		r->url = url;
		buf_reset(&r->body);
		r->body_too_large = 0;
		r->nparams = r->nquery = 0;
		r->too_many_params = 0;
		r->request_id[0] = '\0';
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (r->body.len + *upload_data_size > SIM_MAX_BODY)
			r->body_too_large = 1;
		else
			buf_append(&r->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->body.oom)
		r->body_too_large = 1;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_query_param, r);
	r->nquery = r->nparams;
	add_form_params(r);

	rpc = strncmp(url, "/_sim/", 6) != 0;
	if (!strncmp(url, "/latest/", 8)) {
		sim_imds(s, r, &rep);
		rpc = 0;
	} else if (rpc)
		sim_rpc(s, r, &rep);
	else
		sim_ctl(s, r, &rep);
	return send_reply(s, r, &rep, rpc);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	/* the context belongs to the thread, not the request: only forget it */
	*con_cls = NULL;
}

/* ---- startup ---- */

static int write_port_file(const char *path, unsigned port)
{
	struct cs_buf tmp = CS_BUF_INIT;
	FILE *f;
	int ret = -1;

	buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid());
	if (tmp.oom)
		goto out;
	f = fopen(buf_str(&tmp), "w");
	if (!f) {
		fprintf(stderr, "credsync-sim: %s: cannot create: %s\n", buf_str(&tmp), strerror(errno));
		goto out;
	}
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0) {
		fprintf(stderr, "credsync-sim: %s: write failed: %s\n", buf_str(&tmp), strerror(errno));
		unlink(buf_str(&tmp));
		goto out;
	}
	/* rename is atomic: a reader sees no file or a whole one */
	if (rename(buf_str(&tmp), path) != 0) {
		fprintf(stderr, "credsync-sim: %s: cannot rename into place: %s\n", path,
			strerror(errno));
		unlink(buf_str(&tmp));
		goto out;
	}
	ret = 0;
out:
	buf_release(&tmp);
	return ret;
}

static int resolve(const struct sim_options *o, struct sockaddr_storage *ss, int *ipv6)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	int rc;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(o->listen_host, NULL, &hints, &res);
	if (rc || !res) {
		fprintf(stderr, "credsync-sim: --listen: cannot resolve '%s': %s\n", o->listen_host,
			gai_strerror(rc));
		return -1;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*ipv6 = res->ai_family == AF_INET6;
	if (*ipv6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)o->listen_port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)o->listen_port);
	freeaddrinfo(res);
	return 0;
}

static void seed_rng(struct sim_server *s, uint64_t seed, int seeded)
{
	uint64_t x;
	int i;

	if (!seeded && RAND_bytes((unsigned char *)&seed, sizeof(seed)) != 1)
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	/* xoshiro's state from splitmix64, as its authors recommend */
	x = seed;
	for (i = 0; i < 4; i++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ULL);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		s->rng[i] = z ^ (z >> 31);
	}
	if (RAND_bytes((unsigned char *)&s->reqid_hi, sizeof(s->reqid_hi)) != 1)
		s->reqid_hi = seed ^ 0x5bd1e9955bd1e995ULL;
}

static int load_dataset(struct sim_server *s, const struct sim_options *o)
{
	struct cs_error err = { 0 };
	int64_t t0 = util_mono_ms();
	int rc;

	if (o->dataset)
		rc = sim_data_load_file(&s->data, o->dataset, &err);
	else
		rc = sim_data_generate(&s->data, o->instances, o->groups, o->devices, &err);
	if (rc < 0) {
		fprintf(stderr, "credsync-sim: %s\n", err.msg);
		if (err.kind == CS_ERR_CONFIG)
			return EX_DATAERR;
		if (err.kind == CS_ERR_RUNTIME && o->dataset)
			return EX_NOINPUT;
		return EX_FAIL;
	}
	{
		size_t i;

		/* instances sorted by id take the regions in turn */
		for (i = 0; i < s->data.ninst; i++)
			s->data.inst[i].region = o->nregions ? o->regions[i % o->nregions]
							     : SIM_DEFAULT_REGION;
	}
	if (o->verbose) {
		size_t i, j, ids = 0, groups = 0;

		for (i = 0; i < s->data.ninst; i++)
			for (j = 0; j < s->data.inst[i].ngroups; j++, groups++)
				ids += s->data.inst[i].groups[j].n;
		fprintf(stderr, "credsync-sim: %zu instances, %zu groups, %zu client IDs in %lld ms\n",
			s->data.ninst, groups, ids, (long long)(util_mono_ms() - t0));
	}
	return EX_OK;
}

int main(int argc, char **argv)
{
	struct sim_options opt = { 0 };
	struct sim_server srv = { 0 };
	struct MHD_Daemon *d = NULL;
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage ss;
	sigset_t stop;
	unsigned port;
	int rc, ipv6 = 0, sig = 0, lock_ready = 0, key_ready = 0;
	int ret = EX_FAIL;

	rc = parse_options(argc, argv, &opt);
	if (rc) {
		ret = rc > 0 ? EX_OK : EX_USAGE;
		goto out;
	}
	if (resolve(&opt, &ss, &ipv6) < 0) {
		ret = EX_USAGE;
		goto out;
	}
	srv.opt = &opt;
	seed_rng(&srv, opt.seed, opt.seed_set);
	if (pthread_mutex_init(&srv.lock, NULL)) {
		fputs("credsync-sim: cannot create a mutex\n", stderr);
		goto out;
	}
	lock_ready = 1;
	if (pthread_key_create(&req_key, req_free)) {
		fputs("credsync-sim: cannot create a thread key\n", stderr);
		goto out;
	}
	key_ready = 1;
	if (sim_nonces_init(&srv.nonces, SIM_NONCE_WINDOW) < 0) {
		fputs("credsync-sim: out of memory for the nonce set\n", stderr);
		goto out;
	}
	ret = load_dataset(&srv, &opt);
	if (ret != EX_OK)
		goto out;
	ret = EX_FAIL;
	sim_bucket_init(&srv.qps, opt.qps, opt.qps / 10 > 1 ? opt.qps / 10 : 1);
	sim_bucket_init(&srv.list_group, opt.list_group_qps,
			opt.list_group_qps > 1 ? opt.list_group_qps : 1);

	/* every thread MHD starts inherits this mask, so only sigwait() below sees the signals */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			     MHD_USE_POLL | (ipv6 ? MHD_USE_IPv6 : 0) |
			     (opt.verbose ? MHD_USE_ERROR_LOG : 0),
			     (uint16_t)opt.listen_port, NULL, NULL, on_request, &srv,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			     MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024,
			     MHD_OPTION_CONNECTION_LIMIT, 1000u,
			     MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
			     MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "credsync-sim: cannot listen on %s%s%s:%u: %s\n", ipv6 ? "[" : "",
			opt.listen_host, ipv6 ? "]" : "", opt.listen_port,
			errno ? strerror(errno) : "libmicrohttpd failed to start");
		goto out;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	port = info ? info->port : opt.listen_port;
	if (opt.port_file && write_port_file(opt.port_file, port) < 0)
		goto out;
	fprintf(stderr, "credsync-sim listening on http://%s%s%s:%u\n", ipv6 ? "[" : "",
		opt.listen_host, ipv6 ? "]" : "", port);

	while (sigwait(&stop, &sig) == 0)
		if (sig == SIGINT || sig == SIGTERM)
			break;
	if (opt.verbose)
		fprintf(stderr, "credsync-sim: %s, stopping\n", strsignal(sig));
	ret = EX_OK;
out:
	atomic_store(&srv.stopping, 1);
	if (d)
		MHD_stop_daemon(d);
	sim_data_release(&srv.data);
	sim_nonces_release(&srv.nonces);
	sim_sts_release(&srv);
	if (lock_ready)
		pthread_mutex_destroy(&srv.lock);
	if (key_ready)
		pthread_key_delete(req_key);
	options_release(&opt);
	return ret;
}
