/*
 * sim_sts.c - the identity services on the simulator's own listener: STS (AssumeRole, signed
 * by any identity the simulator knows, and AssumeRoleWithOIDC, unsigned), the ECS instance
 * metadata service under /latest/ (IMDSv2 token flow; --imds v2-only refuses v1 GETs,
 * v1-only has no token PUT), and a credentials URI at /_sim/credentials-uri.
 *
 * Every issuance mints real temporary credentials into a ring (SIM_MAX_TEMPS): the RPC side
 * accepts them (sim_auth.c's sim_key_lookup reads the ring) with their own SecurityToken
 * until they expire, then answers InvalidSecurityToken.Expired.  --credential-lifetime
 * shortens their life for tests.
 * POST /_sim/identity-fail?count=N&code=CODE makes the next N issuances fail with CODE;
 * POST /_sim/expire-all expires every issued set now; GET /_sim/issued lists the secrets and
 * tokens handed out (for the tests' scans of what credsync wrote).
 */
#include "sim.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "util.h"

#define STS_VERSION "2015-04-01"
#define OIDC_MAX 16384

static void rand_hex(char *out, size_t nhex)
{
	static const char hx[] = "0123456789abcdef";
	unsigned char b[64];
	size_t i;

	if (nhex / 2 > sizeof(b) || RAND_bytes(b, (int)(nhex / 2)) != 1)
		memset(b, 0x5a, sizeof(b));
	for (i = 0; i < nhex / 2; i++) {
		out[2 * i] = hx[b[i] >> 4];
		out[2 * i + 1] = hx[b[i] & 15];
	}
	out[nhex / 2 * 2] = '\0';
}

/* 1 when an injected failure is due (code copied out), else 0.  Takes the lock. */
static int fail_due(struct sim_server *s, char code[64])
{
	int due = 0;

	pthread_mutex_lock(&s->lock);
	if (s->fail_count > 0) {
		s->fail_count--;
		memcpy(code, s->fail_code, 64);
		due = 1;
	}
	pthread_mutex_unlock(&s->lock);
	return due;
}

/* Mints credentials living `seconds` (capped by --credential-lifetime) and appends
 * "AccessKeyId","AccessKeySecret","SecurityToken","Expiration" members to out. */
static int mint(struct sim_server *s, int64_t seconds, struct cs_buf *out)
{
	struct sim_temp t;
	char exp[21];

	if (s->opt->cred_lifetime_s > 0)
		seconds = s->opt->cred_lifetime_s;
	memset(&t, 0, sizeof(t));
	memcpy(t.id, "STS.", 4);
	rand_hex(t.id + 4, 24);
	rand_hex(t.secret, 40);
	memcpy(t.token, "CAIS", 4);
	rand_hex(t.token + 4, 64);
	t.expires = util_now_epoch() + seconds;
	util_format_utc(t.expires, exp);
	pthread_mutex_lock(&s->lock);
	if (!s->temps && !(s->temps = calloc(SIM_MAX_TEMPS, sizeof(*s->temps)))) {
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	s->temps[s->temp_head] = t;
	s->temp_head = (s->temp_head + 1) % SIM_MAX_TEMPS;
	if (s->ntemps < SIM_MAX_TEMPS)
		s->ntemps++;
	s->stats.issued++;
	pthread_mutex_unlock(&s->lock);
	buf_printf(out, "\"AccessKeyId\":\"%s\",\"AccessKeySecret\":\"%s\",\"SecurityToken\":\"%s\","
		   "\"Expiration\":\"%s\"", t.id, t.secret, t.token, exp);
	OPENSSL_cleanse(&t, sizeof(t));
	return 0;
}

void sim_sts_release(struct sim_server *s)
{
	if (s->temps)
		OPENSSL_cleanse(s->temps, SIM_MAX_TEMPS * sizeof(*s->temps));
	free(s->temps);
	s->temps = NULL;
}

/* ---- STS ---- */

/* The role named by arn: 1 assumable (its ExternalId, "" none, in ext), 2 denied, 0 none. */
static int find_role(const struct sim_options *o, const char *arn, const char **ext)
{
	size_t i, n = strlen(arn);

	for (i = 0; i < o->ndenied; i++)
		if (!strcmp(o->denied_roles[i], arn))
			return 2;
	for (i = 0; i < o->nroles; i++) {
		const char *r = o->roles[i], *hash = strchr(r, '#');
		size_t len = hash ? (size_t)(hash - r) : strlen(r);

		if (len == n && !strncmp(r, arn, n)) {
			*ext = hash ? hash + 1 : "";
			return 1;
		}
	}
	return 0;
}

/* Reads the OIDC token file; NULL when unreadable.  Trailing newlines do not count. */
static char *read_token_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *b;
	size_t n;

	if (!f)
		return NULL;
	b = calloc(1, OIDC_MAX + 1);
	n = b ? fread(b, 1, OIDC_MAX, f) : 0;
	fclose(f);
	if (!b)
		return NULL;
	while (n && (b[n - 1] == '\n' || b[n - 1] == '\r'))
		b[--n] = '\0';
	return b;
}

static void sts_success(struct sim_server *s, struct sim_req *r, struct sim_reply *rep,
			const char *arn, const char *session, int64_t duration)
{
	const char *slash = strrchr(arn, '/');
	char assumed[512];

	snprintf(assumed, sizeof(assumed), "%.200s:%.100s",
		 slash ? slash + 1 : arn, session ? session : "");
	buf_reset(&r->out);
	buf_puts(&r->out, "{\"RequestId\":\"");
	buf_puts(&r->out, r->request_id);
	buf_puts(&r->out, "\",\"AssumedRoleUser\":{\"Arn\":");
	buf_reset(&r->tmp2);
	buf_printf(&r->tmp2, "%s/%s", arn, session ? session : "");
	sim_json_str(&r->out, buf_str(&r->tmp2));
	buf_puts(&r->out, ",\"AssumedRoleId\":");
	sim_json_str(&r->out, assumed);
	buf_puts(&r->out, "},\"Credentials\":{");
	if (mint(s, duration, &r->out) < 0) {
		sim_error(r, rep, 500, "InternalError", "The simulator ran out of memory.");
		return;
	}
	buf_puts(&r->out, "}}");
	rep->status = 200;
	rep->content_type = "application/json;charset=utf-8";
}

void sim_sts(struct sim_server *s, struct sim_req *r, const struct sim_call *call,
	     struct sim_reply *rep)
{
	const int oidc = !strcmp(call->action, "AssumeRoleWithOIDC");
	const char *arn = sim_param(r, "RoleArn"), *session = sim_param(r, "RoleSessionName");
	const char *dur = sim_param(r, "DurationSeconds"), *ext = "", *given_ext;
	char code[64], *end;
	long duration = 3600;
	int role;

	if (!call->version || strcmp(call->version, STS_VERSION)) {
		sim_error(r, rep, 400, "InvalidVersion",
			  "Specified parameter Version is not valid. (expected '" STS_VERSION "')");
		return;
	}
	if (!arn || !*arn) {
		sim_error(r, rep, 400, "MissingRoleArn", "RoleArn is mandatory for this action.");
		return;
	}
	if (!session || !*session) {
		sim_error(r, rep, 400, "MissingRoleSessionName",
			  "RoleSessionName is mandatory for this action.");
		return;
	}
	if (dur) {
		duration = strtol(dur, &end, 10);
		if (!*dur || *end || duration < 900 || duration > 43200) {
			sim_error(r, rep, 400, "InvalidParameter.DurationSeconds",
				  "The parameter DurationSeconds is invalid: it must be from 900 to "
				  "43200 seconds.");
			return;
		}
	}
	if (oidc) {
		const char *tok = sim_param(r, "OIDCToken"), *prov = sim_param(r, "OIDCProviderArn");
		char *want;
		int ok;

		if (!prov || !*prov) {
			sim_error(r, rep, 400, "MissingOIDCProviderArn",
				  "OIDCProviderArn is mandatory for this action.");
			return;
		}
		if (!tok || !*tok) {
			sim_error(r, rep, 400, "MissingOIDCToken", "OIDCToken is mandatory for this action.");
			return;
		}
		want = s->opt->oidc_token_file ? read_token_file(s->opt->oidc_token_file) : NULL;
		ok = want && *want && strlen(want) == strlen(tok) &&
		     !CRYPTO_memcmp(want, tok, strlen(tok));
		if (want) {
			OPENSSL_cleanse(want, strlen(want));
			free(want);
		}
		if (!ok) {
			sim_error(r, rep, 400, "AuthenticationFail.OIDCToken.Invalid",
				  "The OIDC token is invalid or has been rotated.");
			return;
		}
	}
	role = find_role(s->opt, arn, &ext);
	if (role == 0) {
		char q[256];

		util_quote_bytes(arn, strlen(arn), q, sizeof(q));
		sim_error(r, rep, 404, "EntityNotExist.Role", "The role not exists: %s.", q);
		return;
	}
	given_ext = sim_param(r, "ExternalId");
	if (role == 2 || (*ext && (!given_ext || strcmp(given_ext, ext)))) {
		sim_error(r, rep, 403, "NoPermission",
			  "You are not authorized to do this action. You should be authorized by RAM.");
		return;
	}
	if (fail_due(s, code)) {
		/* the reply keeps a pointer to the Code: hand it a static string */
		static const char *const known[] = { "Throttling.User", "NoPermission",
						     "ServiceUnavailable", "InternalError" };
		const char *c = "InternalError";
		size_t i;

		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (!strcmp(code, known[i]))
				c = known[i];
		sim_error(r, rep, !strcmp(c, "InternalError") ? 500 : !strcmp(c, "NoPermission") ?
			  403 : 400, c, "%s", !strcmp(c, "Throttling.User") ?
			  "Request was denied due to user flow control." : "Injected failure.");
		rep->throttled = !strcmp(c, "Throttling.User");
		return;
	}
	sts_success(s, r, rep, arn, session, duration);
}

/* ---- instance metadata ---- */

static void text_reply(struct sim_req *r, struct sim_reply *rep, unsigned status,
		       const char *text)
{
	buf_reset(&r->out);
	buf_puts(&r->out, text);
	rep->status = status;
	rep->content_type = "text/plain";
}

/* 1 when the request carries a live IMDSv2 token. */
static int imds_token_ok(struct sim_server *s, const char *tok)
{
	int64_t now = util_now_epoch();
	size_t i;
	int ok = 0;

	if (!tok || strlen(tok) != 32)
		return 0;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < SIM_IMDS_TOKENS; i++)
		if (!strcmp(s->imds_tokens[i], tok) && s->imds_expiry[i] >= now)
			ok = 1;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

void sim_imds(struct sim_server *s, struct sim_req *r, struct sim_reply *rep)
{
	static const char prefix[] = "/latest/meta-data/ram/security-credentials/";
	const struct sim_options *o = s->opt;
	const char *tok = sim_header(r, "X-aliyun-ecs-metadata-token");
	char code[64];

	if (!strcmp(r->url, "/latest/api/token")) {
		const char *ttl = sim_header(r, "X-aliyun-ecs-metadata-token-ttl-seconds");
		char *end;
		long v;

		if (o->imds == SIM_IMDS_V1_ONLY) {
			text_reply(r, rep, 404, "Not Found");
			return;
		}
		if (strcmp(r->method, "PUT")) {
			text_reply(r, rep, 405, "Method Not Allowed");
			return;
		}
		v = ttl ? strtol(ttl, &end, 10) : 0;
		if (!ttl || !*ttl || *end || v < 1 || v > 21600) {
			text_reply(r, rep, 400, "Bad Request: X-aliyun-ecs-metadata-token-ttl-seconds "
				   "must be 1..21600");
			return;
		}
		pthread_mutex_lock(&s->lock);
		rand_hex(s->imds_tokens[s->imds_head], 32);
		s->imds_expiry[s->imds_head] = util_now_epoch() + v;
		text_reply(r, rep, 200, s->imds_tokens[s->imds_head]);
		s->imds_head = (s->imds_head + 1) % SIM_IMDS_TOKENS;
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (strcmp(r->method, "GET")) {
		text_reply(r, rep, 405, "Method Not Allowed");
		return;
	}
	if (tok ? !imds_token_ok(s, tok) : o->imds == SIM_IMDS_V2_ONLY) {
		text_reply(r, rep, 401, "Unauthorized");
		return;
	}
	if (strncmp(r->url, prefix, sizeof(prefix) - 1)) {
		text_reply(r, rep, 404, "Not Found");
		return;
	}
	if (!r->url[sizeof(prefix) - 1]) {
		if (!*o->imds_role)
			text_reply(r, rep, 404, "Not Found");
		else
			text_reply(r, rep, 200, o->imds_role);
		return;
	}
	if (!*o->imds_role || strcmp(r->url + sizeof(prefix) - 1, o->imds_role)) {
		text_reply(r, rep, 404, "Not Found");
		return;
	}
	buf_reset(&r->out);
	if (fail_due(s, code)) {
		buf_printf(&r->out, "{\"Code\":\"%s\",\"Message\":\"injected\"}", code);
	} else {
		char now[21];

		util_format_utc(util_now_epoch(), now);
		buf_puts(&r->out, "{\"Code\":\"Success\",");
		if (mint(s, 21600, &r->out) < 0) {
			text_reply(r, rep, 500, "Internal Server Error");
			return;
		}
		buf_printf(&r->out, ",\"LastUpdated\":\"%s\"}", now);
	}
	rep->status = 200;
	rep->content_type = "text/plain";
}

/* ---- credentials URI and the failure switch ---- */

/* GET /_sim/credentials-uri[?mode=garbage|fail|missing|past]: the JSON of a credentials
 * URI, or the broken variant the test asks for. */
static void credentials_uri(struct sim_server *s, struct sim_req *r, struct sim_reply *rep)
{
	const char *mode = sim_param(r, "mode");
	char code[64];

	buf_reset(&r->out);
	rep->status = 200;
	rep->content_type = "application/json";
	if (mode && !strcmp(mode, "garbage")) {
		buf_puts(&r->out, "<html>not json</html>");
	} else if (mode && !strcmp(mode, "fail")) {
		buf_puts(&r->out, "{\"Code\":\"Forbidden\",\"Message\":\"no credentials for you\"}");
	} else if (mode && !strcmp(mode, "missing")) {
		buf_puts(&r->out, "{\"Code\":\"Success\",\"AccessKeyId\":\"STS.x\","
			 "\"Expiration\":\"2099-01-01T00:00:00Z\"}");
	} else if (mode && !strcmp(mode, "past")) {
		buf_puts(&r->out, "{\"Code\":\"Success\",\"AccessKeyId\":\"STS.x\","
			 "\"AccessKeySecret\":\"y\",\"SecurityToken\":\"z\","
			 "\"Expiration\":\"2001-01-01T00:00:00Z\"}");
	} else if (fail_due(s, code)) {
		buf_printf(&r->out, "{\"Code\":\"%s\",\"Message\":\"injected\"}", code);
	} else {
		buf_puts(&r->out, "{\"Code\":\"Success\",");
		if (mint(s, 3600, &r->out) < 0) {
			rep->status = 500;
			return;
		}
		buf_puts(&r->out, "}");
	}
}

int sim_sts_ctl(struct sim_server *s, struct sim_req *r, struct sim_reply *rep)
{
	if (!strcmp(r->url, "/_sim/credentials-uri")) {
		credentials_uri(s, r, rep);
		return 1;
	}
	if (!strcmp(r->url, "/_sim/expire-all")) {
		size_t i;

		/* a revocation, or a clock the client disagrees with: every issued set dies now */
		pthread_mutex_lock(&s->lock);
		for (i = 0; i < s->ntemps; i++)
			s->temps[i].expires = util_now_epoch() - 1;
		pthread_mutex_unlock(&s->lock);
		buf_reset(&r->out);
		buf_puts(&r->out, "{\"expired\":true}\n");
		rep->status = 200;
		rep->content_type = "application/json";
		return 1;
	}
	if (!strcmp(r->url, "/_sim/issued")) {
		size_t i;

		/* for the tests' secret scans: every secret and token handed out, and the IMDS tokens */
		buf_reset(&r->out);
		buf_puts(&r->out, "{\"secrets\":[");
		pthread_mutex_lock(&s->lock);
		for (i = 0; i < s->ntemps; i++)
			buf_printf(&r->out, "%s\"%s\",\"%s\"", i ? "," : "", s->temps[i].secret,
				   s->temps[i].token);
		buf_puts(&r->out, "],\"imds_tokens\":[");
		for (i = 0; i < SIM_IMDS_TOKENS; i++)
			if (s->imds_tokens[i][0])
				buf_printf(&r->out, "%s\"%s\"", r->out.data[r->out.len - 1] == '[' ? "" : ",",
					   s->imds_tokens[i]);
		pthread_mutex_unlock(&s->lock);
		buf_puts(&r->out, "]}\n");
		rep->status = 200;
		rep->content_type = "application/json";
		return 1;
	}
	if (!strcmp(r->url, "/_sim/identity-fail")) {
		const char *count = sim_param(r, "count"), *code = sim_param(r, "code");
		long n = count ? strtol(count, NULL, 10) : 1;

		pthread_mutex_lock(&s->lock);
		s->fail_count = n < 0 ? 0 : n > 1000000 ? 1000000 : n;
		snprintf(s->fail_code, sizeof(s->fail_code), "%s",
			 code && *code ? code : "InternalError");
		pthread_mutex_unlock(&s->lock);
		buf_reset(&r->out);
		buf_printf(&r->out, "{\"fail_count\":%ld}\n", s->fail_count);
		rep->status = 200;
		rep->content_type = "application/json";
		return 1;
	}
	return 0;
}
