/*
 * creds.c - the credentials object: its strings, release, description, the providers of
 * temporary credentials (ECS RAM role, AssumeRole, AssumeRoleWithOIDC, credentials URI) and
 * their renewal (creds_fresh).  Where the credentials are found is creds_chain.c; the HTTP
 * side is creds_fetch.c.  Every buffer that held a secret is cleansed before it is freed.
 */
#include "creds_int.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "util.h"

#define CREDS_RENEW_MARGIN_S 180      /* credentials-go's: renew when this much is left */
#define CREDS_BACKOFF_MAX_MS 30000

void creds_wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static void provider_free(struct creds_provider *p)
{
	if (!p)
		return;
	free(p->role_name);
	free(p->role_arn);
	free(p->session_name);
	free(p->external_id);
	free(p->policy);
	free(p->oidc_provider_arn);
	free(p->oidc_token_file);
	free(p->uri);
	free(p->sts_url);
	if (p->own_base && p->base) {
		creds_release(p->base);
		free(p->base);
	}
	free(p);
}

static void strings_release(struct creds *c)
{
	free(c->access_key_id);
	creds_wipe_free(c->access_key_secret);
	creds_wipe_free(c->security_token);
	c->access_key_id = c->access_key_secret = c->security_token = NULL;
}

void creds_release(struct creds *c)
{
	if (!c)
		return;
	strings_release(c);
	provider_free(c->prov);
	memset(c, 0, sizeof(*c));
}

int creds_set(struct creds *c, const char *id, const char *secret, const char *token,
	      struct cs_error *err)
{
	c->access_key_id = strdup(id);
	c->access_key_secret = strdup(secret);
	c->security_token = token && *token ? strdup(token) : NULL;
	if (!c->access_key_id || !c->access_key_secret || (token && *token && !c->security_token)) {
		strings_release(c);
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	}
	return 0;
}

void creds_mask_id(const char *id, char *out, size_t outlen)
{
	size_t len = id ? strlen(id) : 0;

	/* the AccessKeyId is not a secret, but it is masked as the aliyun CLI does */
	if (len <= 8)
		snprintf(out, outlen, "****");
	else
		snprintf(out, outlen, "%.4s****%s", id, id + len - 4);
}

static const char *kind_name(enum creds_kind k, int has_token)
{
	switch (k) {
	case CREDS_ECS:
		return "ecs_ram_role";
	case CREDS_ROLE_ARN:
		return "ram_role_arn";
	case CREDS_OIDC:
		return "oidc_role_arn";
	case CREDS_URI:
		return "credentials_uri";
	case CREDS_STATIC:
		break;
	}
	return has_token ? "sts" : "access_key";
}

void creds_describe(const struct creds *c, char *out, size_t outlen)
{
	char id[64];

	if (c->prov && c->prov->role_arn) {
		snprintf(out, outlen, "%s %s", kind_name(c->kind, 1), c->prov->role_arn);
		return;
	}
	creds_mask_id(c->access_key_id, id, sizeof(id));
	if (c->prov && c->prov->kind == CREDS_ECS && c->prov->role_name)
		snprintf(out, outlen, "%s %s %s", kind_name(c->kind, 1), c->prov->role_name, id);
	else
		snprintf(out, outlen, "%s %s", kind_name(c->kind, c->security_token != NULL), id);
}

/* ---- renewal ---- */

int creds_fresh(struct creds *c, int force, struct cs_error *err)
{
	int64_t now = util_now_epoch(), left, life, margin, delay;
	struct creds fresh;
	struct cs_error e = { 0 };
	char exp[21], who[256];

	if (!c->access_key_id && !c->prov)
		return cs_error_set(err, CS_ERR_CREDENTIALS, "%s",
				    c->last_error[0] ? c->last_error : "no credentials");
	if (!c->prov)
		return 0;
	left = c->expiration - now;
	life = c->expiration - c->obtained;
	/* credentials-go renews with 180 s left; credentials that live less than 6 minutes (tests,
	 * short sessions) are renewed at half their life instead */
	margin = life / 2 < CREDS_RENEW_MARGIN_S ? life / 2 : CREDS_RENEW_MARGIN_S;
	if (c->access_key_id && !force && left > margin)
		return 0;
	if (c->access_key_id && util_mono_ms() < c->next_try_ms) {
		if (left > 0)
			return 0;
		/* expired, and the last renewal failed moments ago: do not ask again per request */
		return cs_error_set(err, CS_ERR_CREDENTIALS,
				    "the credentials of %s expired and could not be renewed: %s",
				    c->identity, c->last_error);
	}
	memset(&fresh, 0, sizeof(fresh));
	if (creds_fetch(c->prov, &fresh, &e) == 0) {
		int renewal = c->access_key_id != NULL;

		/* all three change together: the next request is signed with the new set only */
		strings_release(c);
		c->access_key_id = fresh.access_key_id;
		c->access_key_secret = fresh.access_key_secret;
		c->security_token = fresh.security_token;
		c->expiration = fresh.expiration;
		c->obtained = fresh.obtained;
		c->generation++;
		c->failures = 0;
		c->next_try_ms = 0;
		creds_describe(c, c->identity, sizeof(c->identity));
		if (renewal) {
			c->refreshes++;
			util_format_utc(c->expiration, exp);
			log_msg(LOG_INFO, NULL, "credentials renewed (%s), valid until %s; renewal %lld",
				c->identity, exp, (long long)c->refreshes);
		}
		return 0;
	}
	if (e.kind == CS_ERR_INTERRUPTED)
		return cs_error_set(err, CS_ERR_INTERRUPTED, "%s", e.msg);
	c->failures++;
	snprintf(c->last_error, sizeof(c->last_error), "%s", e.msg);
	delay = 1000LL << (c->failures > 5 ? 5 : c->failures - 1);
	if (delay > CREDS_BACKOFF_MAX_MS)
		delay = CREDS_BACKOFF_MAX_MS;
	/* short-lived credentials: leave room for more attempts before they expire */
	if (left > 0 && delay > left * 1000 / 3)
		delay = left * 1000 / 3 > 100 ? left * 1000 / 3 : 100;
	c->next_try_ms = util_mono_ms() + delay;
	if (c->access_key_id && left > 0) {
		log_msg(LOG_WARN, NULL, "renewing the credentials failed (%s); the current ones stay "
			"valid for %lld s, next attempt in %lld ms", e.msg, (long long)left,
			(long long)delay);
		return 0;
	}
	snprintf(who, sizeof(who), "%s", c->identity[0] ? c->identity : c->source);
	if (c->access_key_id)
		log_msg(LOG_WARN, NULL, "renewing the credentials failed (%s); they have expired, "
			"next attempt in %lld ms", e.msg, (long long)delay);
	if (c->access_key_id)
		return cs_error_set(err, CS_ERR_CREDENTIALS,
				    "the credentials of %s expired and could not be renewed: %s", who,
				    e.msg);
	return cs_error_set(err, e.kind ? e.kind : CS_ERR_CREDENTIALS, "%s", e.msg);
}

/* Takes p as c's provider and fetches the first credentials.  p is c's even on failure. */
static int adopt(struct creds *c, struct creds_provider *p, const char *source,
		 struct cs_error *err)
{
	c->prov = p;
	c->kind = p->kind;
	snprintf(c->source, sizeof(c->source), "%s", source);
	if (creds_fresh(c, 1, err) < 0)
		return -1;
	creds_describe(c, c->identity, sizeof(c->identity));
	return 0;
}

int creds_set_static(struct creds *c, const char *id, const char *secret, const char *token,
		     const char *source, struct cs_error *err)
{
	if (creds_set(c, id, secret, token, err) < 0)
		return -1;
	c->kind = CREDS_STATIC;
	snprintf(c->source, sizeof(c->source), "%s", source);
	creds_describe(c, c->identity, sizeof(c->identity));
	return 0;
}

static struct creds_provider *provider_new(enum creds_kind kind, struct cs_error *err)
{
	struct creds_provider *p = calloc(1, sizeof(*p));

	if (!p)
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	else
		p->kind = kind;
	return p;
}

static int dup_opt(char **dst, const char *v, struct cs_error *err)
{
	if (!v || !*v)
		return 0;
	*dst = strdup(v);
	return *dst ? 0 : cs_error_set(err, CS_ERR_NOMEM, "out of memory");
}

const char *creds_env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

int creds_env_true(const char *name)
{
	const char *v = getenv(name);

	return v && !strcasecmp(v, "true");
}

/* The STS base URL: explicit (config), $ALIBABA_CLOUD_STS_ENDPOINT, a region
 * ($ALIBABA_CLOUD_STS_REGION, else the profile's) with $ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED,
 * else sts.aliyuncs.com.  A bare host gets https://. */
static int sts_url(char **out, const char *explicit_ep, const char *region, int vpc,
		   struct cs_error *err)
{
	const char *ep = explicit_ep && *explicit_ep ? explicit_ep :
			 creds_env_nonempty("ALIBABA_CLOUD_STS_ENDPOINT");
	const char *reg = creds_env_nonempty("ALIBABA_CLOUD_STS_REGION");
	struct cs_buf b = CS_BUF_INIT;

	if (!reg)
		reg = region && *region ? region : NULL;
	if (ep)
		buf_printf(&b, "%s%s", strstr(ep, "://") ? "" : "https://", ep);
	else if (reg)
		buf_printf(&b, "https://sts%s.%s.aliyuncs.com",
			   vpc || creds_env_true("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED") ? "-vpc" : "", reg);
	else
		buf_puts(&b, CREDS_DEFAULT_STS);
	while (b.len > 8 && b.data[b.len - 1] == '/')
		b.data[--b.len] = '\0';
	if (b.oom) {
		buf_release(&b);
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	}
	*out = buf_detach(&b);
	return creds_check_url("the STS endpoint", *out, err);
}

static int default_session(char **out, const char *given, struct cs_error *err)
{
	char host[64] = "", name[80];
	size_t i;

	if (given && *given)
		return dup_opt(out, given, err);
	gethostname(host, sizeof(host) - 1);
	/* RoleSessionName allows [A-Za-z0-9.@_-], 2..64 characters */
	for (i = 0; host[i]; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.@_-",
			    host[i]))
			host[i] = '-';
	snprintf(name, sizeof(name), "credsync-%.50s", host[0] ? host : "host");
	return dup_opt(out, name, err);
}

/* ---- providers ---- */

int creds_make_role_arn(struct creds *out, struct creds *base, int own_base, const char *arn,
			const char *session, const char *ext, const char *policy,
			int64_t duration, const char *sts_ep, const char *region, int vpc,
			const char *source, struct cs_error *err)
{
	struct creds_provider *p = provider_new(CREDS_ROLE_ARN, err);

	if (!p) {
		if (own_base) {
			creds_release(base);
			free(base);
		}
		return -1;
	}
	p->base = base;
	p->own_base = own_base;
	p->duration_s = duration > 0 ? duration : 3600;
	if (dup_opt(&p->role_arn, arn, err) < 0 || default_session(&p->session_name, session, err) < 0 ||
	    dup_opt(&p->external_id, ext, err) < 0 || dup_opt(&p->policy, policy, err) < 0 ||
	    sts_url(&p->sts_url, sts_ep, region, vpc, err) < 0) {
		provider_free(p);
		return -1;
	}
	return adopt(out, p, source, err);
}

int creds_make_oidc(struct creds *out, const char *arn, const char *provider_arn,
		    const char *token_file, const char *session, int64_t duration,
		    const char *sts_ep, const char *region, const char *source,
		    struct cs_error *err)
{
	struct creds_provider *p = provider_new(CREDS_OIDC, err);

	if (!p)
		return -1;
	p->duration_s = duration > 0 ? duration : 3600;
	if (dup_opt(&p->role_arn, arn, err) < 0 ||
	    dup_opt(&p->oidc_provider_arn, provider_arn, err) < 0 ||
	    dup_opt(&p->oidc_token_file, token_file, err) < 0 ||
	    default_session(&p->session_name, session, err) < 0 ||
	    sts_url(&p->sts_url, sts_ep, region, 0, err) < 0) {
		provider_free(p);
		return -1;
	}
	return adopt(out, p, source, err);
}

int creds_make_ecs(struct creds *out, const char *role, const char *source,
		   struct cs_error *err)
{
	struct creds_provider *p = provider_new(CREDS_ECS, err);

	if (!p)
		return -1;
	if (dup_opt(&p->role_name, role, err) < 0) {
		provider_free(p);
		return -1;
	}
	return adopt(out, p, source, err);
}

int creds_make_uri(struct creds *out, const char *uri, const char *source,
		   struct cs_error *err)
{
	struct creds_provider *p = provider_new(CREDS_URI, err);

	if (!p)
		return -1;
	if (dup_opt(&p->uri, uri, err) < 0) {
		provider_free(p);
		return -1;
	}
	return adopt(out, p, source, err);
}
