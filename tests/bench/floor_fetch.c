/*
 * floor_fetch - the fetch floor of benchmark 2: the same pages credsync sync fetches, signed
 * and parsed the same way (src/http.c, src/api.c, libcurl multi, up to --concurrency groups
 * at once, pages of a group in order), with nothing stored.  Prints one JSON line.
 *
 *   floor_fetch --endpoint http://127.0.0.1:PORT --instance mqtt-sim-1 --groups G1,G2 \
 *               [--concurrency 8] [--page-size 100]
 * Credentials: ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "creds.h"
#include "http.h"
#include "util.h"

struct fgroup {
	const char *id;
	int64_t page_no;
	char *token;
	int done;
};

static int submit(struct http_client *http, struct http_endpoint *ep, const struct creds *c,
		  const char *instance, struct fgroup *g, int page_size, struct cs_error *err)
{
	char pn[24], ps[24];
	struct sign_param p[5];
	size_t np = 0;
	struct cs_buf url = CS_BUF_INIT;
	struct curl_slist *h = NULL;
	int rc;

	snprintf(pn, sizeof(pn), "%" PRId64, g->page_no);
	snprintf(ps, sizeof(ps), "%d", page_size);
	p[np++] = (struct sign_param){ "InstanceId", instance };
	p[np++] = (struct sign_param){ "GroupId", g->id };
	p[np++] = (struct sign_param){ "PageNo", pn };
	p[np++] = (struct sign_param){ "PageSize", ps };
	if (g->token)
		p[np++] = (struct sign_param){ "NextToken", g->token };
	rc = api_build_request(&url, &h, http_endpoint_url(ep), http_endpoint_host(ep), "POST",
			       "ListDeviceCredentialClientId", p, np, c, CFG_SIG_V3, err);
	if (rc == 0)
		rc = http_submit(http, ep, "POST", buf_str(&url), h, g, err);
	buf_release(&url);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "endpoint", required_argument, NULL, 'e' }, { "instance", required_argument, NULL, 'i' },
		{ "groups", required_argument, NULL, 'g' }, { "concurrency", required_argument, NULL, 'c' },
		{ "page-size", required_argument, NULL, 'p' }, { NULL, 0, NULL, 0 },
	};
	const char *endpoint = NULL, *instance = NULL;
	char *groups = NULL, *save = NULL, *tok;
	int concurrency = 8, page_size = 100, c, inflight = 0;
	struct fgroup g[1024];
	size_t ng = 0, next = 0, done = 0;
	struct http_client *http = NULL;
	struct http_endpoint *ep = NULL;
	struct http_endpoint_opts hopts = { 5000, 30000, NULL, 0 };
	struct creds cr;
	struct cs_error err = { 0 };
	int64_t t0, ids = 0, pages = 0;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'e': endpoint = optarg; break;
		case 'i': instance = optarg; break;
		case 'g': groups = optarg; break;
		case 'c': concurrency = atoi(optarg); break;
		case 'p': page_size = atoi(optarg); break;
		default: return 64;
		}
	}
	if (!endpoint || !instance || !groups)
		return 64;
	for (tok = strtok_r(groups, ",", &save); tok && ng < 1024; tok = strtok_r(NULL, ",", &save))
		g[ng++] = (struct fgroup){ tok, 1, NULL, 0 };
	if (creds_resolve(&cr, NULL, &err) < 0 || http_client_new(&http, &err) < 0 ||
	    http_endpoint_open(http, endpoint, &hopts, &ep, &err) < 0) {
		fprintf(stderr, "floor_fetch: %s\n", err.msg);
		return 1;
	}
	t0 = util_mono_ms();
	while (done < ng) {
		struct http_request *r;

		/* keep `concurrency` groups walking, one page in flight each */
		while (inflight < concurrency && next < ng) {
			if (submit(http, ep, &cr, instance, &g[next++], page_size, &err) < 0)
				goto fail;
			inflight++;
		}
		if (http_poll(http, 1000, &err) < 0)
			goto fail;
		while ((r = http_next_done(http))) {
			struct fgroup *fg = r->user;
			struct api_list_page page;
			struct api_error ae;
			char detail[512];

			if (r->result != CURLE_OK ||
			    api_parse_list(r->status, buf_str(&r->body), r->body.len, &page, &ae, detail,
					   sizeof(detail)) != API_OK) {
				fprintf(stderr, "floor_fetch: group %s page %" PRId64 " failed\n", fg->id,
					fg->page_no);
				http_request_release(http, r);
				goto fail;
			}
			pages++;
			ids += (int64_t)page.n;
			free(fg->token);
			fg->token = page.next_token && *page.next_token ? strdup(page.next_token) : NULL;
			api_page_release(&page);
			http_request_release(http, r);
			if (!fg->token) {
				fg->done = 1;
				done++;
				inflight--;
			} else {
				fg->page_no++;
				if (submit(http, ep, &cr, instance, fg, page_size, &err) < 0)
					goto fail;
			}
		}
	}
	printf("{\"seconds\": %.3f, \"pages\": %" PRId64 ", \"ids\": %" PRId64 "}\n",
	       (double)(util_mono_ms() - t0) / 1000.0, pages, ids);
	http_client_free(http);
	creds_release(&cr);
	return 0;
fail:
	fprintf(stderr, "floor_fetch: %s\n", err.msg);
	return 1;
}
