/*
 * simload.c - credsync-simload, a load generator for credsync-sim (or anything that speaks
 * ListDeviceCredentialClientId): keep-alive connections driven by libcurl multi handles, one
 * per thread, each request v1-signed with src/sign.c and a fresh nonce, PageNo cycling over
 * the group's pages.  It reports pages per second and the latency spread.
 *
 * The simulator it measures usually shares the machine, so the generator keeps its own cost
 * down: requests are signed before the clock starts (--presign; live signing takes over if
 * they run out), the signed query goes in as CURLOPT_REQUEST_TARGET so curl does not re-parse
 * a long URL per request, and nothing after the first page is parsed.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "sign.h"
#include "util.h"

#define HIST_STEP_US 10
#define HIST_BUCKETS 100000      /* 10 us steps up to one second, then one overflow bucket */
#define MAX_THREADS 64

struct load_opts {
	char *endpoint;         /* argv's; a trailing '/' is cut off */
	const char *instance, *group, *key_id, *secret, *method;
	long connections, threads, page_size, pages, presign;
	double duration;
	int json;
};

/* Requests signed ahead of time; workers take them in order, then sign live. */
struct load_pool {
	char **targets;         /* owned: "/?...&Signature=..." */
	size_t n;
	atomic_size_t next;
};

struct load_stats {
	uint64_t requests, ok, http_errors, net_errors, bytes, live_signed;
	uint64_t by_status[600];
	uint64_t *hist;         /* owned; latency, HIST_STEP_US wide buckets */
};

struct load_conn {
	CURL *h;
	struct cs_buf target;   /* a live-signed request target */
	size_t bytes;
	int64_t start_us;
	char errbuf[CURL_ERROR_SIZE];
};

struct load_worker {
	pthread_t tid;
	const struct load_opts *o;
	struct load_pool *pool;
	atomic_uint_fast64_t *seq;
	int64_t deadline;
	struct load_conn *conns;        /* owned */
	long nconns;
	struct load_stats st;
	int failed;
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t on_body(char *data, size_t size, size_t n, void *cls)
{
	struct load_conn *c = cls;

	c->bytes += size * n;
	return size * n;
}

static size_t on_first_body(char *data, size_t size, size_t n, void *cls)
{
	struct cs_buf *b = cls;

	buf_append(b, data, size * n);
	return b->oom ? 0 : size * n;
}

/* Appends "/?<signed query>" for page page_no to out.  Returns 0 or -1. */
static int build_target(struct cs_buf *out, const struct load_opts *o, uint64_t page_no)
{
	struct cs_buf q = CS_BUF_INIT;
	char nonce[37], ts[21], pno[24], psz[24], sig[64];
	int ret = -1;

	if (sign_nonce(nonce) < 0)
		return -1;
	util_format_utc(util_now_epoch(), ts);
	snprintf(pno, sizeof(pno), "%llu", (unsigned long long)page_no);
	snprintf(psz, sizeof(psz), "%ld", o->page_size);
	{
		const struct sign_param p[] = {
			{ "AccessKeyId", o->key_id },
			{ "Action", "ListDeviceCredentialClientId" },
			{ "Format", "JSON" },
			{ "GroupId", o->group },
			{ "InstanceId", o->instance },
			{ "PageNo", pno },
			{ "PageSize", psz },
			{ "SignatureMethod", "HMAC-SHA1" },
			{ "SignatureNonce", nonce },
			{ "SignatureVersion", "1.0" },
			{ "Timestamp", ts },
			{ "Version", "2020-04-20" },
		};

		if (sign_canonical_query(&q, p, sizeof(p) / sizeof(p[0])) < 0)
			goto out;
	}
	if (sign_v1(sig, sizeof(sig), o->method, buf_str(&q), o->secret) < 0)
		goto out;
	buf_puts(out, "/?");
	buf_puts(out, buf_str(&q));
	buf_puts(out, "&Signature=");
	sign_percent_encode(out, sig, strlen(sig));
	ret = out->oom ? -1 : 0;
out:
	buf_release(&q);
	return ret;
}

static void set_method(CURL *h, const struct load_opts *o)
{
	if (!strcmp(o->method, "POST")) {
		/* as the official SDKs do: everything in the query, an empty body */
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	}
}

/* Fetches page 1 once to learn Total, so PageNo can cycle over real pages. */
static long count_pages(const struct load_opts *o)
{
	struct cs_buf url = CS_BUF_INIT, body = CS_BUF_INIT;
	CURL *h = curl_easy_init();
	cJSON *root = NULL;
	const cJSON *list, *total;
	long status = 0, pages = -1;
	double t = 0;
	CURLcode rc;

	buf_puts(&url, o->endpoint);
	if (!h || build_target(&url, o, 1) < 0)
		goto out;
	curl_easy_setopt(h, CURLOPT_URL, buf_str(&url));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_first_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
	set_method(h, o);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		fprintf(stderr, "credsync-simload: %s: %s\n", o->endpoint, curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	root = cJSON_Parse(buf_str(&body));
	list = cJSON_GetObjectItemCaseSensitive(root, "DeviceCredentialClientIdList");
	total = cJSON_GetObjectItemCaseSensitive(list, "Total");
	if (status != 200 || !total) {
		fprintf(stderr, "credsync-simload: first page: HTTP %ld: %.300s\n", status,
			buf_str(&body));
		goto out;
	}
	t = cJSON_IsString(total) ? atof(total->valuestring) : cJSON_GetNumberValue(total);
	pages = (long)((t + (double)o->page_size - 1) / (double)o->page_size);
	if (pages < 1)
		pages = 1;
out:
	cJSON_Delete(root);
	buf_release(&url);
	buf_release(&body);
	if (h)
		curl_easy_cleanup(h);
	return pages;
}

static int presign(struct load_pool *pool, const struct load_opts *o,
		   atomic_uint_fast64_t *seq)
{
	size_t i;

	pool->targets = calloc(o->presign ? (size_t)o->presign : 1, sizeof(*pool->targets));
	if (!pool->targets)
		return -1;
	for (i = 0; i < (size_t)o->presign; i++) {
		struct cs_buf t = CS_BUF_INIT;
		uint64_t page = atomic_fetch_add(seq, 1) % (uint64_t)o->pages + 1;

		if (build_target(&t, o, page) < 0) {
			buf_release(&t);
			return -1;
		}
		pool->targets[i] = buf_detach(&t);
		pool->n++;
	}
	return 0;
}

static int start_request(struct load_worker *w, struct load_conn *c, CURLM *multi)
{
	size_t i = atomic_fetch_add(&w->pool->next, 1);
	const char *target;

	if (i < w->pool->n) {
		target = w->pool->targets[i];
	} else {
		uint64_t page = atomic_fetch_add(w->seq, 1) % (uint64_t)w->o->pages + 1;

		buf_reset(&c->target);
		if (build_target(&c->target, w->o, page) < 0)
			return -1;
		target = buf_str(&c->target);
		w->st.live_signed++;
	}
	/* the URL stays the endpoint; only the request line changes */
	curl_easy_setopt(c->h, CURLOPT_REQUEST_TARGET, target);
	c->bytes = 0;
	c->start_us = now_us();
	return curl_multi_add_handle(multi, c->h) == CURLM_OK ? 0 : -1;
}

static void *worker_run(void *arg)
{
	struct load_worker *w = arg;
	const struct load_opts *o = w->o;
	CURLM *multi = curl_multi_init();
	int running = 0;
	long i;

	if (!multi)
		goto fail;
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, w->nconns);
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, w->nconns);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, w->nconns);
	for (i = 0; i < w->nconns; i++) {
		struct load_conn *c = &w->conns[i];

		c->h = curl_easy_init();
		if (!c->h)
			goto fail;
		curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
		curl_easy_setopt(c->h, CURLOPT_URL, o->endpoint);
		curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
		curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->errbuf);
		curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
		curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, 60000L);
		curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
		set_method(c->h, o);
		if (start_request(w, c, multi) < 0)
			goto fail;
	}
	do {
		CURLMsg *msg;
		int left;

		curl_multi_perform(multi, &running);
		while ((msg = curl_multi_info_read(multi, &left))) {
			struct load_conn *c = NULL;
			long status = 0;
			int64_t lat;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
			lat = now_us() - c->start_us;
			w->st.requests++;
			w->st.hist[lat / HIST_STEP_US < HIST_BUCKETS ? lat / HIST_STEP_US : HIST_BUCKETS]++;
			if (msg->data.result != CURLE_OK) {
				if (w->st.net_errors++ < 3)
					fprintf(stderr, "credsync-simload: %s\n", c->errbuf[0] ? c->errbuf :
						curl_easy_strerror(msg->data.result));
			} else {
				curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
				w->st.bytes += c->bytes;
				if (status == 200)
					w->st.ok++;
				else
					w->st.http_errors++;
				if (status > 0 && status < 600)
					w->st.by_status[status]++;
			}
			curl_multi_remove_handle(multi, c->h);
			if (now_us() < w->deadline && start_request(w, c, multi) < 0)
				goto fail;
		}
		if (running)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	} while (running || now_us() < w->deadline);
	goto out;
fail:
	w->failed = 1;
out:
	for (i = 0; i < w->nconns; i++) {
		if (w->conns[i].h) {
			curl_multi_remove_handle(multi, w->conns[i].h);
			curl_easy_cleanup(w->conns[i].h);
		}
		buf_release(&w->conns[i].target);
	}
	if (multi)
		curl_multi_cleanup(multi);
	return NULL;
}

static uint64_t percentile(const struct load_stats *st, double p)
{
	uint64_t want = (uint64_t)((double)st->requests * p), seen = 0;
	size_t i;

	for (i = 0; i <= HIST_BUCKETS; i++) {
		seen += st->hist[i];
		if (seen > want)
			return (uint64_t)i * HIST_STEP_US;
	}
	return (uint64_t)HIST_BUCKETS * HIST_STEP_US;
}

static const char usage_text[] =
	"usage: credsync-simload --endpoint URL [--connections N] [--threads N]\n"
	"                        [--duration SECONDS] [--instance ID] [--group GID]\n"
	"                        [--page-size N] [--pages N] [--method GET|POST]\n"
	"                        [--presign N] [--access-key-id ID] [--access-key-secret S]\n"
	"                        [--json]\n"
	"\n"
	"Sends v1-signed ListDeviceCredentialClientId requests over N keep-alive connections\n"
	"(spread over --threads curl multi handles) for the duration, PageNo cycling over the\n"
	"group's pages (or 1..--pages), and prints pages per second.  --presign N signs N\n"
	"requests before the clock starts (default: 25000 per second of duration; 0 signs\n"
	"every request live).  Defaults: 8 connections, 2 threads, 5 s, mqtt-sim-1, GID_sim_1,\n"
	"PageSize 100, GET, testid, $CREDSYNC_SIM_ACCESS_KEY_SECRET or testsecret.\n"
	"Exit status: 0, 2 when any request failed, 64 usage error, 1 setup failure.\n";

static int parse_args(int argc, char **argv, struct load_opts *o)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "connections", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "duration", required_argument, NULL, 'd' },
		{ "instance", required_argument, NULL, 'i' },
		{ "group", required_argument, NULL, 'g' },
		{ "page-size", required_argument, NULL, 's' },
		{ "pages", required_argument, NULL, 'p' },
		{ "method", required_argument, NULL, 'm' },
		{ "presign", required_argument, NULL, 'P' },
		{ "access-key-id", required_argument, NULL, 'k' },
		{ "access-key-secret", required_argument, NULL, 'K' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	char *end;

	o->connections = 8;
	o->threads = 2;
	o->duration = 5;
	o->instance = "mqtt-sim-1";
	o->group = "GID_sim_1";
	o->page_size = 100;
	o->presign = -1;
	o->method = "GET";
	o->key_id = "testid";
	o->secret = getenv("CREDSYNC_SIM_ACCESS_KEY_SECRET");
	if (!o->secret || !*o->secret)
		o->secret = "testsecret";
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			o->endpoint = optarg;
			break;
		case 'c':
			o->connections = strtol(optarg, &end, 10);
			if (*end || o->connections < 1 || o->connections > 1000)
				goto bad;
			break;
		case 't':
			o->threads = strtol(optarg, &end, 10);
			if (*end || o->threads < 1 || o->threads > MAX_THREADS)
				goto bad;
			break;
		case 'd':
			o->duration = strtod(optarg, &end);
			if (*end || !(o->duration > 0 && o->duration <= 3600))
				goto bad;
			break;
		case 'i':
			o->instance = optarg;
			break;
		case 'g':
			o->group = optarg;
			break;
		case 's':
			o->page_size = strtol(optarg, &end, 10);
			if (*end || o->page_size < 1 || o->page_size > 100)
				goto bad;
			break;
		case 'p':
			o->pages = strtol(optarg, &end, 10);
			if (*end || o->pages < 1)
				goto bad;
			break;
		case 'm':
			if (strcmp(optarg, "GET") && strcmp(optarg, "POST"))
				goto bad;
			o->method = optarg;
			break;
		case 'P':
			o->presign = strtol(optarg, &end, 10);
			if (*end || o->presign < 0 || o->presign > 10000000)
				goto bad;
			break;
		case 'k':
			o->key_id = optarg;
			break;
		case 'K':
			o->secret = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 1;
		default:
			fprintf(stderr, "credsync-simload: unknown option or missing argument: %s\n",
				argv[optind - 1]);
			return -1;
		}
	}
	if (!o->endpoint) {
		fputs("credsync-simload: --endpoint URL is required\n", stderr);
		return -1;
	}
	if (o->threads > o->connections)
		o->threads = o->connections;
	if (o->presign < 0)
		o->presign = (long)(o->duration * 25000);
	return 0;
bad:
	fprintf(stderr, "credsync-simload: bad value '%s' for %s\n", optarg, argv[optind - 1]);
	return -1;
}

int main(int argc, char **argv)
{
	struct load_opts o = { 0 };
	struct load_pool pool = { 0 };
	struct load_worker *workers = NULL;
	struct load_stats total = { 0 };
	atomic_uint_fast64_t seq = 0;
	int64_t t0, elapsed;
	long i, started = 0;
	size_t k;
	int ret = 1, rc, failed = 0;

	rc = parse_args(argc, argv, &o);
	if (rc)
		return rc > 0 ? 0 : 64;
	while (strlen(o.endpoint) && o.endpoint[strlen(o.endpoint) - 1] == '/')
		o.endpoint[strlen(o.endpoint) - 1] = '\0';
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return 1;
	if (!o.pages) {
		o.pages = count_pages(&o);
		if (o.pages < 0)
			goto out;
	}
	if (presign(&pool, &o, &seq) < 0) {
		fputs("credsync-simload: out of memory signing requests ahead\n", stderr);
		goto out;
	}
	total.hist = calloc(HIST_BUCKETS + 1, sizeof(*total.hist));
	workers = calloc((size_t)o.threads, sizeof(*workers));
	if (!total.hist || !workers)
		goto out;

	t0 = now_us();
	for (i = 0; i < o.threads; i++) {
		struct load_worker *w = &workers[i];

		w->o = &o;
		w->pool = &pool;
		w->seq = &seq;
		w->deadline = t0 + (int64_t)(o.duration * 1e6);
		w->nconns = o.connections / o.threads + (i < o.connections % o.threads);
		w->conns = calloc((size_t)w->nconns, sizeof(*w->conns));
		w->st.hist = calloc(HIST_BUCKETS + 1, sizeof(*w->st.hist));
		if (!w->conns || !w->st.hist || pthread_create(&w->tid, NULL, worker_run, w))
			break;
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(workers[i].tid, NULL);
	elapsed = now_us() - t0;
	if (started < o.threads) {
		fputs("credsync-simload: cannot start the worker threads\n", stderr);
		goto out;
	}
	for (i = 0; i < o.threads; i++) {
		const struct load_stats *st = &workers[i].st;

		failed |= workers[i].failed;
		total.requests += st->requests;
		total.ok += st->ok;
		total.http_errors += st->http_errors;
		total.net_errors += st->net_errors;
		total.bytes += st->bytes;
		total.live_signed += st->live_signed;
		for (k = 0; k < 600; k++)
			total.by_status[k] += st->by_status[k];
		for (k = 0; k <= HIST_BUCKETS; k++)
			total.hist[k] += st->hist[k];
	}
	if (failed)
		fputs("credsync-simload: a worker failed to set up a request\n", stderr);

	if (o.json) {
		printf("{\"connections\":%ld,\"threads\":%ld,\"seconds\":%.3f,\"requests\":%llu,"
		       "\"pages\":%llu,\"http_errors\":%llu,\"net_errors\":%llu,"
		       "\"pages_per_s\":%.0f,\"p50_us\":%llu,\"p99_us\":%llu,\"bytes\":%llu,"
		       "\"live_signed\":%llu}\n",
		       o.connections, o.threads, (double)elapsed / 1e6,
		       (unsigned long long)total.requests, (unsigned long long)total.ok,
		       (unsigned long long)total.http_errors, (unsigned long long)total.net_errors,
		       (double)total.ok * 1e6 / (double)elapsed,
		       (unsigned long long)percentile(&total, 0.5),
		       (unsigned long long)percentile(&total, 0.99), (unsigned long long)total.bytes,
		       (unsigned long long)total.live_signed);
	} else {
		printf("credsync-simload: %ld connections on %ld threads, %.2f s, %s %s/%s, "
		       "PageSize %ld, %ld pages cycled\n", o.connections, o.threads,
		       (double)elapsed / 1e6, o.method, o.instance, o.group, o.page_size, o.pages);
		printf("  requests %llu (%llu signed live), pages (HTTP 200) %llu, HTTP errors %llu, "
		       "network errors %llu\n", (unsigned long long)total.requests,
		       (unsigned long long)total.live_signed, (unsigned long long)total.ok,
		       (unsigned long long)total.http_errors, (unsigned long long)total.net_errors);
		for (k = 0; k < 600; k++)
			if (total.by_status[k] && k != 200)
				printf("  HTTP %zu: %llu\n", k, (unsigned long long)total.by_status[k]);
		printf("  %.0f pages/s, %.1f MB/s, latency p50 %llu us, p99 %llu us\n",
		       (double)total.ok * 1e6 / (double)elapsed,
		       (double)total.bytes / (double)elapsed,
		       (unsigned long long)percentile(&total, 0.5),
		       (unsigned long long)percentile(&total, 0.99));
	}
	ret = failed ? 1 : total.net_errors || total.http_errors ? 2 : 0;
out:
	if (workers) {
		for (i = 0; i < o.threads; i++) {
			free(workers[i].conns);
			free(workers[i].st.hist);
		}
	}
	free(workers);
	for (k = 0; k < pool.n; k++)
		free(pool.targets[k]);
	free(pool.targets);
	free(total.hist);
	curl_global_cleanup();
	return ret;
}
