/*
 * sim_auth.c - authentication as the Alibaba Cloud gateway does it: signature v1 (query,
 * HMAC-SHA1) and v3 (ACS3-HMAC-SHA256 header), the AccessKeyId, the timestamp window, nonce
 * reuse and the STS security token, answered with the gateway's error codes and messages.
 *
 * It owns the nonce set and the key lookup (the static key, or a temporary one from the ring
 * sim_sts.c fills).  The signing itself is sim_sign.c, the simulator's own and not
 * credsync's src/sign.c: it rebuilds what the client should have signed from what arrived,
 * so a canonicalisation bug in credsync fails here instead of being shared.
 */
#include "sim.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define V3_ALGORITHM SIM_V3_ALGORITHM
#define V3_MAX_SIGNED 32

/* ---- nonce set ---- */

/* FNV-1a then a splitmix64 finalizer: nonces are UUIDs, so their bits need mixing before
 * the low ones pick a slot. */
static uint64_t nonce_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h ? h : 1;
}

int sim_nonces_init(struct sim_nonces *n, size_t window)
{
	size_t slots = 16;

	while (slots < window * 2)
		slots *= 2;
	memset(n, 0, sizeof(*n));
	/* calloc of this size maps zero pages lazily: an idle simulator stays small */
	n->table = calloc(slots, sizeof(*n->table));
	n->ring = calloc(window, sizeof(*n->ring));
	if (!n->table || !n->ring) {
		sim_nonces_release(n);
		return -1;
	}
	n->mask = slots - 1;
	n->window = window;
	return 0;
}

void sim_nonces_release(struct sim_nonces *n)
{
	free(n->table);
	free(n->ring);
	memset(n, 0, sizeof(*n));
}

/* Linear probing with backward-shift deletion, so no tombstones pile up as the ring
 * evicts two million entries an hour under load. */
static void nonce_remove(struct sim_nonces *n, uint64_t h)
{
	size_t i = h & n->mask, j;

	while (n->table[i] != h) {
		if (!n->table[i])
			return;
		i = (i + 1) & n->mask;
	}
	j = i;
	for (;;) {
		size_t home;

		j = (j + 1) & n->mask;
		if (!n->table[j])
			break;
		home = n->table[j] & n->mask;
		/* move j's entry back to i unless its home lies cyclically in (i, j] */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			n->table[i] = n->table[j];
			i = j;
		}
	}
	n->table[i] = 0;
}

int sim_nonces_check_add(struct sim_nonces *n, const char *nonce)
{
	uint64_t h = nonce_hash(nonce);
	size_t i = h & n->mask;

	while (n->table[i]) {
		if (n->table[i] == h)
			return 1;
		i = (i + 1) & n->mask;
	}
	if (n->count == n->window) {
		nonce_remove(n, n->ring[n->head]);
		n->count--;
		/* the removal may have shifted our free slot: probe again */
		i = h & n->mask;
		while (n->table[i])
			i = (i + 1) & n->mask;
	}
	n->table[i] = h;
	n->ring[n->head] = h;
	n->head = (n->head + 1) % n->window;
	n->count++;
	return 0;
}

/* ---- keys ---- */

/* The static key from the options, or a temporary one from the ring sim_sts.c fills. */
int sim_key_lookup(struct sim_server *s, const char *id, struct sim_key *k)
{
	size_t i;

	memset(k, 0, sizeof(*k));
	if (!strcmp(id, s->opt->key_id)) {
		snprintf(k->secret, sizeof(k->secret), "%s", s->opt->key_secret);
		if (s->opt->security_token)
			snprintf(k->token, sizeof(k->token), "%s", s->opt->security_token);
		return 1;
	}
	if (strncmp(id, "STS.", 4))
		return 0;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->ntemps; i++) {
		const struct sim_temp *t = &s->temps[i];

		if (!strcmp(t->id, id)) {
			memcpy(k->secret, t->secret, sizeof(t->secret));
			memcpy(k->token, t->token, sizeof(t->token));
			k->temporary = 1;
			k->expires = t->expires;
			pthread_mutex_unlock(&s->lock);
			return 1;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* ---- shared checks ---- */

void sim_call_describe(const struct sim_req *r, struct sim_call *call)
{
	memset(call, 0, sizeof(*call));
	call->v3 = sim_header(r, "Authorization") != NULL;
	if (call->v3) {
		call->action = sim_header(r, "x-acs-action");
		call->version = sim_header(r, "x-acs-version");
	} else {
		call->action = sim_param(r, "Action");
		call->version = sim_param(r, "Version");
	}
	call->instance = sim_param(r, "InstanceId");
	call->group = sim_param(r, "GroupId");
}

static int missing(struct sim_req *r, struct sim_reply *rep, const char *name)
{
	sim_error(r, rep, 400, "MissingParameter",
		  "The input parameter \"%s\" that is mandatory for processing this request is not supplied.",
		  name);
	return -1;
}

static int secret_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	return la == lb && !CRYPTO_memcmp(a, b, la);
}

/* The checks after the signature, common to both styles: timestamp, nonce, token. */
static int check_replay(struct sim_server *s, struct sim_req *r, const char *timestamp,
			const char *nonce, const char *token, const struct sim_key *k,
			struct sim_reply *rep)
{
	int64_t ts, now = util_now_epoch();
	int seen;

	if (strlen(timestamp) != 20 || util_parse_utc(timestamp, &ts) < 0 ||
	    ts > now + s->opt->max_skew_s || ts < now - s->opt->max_skew_s) {
		sim_error(r, rep, 400, "InvalidTimeStamp.Expired",
			  "Specified time stamp or date value is expired.");
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	seen = sim_nonces_check_add(&s->nonces, nonce);
	pthread_mutex_unlock(&s->lock);
	if (seen) {
		sim_error(r, rep, 400, "SignatureNonceUsed",
			  "Specified signature nonce was used already.");
		return -1;
	}
	if (k->temporary) {
		/* issued credentials: the token must be theirs, and they die at expiry */
		if (!token || !*token) {
			sim_error(r, rep, 400, "MissingSecurityToken",
				  "SecurityToken is mandatory for this AccessKeyId.");
			return -1;
		}
		if (!secret_equal(token, k->token)) {
			sim_error(r, rep, 400, "InvalidSecurityToken.MismatchWithAccessKey",
				  "Specified SecurityToken mismatch with the AccessKey.");
			return -1;
		}
		if (now >= k->expires) {
			sim_error(r, rep, 400, "InvalidSecurityToken.Expired",
				  "Specified SecurityToken is expired.");
			return -1;
		}
		return 0;
	}
	if (*k->token && (!token || !secret_equal(token, k->token))) {
		sim_error(r, rep, 400, "InvalidSecurityToken.Mismatch",
			  token ? "Specified SecurityToken does not match the AccessKeyId."
				: "Specified SecurityToken is missing; this AccessKeyId needs one.");
		return -1;
	}
	return 0;
}

/* ---- v1 ---- */

static int auth_v1(struct sim_server *s, struct sim_req *r, struct sim_reply *rep)
{
	static const char *const required[] = {
		"Action", "Version", "AccessKeyId", "SignatureMethod", "SignatureVersion",
		"SignatureNonce", "Timestamp", "Signature",
	};
	enum { ACTION, VERSION, KEY_ID, METHOD, SIG_VERSION, NONCE, TIMESTAMP, SIGNATURE };
	const char *v[sizeof(required) / sizeof(required[0])];
	struct sim_kv p[SIM_MAX_PARAMS];
	struct sim_key k;
	char expected[29];
	size_t i, n = 0;
	int ret;

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		v[i] = sim_param(r, required[i]);
		if (!v[i] || !*v[i])
			return missing(r, rep, required[i]);
	}
	if (strcmp(v[METHOD], "HMAC-SHA1")) {
		sim_error(r, rep, 400, "InvalidSignatureMethod",
			  "Specified signature method is not valid (expected HMAC-SHA1).");
		return -1;
	}
	if (strcmp(v[SIG_VERSION], "1.0")) {
		sim_error(r, rep, 400, "InvalidSignatureVersion",
			  "Specified signature version is not valid (expected 1.0).");
		return -1;
	}
	if (!sim_key_lookup(s, v[KEY_ID], &k)) {
		sim_error(r, rep, 404, "InvalidAccessKeyId.NotFound",
			  "Specified access key is not found.");
		return -1;
	}
	for (i = 0; i < r->nparams; i++)
		if (r->params[i].value != v[SIGNATURE] || strcmp(r->params[i].name, "Signature"))
			p[n++] = r->params[i];
	buf_reset(&r->tmp);
	buf_reset(&r->tmp2);
	ret = sim_sign_query(&r->tmp, p, n);
	if (!ret) {
		sim_sign_v1_string(&r->tmp2, r->method, buf_str(&r->tmp));
		ret = r->tmp2.oom ? -1 : sim_sign_v1(expected, buf_str(&r->tmp2), k.secret);
	}
	if (ret < 0) {
		OPENSSL_cleanse(&k, sizeof(k));
		sim_error(r, rep, 500, "InternalError", "The simulator ran out of memory.");
		return -1;
	}
	if (!secret_equal(v[SIGNATURE], expected)) {
		OPENSSL_cleanse(&k, sizeof(k));
		sim_error(r, rep, 400, "SignatureDoesNotMatch",
			  "Specified signature is not matched with our calculation. server string to sign is:%s",
			  buf_str(&r->tmp2));
		return -1;
	}
	ret = check_replay(s, r, v[TIMESTAMP], v[NONCE], sim_param(r, "SecurityToken"), &k, rep);
	OPENSSL_cleanse(&k, sizeof(k));
	return ret;
}

/* ---- v3 ---- */

struct v3_auth {
	char credential[256];
	char signed_headers[1024];
	char signature[128];
};

/* Copies [s, s+len) into out (size outlen) with surrounding blanks removed.  Returns 0, or
 * -1 when it does not fit. */
static int copy_trimmed(char *out, size_t outlen, const char *s, size_t len)
{
	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len >= outlen)
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* Parses "ACS3-HMAC-SHA256 Credential=ID,SignedHeaders=a;b,Signature=HEX".  Returns 0 or a
 * static description of what is wrong. */
static const char *parse_authorization(const char *h, struct v3_auth *a)
{
	size_t alg = strlen(V3_ALGORITHM);

	memset(a, 0, sizeof(*a));
	if (strncmp(h, V3_ALGORITHM, alg) || (h[alg] != ' ' && h[alg] != '\t'))
		return "the Authorization header must start with \"" V3_ALGORITHM " \"";
	h += alg;
	while (*h) {
		const char *end = strchr(h, ','), *eq;
		size_t len;
		char *dst = NULL;
		size_t dstlen = 0;

		if (!end)
			end = h + strlen(h);
		while (h < end && (*h == ' ' || *h == '\t'))
			h++;
		len = (size_t)(end - h);
		eq = memchr(h, '=', len);
		if (eq) {
			size_t klen = (size_t)(eq - h);

			if (klen == 10 && !strncmp(h, "Credential", klen)) {
				dst = a->credential;
				dstlen = sizeof(a->credential);
			} else if (klen == 13 && !strncmp(h, "SignedHeaders", klen)) {
				dst = a->signed_headers;
				dstlen = sizeof(a->signed_headers);
			} else if (klen == 9 && !strncmp(h, "Signature", klen)) {
				dst = a->signature;
				dstlen = sizeof(a->signature);
			}
		}
		if (dst && copy_trimmed(dst, dstlen, eq + 1, (size_t)(end - eq - 1)) < 0)
			return "an Authorization field is too long";
		h = *end ? end + 1 : end;
	}
	if (!*a->credential)
		return "Credential is missing from the Authorization header";
	if (!*a->signed_headers)
		return "SignedHeaders is missing from the Authorization header";
	if (!*a->signature)
		return "Signature is missing from the Authorization header";
	return NULL;
}

static int incomplete(struct sim_req *r, struct sim_reply *rep, const char *why, const char *arg)
{
	char q[128];

	util_quote_bytes(arg, strlen(arg), q, sizeof(q));
	sim_error(r, rep, 400, "IncompleteSignature",
		  "The request signature does not conform to Aliyun standards: %s%s%s%s.", why,
		  *arg ? " '" : "", q, *arg ? "'" : "");
	return -1;
}

static int auth_v3(struct sim_server *s, struct sim_req *r, struct sim_reply *rep)
{
	static const char *const required[] = {
		"x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce",
		"x-acs-content-sha256",
	};
	struct v3_auth a;
	struct sim_key k;
	struct sim_kv hdr[V3_MAX_SIGNED];
	char names[V3_MAX_SIGNED][64], values[16384];
	char hashed[65], expected[65], payload[65], got[129];
	const char *why, *name;
	size_t i, nh = 0, voff = 0;
	int ret = -1;

	why = parse_authorization(sim_header(r, "Authorization"), &a);
	if (why)
		return incomplete(r, rep, why, "");
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		const char *v = sim_header(r, required[i]);

		if (!v || !*v)
			return missing(r, rep, required[i]);
	}
	if (!sim_key_lookup(s, a.credential, &k)) {
		sim_error(r, rep, 404, "InvalidAccessKeyId.NotFound",
			  "Specified access key is not found.");
		return -1;
	}
	for (name = a.signed_headers; *name;) {
		const char *end = strchr(name, ';'), *v;
		size_t len, ci;

		if (!end)
			end = name + strlen(name);
		len = (size_t)(end - name);
		if (!len || len >= sizeof(names[0]) || nh == V3_MAX_SIGNED)
			return incomplete(r, rep, "bad SignedHeaders list", a.signed_headers);
		for (ci = 0; ci < len; ci++)
			names[nh][ci] = (char)tolower((unsigned char)name[ci]);
		names[nh][len] = '\0';
		v = sim_header(r, names[nh]);
		if (!v)
			return incomplete(r, rep, "a signed header is not in the request", names[nh]);
		if (copy_trimmed(values + voff, sizeof(values) - voff, v, strlen(v)) < 0)
			return incomplete(r, rep, "signed headers too long", "");
		hdr[nh].name = names[nh];
		hdr[nh].value = values + voff;
		voff += strlen(values + voff) + 1;
		nh++;
		name = *end ? end + 1 : end;
	}
	for (i = 0; i < nh; i++)
		for (size_t j = i + 1; j < nh; j++)
			if (!strcmp(names[i], names[j]))
				return incomplete(r, rep, "a header is signed twice", names[i]);
	/* the server hashes the body it received; a client that lied in x-acs-content-sha256
	 * fails the signature like any other tampering */
	sim_sha256_hex(buf_str(&r->body), r->body.len, payload);
	buf_reset(&r->tmp);
	buf_reset(&r->tmp2);
	if (sim_sign_query(&r->tmp, r->params, r->nquery) < 0 ||
	    sim_sign_v3_request(&r->tmp2, r->method, buf_str(&r->tmp), hdr, nh, payload) < 0 ||
	    sim_sign_v3(hashed, expected, buf_str(&r->tmp2), k.secret) < 0) {
		sim_error(r, rep, 500, "InternalError", "The simulator ran out of memory.");
		goto out;
	}
	if (copy_trimmed(got, sizeof(got), a.signature, strlen(a.signature)) < 0)
		got[0] = '\0';
	for (i = 0; got[i]; i++)
		got[i] = (char)tolower((unsigned char)got[i]);
	if (!secret_equal(got, expected)) {
		sim_error(r, rep, 400, "SignatureDoesNotMatch",
			  "Specified signature is not matched with our calculation. server string to sign is:"
			  V3_ALGORITHM "\n%s", hashed);
		goto out;
	}
	ret = check_replay(s, r, sim_header(r, "x-acs-date"), sim_header(r, "x-acs-signature-nonce"),
			   sim_header(r, "x-acs-security-token"), &k, rep);
out:
	OPENSSL_cleanse(&k, sizeof(k));
	return ret;
}

int sim_auth_check(struct sim_server *s, struct sim_req *r, const struct sim_call *call,
		   struct sim_reply *rep)
{
	return call->v3 ? auth_v3(s, r, rep) : auth_v1(s, r, rep);
}
