/*
 * creds.c - the credentials chain of API.md: environment, ~/.alibabacloud/credentials,
 * ~/.aliyun/config.json.  Every buffer that held a secret is cleansed before it is freed.
 */
#include "creds.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"

#define CREDS_MAX_FILE (256 * 1024)

static void wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

void creds_release(struct creds *c)
{
	if (!c)
		return;
	free(c->access_key_id);
	wipe_free(c->access_key_secret);
	wipe_free(c->security_token);
	memset(c, 0, sizeof(*c));
}

static int set_creds(struct creds *c, const char *id, const char *secret, const char *token,
		     struct cs_error *err)
{
	c->access_key_id = strdup(id);
	c->access_key_secret = strdup(secret);
	c->security_token = token && *token ? strdup(token) : NULL;
	if (!c->access_key_id || !c->access_key_secret || (token && *token && !c->security_token)) {
		creds_release(c);
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	}
	return 0;
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

/* 1 found, 0 not set, -1 error (half of a pair set). */
static int from_env(struct creds *c, const char *id_var, const char *secret_var,
		    const char *token_var, struct cs_error *err)
{
	const char *id = getenv(id_var), *secret = getenv(secret_var), *token = getenv(token_var);

	if ((!id || !*id) && (!secret || !*secret))
		return 0;
	if (!id || !*id)
		return cs_error_set(err, CS_ERR_CREDENTIALS, "%s is set but %s is not", secret_var,
				    id_var);
	if (!secret || !*secret)
		return cs_error_set(err, CS_ERR_CREDENTIALS, "%s is set but %s is not", id_var,
				    secret_var);
	if (set_creds(c, id, secret, token, err) < 0)
		return -1;
	snprintf(c->source, sizeof(c->source), "environment (%s)", id_var);
	/* our copies are all we need: the environment block would keep them readable in
	 * /proc/PID/environ and in any core for the life of the process */
	wipe_env(secret_var);
	wipe_env(token_var);
	return 1;
}

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

/* ~/.alibabacloud/credentials: INI, one section per profile.  1 found, 0 not, -1 error. */
static int from_ini(struct creds *c, const char *profile, struct cs_error *err)
{
	const char *explicit_path = getenv("ALIBABA_CLOUD_CREDENTIALS_FILE");
	const char *home = home_dir();
	char path[4096], *line, *save = NULL;
	char *type = NULL, *id = NULL, *secret = NULL, *token = NULL;
	struct cs_buf text = CS_BUF_INIT;
	int in_section = 0, found_section = 0, lineno = 0, rc, ret = -1;

	if (explicit_path && *explicit_path)
		snprintf(path, sizeof(path), "%s", explicit_path);
	else if (home)
		snprintf(path, sizeof(path), "%s/.alibabacloud/credentials", home);
	else
		return 0;
	rc = read_secret_file(path, &text, err);
	if (rc <= 0) {
		if (rc == 0 && explicit_path && *explicit_path)
			return cs_error_set(err, CS_ERR_CREDENTIALS,
					    "ALIBABA_CLOUD_CREDENTIALS_FILE names %s, which does not exist",
					    path);
		return rc;
	}
	for (line = strtok_r(text.data ? text.data : (char *)"", "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *l = trim(line), *eq;

		lineno++;
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
		if (!eq)
			continue;
		*eq = '\0';
		{
			char *k = trim(l), *v = trim(eq + 1);

			if (!strcmp(k, "type"))
				type = v;
			else if (!strcmp(k, "access_key_id"))
				id = v;
			else if (!strcmp(k, "access_key_secret"))
				secret = v;
			else if (!strcmp(k, "security_token") || !strcmp(k, "sts_token"))
				token = v;
		}
	}
	if (!found_section) {
		ret = 0;
		goto out;
	}
	if (type && strcmp(type, "access_key") && strcmp(type, "sts")) {
		cs_error_set(err, CS_ERR_CREDENTIALS,
			     "profile '%s' in %s has type '%s'; credsync supports access_key and sts",
			     profile, path, type);
		goto out;
	}
	if (!id || !*id || !secret || !*secret) {
		cs_error_set(err, CS_ERR_CREDENTIALS,
			     "profile '%s' in %s lacks access_key_id or access_key_secret", profile, path);
		goto out;
	}
	if (set_creds(c, id, secret, token, err) < 0)
		goto out;
	snprintf(c->source, sizeof(c->source), "profile '%s' in %s", profile, path);
	ret = 1;
out:
	buf_release_wipe(&text);
	return ret;
}

static const char *json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ~/.aliyun/config.json of the aliyun CLI.  1 found, 0 not, -1 error. */
static int from_aliyun(struct creds *c, const char *profile, int profile_explicit,
		       struct cs_error *err)
{
	const char *home = home_dir(), *want, *mode;
	char path[4096];
	struct cs_buf text = CS_BUF_INIT;
	cJSON *root = NULL;
	const cJSON *profiles, *p, *hit = NULL;
	int rc, ret = -1;

	if (!home)
		return 0;
	snprintf(path, sizeof(path), "%s/.aliyun/config.json", home);
	rc = read_secret_file(path, &text, err);
	if (rc <= 0)
		return rc;
	root = cJSON_ParseWithLength(text.data, text.len);
	if (!root || !cJSON_IsObject(root)) {
		cs_error_set(err, CS_ERR_CREDENTIALS, "%s: not valid JSON", path);
		goto out;
	}
	want = profile_explicit ? profile : json_str(root, "current");
	if (!want || !*want)
		want = profile;
	profiles = cJSON_GetObjectItemCaseSensitive(root, "profiles");
	cJSON_ArrayForEach(p, profiles) {
		const char *name = json_str(p, "name");

		if (name && !strcmp(name, want)) {
			hit = p;
			break;
		}
	}
	if (!hit) {
		ret = 0;
		goto out;
	}
	mode = json_str(hit, "mode");
	if (mode && strcmp(mode, "AK") && strcmp(mode, "StsToken")) {
		cs_error_set(err, CS_ERR_CREDENTIALS,
			     "profile '%s' in %s has mode '%s'; credsync supports AK and StsToken",
			     want, path, mode);
		goto out;
	}
	if (!json_str(hit, "access_key_id") || !*json_str(hit, "access_key_id") ||
	    !json_str(hit, "access_key_secret") || !*json_str(hit, "access_key_secret")) {
		cs_error_set(err, CS_ERR_CREDENTIALS,
			     "profile '%s' in %s lacks access_key_id or access_key_secret", want, path);
		goto out;
	}
	if (set_creds(c, json_str(hit, "access_key_id"), json_str(hit, "access_key_secret"),
		      mode && !strcmp(mode, "StsToken") ? json_str(hit, "sts_token") : NULL, err) < 0)
		goto out;
	snprintf(c->source, sizeof(c->source), "profile '%s' in %s", want, path);
	ret = 1;
out:
	if (root) {
		/* cJSON copied the strings: cleanse them before they go back to the heap */
		cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(root, "profiles")) {
			const cJSON *f;

			cJSON_ArrayForEach(f, p)
				if (cJSON_IsString(f) && f->valuestring)
					OPENSSL_cleanse(f->valuestring, strlen(f->valuestring));
		}
		cJSON_Delete(root);
	}
	buf_release_wipe(&text);
	return ret;
}

int creds_resolve(struct creds *out, const char *profile, struct cs_error *err)
{
	const char *env_profile = getenv("ALIBABA_CLOUD_PROFILE");
	int explicit = (profile && *profile) || (env_profile && *env_profile);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!profile || !*profile)
		profile = env_profile && *env_profile ? env_profile : "default";

	rc = from_env(out, "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
		      "ALIBABA_CLOUD_SECURITY_TOKEN", err);
	if (rc)
		return rc < 0 ? -1 : 0;
	rc = from_env(out, "ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY", "ALICLOUD_SECURITY_TOKEN",
		      err);
	if (rc)
		return rc < 0 ? -1 : 0;
	rc = from_ini(out, profile, err);
	if (rc)
		return rc < 0 ? -1 : 0;
	rc = from_aliyun(out, profile, explicit, err);
	if (rc)
		return rc < 0 ? -1 : 0;
	return cs_error_set(err, CS_ERR_CREDENTIALS,
			    "no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and "
			    "ALIBABA_CLOUD_ACCESS_KEY_SECRET, or add profile '%s' to "
			    "~/.alibabacloud/credentials or ~/.aliyun/config.json", profile);
}
