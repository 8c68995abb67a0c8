/*
 * creds_fetch.c - temporary credentials over HTTP: the ECS instance metadata service (IMDSv2
 * token first, IMDSv1 only when the service answered the token PUT with an error and
 * ALIBABA_CLOUD_IMDSV1_DISABLED is not true), STS AssumeRole (signed with the base identity,
 * which may itself be temporary) and AssumeRoleWithOIDC (unsigned; the token file read afresh
 * every time), and a credentials URI.
 *
 * Blocking libcurl easy transfers, short timeouts, no redirects, bodies capped at 64 KiB,
 * and a progress callback that aborts once the stop flag is set.  Every buffer that held a
 * secret, a session token, an OIDC token or a metadata token is cleansed before it is freed;
 * URLs (which carry the SecurityToken of a v1-signed AssumeRole) are never logged.
 */
#include "creds_int.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "buf.h"
#include "log.h"
#include "scrub.h"
#include "sign.h"
#include "util.h"

#define FETCH_MAX_BODY (64 * 1024)
#define OIDC_MAX_TOKEN (64 * 1024)
#define STS_VERSION "2015-04-01"

static volatile sig_atomic_t *g_stop;

void creds_set_stop(volatile sig_atomic_t *stop)
{
	g_stop = stop;
}

const char *creds_metadata_endpoint(void)
{
	const char *e = getenv("CREDSYNC_METADATA_ENDPOINT");

	return e && *e ? e : CREDS_DEFAULT_METADATA;
}

int creds_check_url(const char *what, const char *url, struct cs_error *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int ret = -1;

	if (!u)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "%s '%s' is not a valid URL", what, url);
		goto out;
	}
	if (strcasecmp(scheme, "https") && strcasecmp(scheme, "http")) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "%s '%s': only https (or http to loopback) is "
			     "allowed", what, url);
		goto out;
	}
	/* the real metadata service speaks plain http on a link-local address; nothing else may */
	if (!strcasecmp(scheme, "http") && !util_host_is_loopback(host) &&
	    strcmp(url, CREDS_DEFAULT_METADATA)) {
		cs_error_set(err, CS_ERR_CREDENTIALS,
			     "%s '%s': plain http is allowed only to loopback hosts; use https", what,
			     url);
		goto out;
	}
	ret = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ret;
}

/* ---- one blocking transfer ---- */

struct sink {
	struct cs_buf *b;
	int too_large;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;

	if (s->b->len + size * n > FETCH_MAX_BODY) {
		s->too_large = 1;
		return 0;
	}
	buf_append(s->b, p, size * n);
	return s->b->oom ? 0 : size * n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)arg, (void)dt, (void)dn, (void)ut, (void)un;
	return g_stop && *g_stop ? 1 : 0;
}

static void slist_free_wipe(struct curl_slist *h)
{
	struct curl_slist *i;

	for (i = h; i; i = i->next)
		if (i->data)
			OPENSSL_cleanse(i->data, strlen(i->data));
	curl_slist_free_all(h);
}

enum { FETCH_OK = 0, FETCH_TRANSPORT = -1, FETCH_STOPPED = -2 };

/* Sends one request.  FETCH_OK with *status and body (whatever the status), FETCH_TRANSPORT
 * with why filled, FETCH_STOPPED after the stop flag.  headers stay the caller's. */
static int http_once(const char *method, const char *url, const struct curl_slist *headers,
		     const char *body, long connect_ms, long total_ms, struct cs_buf *resp,
		     long *status, char *why, size_t whylen)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct sink sink = { resp, 0 };
	CURL *e = curl_easy_init();
	CURLcode rc;

	*status = 0;
	if (!e) {
		snprintf(why, whylen, "cannot start a transfer");
		return FETCH_TRANSPORT;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total_ms);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "credsync/" CREDSYNC_VERSION);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
	} else if (strcmp(method, "GET")) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	}
	rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(e);
	if (rc == CURLE_ABORTED_BY_CALLBACK && g_stop && *g_stop)
		return FETCH_STOPPED;
	if (rc != CURLE_OK) {
		snprintf(why, whylen, "%s", sink.too_large ? "the answer passed 64 KiB" :
			 errbuf[0] ? errbuf : curl_easy_strerror(rc));
		return FETCH_TRANSPORT;
	}
	return FETCH_OK;
}

static void sleep_ms(long ms)
{
	struct timespec ts;

	/* in slices, so ^C is not kept waiting */
	while (ms > 0 && !(g_stop && *g_stop)) {
		long slice = ms > 50 ? 50 : ms;

		ts.tv_sec = 0;
		ts.tv_nsec = slice * 1000000L;
		nanosleep(&ts, NULL);
		ms -= slice;
	}
}

/* ---- the credentials JSON ---- */

static void json_wipe(cJSON *o)
{
	cJSON *i;

	if (!o)
		return;
	if (cJSON_IsString(o) && o->valuestring)
		OPENSSL_cleanse(o->valuestring, strlen(o->valuestring));
	for (i = o->child; i; i = i->next)
		json_wipe(i);
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Takes the four fields of o (IDENTITY.md's shape) into out. */
static int take_credentials(const cJSON *o, const char *what, struct creds *out,
			    struct cs_error *err)
{
	static const char *const need[] = { "AccessKeyId", "AccessKeySecret", "SecurityToken",
					    "Expiration" };
	const char *exp;
	int64_t when;
	size_t i;

	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!jstr(o, need[i]) || !*jstr(o, need[i]))
			return cs_error_set(err, CS_ERR_CREDENTIALS, "%s: the answer lacks %s", what,
					    need[i]);
	exp = jstr(o, "Expiration");
	if (util_parse_utc(exp, &when) < 0) {
		char q[64];

		util_quote_bytes(exp, strlen(exp), q, sizeof(q));
		return cs_error_set(err, CS_ERR_CREDENTIALS,
				    "%s: Expiration '%s' is not a UTC time like 2026-12-01T18:00:00Z",
				    what, q);
	}
	if (when <= util_now_epoch())
		return cs_error_set(err, CS_ERR_CREDENTIALS,
				    "%s: the credentials it gave expired at %s (check the clock)", what,
				    exp);
	if (creds_set(out, jstr(o, "AccessKeyId"), jstr(o, "AccessKeySecret"),
		      jstr(o, "SecurityToken"), err) < 0)
		return -1;
	out->expiration = when;
	out->obtained = util_now_epoch();
	return 0;
}

/* Parses body as JSON into *root (wipe and delete it).  Returns 0 or -1 (err). */
static int parse_json(const struct cs_buf *body, const char *what, cJSON **root,
		      struct cs_error *err)
{
	char q[96];

	*root = body->len ? cJSON_ParseWithLength(body->data, body->len) : NULL;
	if (*root && cJSON_IsObject(*root))
		return 0;
	cJSON_Delete(*root);
	*root = NULL;
	util_quote_bytes(buf_str(body), body->len > 40 ? 40 : body->len, q, sizeof(q));
	return cs_error_set(err, CS_ERR_CREDENTIALS, "%s: the answer is not JSON (begins '%s')",
			    what, q);
}

/* ---- ECS RAM role ---- */

static int imdsv1_disabled(void)
{
	const char *v = getenv("ALIBABA_CLOUD_IMDSV1_DISABLED");

	return v && !strcasecmp(v, "true");
}

static int fetch_ecs(struct creds_provider *p, struct creds *out, struct cs_error *err)
{
	const char *base = creds_metadata_endpoint();
	struct cs_buf url = CS_BUF_INIT, body = CS_BUF_INIT, hline = CS_BUF_INIT;
	struct curl_slist *h = NULL, *tmp;
	char why[CURL_ERROR_SIZE + 64], role[256], what[512];
	cJSON *root = NULL;
	long status;
	int rc, ret = -1, blen;

	if (creds_check_url("CREDSYNC_METADATA_ENDPOINT", base, err) < 0)
		return -1;
	blen = (int)strlen(base);
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	buf_printf(&url, "%.*s/latest/api/token", blen, base);
	tmp = curl_slist_append(NULL, "X-aliyun-ecs-metadata-token-ttl-seconds: 21600");
	if (!tmp || url.oom) {
		curl_slist_free_all(tmp);
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = http_once("PUT", buf_str(&url), tmp, NULL, CREDS_IMDS_TIMEOUT_MS,
		       2 * CREDS_IMDS_TIMEOUT_MS, &body, &status, why, sizeof(why));
	curl_slist_free_all(tmp);
	if (rc == FETCH_STOPPED) {
		cs_error_set(err, CS_ERR_INTERRUPTED, "interrupted");
		goto out;
	}
	/* a service that does not answer at all is absent: asking again over IMDSv1 would only
	 * double the wait of a machine that is not on ECS */
	if (rc == FETCH_TRANSPORT) {
		cs_error_set(err, CS_ERR_CREDENTIALS,
			     "the ECS metadata service at %s did not answer (%s): this is not an ECS "
			     "instance, or set ALIBABA_CLOUD_ECS_METADATA_DISABLED=true", base, why);
		goto out;
	}
	if (status == 200 && body.len && body.len < 1024) {
		buf_printf(&hline, "X-aliyun-ecs-metadata-token: %.*s", (int)body.len, body.data);
		if (hline.oom || !(h = curl_slist_append(NULL, hline.data))) {
			cs_error_set(err, CS_ERR_NOMEM, "out of memory");
			goto out;
		}
	} else if (imdsv1_disabled()) {
		cs_error_set(err, CS_ERR_CREDENTIALS,
			     "the ECS metadata service at %s refused the IMDSv2 token request (HTTP "
			     "%ld) and ALIBABA_CLOUD_IMDSV1_DISABLED=true forbids the IMDSv1 fallback",
			     base, status);
		goto out;
	} else {
		log_msg(LOG_DEBUG, NULL, "the metadata service refused the IMDSv2 token (HTTP %ld); "
			"falling back to IMDSv1", status);
	}
	buf_release_wipe(&body);

	if (p->role_name) {
		snprintf(role, sizeof(role), "%s", p->role_name);
	} else {
		buf_reset(&url);
		buf_printf(&url, "%.*s/latest/meta-data/ram/security-credentials/", blen, base);
		rc = http_once("GET", buf_str(&url), h, NULL, CREDS_IMDS_TIMEOUT_MS,
			       2 * CREDS_IMDS_TIMEOUT_MS, &body, &status, why, sizeof(why));
		if (rc != FETCH_OK || status != 200) {
			if (rc == FETCH_STOPPED)
				cs_error_set(err, CS_ERR_INTERRUPTED, "interrupted");
			else if (rc == FETCH_OK && status == 404)
				cs_error_set(err, CS_ERR_CREDENTIALS, "the ECS metadata service at %s "
					     "says no RAM role is attached to this instance", base);
			else if (rc == FETCH_OK)
				cs_error_set(err, CS_ERR_CREDENTIALS, "the ECS metadata service at %s "
					     "answered HTTP %ld for the role name", base, status);
			else
				cs_error_set(err, CS_ERR_CREDENTIALS, "the ECS metadata service at %s: %s",
					     base, why);
			goto out;
		}
		snprintf(role, sizeof(role), "%.*s", (int)strcspn(buf_str(&body), "\r\n"),
			 buf_str(&body));
		if (!*role) {
			cs_error_set(err, CS_ERR_CREDENTIALS, "the ECS metadata service at %s says "
				     "no RAM role is attached to this instance", base);
			goto out;
		}
		/* renewals ask for the same role */
		if (!(p->role_name = strdup(role))) {
			cs_error_set(err, CS_ERR_NOMEM, "out of memory");
			goto out;
		}
		buf_reset(&body);
	}
	buf_reset(&url);
	buf_printf(&url, "%.*s/latest/meta-data/ram/security-credentials/", blen, base);
	sign_percent_encode(&url, role, strlen(role));
	snprintf(what, sizeof(what), "ECS RAM role '%s' from %s", role, base);
	rc = http_once("GET", buf_str(&url), h, NULL, CREDS_IMDS_TIMEOUT_MS,
		       2 * CREDS_IMDS_TIMEOUT_MS, &body, &status, why, sizeof(why));
	if (rc == FETCH_STOPPED) {
		cs_error_set(err, CS_ERR_INTERRUPTED, "interrupted");
		goto out;
	}
	if (rc == FETCH_TRANSPORT) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "%s: %s", what, why);
		goto out;
	}
	if (status == 404) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "%s: the role is not attached to this instance",
			     what);
		goto out;
	}
	if (status != 200) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "%s: HTTP %ld", what, status);
		goto out;
	}
	if (parse_json(&body, what, &root, err) < 0)
		goto out;
	if (!jstr(root, "Code") || strcmp(jstr(root, "Code"), "Success")) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "%s: Code is '%.64s', not Success", what,
			     jstr(root, "Code") ? jstr(root, "Code") : "(none)");
		goto out;
	}
	if (take_credentials(root, what, out, err) < 0)
		goto out;
	ret = 0;
out:
	json_wipe(root);
	cJSON_Delete(root);
	slist_free_wipe(h);
	buf_release_wipe(&hline);
	buf_release_wipe(&body);
	buf_release(&url);
	return ret;
}

/* ---- STS ---- */

static int sts_retryable(const char *code, long status)
{
	return !strncmp(code, "Throttling", 10) || !strcmp(code, "ServiceUnavailable") ||
	       !strcmp(code, "InternalError") || status >= 500;
}

/* Reads the answer of an STS call: 0 with out filled; 1 retryable (err filled); -1 fail. */
static int sts_answer(const struct cs_buf *body, long status, const char *what,
		      struct creds *out, struct cs_error *err)
{
	cJSON *root = NULL;
	const cJSON *c;
	int ret = -1;

	if (parse_json(body, what, &root, err) < 0)
		return status >= 500 ? 1 : -1;
	if (jstr(root, "Code")) {
		const char *code = jstr(root, "Code"), *msg = jstr(root, "Message"),
			   *rid = jstr(root, "RequestId");

		cs_error_set(err, CS_ERR_CREDENTIALS, "%s: %.100s: %.300s (HTTP %ld, request %.64s)",
			     what, code, msg ? msg : "(no message)", status, rid ? rid : "unknown");
		ret = sts_retryable(code, status) ? 1 : -1;
		goto out;
	}
	c = cJSON_GetObjectItemCaseSensitive(root, "Credentials");
	if (!cJSON_IsObject(c)) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "%s: the answer has no Credentials (HTTP %ld)",
			     what, status);
		goto out;
	}
	ret = take_credentials(c, what, out, err);
out:
	json_wipe(root);
	cJSON_Delete(root);
	return ret;
}

/* Reads the OIDC token file afresh into tok (cleanse it). */
static int read_oidc_token(const char *path, struct cs_buf *tok, struct cs_error *err)
{
	char chunk[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return cs_error_set(err, CS_ERR_CREDENTIALS, "OIDC token file %s: %s", path,
				    strerror(errno));
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 && tok->len < OIDC_MAX_TOKEN)
		buf_append(tok, chunk, (size_t)n);
	OPENSSL_cleanse(chunk, sizeof(chunk));
	close(fd);
	if (n < 0 || tok->oom)
		return cs_error_set(err, CS_ERR_CREDENTIALS, "OIDC token file %s: cannot read it",
				    path);
	while (tok->len && strchr("\r\n \t", tok->data[tok->len - 1]))
		tok->data[--tok->len] = '\0';
	if (!tok->len)
		return cs_error_set(err, CS_ERR_CREDENTIALS, "OIDC token file %s is empty", path);
	return 0;
}

static void form_param(struct cs_buf *b, const char *k, const char *v)
{
	if (b->len)
		buf_putc(b, '&');
	buf_puts(b, k);
	buf_putc(b, '=');
	sign_percent_encode(b, v, strlen(v));
}

/* Builds one attempt: url/headers/body for AssumeRole (signed) or AssumeRoleWithOIDC. */
static int sts_build(struct creds_provider *p, struct cs_buf *url, struct curl_slist **h,
		     struct cs_buf *body, struct cs_error *err)
{
	char dur[24], host[512];
	const char *hs = strstr(p->sts_url, "://");

	snprintf(dur, sizeof(dur), "%lld", (long long)p->duration_s);
	snprintf(host, sizeof(host), "%s", hs ? hs + 3 : p->sts_url);
	host[strcspn(host, "/")] = '\0';
	if (p->kind == CREDS_ROLE_ARN) {
		struct sign_param q[6];
		size_t n = 0;

		q[n++] = (struct sign_param){ "RoleArn", p->role_arn };
		q[n++] = (struct sign_param){ "RoleSessionName", p->session_name };
		q[n++] = (struct sign_param){ "DurationSeconds", dur };
		if (p->external_id)
			q[n++] = (struct sign_param){ "ExternalId", p->external_id };
		if (p->policy)
			q[n++] = (struct sign_param){ "Policy", p->policy };
		return api_build_request_version(url, h, p->sts_url, host, "POST", "AssumeRole",
						 STS_VERSION, q, n, p->base, CFG_SIG_V1, err);
	} else {
		struct cs_buf tok = CS_BUF_INIT;
		char stamp[21], nonce[37];
		struct curl_slist *tmp;

		if (read_oidc_token(p->oidc_token_file, &tok, err) < 0) {
			buf_release_wipe(&tok);
			return -1;
		}
		util_format_utc(util_now_epoch(), stamp);
		if (sign_nonce(nonce) < 0)
			snprintf(nonce, sizeof(nonce), "%lld", (long long)util_mono_ms());
		form_param(body, "Action", "AssumeRoleWithOIDC");
		form_param(body, "Version", STS_VERSION);
		form_param(body, "Format", "JSON");
		form_param(body, "Timestamp", stamp);
		form_param(body, "SignatureNonce", nonce);
		form_param(body, "RoleArn", p->role_arn);
		form_param(body, "OIDCProviderArn", p->oidc_provider_arn);
		form_param(body, "OIDCToken", buf_str(&tok));
		form_param(body, "RoleSessionName", p->session_name);
		form_param(body, "DurationSeconds", dur);
		buf_release_wipe(&tok);
		buf_printf(url, "%s/", p->sts_url);
		tmp = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
		if (tmp && !(*h = curl_slist_append(tmp, "Accept: application/json")))
			curl_slist_free_all(tmp);
		if (!*h || url->oom || body->oom)
			return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		return 0;
	}
}

/* What STS said, without the credentials it may quote: the base identity's secret and
 * token (a SignatureDoesNotMatch quotes the string to sign), or the OIDC token (scrub.h). */
static void scrub_sts(const struct creds_provider *p, char *msg, size_t cap)
{
	struct cs_buf tok = CS_BUF_INIT;
	struct cs_error ignore = { 0 };
	const char *secrets[3] = { NULL, NULL, NULL };

	if (p->kind == CREDS_ROLE_ARN && p->base) {
		secrets[0] = p->base->access_key_secret;
		secrets[1] = p->base->security_token;
	} else if (p->oidc_token_file && read_oidc_token(p->oidc_token_file, &tok, &ignore) == 0) {
		secrets[2] = buf_str(&tok);
	}
	scrub_text(msg, cap, secrets, 3);
	buf_release_wipe(&tok);
}

static int fetch_sts(struct creds_provider *p, struct creds *out, struct cs_error *err)
{
	const char *action = p->kind == CREDS_ROLE_ARN ? "AssumeRole" : "AssumeRoleWithOIDC";
	char what[768], why[CURL_ERROR_SIZE + 64];
	int attempt, rc = -1;

	snprintf(what, sizeof(what), "STS %s of %s at %s", action, p->role_arn, p->sts_url);
	if (creds_check_url("the STS endpoint", p->sts_url, err) < 0)
		return -1;
	if (p->kind == CREDS_ROLE_ARN && creds_fresh(p->base, 0, err) < 0) {
		cs_error_prefix(err, "%s: its base identity: ", what);
		return -1;
	}
	for (attempt = 1; attempt <= CREDS_STS_ATTEMPTS; attempt++) {
		struct cs_buf url = CS_BUF_INIT, body = CS_BUF_INIT, resp = CS_BUF_INIT;
		struct curl_slist *h = NULL;
		struct cs_error e = { 0 };
		long status = 0;
		int t;

		if (sts_build(p, &url, &h, &body, &e) < 0) {
			rc = -1;
		} else {
			t = http_once("POST", buf_str(&url), h, buf_str(&body), CREDS_STS_CONNECT_MS,
				      CREDS_STS_TIMEOUT_MS, &resp, &status, why, sizeof(why));
			if (t == FETCH_STOPPED) {
				cs_error_set(&e, CS_ERR_INTERRUPTED, "interrupted");
				rc = -1;
			} else if (t == FETCH_TRANSPORT) {
				cs_error_set(&e, CS_ERR_CREDENTIALS, "%s: %s", what, why);
				rc = 1;
			} else {
				rc = sts_answer(&resp, status, what, out, &e);
			}
		}
		slist_free_wipe(h);
		buf_release_wipe(&url);
		buf_release_wipe(&body);
		buf_release_wipe(&resp);
		if (rc == 0)
			return 0;
		scrub_sts(p, e.msg, sizeof(e.msg));
		if (rc < 0 || attempt == CREDS_STS_ATTEMPTS || (g_stop && *g_stop)) {
			cs_error_set(err, e.kind ? e.kind : CS_ERR_CREDENTIALS, "%s", e.msg);
			return -1;
		}
		log_msg(LOG_INFO, NULL, "%s; attempt %d of %d in %d ms", e.msg, attempt + 1,
			CREDS_STS_ATTEMPTS, 250 << attempt);
		sleep_ms(250L << attempt);
	}
	return cs_error_set(err, CS_ERR_CREDENTIALS, "%s failed", what);
}

/* ---- credentials URI ---- */

static int fetch_uri(struct creds_provider *p, struct creds *out, struct cs_error *err)
{
	struct cs_buf body = CS_BUF_INIT;
	char why[CURL_ERROR_SIZE + 64], what[600];
	cJSON *root = NULL;
	long status;
	int rc, ret = -1;

	snprintf(what, sizeof(what), "credentials URI %.500s", p->uri);
	if (creds_check_url("the credentials URI", p->uri, err) < 0)
		return -1;
	rc = http_once("GET", p->uri, NULL, NULL, CREDS_STS_CONNECT_MS, CREDS_STS_TIMEOUT_MS, &body,
		       &status, why, sizeof(why));
	if (rc == FETCH_STOPPED) {
		cs_error_set(err, CS_ERR_INTERRUPTED, "interrupted");
		goto out;
	}
	if (rc == FETCH_TRANSPORT) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "%s: %s", what, why);
		goto out;
	}
	if (status != 200) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "%s: HTTP %ld", what, status);
		goto out;
	}
	if (parse_json(&body, what, &root, err) < 0)
		goto out;
	if (!jstr(root, "Code") || strcmp(jstr(root, "Code"), "Success")) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "%s: Code is '%.64s', not Success%s%.200s", what,
			     jstr(root, "Code") ? jstr(root, "Code") : "(none)",
			     jstr(root, "Message") ? ": " : "",
			     jstr(root, "Message") ? jstr(root, "Message") : "");
		goto out;
	}
	ret = take_credentials(root, what, out, err);
out:
	json_wipe(root);
	cJSON_Delete(root);
	buf_release_wipe(&body);
	return ret;
}

int creds_fetch(struct creds_provider *p, struct creds *out, struct cs_error *err)
{
	switch (p->kind) {
	case CREDS_ECS:
		return fetch_ecs(p, out, err);
	case CREDS_ROLE_ARN:
	case CREDS_OIDC:
		return fetch_sts(p, out, err);
	case CREDS_URI:
		return fetch_uri(p, out, err);
	case CREDS_STATIC:
		break;
	}
	return cs_error_set(err, CS_ERR_CREDENTIALS, "static credentials cannot be renewed");
}
