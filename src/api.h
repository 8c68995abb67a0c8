/*
 * api.h - the OnsMqtt 2020-04-20 RPC API: signed requests and parsed responses.
 *
 * Requests are built like the official SDKs build them (POST, parameters in the query, empty
 * body) with a fresh nonce and timestamp per attempt.  Responses are parsed with cJSON and
 * sorted into: a page, a service error (Code, Message, RequestId), or a malformed body whose
 * first bytes are quoted.  Whether an error is retried is retry.h's business, not ours.
 * Each parse allocates its JSON tree from an arena of its own (see api.c): cJSON's
 * allocator hooks are installed once, process-wide, and send other cJSON users to malloc.
 */
#ifndef CREDSYNC_API_H
#define CREDSYNC_API_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "creds.h"
#include "error.h"
#include "sign.h"

#define API_VERSION "2020-04-20"
#define API_MAX_CLIENT_ID 1024  /* longer IDs are skipped and reported, never truncated */
#define API_MAX_JSON_DEPTH 32

enum api_result {
	API_OK = 0,
	API_SERVICE_ERROR,  /* an error body with a Code */
	API_MALFORMED,      /* not JSON, truncated, wrong shape: may be a passing fault */
	API_BAD_DATA,       /* well-formed but unusable data (a NUL in an ID): retrying won't help */
	API_NOMEM,          /* memory ran out while parsing: CS_ERR_NOMEM, not the service's fault */
};

struct json_arena;

struct api_error {
	long http_status;
	char code[128];
	char message[512];
	char request_id[128];
};

struct api_list_page {
	cJSON *root;              /* in arena; ids point into it */
	struct json_arena *arena; /* owned: the whole tree, freed by api_page_release */
	const char **ids;         /* owned array of the usable client IDs */
	size_t *lens;
	size_t n;
	size_t skipped;           /* IDs skipped: too long or not UTF-8 */
	char skipped_example[96]; /* the first skipped ID, quoted, for the warning */
	int64_t total;            /* -1 when absent */
	int64_t page_no;
	int64_t page_size;
	const char *next_token;   /* NULL when absent */
	const char *request_id;   /* "" when absent */
};

/*
 * Builds the URL and headers of a signed call.  params are the action's own parameters.
 * *headers receives a new list (caller frees, or hands it to http_submit).  The secret is
 * used and not kept.
 */
int api_build_request(struct cs_buf *url, struct curl_slist **headers, const char *base_url,
		      const char *host, const char *method, const char *action,
		      const struct sign_param *params, size_t nparams, const struct creds *creds,
		      enum cfg_signature sig, struct cs_error *err);

/* The same for another API Version (STS's 2015-04-01). */
int api_build_request_version(struct cs_buf *url, struct curl_slist **headers,
			      const char *base_url, const char *host, const char *method,
			      const char *action, const char *version,
			      const struct sign_param *params, size_t nparams,
			      const struct creds *creds, enum cfg_signature sig,
			      struct cs_error *err);

/* Parses a ListDeviceCredentialClientId response.  On API_OK fills page (release it);
 * on API_SERVICE_ERROR fills aerr; on API_MALFORMED / API_BAD_DATA writes a description
 * quoting the body's first bytes into detail; on API_NOMEM writes "out of memory".  page
 * holds nothing to release unless the result is API_OK (releasing it anyway is fine). */
enum api_result api_parse_list(long http_status, const char *body, size_t len,
			       struct api_list_page *page, struct api_error *aerr, char *detail,
			       size_t detail_len);
/* Frees what page holds (its arena with the tree, ids, lens) and zeroes it; NULL is fine. */
void api_page_release(struct api_list_page *page);

/* Parses a ListGroupId response into a malloc'd array of malloc'd group ids; the results
 * and detail are as for api_parse_list. */
enum api_result api_parse_groups(long http_status, const char *body, size_t len,
				 char ***groups, size_t *ngroups, struct api_error *aerr,
				 char *detail, size_t detail_len);

/* One instance as ListInstances describes it; every string owned, "" when absent. */
struct api_instance {
	char *id;
	char *name;
	char *region;
	char *status;    /* InstanceStatus, a number or a string, as text */
	char *type;      /* InstanceType */
};

/* Parses a ListInstances response (a success body carries "Code": "200" and
 * "Success": "true": the Instances list decides) into a malloc'd array (free with
 * api_instances_free).  An instance id that is not a non-empty UTF-8 string of at most
 * API_MAX_CLIENT_ID bytes, or holds \u0000, makes the body API_BAD_DATA. */
enum api_result api_parse_instances(long http_status, const char *body, size_t len,
				    struct api_instance **out, size_t *n, struct api_error *aerr,
				    char *detail, size_t detail_len);
void api_instances_free(struct api_instance *v, size_t n);

/* A test seam: caps the bytes one parse's arena may take, so that a parse runs out of
 * memory on purpose (API_NOMEM).  SIZE_MAX, the default, is no cap. */
void api_set_parse_limit(size_t bytes);

/* Parses a JSON count: a string of digits or an integral number not above 2^53.
 * Returns 0 and the value, -1 when absent (NULL), -2 when present but not a count. */
int api_parse_count(const cJSON *item, int64_t *out);

#endif
