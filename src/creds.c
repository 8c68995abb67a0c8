/*
 * creds.c - the credentials chain of IDENTITY.md (environment, OIDC variables,
 * ~/.aliyun/config.json, ~/.alibabacloud/credentials, the ECS RAM role, a credentials URI),
 * the profile types and modes users already write, `credentials` maps of the config, and the
 * renewal of temporary credentials (creds_fresh).  The HTTP side is creds_fetch.c.
 * Every buffer that held a secret is cleansed before it is freed.
 */
#include "creds_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "util.h"

#define CREDS_MAX_FILE (256 * 1024)
#define CREDS_MAX_FIELDS 48
#define CREDS_MAX_CHAIN 5             /* ChainableRamRoleArn source_profile depth */
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

void creds_metadata_status(char *out, size_t outlen)
{
	const char *dis = getenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED");

	snprintf(out, outlen, "%s (%s)", creds_metadata_endpoint(),
		 dis && !strcasecmp(dis, "true") ? "disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED"
						 : "enabled");
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

static int set_static(struct creds *c, const char *id, const char *secret, const char *token,
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

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static int env_true(const char *name)
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
			 env_nonempty("ALIBABA_CLOUD_STS_ENDPOINT");
	const char *reg = env_nonempty("ALIBABA_CLOUD_STS_REGION");
	struct cs_buf b = CS_BUF_INIT;

	if (!reg)
		reg = region && *region ? region : NULL;
	if (ep)
		buf_printf(&b, "%s%s", strstr(ep, "://") ? "" : "https://", ep);
	else if (reg)
		buf_printf(&b, "https://sts%s.%s.aliyuncs.com",
			   vpc || env_true("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED") ? "-vpc" : "", reg);
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

static int make_role_arn(struct creds *out, struct creds *base, int own_base, const char *arn,
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

static int make_oidc(struct creds *out, const char *arn, const char *provider_arn,
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

static int make_ecs(struct creds *out, const char *role, const char *source,
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

static int make_uri(struct creds *out, const char *uri, const char *source,
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

/* ---- files ---- */

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h && *h)
		return h;
	pw = getpwuid(getuid());
	return pw ? pw->pw_dir : NULL;
}

/*
 * Reads a file that holds secrets: refuses one that group or others may read or write, as
 * ssh does with private keys.  Returns 1 with *out (cleanse it), 0 when missing, -1 on error.
 */
static int read_secret_file(const char *path, struct cs_buf *out, struct cs_error *err)
{
	struct stat sb;
	char chunk[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int ret = -1;

	if (fd < 0 && errno == ELOOP)
		fd = open(path, O_RDONLY | O_CLOEXEC); /* a symlink is fine; its target is checked */
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return cs_error_set(err, CS_ERR_CREDENTIALS, "cannot read %s: %s", path,
				    strerror(errno));
	}
	if (fstat(fd, &sb) < 0) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "cannot stat %s: %s", path, strerror(errno));
		goto out;
	}
	if (sb.st_mode & 077) {
		cs_error_set(err, CS_ERR_CREDENTIALS,
			     "permissions %04o for '%s' are too open: a file holding an AccessKey must "
			     "not be accessible by group or others (chmod 600 '%s')",
			     (unsigned)(sb.st_mode & 07777), path, path);
		goto out;
	}
	if (sb.st_size > CREDS_MAX_FILE) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "%s: larger than %d bytes", path, CREDS_MAX_FILE);
		goto out;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(out, chunk, (size_t)n);
	OPENSSL_cleanse(chunk, sizeof(chunk));
	if (n < 0 || out->oom) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "cannot read %s: %s", path,
			     n < 0 ? strerror(errno) : "out of memory");
		goto out;
	}
	ret = 1;
out:
	close(fd);
	return ret;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One profile's fields, from an INI section or a config.json object. */
struct fields {
	const char *path;
	const char *profile;
	const char *k[CREDS_MAX_FIELDS], *v[CREDS_MAX_FIELDS];
	size_t n;
	const cJSON *obj;       /* config.json: the profile object */
	const cJSON *root;      /* config.json: the whole file, for source_profile */
};

static const char *fget(const struct fields *f, const char *key)
{
	size_t i;

	if (f->obj)
		return jstr(f->obj, key);
	for (i = 0; i < f->n; i++)
		if (!strcmp(f->k[i], key))
			return f->v[i];
	return NULL;
}

/* A number of seconds (JSON number or digits).  0 absent, -1 invalid. */
static int64_t fnum(const struct fields *f, const char *key)
{
	const cJSON *v = f->obj ? cJSON_GetObjectItemCaseSensitive(f->obj, key) : NULL;
	const char *s;
	char *end;
	long long n;

	if (cJSON_IsNumber(v))
		return v->valuedouble >= 1 && v->valuedouble <= 1e9 ? (int64_t)v->valuedouble : -1;
	s = fget(f, key);
	if (!s || !*s)
		return 0;
	n = strtoll(s, &end, 10);
	return *end || n < 1 ? -1 : n;
}

static int from_fields(struct creds *c, const struct fields *f, int depth, struct cs_error *err);

static int need(const struct fields *f, const char *key, const char **out, struct cs_error *err)
{
	*out = fget(f, key);
	if (*out && **out)
		return 0;
	return cs_error_set(err, CS_ERR_CREDENTIALS, "profile '%s' in %s lacks %s", f->profile,
			    f->path, key);
}

static int duration_of(const struct fields *f, const char *key, int64_t *out,
		       struct cs_error *err)
{
	*out = fnum(f, key);
	if (*out == 0 || (*out >= 900 && *out <= 43200))
		return 0;
	return cs_error_set(err, CS_ERR_CREDENTIALS, "profile '%s' in %s: %s must be 900..43200 "
			    "seconds", f->profile, f->path, key);
}

/* The profile `name` of a config.json root as fields. */
static int json_profile(const cJSON *root, const char *path, const char *name,
			struct fields *f)
{
	const cJSON *p;

	memset(f, 0, sizeof(*f));
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(root, "profiles")) {
		const char *n = jstr(p, "name");

		if (n && !strcmp(n, name)) {
			f->obj = p;
			f->root = root;
			f->path = path;
			f->profile = n;
			return 1;
		}
	}
	return 0;
}

static int from_fields(struct creds *c, const struct fields *f, int depth, struct cs_error *err)
{
	const char *t = f->obj ? fget(f, "mode") : fget(f, "type");
	const char *id, *secret, *arn, *prov, *file, *uri;
	char source[600];
	int64_t dur;
	int ini = !f->obj;

	snprintf(source, sizeof(source), "profile '%s' in %s", f->profile, f->path);
	if (!t || !*t || !strcmp(t, ini ? "access_key" : "AK") || !strcmp(t, ini ? "sts" : "StsToken")) {
		int sts = t && !strcmp(t, ini ? "sts" : "StsToken");

		if (!fget(f, "access_key_id") || !*fget(f, "access_key_id") ||
		    !fget(f, "access_key_secret") || !*fget(f, "access_key_secret"))
			return cs_error_set(err, CS_ERR_CREDENTIALS, "profile '%s' in %s lacks "
					    "access_key_id or access_key_secret", f->profile, f->path);
		return set_static(c, fget(f, "access_key_id"), fget(f, "access_key_secret"),
				  !sts ? NULL : ini ? (fget(f, "security_token") ? fget(f, "security_token")
						       : fget(f, "sts_token")) : fget(f, "sts_token"),
				  source, err);
	}
	if (!strcmp(t, ini ? "ecs_ram_role" : "EcsRamRole"))
		return make_ecs(c, fget(f, ini ? "role_name" : "ram_role_name"), source, err);
	if (!strcmp(t, ini ? "credentials_uri" : "CredentialsURI")) {
		if (need(f, "credentials_uri", &uri, err) < 0)
			return -1;
		return make_uri(c, uri, source, err);
	}
	if (!strcmp(t, ini ? "oidc_role_arn" : "OIDC")) {
		if (need(f, ini ? "role_arn" : "ram_role_arn", &arn, err) < 0 ||
		    need(f, "oidc_provider_arn", &prov, err) < 0 ||
		    need(f, ini ? "oidc_token_file_path" : "oidc_token_file", &file, err) < 0 ||
		    duration_of(f, ini ? "role_session_expiration" : "expired_seconds", &dur, err) < 0)
			return -1;
		return make_oidc(c, arn, prov, file, fget(f, ini ? "role_session_name" : "ram_session_name"),
				 dur, fget(f, "sts_endpoint"), fget(f, "sts_region"), source, err);
	}
	if (!strcmp(t, ini ? "ram_role_arn" : "RamRoleArn") ||
	    (!ini && !strcmp(t, "ChainableRamRoleArn"))) {
		struct creds *base;

		if (need(f, ini ? "role_arn" : "ram_role_arn", &arn, err) < 0 ||
		    duration_of(f, ini ? "role_session_expiration" : "expired_seconds", &dur, err) < 0)
			return -1;
		base = calloc(1, sizeof(*base));
		if (!base)
			return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		if (!strcmp(t, "ChainableRamRoleArn")) {
			const char *src;
			struct fields sf;

			if (need(f, "source_profile", &src, err) < 0)
				goto fail;
			if (depth >= CREDS_MAX_CHAIN) {
				cs_error_set(err, CS_ERR_CREDENTIALS, "profile '%s' in %s: source_profile "
					     "chains deeper than %d (a loop?)", f->profile, f->path,
					     CREDS_MAX_CHAIN);
				goto fail;
			}
			if (!json_profile(f->root, f->path, src, &sf)) {
				cs_error_set(err, CS_ERR_CREDENTIALS, "profile '%s' in %s: source_profile "
					     "'%s' does not exist", f->profile, f->path, src);
				goto fail;
			}
			if (from_fields(base, &sf, depth + 1, err) < 0)
				goto fail;
		} else {
			if (need(f, "access_key_id", &id, err) < 0 ||
			    need(f, "access_key_secret", &secret, err) < 0 ||
			    set_static(base, id, secret, fget(f, ini ? "security_token" : "sts_token"),
				       source, err) < 0)
				goto fail;
		}
		{
			char src2[600];

			snprintf(src2, sizeof(src2), "%s (role assumed from %s)", source, base->source);
			return make_role_arn(c, base, 1, arn,
					     fget(f, ini ? "role_session_name" : "ram_session_name"),
					     fget(f, "external_id"), fget(f, "policy"), dur,
					     fget(f, "sts_endpoint"), fget(f, "sts_region"), 0, src2,
					     err);
		}
fail:
		creds_release(base);
		free(base);
		return -1;
	}
	return cs_error_set(err, CS_ERR_CREDENTIALS,
			    ini ? "profile '%s' in %s has type '%s'; credsync supports access_key, sts, "
				  "ecs_ram_role, ram_role_arn, oidc_role_arn and credentials_uri"
				: "profile '%s' in %s has mode '%s'; credsync supports AK, StsToken, "
				  "EcsRamRole, RamRoleArn, ChainableRamRoleArn, OIDC and CredentialsURI",
			    f->profile, f->path, t);
}

/* ~/.alibabacloud/credentials: INI, one section per profile.  1 found, 0 not (why), -1 error. */
static int from_ini(struct creds *c, const char *profile, char *why, size_t whylen,
		    struct cs_error *err)
{
	const char *explicit_path = getenv("ALIBABA_CLOUD_CREDENTIALS_FILE");
	const char *home = home_dir();
	char path[4096], *line, *save = NULL;
	struct cs_buf text = CS_BUF_INIT;
	struct fields f;
	int in_section = 0, found_section = 0, rc, ret = -1;

	memset(&f, 0, sizeof(f));
	if (explicit_path && *explicit_path)
		snprintf(path, sizeof(path), "%s", explicit_path);
	else if (home)
		snprintf(path, sizeof(path), "%s/.alibabacloud/credentials", home);
	else {
		snprintf(why, whylen, "no home directory");
		return 0;
	}
	rc = read_secret_file(path, &text, err);
	if (rc <= 0) {
		if (rc == 0 && explicit_path && *explicit_path)
			return cs_error_set(err, CS_ERR_CREDENTIALS,
					    "ALIBABA_CLOUD_CREDENTIALS_FILE names %s, which does not exist",
					    path);
		snprintf(why, whylen, "%s does not exist", path);
		return rc;
	}
	for (line = strtok_r(text.data ? text.data : (char *)"", "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *l = trim(line), *eq;

		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *end = strchr(l, ']');

			if (!end) {
				cs_error_set(err, CS_ERR_CREDENTIALS, "%s: malformed section header", path);
				goto out;
			}
			*end = '\0';
			in_section = !strcmp(trim(l + 1), profile);
			found_section |= in_section;
			continue;
		}
		if (!in_section)
			continue;
		eq = strchr(l, '=');
		if (!eq || f.n == CREDS_MAX_FIELDS)
			continue;
		*eq = '\0';
		f.k[f.n] = trim(l);
		f.v[f.n] = trim(eq + 1);
		f.n++;
	}
	if (!found_section) {
		snprintf(why, whylen, "%s has no profile '%s'", path, profile);
		ret = 0;
		goto out;
	}
	f.path = path;
	f.profile = profile;
	if (from_fields(c, &f, 0, err) < 0)
		goto out;
	ret = 1;
out:
	buf_release_wipe(&text);
	return ret;
}

/* ~/.aliyun/config.json of the aliyun CLI ($ALIBABA_CLOUD_CONFIG_FILE).  1 found, 0 not
 * (why), -1 error. */
static int from_aliyun(struct creds *c, const char *profile, int profile_explicit, char *why,
		       size_t whylen, struct cs_error *err)
{
	const char *home = home_dir(), *want, *env = env_nonempty("ALIBABA_CLOUD_CONFIG_FILE");
	char path[4096];
	struct cs_buf text = CS_BUF_INIT;
	struct fields f;
	cJSON *root = NULL;
	int rc, ret = -1;

	if (env)
		snprintf(path, sizeof(path), "%s", env);
	else if (home)
		snprintf(path, sizeof(path), "%s/.aliyun/config.json", home);
	else {
		snprintf(why, whylen, "no home directory");
		return 0;
	}
	rc = read_secret_file(path, &text, err);
	if (rc <= 0) {
		if (rc == 0 && env)
			return cs_error_set(err, CS_ERR_CREDENTIALS,
					    "ALIBABA_CLOUD_CONFIG_FILE names %s, which does not exist", path);
		snprintf(why, whylen, "%s does not exist", path);
		return rc;
	}
	root = cJSON_ParseWithLength(text.data, text.len);
	if (!root || !cJSON_IsObject(root)) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "%s: not valid JSON", path);
		goto out;
	}
	want = profile_explicit ? profile : jstr(root, "current");
	if (!want || !*want)
		want = profile;
	if (!json_profile(root, path, want, &f)) {
		snprintf(why, whylen, "%s has no profile '%s'", path, want);
		ret = 0;
		goto out;
	}
	if (from_fields(c, &f, 0, err) < 0)
		goto out;
	ret = 1;
out:
	if (root) {
		/* cJSON copied the strings: cleanse them before they go back to the heap */
		const cJSON *p;

		cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(root, "profiles")) {
			const cJSON *fl;

			cJSON_ArrayForEach(fl, p)
				if (cJSON_IsString(fl) && fl->valuestring)
					OPENSSL_cleanse(fl->valuestring, strlen(fl->valuestring));
		}
		cJSON_Delete(root);
	}
	buf_release_wipe(&text);
	return ret;
}

/* Overwrites a variable's value where it lives (the environment block), then unsets it. */
static void wipe_env(const char *name)
{
	char *v = getenv(name);

	if (!v)
		return;
	OPENSSL_cleanse(v, strlen(v));
	unsetenv(name);
}

void creds_wipe_environment(void)
{
	static const char *const names[] = {
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
		"ALICLOUD_SECRET_KEY", "ALICLOUD_SECURITY_TOKEN",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		wipe_env(names[i]);
}

/* 1 found, 0 not set, -1 error (half of a pair set). */
static int from_env(struct creds *c, const char *id_var, const char *secret_var,
		    const char *token_var, struct cs_error *err)
{
	const char *id = getenv(id_var), *secret = getenv(secret_var), *token = getenv(token_var);
	char source[128];

	if ((!id || !*id) && (!secret || !*secret))
		return 0;
	if (!id || !*id)
		return cs_error_set(err, CS_ERR_CREDENTIALS, "%s is set but %s is not", secret_var,
				    id_var);
	if (!secret || !*secret)
		return cs_error_set(err, CS_ERR_CREDENTIALS, "%s is set but %s is not", id_var,
				    secret_var);
	snprintf(source, sizeof(source), "environment (%s)", id_var);
	return set_static(c, id, secret, token, source, err) < 0 ? -1 : 1;
}

static void tried(struct cs_buf *b, const char *what, const char *why)
{
	buf_printf(b, "%s%s: %s", b->len ? "; " : "", what, why);
}

/* The chain.  chain: also the sources that are not files (environment, OIDC, ECS, URI). */
static int resolve(struct creds *out, const char *profile, int explicit, int chain,
		   struct cs_error *err)
{
	struct cs_buf log = CS_BUF_INIT;
	char why[1024];
	int rc, ret = -1;

	memset(out, 0, sizeof(*out));
	if (chain) {
		rc = from_env(out, "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
			      "ALIBABA_CLOUD_SECURITY_TOKEN", err);
		if (!rc)
			rc = from_env(out, "ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY",
				      "ALICLOUD_SECURITY_TOKEN", err);
		if (rc) {
			ret = rc < 0 ? -1 : 0;
			goto out;
		}
		tried(&log, "environment", "ALIBABA_CLOUD_ACCESS_KEY_ID is not set");
	}
	if (chain && !explicit) {
		const char *arn = env_nonempty("ALIBABA_CLOUD_ROLE_ARN"),
			   *prov = env_nonempty("ALIBABA_CLOUD_OIDC_PROVIDER_ARN"),
			   *file = env_nonempty("ALIBABA_CLOUD_OIDC_TOKEN_FILE");

		if (arn && prov && file) {
			ret = make_oidc(out, arn, prov, file, env_nonempty("ALIBABA_CLOUD_ROLE_SESSION_NAME"),
					0, NULL, NULL, "OIDC (ALIBABA_CLOUD_ROLE_ARN, "
					"ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE)",
					err);
			goto out;
		}
		tried(&log, "OIDC", arn || prov || file ? "not all of ALIBABA_CLOUD_ROLE_ARN, "
		      "ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE are set"
		      : "ALIBABA_CLOUD_ROLE_ARN is not set");
	}
	if (env_true("ALIBABA_CLOUD_CLI_PROFILE_DISABLED")) {
		tried(&log, "config.json", "ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true");
	} else {
		rc = from_aliyun(out, profile, explicit, why, sizeof(why), err);
		if (rc) {
			ret = rc < 0 ? -1 : 0;
			goto out;
		}
		tried(&log, "config.json", why);
	}
	rc = from_ini(out, profile, why, sizeof(why), err);
	if (rc) {
		ret = rc < 0 ? -1 : 0;
		goto out;
	}
	tried(&log, "credentials file", why);
	if (chain && !explicit) {
		if (env_true("ALIBABA_CLOUD_ECS_METADATA_DISABLED")) {
			tried(&log, "ECS RAM role", "ALIBABA_CLOUD_ECS_METADATA_DISABLED=true");
		} else {
			struct cs_error e = { 0 };
			char src[300];

			snprintf(src, sizeof(src), "ECS RAM role from %s", creds_metadata_endpoint());
			if (make_ecs(out, env_nonempty("ALIBABA_CLOUD_ECS_METADATA"), src, &e) == 0) {
				ret = 0;
				goto out;
			}
			creds_release(out);
			if (e.kind == CS_ERR_INTERRUPTED) {
				cs_error_set(err, CS_ERR_INTERRUPTED, "%s", e.msg);
				goto out;
			}
			tried(&log, "ECS RAM role", e.msg);
		}
		if (env_nonempty("ALIBABA_CLOUD_CREDENTIALS_URI")) {
			ret = make_uri(out, env_nonempty("ALIBABA_CLOUD_CREDENTIALS_URI"),
				       "credentials URI (ALIBABA_CLOUD_CREDENTIALS_URI)", err);
			goto out;
		}
		tried(&log, "credentials URI", "ALIBABA_CLOUD_CREDENTIALS_URI is not set");
	}
	cs_error_set(err, CS_ERR_CREDENTIALS, "no credentials for profile '%s'; tried %s", profile,
		     log.oom ? "(out of memory)" : buf_str(&log));
out:
	if (ret < 0)
		creds_release(out);
	buf_release(&log);
	return ret;
}

int creds_resolve(struct creds *out, const char *profile, struct cs_error *err)
{
	const char *env_profile = getenv("ALIBABA_CLOUD_PROFILE");
	int explicit = (profile && *profile) || (env_profile && *env_profile);

	if (!profile || !*profile)
		profile = env_profile && *env_profile ? env_profile : "default";
	return resolve(out, profile, explicit, 1, err);
}

int creds_resolve_spec(struct creds *out, const struct creds_spec *spec, struct creds *base,
		       struct cs_error *err)
{
	struct creds *b = base;
	char src[600];

	memset(out, 0, sizeof(*out));
	if (spec->profile) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		/* a named profile means that profile: the environment's AccessKey does not win */
		if (resolve(b, spec->profile, 1, 0, err) < 0) {
			free(b);
			return -1;
		}
		if (!spec->role_arn) {
			*out = *b;
			free(b);
			return 0;
		}
	}
	if (!b || !spec->role_arn)
		return cs_error_set(err, CS_ERR_CREDENTIALS,
				    "a credentials map needs profile or role_arn");
	snprintf(src, sizeof(src), "role %s assumed from %s", spec->role_arn, b->source);
	if (make_role_arn(out, b, b != base, spec->role_arn, spec->role_session_name,
			  spec->external_id, spec->policy, spec->duration_s, spec->sts_endpoint,
			  spec->vpc ? spec->region : NULL, spec->vpc, src, err) < 0) {
		creds_release(out);
		return -1;
	}
	return 0;
}
