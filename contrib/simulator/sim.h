/*
 * sim.h - credsync-sim, a stand-in for the OnsMqtt endpoint: what its files share.
 *
 * sim_main.c owns the HTTP server and request routing; sim_opts.c the command line;
 * sim_api.c the RPC actions and injected faults; sim_sts.c the identity services and the
 * issued credentials; sim_ctl.c the /_sim control endpoints; sim_auth.c the key lookup
 * and the signature, timestamp, nonce and security-token checks; sim_limit.c the rate
 * limits; sim_data.c the dataset (groups of sorted client IDs, paging tokens, mutation);
 * sim_util.c what they all share (random draws, clocks, parameters, error bodies,
 * counters, JSON strings); sim_sign.c the simulator's own signature arithmetic (not
 * credsync's src/sign.c, so the two cannot agree on a shared canonicalisation bug).
 *
 * Calls between the files form no circle; each calls only files below it:
 *
 *   sim_main  -> sim_opts, sim_api, sim_ctl, sim_sts, sim_auth, sim_limit, sim_data, sim_util
 *   sim_opts  -> sim_api (sim_fault_classify)
 *   sim_api   -> sim_auth, sim_sts, sim_limit, sim_data, sim_util
 *   sim_ctl   -> sim_sts, sim_data, sim_util
 *   sim_auth  -> sim_sign, sim_util
 *   sim_sts   -> sim_util
 *   sim_limit -> sim_util
 *   sim_data  -> sim_util
 *   sim_util  -> sim_sign (percent-encoding)
 *   sim_sign  -> nothing of the simulator's (OpenSSL and the core's cs_buf)
 *
 * A helper that two files need goes into a file below both, never into the caller of one.
 *
 * Locking: sim_server.lock guards everything mutable in struct sim_server (dataset, nonces,
 * counters, random state, buckets).  Each function says whether it expects the lock held.
 * Nothing sleeps or does I/O while holding it.
 */
#ifndef CREDSYNC_SIM_H
#define CREDSYNC_SIM_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

#define SIM_API_VERSION "2020-04-20"
#define SIM_HOST_ID "onsmqtt.sim.aliyuncs.com"
#define SIM_MAX_PARAMS 64             /* per request, query and form body together */
#define SIM_MAX_BODY (1024 * 1024)    /* a form body larger than this is refused */
#define SIM_MAX_IDS 50000000          /* client IDs in all groups together */
#define SIM_NONCE_WINDOW 2000000      /* nonces remembered */
#define SIM_MAX_COUNTERS 256          /* distinct names per counter map */
#define SIM_LEN_ESCAPE 0x80000000u    /* see sim_group.lens */
#define SIM_MSG_OVERFLOW "An error occurred while processing your request. Please try again."

/* A name and a value, neither owned: a request parameter or a signed header. */
struct sim_kv {
	const char *name;
	const char *value;
};

/* ---- options (sim_opts.c fills them once; read-only afterwards) ---- */

enum sim_last_token {
	SIM_LAST_TOKEN_ABSENT,  /* the last page has no NextToken */
	SIM_LAST_TOKEN_EMPTY,   /* ... has NextToken "" */
	SIM_LAST_TOKEN_SAME,    /* ... echoes the token the request sent */
};

enum sim_fault_kind {
	SIM_FAULT_ERROR,        /* an error body with the fault's Code */
	SIM_FAULT_RESET,        /* close the connection, no response */
	SIM_FAULT_TIMEOUT,      /* hang, then close with no response */
	SIM_FAULT_TRUNCATED,    /* the real response cut in half */
	SIM_FAULT_GARBAGE,      /* 64 random bytes as application/json */
	SIM_FAULT_HTML,         /* a proxy's 502 page */
};

struct sim_fault {
	char *code;             /* owned */
	double rate;
	char *instance;         /* owned; NULL: every instance */
	char *group;            /* owned; NULL: every group */
	enum sim_fault_kind kind;
	unsigned status;        /* SIM_FAULT_ERROR: the HTTP status */
	const char *message;    /* SIM_FAULT_ERROR: static text */
	int throttle;           /* counted as throttled; gets x-acs-retry-after */
};

struct sim_options {
	char *listen_host;      /* owned */
	unsigned listen_port;
	const char *port_file;
	const char *key_id;
	const char *key_secret; /* from argv, the environment or the default */
	const char *security_token;   /* NULL: requests may carry any or none */
	const char *dataset;
	long instances, groups, devices;
	uint64_t seed;
	int seed_set;           /* --seed given: the random choices repeat from run to run */
	struct sim_fault *faults;     /* owned */
	size_t nfaults;
	double qps;             /* 0: unlimited */
	/* the service's own limits, per source address and action: a token bucket with a
	 * burst answering SystemOverFlow (with throttle_status), and the per-IP block */
	double bucket_rate, bucket_burst;   /* --bucket RATE[:BURST]; 0: none */
	unsigned throttle_status;           /* --throttle-status: HTTP status of SystemOverFlow */
	double block_above;                 /* --block-above RATE: a source over it is blocked */
	int64_t block_for_ms;               /* --block-for: for this long */
	int64_t latency_ms;
	int64_t hang_ms;
	int64_t retry_after_ms; /* <0: no x-acs-retry-after header */
	enum sim_last_token last_token;
	int no_token;
	long page_cap;          /* 0: none */
	int total_as_number;
	int64_t max_skew_s;
	double churn;
	double list_group_qps;  /* 0: unlimited */
	int verbose;
	char **regions;         /* owned; --regions: instance i (by id) is in regions[i % n] */
	size_t nregions;
	struct sim_deny *denies;      /* owned; --deny */
	size_t ndenies;
	/* identity services (sim_sts.c) */
	int64_t cred_lifetime_s;      /* --credential-lifetime; 0: the DurationSeconds asked */
	const char *oidc_token_file;  /* --oidc-token-file: AssumeRoleWithOIDC's one valid token */
	char **roles;                 /* --role ARN[#EXTERNALID], owned array of argv pointers */
	size_t nroles;
	char **denied_roles;          /* --deny-role ARN: exists, the caller may not assume it */
	size_t ndenied;
	enum sim_imds_mode { SIM_IMDS_BOTH, SIM_IMDS_V2_ONLY, SIM_IMDS_V1_ONLY } imds;
	const char *imds_role;        /* --imds-role; "" no role attached */
};

/* --deny ACTION[@SCOPE]: ACTION answers 403 Forbidden.RAM, in region or instance SCOPE
 * only when given. */
struct sim_deny {
	char *action;           /* owned */
	char *scope;            /* owned; NULL: everywhere */
};

/* The region when none is given with --regions. */
#define SIM_DEFAULT_REGION "cn-hangzhou"

/* Fills o (which starts zeroed) from the command line.  Returns 0 to run, 1 when --help was
 * served, -1 on a usage error (already reported on stderr). */
int sim_options_parse(int argc, char **argv, struct sim_options *o);
/* Frees what sim_options_parse allocated, also after it failed. */
void sim_options_release(struct sim_options *o);

/* ---- dataset (sim_data.c) ---- */

struct sim_group {
	char *id;               /* owned */
	char **ids;             /* owned array, sorted by strcmp, no duplicates; each string
	                         * lies in arena or was malloc'd on its own */
	uint32_t *lens;         /* owned, parallel to ids: strlen, SIM_LEN_ESCAPE when the ID
	                         * needs JSON escaping, so a page rarely has to scan bytes */
	size_t n, cap;
	char *arena;            /* owned; the strings loaded or generated at startup */
	size_t arena_len;
	int generated;          /* new IDs continue the dev-NNNNNNN numbering */
	uint64_t next_seq;      /* number of the next new ID */
	int64_t create_ms;
};

struct sim_instance {
	char *id;               /* owned */
	const char *region;     /* points into sim_options.regions, or SIM_DEFAULT_REGION */
	struct sim_group *groups;     /* owned, sorted by id */
	size_t ngroups;
};

struct sim_dataset {
	struct sim_instance *inst;    /* owned, sorted by id */
	size_t ninst;
};

/* Loads a --dataset file.  Returns 0, or -1 with err set (CS_ERR_CONFIG for bad content,
 * CS_ERR_RUNTIME for I/O) naming the file and the JSON path at fault. */
int sim_data_load_file(struct sim_dataset *d, const char *path, struct cs_error *err);
/* Builds mqtt-sim-1..N / GID_sim_1..N / GID_sim_G@@@dev-NNNNNNN.  Returns 0 or -1 (err set). */
int sim_data_generate(struct sim_dataset *d, long ninst, long ngroups, long ndevices,
		      struct cs_error *err);
void sim_data_release(struct sim_dataset *d);

struct sim_instance *sim_data_instance(const struct sim_dataset *d, const char *id);
struct sim_group *sim_data_group(const struct sim_instance *inst, const char *id);
/* Index of the first ID strictly greater than key. */
size_t sim_group_upper_bound(const struct sim_group *g, const char *key);
/* Adds one new ID (see sim_group.generated); returns it (owned by the group) or NULL on OOM. */
const char *sim_group_add_new(struct sim_group *g);
/* Removes the ID at index i, appending it as a JSON list item to removed (see sim_json_item)
 * when removed is not NULL. */
void sim_group_remove_at(struct sim_group *g, size_t i, struct cs_buf *removed, size_t *count);
/* Appends IDs [start, end) as the items of a JSON list (no brackets). */
void sim_group_page_json(const struct sim_group *g, size_t start, size_t end, struct cs_buf *out);
/* Appends the whole dataset in the --dataset format. */
void sim_data_dump(const struct sim_dataset *d, struct cs_buf *out);

/* NextToken: a version tag, the hex of the last served ID and a checksum. */
void sim_token_encode(struct cs_buf *out, const char *id);
/* Decodes into out (reset first).  Returns 0, or -1 when tok is not one of ours. */
int sim_token_decode(struct cs_buf *out, const char *tok);

/* ---- server state ---- */

#define SIM_MAX_TEMPS 65536           /* issued temporary credentials remembered */
#define SIM_IMDS_TOKENS 64

/* One issued set of temporary credentials. */
struct sim_temp {
	char id[40];
	char secret[48];
	char token[100];
	int64_t expires;              /* wall clock, seconds */
};

/* What a signature is checked against: the static key or an issued temporary one. */
struct sim_key {
	char secret[128];
	char token[128];              /* "" : none required (static key without --security-token) */
	int temporary;
	int64_t expires;
};

struct sim_bucket {
	double tokens, rate, burst;
	int64_t last_us;
};

struct sim_counter {
	char name[64];
	uint64_t n;
};

struct sim_counters {
	struct sim_counter v[SIM_MAX_COUNTERS];
	size_t n;
};

struct sim_stats {
	uint64_t requests, rpc_requests, pages, throttled;
	uint64_t issued;              /* temporary credentials handed out (STS, IMDS, URI) */
	struct sim_counters by_action, by_code, faults;
};

/* A bounded set of recently used nonces, kept as 64-bit hashes: an open-addressing table
 * for lookups and a ring that evicts the oldest once the window is full. */
struct sim_nonces {
	uint64_t *table;        /* owned; 0 marks a free slot */
	size_t mask;
	uint64_t *ring;         /* owned */
	size_t window, count, head;
};

/* One source address's limits for one action (--bucket, --block-above). */
#define SIM_MAX_SOURCES 64
struct sim_source {
	char addr[48];
	char action[48];
	struct sim_bucket bucket;     /* --bucket */
	struct sim_bucket block;      /* --block-above: RATE with a second's burst */
	int64_t blocked_until_us;
};

struct sim_server {
	const struct sim_options *opt;
	struct sim_source sources[SIM_MAX_SOURCES]; /* lock */
	size_t nsources;              /* lock */
	uint64_t blocks;              /* lock: how many times a source was blocked */
	pthread_mutex_t lock;
	struct sim_dataset data;      /* lock */
	struct sim_stats stats;       /* lock */
	struct sim_nonces nonces;     /* lock */
	uint64_t rng[4];              /* lock; xoshiro256** */
	struct sim_bucket qps;        /* lock */
	struct sim_bucket list_group; /* lock */
	uint64_t reqid_hi;
	atomic_uint_fast64_t reqid_seq;
	atomic_int stopping;          /* set on SIGTERM: sleeping handlers give up */
	struct sim_temp *temps;       /* lock; issued temporary credentials, a ring */
	size_t ntemps, temp_head;
	char imds_tokens[SIM_IMDS_TOKENS][33]; /* lock; IMDSv2 tokens, a ring */
	int64_t imds_expiry[SIM_IMDS_TOKENS];
	size_t imds_head;
	long fail_count;              /* lock; the next N issuances fail with fail_code */
	char fail_code[64];
};

/* ---- sim_util.c ---- */

/* Uniform 64-bit / [0,1) draws; the lock must be held. */
uint64_t sim_rand(struct sim_server *s);
double sim_rand_unit(struct sim_server *s);
/* Microseconds on the monotonic clock. */
int64_t sim_now_us(void);
/* Sleeps ms, waking early once the server is stopping. */
void sim_sleep_ms(struct sim_server *s, int64_t ms);

/* ---- one request and its reply ---- */

struct sim_req {
	struct MHD_Connection *conn;
	const char *method;           /* MHD's */
	const char *url;              /* MHD's, decoded path */
	struct cs_buf body;           /* the upload, as received */
	struct cs_buf form;           /* a decoded copy of a form body; params point into it */
	int body_too_large;
	struct sim_kv params[SIM_MAX_PARAMS];       /* query first, then form body */
	uint32_t param_hash[SIM_MAX_PARAMS];        /* of each name: lookups skip most strcmp */
	size_t nparams, nquery;
	int too_many_params;
	struct cs_buf out;            /* the response body being built */
	struct cs_buf tmp;            /* scratch: canonical query, decoded token */
	struct cs_buf tmp2;           /* scratch: v1 string to sign, v3 canonical request */
	char request_id[37];
};

struct sim_reply {
	unsigned status;              /* 0: close the connection without a response */
	const char *content_type;
	const char *code;             /* the error Code answered, NULL on success */
	int throttled;
	int page;                     /* a ListDeviceCredentialClientId page was served */
	const char *fault;            /* the fault injected, if any */
	int64_t retry_after_ms;       /* <0: no header */
	int64_t delay_ms;             /* sleep before answering */
};

/* The region the request was sent to, from its Host: "onsmqtt[-vpc].REGION.aliyuncs.com" or
 * "REGION.localhost" (the name tests give each region); written to out (size outlen).
 * Returns 0 when the host names no region (127.0.0.1: every region at once), else 1. */
int sim_req_region(const struct sim_req *r, char *out, size_t outlen);

/* Appends one parameter (neither string copied).  Returns 0, or -1 (and sets
 * too_many_params) when there are SIM_MAX_PARAMS already. */
int sim_add_param(struct sim_req *r, const char *name, const char *value);
/* The request's parameter (query or form body) or NULL. */
const char *sim_param(const struct sim_req *r, const char *name);
/* The name of a parameter given more than once, or NULL. */
const char *sim_param_repeated(const struct sim_req *r);
/* A request header (case-insensitive name) or NULL. */
const char *sim_header(const struct sim_req *r, const char *name);

/* Fills reply and r->out with an error body: {"RequestId","HostId","Code","Message",
 * "Recommend"}.  The message is printf-style. */
void sim_error(struct sim_req *r, struct sim_reply *rep, unsigned status, const char *code,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* sim_error, marked throttled, with x-acs-retry-after when --retry-after is set; msg is
 * the message as is. */
void sim_throttled(struct sim_server *s, struct sim_req *r, struct sim_reply *rep,
		   unsigned status, const char *code, const char *msg);
/* Writes a fresh RequestId (UUID-shaped, upper-case hex, unique within the run). */
void sim_new_request_id(struct sim_server *s, char out[37]);
/* Adds 1 to name's counter (names beyond SIM_MAX_COUNTERS share "(other)").  Lock held. */
void sim_counter_add(struct sim_counters *c, const char *name);
/* Appends s as a JSON string: '"' and '\' escaped, control bytes as \u00XX, the rest as is. */
void sim_json_str(struct cs_buf *out, const char *s);
/* Appends s as a JSON list item, with a comma unless it is the first (*count == 0). */
void sim_json_item(struct cs_buf *out, size_t *count, const char *s);

/* ---- sim_sign.c: the signatures of API.md, computed by the simulator itself ---- */

#define SIM_V3_ALGORITHM "ACS3-HMAC-SHA256"

/* Appends len bytes of s percent-encoded per RFC 3986: A-Z a-z 0-9 - _ . ~ stay, every
 * other byte is %XX in upper-case hex (space %20, '*' %2A, '+' %2B). */
void sim_sign_encode(struct cs_buf *out, const char *s, size_t len);
/* Appends the canonical query of params: each name and value encoded, the pairs sorted by
 * encoded name in byte order, as name=value joined by '&'.  Returns 0, or -1 on OOM. */
int sim_sign_query(struct cs_buf *out, const struct sim_kv *params, size_t n);
/* Appends v1's StringToSign: METHOD "&%2F&" encode(query). */
void sim_sign_v1_string(struct cs_buf *out, const char *method, const char *query);
/* Writes base64(HMAC-SHA1(secret "&", string_to_sign)), 28 characters and a NUL.
 * Returns 0 or -1. */
int sim_sign_v1(char out[29], const char *string_to_sign, const char *secret);
/* Appends v3's canonical request: METHOD, "/", query, "name:value" lines for headers
 * (names already lower-case and distinct, in any order; written sorted), a blank line, the
 * sorted names joined by ';' and payload_hex, joined by newlines.  Returns 0, or -1 on OOM. */
int sim_sign_v3_request(struct cs_buf *out, const char *method, const char *query,
			const struct sim_kv *headers, size_t n, const char *payload_hex);
/* Writes hex(SHA-256(canonical_request)) into hashed and
 * hex(HMAC-SHA256(secret, "ACS3-HMAC-SHA256\n" hashed)) into signature.  Returns 0 or -1. */
int sim_sign_v3(char hashed[65], char signature[65], const char *canonical_request,
		const char *secret);
/* Writes the lower-case hex SHA-256 of len bytes. */
void sim_sha256_hex(const void *data, size_t len, char out[65]);

/* ---- sim_auth.c ---- */

int sim_nonces_init(struct sim_nonces *n, size_t window);
void sim_nonces_release(struct sim_nonces *n);
/* 1 when nonce was seen within the window, else records it and returns 0.  Lock held. */
int sim_nonces_check_add(struct sim_nonces *n, const char *nonce);

/* Looks up an AccessKeyId: 1 found (k filled), 0 unknown.  Takes the lock. */
int sim_key_lookup(struct sim_server *s, const char *id, struct sim_key *k);

/* What the authentication step learned about the call. */
struct sim_call {
	int v3;
	const char *action;           /* NULL when missing */
	const char *version;
	const char *instance;         /* InstanceId param, for fault scopes */
	const char *group;            /* GroupId param */
};

/* Picks the signature style and finds the action, version and scope; no checks. */
void sim_call_describe(const struct sim_req *r, struct sim_call *call);
/* Verifies the signature, key, timestamp, nonce and token.  Returns 0, or -1 with the error
 * reply filled.  Takes the lock only for the nonce set. */
int sim_auth_check(struct sim_server *s, struct sim_req *r, const struct sim_call *call,
		   struct sim_reply *rep);

/* ---- sim_api.c ---- */

/* Serves one RPC request (path "/").  Fills rep and r->out; records the counters. */
void sim_rpc(struct sim_server *s, struct sim_req *r, struct sim_reply *rep);
/* Validates a --fault spec's code and fills kind/status/message/throttle.  Returns 0 or -1. */
int sim_fault_classify(struct sim_fault *f);

/* ---- sim_limit.c ---- */

/* A bucket of rate tokens a second holding burst, full. */
void sim_bucket_init(struct sim_bucket *b, double rate, double burst);
/* Takes one token, taking the lock.  Returns 1 when there was one. */
int sim_bucket_take_locked(struct sim_server *s, struct sim_bucket *b);
/* Applies --bucket and --block-above to the request's source address.  Returns 1 when the
 * request was refused (reply filled), else 0.  Takes the lock. */
int sim_source_limits(struct sim_server *s, struct sim_req *r, const struct sim_call *call,
		      struct sim_reply *rep);

/* ---- sim_sts.c ---- */

/* Serves STS AssumeRole (already authenticated) and AssumeRoleWithOIDC (unsigned). */
void sim_sts(struct sim_server *s, struct sim_req *r, const struct sim_call *call,
	     struct sim_reply *rep);
/* Serves the metadata service under /latest/. */
void sim_imds(struct sim_server *s, struct sim_req *r, struct sim_reply *rep);
/* Serves /_sim/credentials-uri and /_sim/identity-fail; 0 when the path is not one of them. */
int sim_sts_ctl(struct sim_server *s, struct sim_req *r, struct sim_reply *rep);
void sim_sts_release(struct sim_server *s);

/* ---- sim_ctl.c ---- */

/* Serves /_sim/...: mutate, stats, reset-stats, dump. */
void sim_ctl(struct sim_server *s, struct sim_req *r, struct sim_reply *rep);

#endif
