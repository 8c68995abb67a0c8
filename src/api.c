/* api.c - signed OnsMqtt requests and their parsed responses; see api.h. */
#include "api.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_PARAMS 24

/*
 * cJSON allocates each node and each string of a response separately: thousands of
 * malloc/free pairs per page, a fifth of a sync's CPU.  So each parse allocates from an arena
 * of its own, which holds the whole tree and is freed whole with it (api_page_release for a
 * page, before returning for groups and instances): pages parsed at once never share one.
 *
 * cJSON's allocator is process-wide (cJSON_InitHooks takes no context), so the hooks are
 * installed once, on the first parse, and send an allocation to an arena only while a parse
 * on this thread has made its arena current; every other use of cJSON in the process
 * (creds.c, creds_fetch.c) gets plain malloc and free.  A tree from an arena is therefore
 * never given to cJSON_Delete.  When the arena cannot grow, cJSON fails as it would without
 * memory, and the arena's oom flag tells that apart from a body that is not JSON.
 */
#define ARENA_FIRST_MIN 4096
#define ARENA_FIRST_MAX (1u << 20)

struct json_chunk {
	struct json_chunk *next;  /* the previous, smaller chunk */
	size_t size, used;
	max_align_t data[];       /* size bytes */
};

struct json_arena {
	struct json_chunk *chunks; /* owned, newest first */
	size_t total;             /* bytes in chunks, against parse_limit */
	size_t first;             /* the first chunk's size, from the body's length */
	int oom;                  /* an allocation failed: the parse ran out of memory */
};

static _Thread_local struct json_arena *current_arena;
static size_t parse_limit = SIZE_MAX;
static int hooks_installed;

static void *arena_alloc(struct json_arena *a, size_t n)
{
	size_t need = (n + 15) & ~(size_t)15;
	struct json_chunk *c = a->chunks;
	void *p;

	if (need < n) {
		a->oom = 1;
		return NULL;
	}
	if (!c || c->size - c->used < need) {
		size_t size = c ? c->size * 2 : a->first;

		if (size < need)
			size = need;
		if (size > parse_limit - a->total || size > SIZE_MAX - sizeof(*c) ||
		    !(c = malloc(sizeof(*c) + size))) {
			a->oom = 1;
			return NULL;
		}
		c->size = size;
		c->used = 0;
		c->next = a->chunks;
		a->chunks = c;
		a->total += size;
	}
	p = (char *)c->data + c->used;
	c->used += need;
	return p;
}

static void *hook_malloc(size_t n)
{
	return current_arena ? arena_alloc(current_arena, n) : malloc(n);
}

static void hook_free(void *p)
{
	/* during a parse everything cJSON frees came from the arena, which is freed whole */
	if (!current_arena)
		free(p);
}

static void json_arena_free(struct json_arena *a)
{
	struct json_chunk *c, *next;

	if (!a)
		return;
	for (c = a->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

void api_set_parse_limit(size_t bytes)
{
	parse_limit = bytes;
}

/* Parses body into *root, allocated from *arena (the caller's, json_arena_free).  Returns 0,
 * -1 when the body is not JSON, or -2 when memory ran out; on failure both are NULL. */
static int parse_json(const char *body, size_t len, cJSON **root, struct json_arena **arena)
{
	struct json_arena *a;
	cJSON *r;
	int oom;

	*root = NULL;
	*arena = NULL;
	if (!hooks_installed) {
		cJSON_Hooks h = { hook_malloc, hook_free };

		cJSON_InitHooks(&h);
		hooks_installed = 1;
	}
	if (!(a = calloc(1, sizeof(*a))))
		return -2;
	/* a page's tree takes about four times its text: usually one chunk */
	a->first = len < ARENA_FIRST_MAX / 4 ? len * 4 : ARENA_FIRST_MAX;
	if (a->first < ARENA_FIRST_MIN)
		a->first = ARENA_FIRST_MIN;
	current_arena = a;
	r = cJSON_ParseWithLength(body, len);
	current_arena = NULL;
	oom = a->oom;
	if (!r || oom) {
		json_arena_free(a);
		return oom ? -2 : -1;
	}
	*root = r;
	*arena = a;
	return 0;
}

int api_build_request(struct cs_buf *url, struct curl_slist **headers, const char *base_url,
		      const char *host, const char *method, const char *action,
		      const struct sign_param *params, size_t nparams, const struct creds *creds,
		      enum cfg_signature sig, struct cs_error *err)
{
	return api_build_request_version(url, headers, base_url, host, method, action, API_VERSION,
					 params, nparams, creds, sig, err);
}

int api_build_request_version(struct cs_buf *url, struct curl_slist **headers,
			      const char *base_url, const char *host, const char *method,
			      const char *action, const char *version,
			      const struct sign_param *params, size_t nparams,
			      const struct creds *creds, enum cfg_signature sig,
			      struct cs_error *err)
{
	struct sign_param all[MAX_PARAMS];
	struct cs_buf query = CS_BUF_INIT, line = CS_BUF_INIT, signed_headers = CS_BUF_INIT;
	struct curl_slist *h = NULL, *tmp;
	char nonce[37], stamp[21], signature[65], hashed[65];
	size_t n = 0, i;
	int ret = -1;

	*headers = NULL;
	if (nparams + 10 > MAX_PARAMS)
		return cs_error_set(err, CS_ERR_RUNTIME, "too many request parameters");
	if (sign_nonce(nonce) < 0)
		return cs_error_set(err, CS_ERR_RUNTIME, "the system random generator failed");
	util_format_utc(util_now_epoch(), stamp);
	for (i = 0; i < nparams; i++)
		all[n++] = params[i];

	if (sig == CFG_SIG_V1) {
		all[n++] = (struct sign_param){ "Action", action };
		all[n++] = (struct sign_param){ "Version", version };
		all[n++] = (struct sign_param){ "Format", "JSON" };
		all[n++] = (struct sign_param){ "AccessKeyId", creds->access_key_id };
		all[n++] = (struct sign_param){ "SignatureMethod", "HMAC-SHA1" };
		all[n++] = (struct sign_param){ "SignatureVersion", "1.0" };
		all[n++] = (struct sign_param){ "SignatureNonce", nonce };
		all[n++] = (struct sign_param){ "Timestamp", stamp };
		if (creds->security_token)
			all[n++] = (struct sign_param){ "SecurityToken", creds->security_token };
		if (sign_canonical_query(&query, all, n) < 0 ||
		    sign_v1(signature, sizeof(signature), method, buf_str(&query),
			    creds->access_key_secret) < 0) {
			cs_error_set(err, CS_ERR_RUNTIME, "cannot sign the request");
			goto out;
		}
		buf_puts(url, base_url);
		buf_puts(url, "/?");
		buf_puts(url, buf_str(&query));
		buf_puts(url, "&Signature=");
		sign_percent_encode(url, signature, strlen(signature));
	} else {
		struct sign_param hdr[8];
		size_t nh = 0;

		hdr[nh++] = (struct sign_param){ "host", host };
		hdr[nh++] = (struct sign_param){ "x-acs-action", action };
		hdr[nh++] = (struct sign_param){ "x-acs-version", version };
		hdr[nh++] = (struct sign_param){ "x-acs-date", stamp };
		hdr[nh++] = (struct sign_param){ "x-acs-signature-nonce", nonce };
		hdr[nh++] = (struct sign_param){ "x-acs-content-sha256", SIGN_EMPTY_SHA256 };
		if (creds->security_token)
			hdr[nh++] = (struct sign_param){ "x-acs-security-token", creds->security_token };
		if (sign_canonical_query(&query, all, n) < 0 ||
		    sign_v3(hashed, signature, &signed_headers, method, buf_str(&query), hdr, nh,
			    SIGN_EMPTY_SHA256, creds->access_key_secret) < 0) {
			cs_error_set(err, CS_ERR_RUNTIME, "cannot sign the request");
			goto out;
		}
		buf_puts(url, base_url);
		buf_puts(url, "/?");
		buf_puts(url, buf_str(&query));
		for (i = 0; i < nh; i++) {
			buf_reset(&line);
			buf_printf(&line, "%s: %s", hdr[i].name, hdr[i].value);
			if (line.oom || !(tmp = curl_slist_append(h, line.data)))
				goto oom;
			h = tmp;
		}
		buf_reset(&line);
		buf_printf(&line,
			   "Authorization: ACS3-HMAC-SHA256 Credential=%s,SignedHeaders=%s,Signature=%s",
			   creds->access_key_id, buf_str(&signed_headers), signature);
		if (line.oom || !(tmp = curl_slist_append(h, line.data)))
			goto oom;
		h = tmp;
	}
	/* curl would add these for a POST; they are not ours to send */
	if (!(tmp = curl_slist_append(h, "Accept: application/json")))
		goto oom;
	h = tmp;
	if (!(tmp = curl_slist_append(h, "Expect:")))
		goto oom;
	h = tmp;
	if (!(tmp = curl_slist_append(h, "Content-Type:")))
		goto oom;
	h = tmp;
	if (url->oom)
		goto oom;
	*headers = h;
	h = NULL;
	ret = 0;
	goto out;
oom:
	cs_error_set(err, CS_ERR_NOMEM, "out of memory");
out:
	curl_slist_free_all(h);
	buf_release_wipe(&query); /* may hold a security token */
	buf_release_wipe(&line);
	buf_release(&signed_headers);
	return ret;
}

int api_parse_count(const cJSON *item, int64_t *out)
{
	if (!item || cJSON_IsNull(item))
		return -1;
	if (cJSON_IsString(item)) {
		const char *s = item->valuestring;
		int64_t v = 0;
		size_t i;

		if (!*s || strlen(s) > 16)
			return -2;
		for (i = 0; s[i]; i++) {
			if (!isdigit((unsigned char)s[i]))
				return -2;
			v = v * 10 + (s[i] - '0');
		}
		if (v > 9007199254740992LL)
			return -2;
		*out = v;
		return 0;
	}
	if (cJSON_IsNumber(item)) {
		double d = item->valuedouble;

		/* a double above 2^53 may already have lost digits: refuse it */
		if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d)
			return -2;
		*out = (int64_t)d;
		return 0;
	}
	return -2;
}

/* Describes a body that is not what we expected, quoting its first bytes. */
static void describe_body(char *out, size_t outlen, long status, const char *what,
			  const char *body, size_t len)
{
	char quoted[160];

	util_quote_bytes(body, len < 120 ? len : 120, quoted, sizeof(quoted));
	snprintf(out, outlen, "HTTP %ld, %s (%zu bytes): \"%s%s\"", status, what, len, quoted,
		 len > 120 ? "..." : "");
}

/* Nesting depth of a JSON text, counted outside strings; cheap and bounded before cJSON
 * recurses into it. */
static int json_depth_ok(const char *s, size_t len)
{
	int depth = 0, in_str = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > API_MAX_JSON_DEPTH)
				return 0;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return 1;
}

static int has_nul_escape(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i + 6 <= len; i++) {
		if (s[i] == '\\') {
			if (s[i + 1] == 'u' && !memcmp(s + i + 2, "0000", 4))
				return 1;
			i++; /* skip the escaped character */
		}
	}
	return 0;
}

static void copy_field(char *dst, size_t dstlen, const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (cJSON_IsString(v))
		snprintf(dst, dstlen, "%s", v->valuestring);
	else
		dst[0] = '\0';
}

/*
 * Common first step: JSON or not, error body or not.  Returns API_OK with *root, allocated
 * from *arena (the caller's: json_arena_free), when the body is a JSON object holding
 * `payload`, else the classification.  A Code alone is not an error (sibling actions send
 * Code "200" on success): status and payload decide.
 */
static enum api_result parse_envelope(long status, const char *body, size_t len,
				      const char *payload, int payload_is_list, cJSON **root,
				      struct json_arena **arena, struct api_error *aerr,
				      char *detail, size_t detail_len)
{
	struct json_arena *a;
	cJSON *r;
	const cJSON *code, *pl;
	int rc;

	*root = NULL;
	*arena = NULL;
	memset(aerr, 0, sizeof(*aerr));
	aerr->http_status = status;
	if (!len) {
		describe_body(detail, detail_len, status, "empty body", body, len);
		return API_MALFORMED;
	}
	/* JSON never holds a raw NUL byte, but cJSON accepts one and cuts the string there, so
	 * "ab<NUL>cd" would be stored as the different ID "ab" (found by fuzz_api) */
	if (memchr(body, '\0', len)) {
		describe_body(detail, detail_len, status, "a NUL byte in the body", body, len);
		return API_MALFORMED;
	}
	if (!json_depth_ok(body, len)) {
		describe_body(detail, detail_len, status, "JSON nested too deep", body, len);
		return API_MALFORMED;
	}
	rc = parse_json(body, len, &r, &a);
	if (rc == -2) {
		snprintf(detail, detail_len, "out of memory");
		return API_NOMEM;
	}
	if (rc < 0) {
		size_t i = 0;

		while (i < len && isspace((unsigned char)body[i]))
			i++;
		describe_body(detail, detail_len, status,
			      i < len && body[i] == '<' ? "an HTML page, not JSON"
			      : i < len && (body[i] == '{' || body[i] == '[') ? "truncated or invalid JSON"
			      : "not JSON", body, len);
		return API_MALFORMED;
	}
	if (!cJSON_IsObject(r)) {
		describe_body(detail, detail_len, status, "JSON that is not an object", body, len);
		json_arena_free(a);
		return API_MALFORMED;
	}
	code = cJSON_GetObjectItemCaseSensitive(r, "Code");
	pl = cJSON_GetObjectItemCaseSensitive(r, payload);
	if (status == 200 && (payload_is_list ? cJSON_IsArray(pl) : cJSON_IsObject(pl))) {
		*root = r;
		*arena = a;
		return API_OK;
	}
	/* "200" is the success Code of sibling actions (ListInstances): a body with it but
	 * without the payload is malformed, not a service error named "200" */
	if (cJSON_IsString(code) && *code->valuestring && strcmp(code->valuestring, "200")) {
		copy_field(aerr->code, sizeof(aerr->code), r, "Code");
		copy_field(aerr->message, sizeof(aerr->message), r, "Message");
		copy_field(aerr->request_id, sizeof(aerr->request_id), r, "RequestId");
		json_arena_free(a);
		return API_SERVICE_ERROR;
	}
	describe_body(detail, detail_len, status,
		      status == 200 ? "JSON without the expected payload" : "an error without a Code",
		      body, len);
	json_arena_free(a);
	return API_MALFORMED;
}

enum api_result api_parse_list(long http_status, const char *body, size_t len,
			       struct api_list_page *page, struct api_error *aerr, char *detail,
			       size_t detail_len)
{
	const cJSON *list, *ids, *item, *tok, *rid;
	enum api_result res;
	size_t n, i;
	int rc;

	memset(page, 0, sizeof(*page));
	page->total = page->page_no = page->page_size = -1;
	page->request_id = "";
	res = parse_envelope(http_status, body, len, "DeviceCredentialClientIdList", 0,
			     &page->root, &page->arena, aerr, detail, detail_len);
	if (res != API_OK)
		return res;
	rid = cJSON_GetObjectItemCaseSensitive(page->root, "RequestId");
	if (cJSON_IsString(rid))
		page->request_id = rid->valuestring;
	list = cJSON_GetObjectItemCaseSensitive(page->root, "DeviceCredentialClientIdList");
	ids = cJSON_GetObjectItemCaseSensitive(list, "ClientIdList");
	if (ids && !cJSON_IsNull(ids) && !cJSON_IsArray(ids)) {
		describe_body(detail, detail_len, http_status, "ClientIdList is not a list", body, len);
		goto malformed;
	}
	if ((rc = api_parse_count(cJSON_GetObjectItemCaseSensitive(list, "Total"), &page->total)) == -2) {
		describe_body(detail, detail_len, http_status, "Total is not a count", body, len);
		goto malformed;
	}
	if (api_parse_count(cJSON_GetObjectItemCaseSensitive(list, "PageNo"), &page->page_no) == -2 ||
	    api_parse_count(cJSON_GetObjectItemCaseSensitive(list, "PageSize"), &page->page_size) == -2) {
		describe_body(detail, detail_len, http_status, "PageNo or PageSize is not a count",
			      body, len);
		goto malformed;
	}
	tok = cJSON_GetObjectItemCaseSensitive(list, "NextToken");
	if (tok && !cJSON_IsNull(tok) && !cJSON_IsString(tok)) {
		describe_body(detail, detail_len, http_status, "NextToken is not a string", body, len);
		goto malformed;
	}
	if (cJSON_IsString(tok))
		page->next_token = tok->valuestring;

	n = ids ? (size_t)cJSON_GetArraySize(ids) : 0;
	if (n) {
		page->ids = malloc(n * sizeof(*page->ids));
		page->lens = malloc(n * sizeof(*page->lens));
		if (!page->ids || !page->lens) {
			api_page_release(page);
			snprintf(detail, detail_len, "out of memory");
			return API_NOMEM;
		}
	}
	if (n && has_nul_escape(body, len)) {
		/* cJSON would cut the ID at the NUL: refuse rather than store a different ID */
		describe_body(detail, detail_len, http_status,
			      "a client ID contains a NUL character (\\u0000)", body, len);
		api_page_release(page);
		return API_BAD_DATA;
	}
	i = 0;
	cJSON_ArrayForEach(item, ids) {
		size_t l;

		if (!cJSON_IsString(item)) {
			describe_body(detail, detail_len, http_status,
				      "ClientIdList holds something other than strings", body, len);
			goto malformed;
		}
		l = strlen(item->valuestring);
		if (l == 0 || l > API_MAX_CLIENT_ID || !util_utf8_valid(item->valuestring, l)) {
			if (!page->skipped)
				util_quote_bytes(item->valuestring, l, page->skipped_example,
						 sizeof(page->skipped_example));
			page->skipped++;
			continue;
		}
		page->ids[i] = item->valuestring;
		page->lens[i] = l;
		i++;
	}
	page->n = i;
	return API_OK;
malformed:
	api_page_release(page);
	return API_MALFORMED;
}

void api_page_release(struct api_list_page *page)
{
	if (!page)
		return;
	json_arena_free(page->arena);
	free(page->ids);
	free(page->lens);
	memset(page, 0, sizeof(*page));
}

enum api_result api_parse_groups(long http_status, const char *body, size_t len,
				 char ***groups, size_t *ngroups, struct api_error *aerr,
				 char *detail, size_t detail_len)
{
	struct json_arena *arena = NULL;
	cJSON *root = NULL;
	const cJSON *item;
	enum api_result res;
	char **out = NULL;
	size_t n, i = 0;

	*groups = NULL;
	*ngroups = 0;
	res = parse_envelope(http_status, body, len, "Data", 1, &root, &arena, aerr, detail,
			     detail_len);
	if (res != API_OK)
		return res;
	n = (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "Data"));
	/* a group id is sent back as GroupId and stored: as with client IDs, refuse one that
	 * \u0000 would cut short, and (found by fuzz_api) one that is not UTF-8 or is too long,
	 * rather than crawl a different group or silently leave it out */
	if (n && has_nul_escape(body, len)) {
		describe_body(detail, detail_len, http_status,
			      "a group id contains a NUL character (\\u0000)", body, len);
		json_arena_free(arena);
		return API_BAD_DATA;
	}
	out = calloc(n ? n : 1, sizeof(*out));
	if (!out)
		goto oom;
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(root, "Data")) {
		const cJSON *gid = cJSON_GetObjectItemCaseSensitive(item, "GroupId");
		size_t l;

		if (!cJSON_IsString(gid) || !*gid->valuestring)
			continue;
		l = strlen(gid->valuestring);
		if (l > API_MAX_CLIENT_ID || !util_utf8_valid(gid->valuestring, l)) {
			describe_body(detail, detail_len, http_status,
				      "a group id is not UTF-8 or is too long", body, len);
			while (i > 0)
				free(out[--i]);
			free(out);
			json_arena_free(arena);
			return API_BAD_DATA;
		}
		if (!(out[i] = strdup(gid->valuestring)))
			goto oom;
		i++;
	}
	json_arena_free(arena);
	*groups = out;
	*ngroups = i;
	return API_OK;
oom:
	while (i > 0)
		free(out[--i]);
	free(out);
	json_arena_free(arena);
	snprintf(detail, detail_len, "out of memory");
	return API_NOMEM;
}

void api_instances_free(struct api_instance *v, size_t n)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < n; i++) {
		free(v[i].id);
		free(v[i].name);
		free(v[i].region);
		free(v[i].status);
		free(v[i].type);
	}
	free(v);
}

/* A descriptive field as text: a string, or a number as ListInstances may send one. */
static char *field_text(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	char num[64];

	if (cJSON_IsString(v))
		return strdup(util_utf8_valid(v->valuestring, strlen(v->valuestring)) ?
			      v->valuestring : "");
	if (cJSON_IsNumber(v)) {
		snprintf(num, sizeof(num), "%.17g", v->valuedouble);
		return strdup(num);
	}
	return strdup("");
}

enum api_result api_parse_instances(long http_status, const char *body, size_t len,
				    struct api_instance **out, size_t *n, struct api_error *aerr,
				    char *detail, size_t detail_len)
{
	struct json_arena *arena = NULL;
	cJSON *root = NULL;
	const cJSON *item, *list;
	enum api_result res;
	struct api_instance *v = NULL;
	size_t cap, i = 0;

	*out = NULL;
	*n = 0;
	res = parse_envelope(http_status, body, len, "Instances", 1, &root, &arena, aerr, detail,
			     detail_len);
	if (res != API_OK)
		return res;
	list = cJSON_GetObjectItemCaseSensitive(root, "Instances");
	cap = (size_t)cJSON_GetArraySize(list);
	/* an id is written into the config and sent back as InstanceId: refuse one that
	 * \u0000 would cut short, as for group ids */
	if (cap && has_nul_escape(body, len)) {
		describe_body(detail, detail_len, http_status,
			      "an instance field contains a NUL character (\\u0000)", body, len);
		json_arena_free(arena);
		return API_BAD_DATA;
	}
	v = calloc(cap ? cap : 1, sizeof(*v));
	if (!v)
		goto oom;
	cJSON_ArrayForEach(item, list) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "InstanceId");
		size_t l;

		if (!cJSON_IsString(id) || !*id->valuestring ||
		    (l = strlen(id->valuestring)) > API_MAX_CLIENT_ID ||
		    !util_utf8_valid(id->valuestring, l)) {
			describe_body(detail, detail_len, http_status,
				      "an instance without a usable InstanceId", body, len);
			api_instances_free(v, i);
			json_arena_free(arena);
			return API_BAD_DATA;
		}
		v[i].id = strdup(id->valuestring);
		v[i].name = field_text(item, "InstanceName");
		v[i].region = field_text(item, "RegionId");
		v[i].status = field_text(item, "InstanceStatus");
		v[i].type = field_text(item, "InstanceType");
		i++;
		if (!v[i - 1].id || !v[i - 1].name || !v[i - 1].region || !v[i - 1].status ||
		    !v[i - 1].type)
			goto oom;
	}
	json_arena_free(arena);
	*out = v;
	*n = i;
	return API_OK;
oom:
	api_instances_free(v, i);
	json_arena_free(arena);
	snprintf(detail, detail_len, "out of memory");
	return API_NOMEM;
}
