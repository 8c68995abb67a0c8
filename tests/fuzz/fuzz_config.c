/*
 * fuzz_config.c - config_load_string on arbitrary YAML.
 *
 * The input is passed with its exact length and no NUL after it (config_load_string takes
 * a length).  A loaded config must satisfy everything the loader promises to validate; a
 * refused one must say so as a config error that names the file.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "util.h"

#define FUZZ_NAME "fuzz.yaml"

static int charset_ok(const char *s, const char *set)
{
	return strspn(s, set) == strlen(s);
}

static int opt_string_ok(const char *s)
{
	return !s || *s;
}

static void check_settings(const struct cfg_settings *s)
{
	FUZZ_CHECK(s->page_size >= 1 && s->page_size <= 100);
	FUZZ_CHECK(s->qps > 0 && s->qps <= 10000);
	FUZZ_CHECK(s->concurrency >= 1 && s->concurrency <= 256);
	FUZZ_CHECK(s->connect_timeout_ms > 0 && s->request_timeout_ms > 0);
	FUZZ_CHECK(s->max_attempts >= 1 && s->max_attempts <= 100);
	FUZZ_CHECK(s->base_delay_ms > 0 && s->max_delay_ms >= s->base_delay_ms);
	FUZZ_CHECK(s->deadline_ms > 0);
	FUZZ_CHECK(s->retry_budget >= 1 && s->retry_budget <= 1000000);
	FUZZ_CHECK(s->signature == CFG_SIG_V1 || s->signature == CFG_SIG_V3);
	FUZZ_CHECK(s->rate_control == CFG_RATE_ADAPTIVE || s->rate_control == CFG_RATE_FIXED);
	FUZZ_CHECK(opt_string_ok(s->ca_file));
}

/* A DNS name: 1..253 bytes of labels of 1..63 letters, digits and '-' (not at either end
 * of a label); an IPv4 address passes too. */
static void check_hostname(const char *h)
{
	size_t len = strlen(h), label = 0, i;

	FUZZ_CHECK(len > 0 && len <= 253);
	for (i = 0; i <= len; i++) {
		char c = h[i];

		if (c == '.' || c == '\0') {
			FUZZ_CHECK(label > 0 && h[i - 1] != '-');
			label = 0;
			continue;
		}
		FUZZ_CHECK(isalnum((unsigned char)c) || (c == '-' && label > 0));
		FUZZ_CHECK(++label <= 63);
	}
}

/* scheme://host[:port], lower-case scheme, no path, query, fragment or user info; plain
 * http only to a loopback host. */
static void check_endpoint(const char *e)
{
	const char *rest, *end;
	char host[300];
	size_t hlen;
	int tls;

	FUZZ_CHECK(e != NULL);
	tls = !strncmp(e, "https://", 8);
	FUZZ_CHECK(tls || !strncmp(e, "http://", 7));
	rest = e + (tls ? 8 : 7);
	FUZZ_CHECK(*rest != '\0');
	FUZZ_CHECK(!strpbrk(rest, "/?#@ "));
	if (rest[0] == '[') {
		end = strchr(rest, ']');
		FUZZ_CHECK(end != NULL);
		end++;
	} else {
		end = strchr(rest, ':');
		if (!end)
			end = rest + strlen(rest);
	}
	hlen = (size_t)(end - rest);
	FUZZ_CHECK(hlen > 0 && hlen < sizeof(host));
	memcpy(host, rest, hlen);
	host[hlen] = '\0';
	if (host[0] == '[') {
		struct in6_addr a6;

		host[hlen - 1] = '\0';
		FUZZ_CHECK(inet_pton(AF_INET6, host + 1, &a6) == 1);
		host[hlen - 1] = ']';
	} else {
		check_hostname(host);
	}
	if (*end) {
		long port;

		FUZZ_CHECK(*end == ':' && end[1] && charset_ok(end + 1, "0123456789"));
		FUZZ_CHECK(strlen(end + 1) <= 5);
		port = strtol(end + 1, NULL, 10);
		FUZZ_CHECK(port >= 1 && port <= 65535);
	}
	if (!tls)
		FUZZ_CHECK(util_host_is_loopback(host));
}

static void check_instance(const struct cfg_instance *inst)
{
	size_t i, j;

	FUZZ_CHECK(inst->id && *inst->id);
	FUZZ_CHECK(charset_ok(inst->id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				       "0123456789_.-"));
	FUZZ_CHECK(!inst->region ||
		   (*inst->region && charset_ok(inst->region, "abcdefghijklmnopqrstuvwxyz"
							     "0123456789-")));
	check_endpoint(inst->endpoint);
	if (inst->groups_all) {
		FUZZ_CHECK(inst->groups == NULL && inst->ngroups == 0);
	} else {
		FUZZ_CHECK(inst->groups != NULL && inst->ngroups > 0);
		for (i = 0; i < inst->ngroups; i++) {
			const char *g = inst->groups[i];
			size_t len;

			FUZZ_CHECK(g != NULL);
			len = strlen(g);
			FUZZ_CHECK(len > 0 && len <= 64);
			for (j = 0; j < len; j++)
				FUZZ_CHECK((unsigned char)g[j] > 0x20 && (unsigned char)g[j] < 0x7f);
			FUZZ_CHECK(strcmp(g, "all") != 0);
			for (j = 0; j < i; j++)
				FUZZ_CHECK(strcmp(inst->groups[j], g) != 0);
		}
	}
	FUZZ_CHECK(inst->line >= 1 && inst->column >= 1);
	check_settings(&inst->s);
}

static void check_config(const struct config *cfg)
{
	size_t i, j;

	FUZZ_CHECK(cfg->path && !strcmp(cfg->path, FUZZ_NAME));
	FUZZ_CHECK(opt_string_ok(cfg->database));
	FUZZ_CHECK(opt_string_ok(cfg->profile));
	FUZZ_CHECK(opt_string_ok(cfg->metrics_file));
	FUZZ_CHECK(cfg->checkpoint_max_age_ms > 0);
	check_settings(&cfg->defaults);
	FUZZ_CHECK(cfg->ninstances > 0 && cfg->instances != NULL);
	for (i = 0; i < cfg->ninstances; i++) {
		check_instance(&cfg->instances[i]);
		for (j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(cfg->instances[j].id, cfg->instances[i].id) != 0);
	}
}

/* "fuzz.yaml: ..." or "fuzz.yaml:LINE:COLUMN: ..." with LINE and COLUMN >= 1. */
static void check_error(const struct cs_error *err)
{
	const char *p;
	size_t n = strlen(FUZZ_NAME);

	FUZZ_CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
	if (err->kind == CS_ERR_NOMEM)
		return;
	FUZZ_CHECK(err->kind == CS_ERR_CONFIG);
	FUZZ_CHECK(!strncmp(err->msg, FUZZ_NAME, n) && err->msg[n] == ':');
	p = err->msg + n + 1;
	if (*p == ' ') {
		FUZZ_CHECK(p[1] != '\0');
		return;
	}
	FUZZ_CHECK(isdigit((unsigned char)*p) && *p != '0');
	while (isdigit((unsigned char)*p))
		p++;
	FUZZ_CHECK(*p++ == ':');
	FUZZ_CHECK(isdigit((unsigned char)*p) && *p != '0');
	while (isdigit((unsigned char)*p))
		p++;
	FUZZ_CHECK(p[0] == ':' && p[1] == ' ' && p[2] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cs_error err = { CS_ERR_NONE, "" };
	struct config *cfg = (struct config *)&err; /* must be reset by the loader */

	if (config_load_string(&cfg, FUZZ_NAME, (const char *)data, size, &err) == 0) {
		FUZZ_CHECK(cfg != NULL);
		FUZZ_CHECK(err.kind == CS_ERR_NONE);
		check_config(cfg);
		config_free(cfg);
	} else {
		FUZZ_CHECK(cfg == NULL);
		FUZZ_CHECK(err.kind != CS_ERR_NONE);
		check_error(&err);
	}
	return 0;
}
