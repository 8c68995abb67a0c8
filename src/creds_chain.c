/*
 * creds_chain.c - where credentials are found: the chain of IDENTITY.md (environment, OIDC
 * variables, ~/.aliyun/config.json, ~/.alibabacloud/credentials, the ECS RAM role, a
 * credentials URI), the profile types and modes users already write, and the `credentials`
 * maps of the config.  The providers it makes are creds.c's.  Every buffer that held a secret
 * is cleansed before it is freed.
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
#include "util.h"

#define CREDS_MAX_FILE (256 * 1024)
#define CREDS_MAX_FIELDS 48
#define CREDS_MAX_CHAIN 5             /* ChainableRamRoleArn source_profile depth */

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
		return creds_set_static(c, fget(f, "access_key_id"), fget(f, "access_key_secret"),
					!sts ? NULL : ini ? (fget(f, "security_token")
							     ? fget(f, "security_token")
							     : fget(f, "sts_token")) : fget(f, "sts_token"),
					source, err);
	}
	if (!strcmp(t, ini ? "ecs_ram_role" : "EcsRamRole"))
		return creds_make_ecs(c, fget(f, ini ? "role_name" : "ram_role_name"), source, err);
	if (!strcmp(t, ini ? "credentials_uri" : "CredentialsURI")) {
		if (need(f, "credentials_uri", &uri, err) < 0)
			return -1;
		return creds_make_uri(c, uri, source, err);
	}
	if (!strcmp(t, ini ? "oidc_role_arn" : "OIDC")) {
		if (need(f, ini ? "role_arn" : "ram_role_arn", &arn, err) < 0 ||
		    need(f, "oidc_provider_arn", &prov, err) < 0 ||
		    need(f, ini ? "oidc_token_file_path" : "oidc_token_file", &file, err) < 0 ||
		    duration_of(f, ini ? "role_session_expiration" : "expired_seconds", &dur, err) < 0)
			return -1;
		return creds_make_oidc(c, arn, prov, file,
				       fget(f, ini ? "role_session_name" : "ram_session_name"), dur,
				       fget(f, "sts_endpoint"), fget(f, "sts_region"), source, err);
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
			    creds_set_static(base, id, secret,
					     fget(f, ini ? "security_token" : "sts_token"), source,
					     err) < 0)
				goto fail;
		}
		{
			char src2[600];

			snprintf(src2, sizeof(src2), "%s (role assumed from %s)", source, base->source);
			return creds_make_role_arn(c, base, 1, arn,
						   fget(f, ini ? "role_session_name" : "ram_session_name"),
						   fget(f, "external_id"), fget(f, "policy"), dur,
						   fget(f, "sts_endpoint"), fget(f, "sts_region"), 0,
						   src2, err);
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
	const char *home = home_dir(), *want, *env = creds_env_nonempty("ALIBABA_CLOUD_CONFIG_FILE");
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
	return creds_set_static(c, id, secret, token, source, err) < 0 ? -1 : 1;
}

static void tried(struct cs_buf *b, const char *what, const char *why)
{
	buf_printf(b, "%s%s: %s", b->len ? "; " : "", what, why);
}

void creds_metadata_status(char *out, size_t outlen)
{
	const char *dis = getenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED");

	snprintf(out, outlen, "%s (%s)", creds_metadata_endpoint(),
		 dis && !strcasecmp(dis, "true") ? "disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED"
						 : "enabled");
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
		const char *arn = creds_env_nonempty("ALIBABA_CLOUD_ROLE_ARN"),
			   *prov = creds_env_nonempty("ALIBABA_CLOUD_OIDC_PROVIDER_ARN"),
			   *file = creds_env_nonempty("ALIBABA_CLOUD_OIDC_TOKEN_FILE");

		if (arn && prov && file) {
			ret = creds_make_oidc(out, arn, prov, file,
					      creds_env_nonempty("ALIBABA_CLOUD_ROLE_SESSION_NAME"), 0,
					      NULL, NULL, "OIDC (ALIBABA_CLOUD_ROLE_ARN, "
					      "ALIBABA_CLOUD_OIDC_PROVIDER_ARN, "
					      "ALIBABA_CLOUD_OIDC_TOKEN_FILE)", err);
			goto out;
		}
		tried(&log, "OIDC", arn || prov || file ? "not all of ALIBABA_CLOUD_ROLE_ARN, "
		      "ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE are set"
		      : "ALIBABA_CLOUD_ROLE_ARN is not set");
	}
	if (creds_env_true("ALIBABA_CLOUD_CLI_PROFILE_DISABLED")) {
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
		if (creds_env_true("ALIBABA_CLOUD_ECS_METADATA_DISABLED")) {
			tried(&log, "ECS RAM role", "ALIBABA_CLOUD_ECS_METADATA_DISABLED=true");
		} else {
			struct cs_error e = { 0 };
			char src[300];

			snprintf(src, sizeof(src), "ECS RAM role from %s", creds_metadata_endpoint());
			if (creds_make_ecs(out, creds_env_nonempty("ALIBABA_CLOUD_ECS_METADATA"), src,
					   &e) == 0) {
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
		if (creds_env_nonempty("ALIBABA_CLOUD_CREDENTIALS_URI")) {
			ret = creds_make_uri(out, creds_env_nonempty("ALIBABA_CLOUD_CREDENTIALS_URI"),
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
	if (creds_make_role_arn(out, b, b != base, spec->role_arn, spec->role_session_name,
				spec->external_id, spec->policy, spec->duration_s, spec->sts_endpoint,
				spec->vpc ? spec->region : NULL, spec->vpc, src, err) < 0) {
		creds_release(out);
		return -1;
	}
	return 0;
}
