/*
 * fuzz_api.c - api_parse_list and api_parse_groups on arbitrary bodies.
 *
 * Input: byte 0 picks the HTTP status (200, 400, 500, 502 by data[0] % 4); the rest is the
 * body, passed with its exact length and no NUL after it (the parsers take a length).
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "api.h"
#include "fuzz.h"
#include "util.h"

static const long statuses[] = { 200, 400, 500, 502 };

static int terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* The description of a body that is not a page: set, terminated, naming the status. */
static void check_detail(const char *detail, size_t cap, long status)
{
	char prefix[32];

	FUZZ_CHECK(terminated(detail, cap));
	FUZZ_CHECK(detail[0] != '\0');
	snprintf(prefix, sizeof(prefix), "HTTP %ld, ", status);
	FUZZ_CHECK(!strncmp(detail, prefix, strlen(prefix)) || !strcmp(detail, "out of memory"));
}

static void check_service_error(const struct api_error *e, long status)
{
	FUZZ_CHECK(e->http_status == status);
	FUZZ_CHECK(terminated(e->code, sizeof(e->code)));
	FUZZ_CHECK(e->code[0] != '\0');
	FUZZ_CHECK(terminated(e->message, sizeof(e->message)));
	FUZZ_CHECK(terminated(e->request_id, sizeof(e->request_id)));
}

/* A count is absent (-1) or 0..2^53. */
static int count_ok(int64_t v)
{
	return v == -1 || (v >= 0 && v <= 9007199254740992LL);
}

static void check_page(const struct api_list_page *p)
{
	const cJSON *list, *ids;
	size_t items, i;

	FUZZ_CHECK(p->root != NULL);
	FUZZ_CHECK(p->request_id != NULL);
	FUZZ_CHECK(count_ok(p->total) && count_ok(p->page_no) && count_ok(p->page_size));
	/* every array item is either returned or counted as skipped, never lost */
	list = cJSON_GetObjectItemCaseSensitive(p->root, "DeviceCredentialClientIdList");
	FUZZ_CHECK(cJSON_IsObject(list));
	ids = cJSON_GetObjectItemCaseSensitive(list, "ClientIdList");
	items = cJSON_IsArray(ids) ? (size_t)cJSON_GetArraySize(ids) : 0;
	FUZZ_CHECK(p->n + p->skipped == items);
	FUZZ_CHECK(!p->n || (p->ids && p->lens));
	for (i = 0; i < p->n; i++) {
		FUZZ_CHECK(p->ids[i] != NULL);
		FUZZ_CHECK(p->lens[i] == strlen(p->ids[i]));
		FUZZ_CHECK(p->lens[i] > 0 && p->lens[i] <= API_MAX_CLIENT_ID);
		FUZZ_CHECK(util_utf8_valid(p->ids[i], p->lens[i]));
	}
	FUZZ_CHECK(terminated(p->skipped_example, sizeof(p->skipped_example)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_list_page page;
	struct api_error lerr, gerr;
	enum api_result lres, gres;
	char ldetail[512], gdetail[512];
	char **groups = NULL;
	size_t ngroups = 0, i, len;
	const char *body;
	long status;
	int raw_nul;

	if (!size)
		return 0;
	status = statuses[data[0] % 4];
	body = (const char *)data + 1;
	len = size - 1;
	/* JSON never holds a raw NUL byte; one must never yield a page (it would cut an ID) */
	raw_nul = memchr(body, '\0', len) != NULL;

	memset(ldetail, 'x', sizeof(ldetail));
	lres = api_parse_list(status, body, len, &page, &lerr, ldetail, sizeof(ldetail));
	switch (lres) {
	case API_OK:
		FUZZ_CHECK(status == 200);
		FUZZ_CHECK(!raw_nul);
		check_page(&page);
		break;
	case API_SERVICE_ERROR:
		check_service_error(&lerr, status);
		break;
	case API_MALFORMED:
	case API_BAD_DATA:
		check_detail(ldetail, sizeof(ldetail), status);
		FUZZ_CHECK(page.root == NULL && page.ids == NULL && page.lens == NULL);
		break;
	default:
		FUZZ_CHECK(!"api_parse_list returned an unknown result");
	}
	api_page_release(&page);

	memset(gdetail, 'x', sizeof(gdetail));
	gres = api_parse_groups(status, body, len, &groups, &ngroups, &gerr, gdetail,
				sizeof(gdetail));
	switch (gres) {
	case API_OK:
		FUZZ_CHECK(status == 200);
		FUZZ_CHECK(!raw_nul);
		FUZZ_CHECK(groups != NULL);
		for (i = 0; i < ngroups; i++) {
			size_t l;

			FUZZ_CHECK(groups[i] != NULL);
			l = strlen(groups[i]);
			FUZZ_CHECK(l > 0 && l <= API_MAX_CLIENT_ID);
			FUZZ_CHECK(util_utf8_valid(groups[i], l));
		}
		break;
	case API_SERVICE_ERROR:
		check_service_error(&gerr, status);
		FUZZ_CHECK(groups == NULL && ngroups == 0);
		break;
	case API_MALFORMED:
	case API_BAD_DATA:
		check_detail(gdetail, sizeof(gdetail), status);
		FUZZ_CHECK(groups == NULL && ngroups == 0);
		break;
	default:
		FUZZ_CHECK(!"api_parse_groups returned an unknown result");
	}

	/* when the status is not 200 the payload plays no part: both parsers must agree */
	if (status != 200) {
		FUZZ_CHECK(lres == gres);
		if (lres == API_SERVICE_ERROR)
			FUZZ_CHECK(!strcmp(lerr.code, gerr.code) &&
				   !strcmp(lerr.message, gerr.message) &&
				   !strcmp(lerr.request_id, gerr.request_id));
	}

	for (i = 0; i < ngroups; i++)
		free(groups[i]);
	free(groups);
	return 0;
}
