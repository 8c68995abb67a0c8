/* Response parsing: good pages, error bodies, HTML, truncated and wrongly typed bodies, and
 * running out of memory while parsing. */
#include <stdint.h>
#include <stdlib.h>

#include "api.h"
#include "test.h"

static enum api_result parse(long status, const char *body, struct api_list_page *p,
			     struct api_error *e, char *detail)
{
	return api_parse_list(status, body, strlen(body), p, e, detail, 512);
}

static void test_good_page(void)
{
	struct api_list_page p;
	struct api_error e;
	char d[512];
	const char *body =
		"{\"RequestId\":\"020F6A43-19E6\",\"DeviceCredentialClientIdList\":{\"Total\":\"10\","
		"\"ClientIdList\":[\"GID_test@@@pub-1\",\"GID_test@@@pub-2\"],\"PageNo\":\"1\","
		"\"PageSize\":\"100\",\"NextToken\":\"634dxxxxx75b5f\"}}";

	CHECK_INT(parse(200, body, &p, &e, d), API_OK);
	CHECK_INT(p.n, 2);
	CHECK_STR(p.ids[0], "GID_test@@@pub-1");
	CHECK_INT(p.lens[1], 16);
	CHECK_INT(p.total, 10);
	CHECK_INT(p.page_no, 1);
	CHECK_INT(p.page_size, 100);
	CHECK_STR(p.next_token, "634dxxxxx75b5f");
	CHECK_STR(p.request_id, "020F6A43-19E6");
	api_page_release(&p);
}

static void test_numbers_and_absent_fields(void)
{
	struct api_list_page p;
	struct api_error e;
	char d[512];

	/* Total as a number, no NextToken, no PageSize: all accepted */
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"Total\":3,\"ClientIdList\":[\"a\"]}}",
			&p, &e, d), API_OK);
	CHECK_INT(p.total, 3);
	CHECK(p.next_token == NULL);
	CHECK_INT(p.page_size, -1);
	api_page_release(&p);
	/* an empty group: no list at all */
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"Total\":\"0\"}}", &p, &e, d), API_OK);
	CHECK_INT(p.n, 0);
	CHECK_INT(p.total, 0);
	api_page_release(&p);
	/* 2^53 exactly is fine as a string; above is refused, as a number too */
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"Total\":\"9007199254740992\"}}", &p,
			&e, d), API_OK);
	api_page_release(&p);
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"Total\":9007199254740993000}}", &p,
			&e, d), API_MALFORMED);
	CHECK_CONTAINS(d, "Total is not a count");
}

static void test_error_bodies(void)
{
	struct api_list_page p;
	struct api_error e;
	char d[512];

	CHECK_INT(parse(400,
			"{\"RequestId\":\"R-1\",\"HostId\":\"onsmqtt\",\"Code\":\"ApplyTokenOverFlow\","
			"\"Message\":\"You have applied for tokens too many times.\",\"Recommend\":\"x\"}",
			&p, &e, d), API_SERVICE_ERROR);
	CHECK_STR(e.code, "ApplyTokenOverFlow");
	CHECK_STR(e.request_id, "R-1");
	CHECK_CONTAINS(e.message, "too many times");
	CHECK_INT(e.http_status, 400);
	/* a Code on a 200 without the payload is an error too */
	CHECK_INT(parse(200, "{\"Code\":\"InternalError\",\"Message\":\"m\"}", &p, &e, d),
		  API_SERVICE_ERROR);
	CHECK_STR(e.code, "InternalError");
	/* ...but a payload with a Code "200" beside it is a page */
	CHECK_INT(parse(200, "{\"Code\":\"200\",\"DeviceCredentialClientIdList\":{\"Total\":\"0\"}}",
			&p, &e, d), API_OK);
	api_page_release(&p);
	/* an error status with JSON but no Code */
	CHECK_INT(parse(502, "{\"message\":\"bad gateway\"}", &p, &e, d), API_MALFORMED);
	CHECK_CONTAINS(d, "HTTP 502");
}

static void test_malformed(void)
{
	struct api_list_page p;
	struct api_error e;
	char d[512];

	CHECK_INT(parse(502, "<html><head><title>502 Bad Gateway</title></head></html>", &p, &e, d),
		  API_MALFORMED);
	CHECK_CONTAINS(d, "HTML page");
	CHECK_CONTAINS(d, "<html><head><title>502 Bad Gateway");
	CHECK_INT(parse(200, "{\"RequestId\":\"x\",\"DeviceCredentialClientIdList\":{\"Total\":\"10\",\"Cli",
			&p, &e, d), API_MALFORMED);
	CHECK_CONTAINS(d, "truncated");
	CHECK_CONTAINS(d, "\"{\"RequestId\":\"x\""); /* the body's first bytes, as they came */
	CHECK_INT(parse(200, "", &p, &e, d), API_MALFORMED);
	CHECK_CONTAINS(d, "empty body");
	CHECK_INT(parse(200, "\x01\xff garbage", &p, &e, d), API_MALFORMED);
	CHECK_CONTAINS(d, "\\xff");
	CHECK_INT(parse(200, "[1,2]", &p, &e, d), API_MALFORMED);
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":[]}", &p, &e, d), API_MALFORMED);
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"ClientIdList\":\"a\"}}", &p, &e, d),
		  API_MALFORMED);
	CHECK_CONTAINS(d, "not a list");
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"ClientIdList\":[1,2]}}", &p, &e, d),
		  API_MALFORMED);
	CHECK_CONTAINS(d, "other than strings");
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"Total\":\"ten\"}}", &p, &e, d),
		  API_MALFORMED);
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"Total\":-1}}", &p, &e, d),
		  API_MALFORMED);
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"Total\":1.5}}", &p, &e, d),
		  API_MALFORMED);
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"PageSize\":true}}", &p, &e, d),
		  API_MALFORMED);
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"NextToken\":5}}", &p, &e, d),
		  API_MALFORMED);
}

static void test_limits(void)
{
	struct api_list_page p;
	struct api_error e;
	char d[512], *deep, *body;
	size_t i;

	/* nesting beyond the limit is refused before cJSON recurses */
	deep = malloc(200);
	for (i = 0; i < 40; i++)
		deep[i] = '[';
	deep[40] = '\0';
	CHECK_INT(parse(200, deep, &p, &e, d), API_MALFORMED);
	CHECK_CONTAINS(d, "nested too deep");
	free(deep);
	/* an over-long ID and a non-UTF-8 ID are skipped and counted, the rest kept */
	body = malloc(4000);
	strcpy(body, "{\"DeviceCredentialClientIdList\":{\"Total\":\"3\",\"ClientIdList\":[\"ok\",\"");
	for (i = 0; i < 1100; i++)
		strcat(body, "x");
	strcat(body, "\",\"bad\xc3\x28\"]}}");
	CHECK_INT(parse(200, body, &p, &e, d), API_OK);
	CHECK_INT(p.n, 1);
	CHECK_INT(p.skipped, 2);
	CHECK_STR(p.ids[0], "ok");
	api_page_release(&p);
	/* a NUL escape would be cut by cJSON: refused as bad data, not truncated */
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"ClientIdList\":[\"a\\u0000b\"]}}",
			&p, &e, d), API_BAD_DATA);
	/* an escaped backslash before u0000 text is not a NUL */
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"ClientIdList\":[\"a\\\\u0000b\"]}}",
			&p, &e, d), API_OK);
	CHECK_STR(p.ids[0], "a\\u0000b");
	api_page_release(&p);
	free(body);
}

static void test_hostile_ids_exact(void)
{
	struct api_list_page p;
	struct api_error e;
	char d[512];

	CHECK_INT(parse(200,
			"{\"DeviceCredentialClientIdList\":{\"ClientIdList\":[\"G@@@a\\\"b;c\\nd%e@@@f\","
			"\"G@@@<script>alert(1)</script>\",\"G@@@\xe8\xae\xbe\xe5\xa4\x87\"]}}",
			&p, &e, d), API_OK);
	CHECK_INT(p.n, 3);
	CHECK_STR(p.ids[0], "G@@@a\"b;c\nd%e@@@f");
	CHECK_STR(p.ids[1], "G@@@<script>alert(1)</script>");
	CHECK_STR(p.ids[2], "G@@@\xe8\xae\xbe\xe5\xa4\x87");
	api_page_release(&p);
}

static void test_groups(void)
{
	struct api_error e;
	char d[512], **g = NULL;
	size_t n = 0, i;
	const char *body = "{\"RequestId\":\"r\",\"Data\":[{\"GroupId\":\"GID_b\",\"InstanceId\":\"i\"},"
			   "{\"GroupId\":\"GID_a\"}]}";

	CHECK_INT(api_parse_groups(200, body, strlen(body), &g, &n, &e, d, sizeof(d)), API_OK);
	CHECK_INT(n, 2);
	CHECK_STR(g[0], "GID_b");
	for (i = 0; i < n; i++)
		free(g[i]);
	free(g);
	body = "{\"Code\":\"Throttling.User\",\"Message\":\"flow control\",\"RequestId\":\"q\"}";
	CHECK_INT(api_parse_groups(400, body, strlen(body), &g, &n, &e, d, sizeof(d)),
		  API_SERVICE_ERROR);
	CHECK_STR(e.code, "Throttling.User");
}

/* ListInstances: a success body carries Code "200" and Success "true" (API.md): the
 * Instances list decides, not the Code field. */
static void test_instances(void)
{
	static const struct {
		long status;
		const char *body;
		enum api_result want;
		size_t n;
		const char *code;
	} cases[] = {
		{ 200, "{\"RequestId\":\"r\",\"Code\":\"200\",\"Success\":\"true\",\"Instances\":"
		       "[{\"InstanceId\":\"mqtt-cn-a\",\"InstanceName\":\"prod\",\"InstanceStatus\":2,"
		       "\"InstanceType\":\"professional\",\"RegionId\":\"cn-hangzhou\"},"
		       "{\"InstanceId\":\"mqtt-cn-b\"}]}", API_OK, 2, "" },
		{ 200, "{\"Code\":\"200\",\"Success\":\"true\",\"Instances\":[]}", API_OK, 0, "" },
		/* a Code alone, without the list, is an error body even with HTTP 200 */
		{ 200, "{\"Code\":\"Forbidden.RAM\",\"Message\":\"no\",\"RequestId\":\"q\"}",
		  API_SERVICE_ERROR, 0, "Forbidden.RAM" },
		{ 403, "{\"Code\":\"Forbidden.RAM\",\"Message\":\"no\",\"RequestId\":\"q\"}",
		  API_SERVICE_ERROR, 0, "Forbidden.RAM" },
		{ 200, "{\"Code\":\"200\",\"Success\":\"true\"}", API_MALFORMED, 0, "" },
		{ 200, "{\"Instances\":[{\"InstanceName\":\"no id\"}]}", API_BAD_DATA, 0, "" },
		{ 200, "{\"Instances\":[{\"InstanceId\":\"a\\u0000b\"}]}", API_BAD_DATA, 0, "" },
		{ 200, "{\"Instances\":[{\"InstanceId\":7}]}", API_BAD_DATA, 0, "" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_instance *v = NULL;
		struct api_error e;
		char d[512];
		size_t n = 99;

		CHECK_INT(api_parse_instances(cases[i].status, cases[i].body, strlen(cases[i].body),
					      &v, &n, &e, d, sizeof(d)), cases[i].want);
		if (cases[i].want == API_OK) {
			CHECK_INT(n, cases[i].n);
		} else {
			CHECK(v == NULL);
			CHECK_INT(n, 0);
		}
		if (cases[i].want == API_SERVICE_ERROR)
			CHECK_STR(e.code, cases[i].code);
		if (i == 0) {
			CHECK_STR(v[0].id, "mqtt-cn-a");
			CHECK_STR(v[0].name, "prod");
			CHECK_STR(v[0].status, "2");
			CHECK_STR(v[0].region, "cn-hangzhou");
			CHECK_STR(v[1].name, "");
		}
		api_instances_free(v, n == 99 ? 0 : n);
	}
}

static void test_build_v1(void)
{
	struct creds c = { .access_key_id = "testid", .access_key_secret = "testsecret" };
	struct sign_param p[] = { { "InstanceId", "mqtt-x" }, { "NextToken", "a+b c" } };
	struct cs_buf url = CS_BUF_INIT;
	struct curl_slist *h = NULL;
	struct cs_error err = { 0 };

	CHECK(api_build_request(&url, &h, "http://127.0.0.1:1", "127.0.0.1:1", "POST",
				"ListDeviceCredentialClientId", p, 2, &c, CFG_SIG_V1, &err) == 0);
	CHECK_CONTAINS(buf_str(&url), "http://127.0.0.1:1/?AccessKeyId=testid&Action=ListDeviceCredentialClientId");
	CHECK_CONTAINS(buf_str(&url), "NextToken=a%2Bb%20c");
	CHECK_CONTAINS(buf_str(&url), "&Signature=");
	CHECK(strstr(buf_str(&url), "testsecret") == NULL);
	curl_slist_free_all(h);
	buf_release(&url);
}

static void test_build_v3(void)
{
	struct creds c = { .access_key_id = "testid", .access_key_secret = "testsecret", .security_token = "tok" };
	struct sign_param p[] = { { "InstanceId", "mqtt-x" } };
	struct cs_buf url = CS_BUF_INIT;
	struct curl_slist *h = NULL, *it;
	struct cs_error err = { 0 };
	int auth = 0, token = 0;

	CHECK(api_build_request(&url, &h, "https://onsmqtt.cn-hangzhou.aliyuncs.com",
				"onsmqtt.cn-hangzhou.aliyuncs.com", "POST", "ListGroupId", p, 1, &c,
				CFG_SIG_V3, &err) == 0);
	CHECK_STR(buf_str(&url), "https://onsmqtt.cn-hangzhou.aliyuncs.com/?InstanceId=mqtt-x");
	for (it = h; it; it = it->next) {
		if (strstr(it->data, "Authorization: ACS3-HMAC-SHA256 Credential=testid,SignedHeaders="
				     "host;x-acs-action;x-acs-content-sha256;x-acs-date;"
				     "x-acs-security-token;x-acs-signature-nonce;x-acs-version,Signature=") == it->data)
			auth = 1;
		if (!strcmp(it->data, "x-acs-security-token: tok"))
			token = 1;
		CHECK(strstr(it->data, "testsecret") == NULL);
	}
	CHECK(auth);
	CHECK(token);
	curl_slist_free_all(h);
	buf_release(&url);
}

/* Each parse owns its arena: two pages alive at once, released in either order, both stay
 * intact; and cJSON used elsewhere in the process still gets malloc and free. */
static void test_arena_per_parse(void)
{
	struct api_list_page a, b;
	struct api_error e;
	char d[512];
	cJSON *other;

	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"ClientIdList\":[\"a-1\"]}}",
			&a, &e, d), API_OK);
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":{\"ClientIdList\":[\"b-1\"]}}",
			&b, &e, d), API_OK);
	CHECK(a.arena != NULL && b.arena != NULL && a.arena != b.arena);
	api_page_release(&a);
	CHECK_INT(b.n, 1);
	CHECK_STR(b.ids[0], "b-1");
	other = cJSON_Parse("{\"k\":[1,2,3]}");
	CHECK(other != NULL);
	CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(other, "k")), 3);
	cJSON_Delete(other);
	CHECK_STR(b.ids[0], "b-1");
	api_page_release(&b);
}

/* Memory that runs out in the middle of a parse is out of memory (API_NOMEM), never a
 * malformed body that would be retried as if the service were at fault. */
static void test_parse_out_of_memory(void)
{
	struct api_list_page p;
	struct api_instance *inst = NULL;
	struct api_error e;
	struct cs_buf body = CS_BUF_INIT;
	char d[512], **groups = NULL;
	size_t n = 99, i;
	cJSON *other;
	const char *page = "{\"RequestId\":\"R\",\"DeviceCredentialClientIdList\":"
			   "{\"ClientIdList\":[\"GID_a@@@1\"],\"Total\":\"1\"}}";
	const char *groups_body = "{\"Data\":[{\"GroupId\":\"GID_a\"}]}";
	const char *inst_body = "{\"Instances\":[{\"InstanceId\":\"i\"}]}";

	/* no arena at all: the first allocation fails */
	api_set_parse_limit(64);
	CHECK_INT(parse(200, page, &p, &e, d), API_NOMEM);
	CHECK_STR(d, "out of memory");
	CHECK(p.root == NULL && p.arena == NULL && p.ids == NULL);
	api_page_release(&p);
	CHECK_INT(api_parse_groups(200, groups_body, strlen(groups_body), &groups, &n, &e, d,
				   sizeof(d)), API_NOMEM);
	CHECK(groups == NULL && n == 0);
	CHECK_INT(api_parse_instances(200, inst_body, strlen(inst_body), &inst, &n, &e, d,
				      sizeof(d)), API_NOMEM);
	CHECK(inst == NULL && n == 0);
	/* an error body too: the service's Code cannot be read without memory */
	CHECK_INT(parse(503, "{\"Code\":\"ServiceUnavailable\"}", &p, &e, d), API_NOMEM);
	/* cJSON outside a parse is not limited: the cap is the parse's, not the process's */
	other = cJSON_Parse("[1,2,3]");
	CHECK(other != NULL);
	cJSON_Delete(other);

	/* the first chunk fits, growing it does not: cJSON fails half-way through the tree */
	buf_puts(&body, "{\"DeviceCredentialClientIdList\":{\"ClientIdList\":[\"x\"");
	for (i = 0; i < 2000; i++)
		buf_puts(&body, ",\"x\"");
	buf_puts(&body, "]}}");
	api_set_parse_limit(body.len * 4);
	CHECK_INT(api_parse_list(200, buf_str(&body), body.len, &p, &e, d, sizeof(d)), API_NOMEM);
	CHECK_STR(d, "out of memory");
	CHECK(p.root == NULL && p.arena == NULL);
	api_page_release(&p);

	/* with the cap lifted the same bodies parse */
	api_set_parse_limit(SIZE_MAX);
	CHECK_INT(api_parse_list(200, buf_str(&body), body.len, &p, &e, d, sizeof(d)), API_OK);
	CHECK_INT(p.n, 2001);
	api_page_release(&p);
	CHECK_INT(parse(200, page, &p, &e, d), API_OK);
	CHECK_STR(p.ids[0], "GID_a@@@1");
	api_page_release(&p);
	CHECK_INT(api_parse_groups(200, groups_body, strlen(groups_body), &groups, &n, &e, d,
				   sizeof(d)), API_OK);
	CHECK(n == 1 && groups && !strcmp(groups[0], "GID_a"));
	for (i = 0; i < n; i++)
		free(groups[i]);
	free(groups);
	CHECK_INT(api_parse_instances(200, inst_body, strlen(inst_body), &inst, &n, &e, d,
				      sizeof(d)), API_OK);
	CHECK(n == 1 && inst && !strcmp(inst[0].id, "i"));
	api_instances_free(inst, n);
	/* and a body that is not JSON is malformed again, not out of memory */
	CHECK_INT(parse(200, "{\"DeviceCredentialClientIdList\":", &p, &e, d), API_MALFORMED);
	buf_release(&body);
}

int main(void)
{
	test_good_page();
	test_numbers_and_absent_fields();
	test_error_bodies();
	test_malformed();
	test_limits();
	test_hostile_ids_exact();
	test_groups();
	test_instances();
	test_arena_per_parse();
	test_parse_out_of_memory();
	test_build_v1();
	test_build_v3();
	TEST_DONE();
}
