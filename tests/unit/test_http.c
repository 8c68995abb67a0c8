/*
 * HTTP transfers against a loopback server of the test's own (a thread listening on
 * 127.0.0.1, port 0): bodies delivered, statuses and x-acs-retry-after, the body cap, broken
 * and reset connections, a server that never answers (the request timeout), keep-alive
 * reuse, several transfers in flight at once, http_abort_all and http_wakeup, and the
 * endpoint policy (plain http only to loopback, refused before anything is connected).
 *
 * The server scripts each answer from the request's path:
 *   /ok/TEXT      200 with body TEXT (keep-alive)
 *   /status/NNN   status NNN with a small JSON body
 *   /retry        503 with x-acs-retry-after: 1500
 *   /big          200 with 1000 bytes of body
 *   /short        Content-Length 100, 10 bytes of body, then a clean close (FIN)
 *   /reset        the same, then an abortive close (RST)
 *   /nothing      the request is read and the connection closed without a byte
 *   /hang         the request is read and never answered (until the client goes away)
 *   /barrier      answered only once 3 requests wait together ("together"), else after 5 s
 *                 with 503 "alone": proof that the transfers really were in flight at once
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "test.h"
#include "util.h"

#define MAX_CONNS 64

struct server {
	int lfd;
	int port;
	pthread_t acceptor;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	int accepts;         /* connections accepted */
	int requests;        /* requests read */
	int eofs;            /* connections the client closed */
	int barrier;         /* /barrier requests waiting */
	char last_head[4096];
	pthread_t conns[MAX_CONNS];
	int nconns;
};

static struct server srv;

static int stopping(void)
{
	int s;

	pthread_mutex_lock(&srv.mu);
	s = srv.stop;
	pthread_mutex_unlock(&srv.mu);
	return s;
}

static void count(int *field)
{
	pthread_mutex_lock(&srv.mu);
	(*field)++;
	pthread_cond_broadcast(&srv.cv);
	pthread_mutex_unlock(&srv.mu);
}

static int get(const int *field)
{
	int v;

	pthread_mutex_lock(&srv.mu);
	v = *field;
	pthread_mutex_unlock(&srv.mu);
	return v;
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void answer(int fd, int status, const char *extra, const char *body)
{
	char head[512];

	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d Scripted\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n",
		 status, extra, strlen(body));
	send_all(fd, head, strlen(head));
	send_all(fd, body, strlen(body));
}

/* Reads one request head into buf; 1 with a head, 0 on EOF (or stop), -1 on error. */
static int read_head(int fd, char *buf, size_t cap)
{
	size_t len = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int pr = poll(&p, 1, 50);

		if (pr < 0 && errno != EINTR)
			return -1;
		if (pr <= 0) {
			if (stopping())
				return 0;
			continue;
		}
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n == 0)
			return 0;
		if (n < 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			return 1;
		if (len == cap - 1)
			return -1;
	}
}

static void *conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char head[4096];

	for (;;) {
		char path[256] = "";
		int rc = read_head(fd, head, sizeof(head));

		if (rc <= 0) {
			if (rc == 0 && !stopping())
				count(&srv.eofs);
			break;
		}
		sscanf(head, "%*s %255s", path);
		pthread_mutex_lock(&srv.mu);
		srv.requests++;
		snprintf(srv.last_head, sizeof(srv.last_head), "%s", head);
		pthread_mutex_unlock(&srv.mu);

		if (!strncmp(path, "/ok/", 4)) {
			answer(fd, 200, "", path + 4);
		} else if (!strncmp(path, "/status/", 8)) {
			answer(fd, atoi(path + 8), "", "{\"Code\":\"Scripted\"}");
		} else if (!strcmp(path, "/retry")) {
			answer(fd, 503, "x-acs-retry-after: 1500\r\n", "{\"Code\":\"Throttling\"}");
		} else if (!strcmp(path, "/big")) {
			char body[1001];

			memset(body, 'x', 1000);
			body[1000] = '\0';
			answer(fd, 200, "", body);
		} else if (!strcmp(path, "/short") || !strcmp(path, "/reset")) {
			static const char h[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";

			send_all(fd, h, sizeof(h) - 1);
			if (path[1] == 'r') {
				struct linger lg = { 1, 0 };

				usleep(50 * 1000); /* let the bytes go first; then RST */
				setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			}
			break;
		} else if (!strcmp(path, "/nothing")) {
			break;
		} else if (!strcmp(path, "/hang")) {
			/* never answered: wait for the client to give up (EOF) or the end */
			rc = read_head(fd, head, sizeof(head));
			if (rc == 0 && !stopping())
				count(&srv.eofs);
			break;
		} else if (!strcmp(path, "/barrier")) {
			struct timespec until;
			int together;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 5;
			pthread_mutex_lock(&srv.mu);
			srv.barrier++;
			pthread_cond_broadcast(&srv.cv);
			while (srv.barrier < 3 && !srv.stop &&
			       pthread_cond_timedwait(&srv.cv, &srv.mu, &until) == 0)
				;
			together = srv.barrier >= 3;
			pthread_mutex_unlock(&srv.mu);
			answer(fd, together ? 200 : 503, "", together ? "together" : "alone");
		} else {
			answer(fd, 404, "", "no such script");
		}
	}
	close(fd);
	return NULL;
}

static void *accept_main(void *arg)
{
	(void)arg;
	while (!stopping()) {
		struct pollfd p = { .fd = srv.lfd, .events = POLLIN };
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(srv.lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&srv.mu);
		if (srv.nconns == MAX_CONNS) {
			pthread_mutex_unlock(&srv.mu);
			close(fd);
			continue;
		}
		pthread_create(&srv.conns[srv.nconns], NULL, conn_main, (void *)(intptr_t)fd);
		srv.nconns++;
		srv.accepts++;
		pthread_mutex_unlock(&srv.mu);
	}
	return NULL;
}

static int server_start(void)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int one = 1;

	memset(&srv, 0, sizeof(srv));
	pthread_mutex_init(&srv.mu, NULL);
	pthread_cond_init(&srv.cv, NULL);
	srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (srv.lfd < 0)
		return -1;
	setsockopt(srv.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = 0;
	if (bind(srv.lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(srv.lfd, 16) < 0 ||
	    getsockname(srv.lfd, (struct sockaddr *)&a, &alen) < 0)
		return -1;
	srv.port = ntohs(a.sin_port);
	return pthread_create(&srv.acceptor, NULL, accept_main, NULL) ? -1 : 0;
}

static void server_stop(void)
{
	int i;

	pthread_mutex_lock(&srv.mu);
	srv.stop = 1;
	pthread_cond_broadcast(&srv.cv);
	pthread_mutex_unlock(&srv.mu);
	pthread_join(srv.acceptor, NULL);
	for (i = 0; i < srv.nconns; i++)
		pthread_join(srv.conns[i], NULL);
	close(srv.lfd);
	pthread_cond_destroy(&srv.cv);
	pthread_mutex_destroy(&srv.mu);
}

/* Waits (up to ms) until the server's counter reaches want. */
static int wait_for(const int *field, int want, int ms)
{
	int64_t until = util_mono_ms() + ms;

	while (get(field) < want && util_mono_ms() < until)
		usleep(10 * 1000);
	return get(field);
}

/* --- the client side ------------------------------------------------------------------ */

static struct http_client *cli;
static struct http_endpoint *ep;
static char base[64];

static const struct http_endpoint_opts opts = {
	.connect_timeout_ms = 2000,
	.request_timeout_ms = 5000,
	.ca_file = NULL,
	.max_body = 0,
};

static int submit(struct http_endpoint *e, const char *method, const char *path, void *user)
{
	struct cs_error err = { 0 };
	char url[512];
	int rc;

	snprintf(url, sizeof(url), "%s%s", http_endpoint_url(e), path);
	rc = http_submit(cli, e, method, url, curl_slist_append(NULL, "Accept: application/json"),
			 user, &err);
	if (rc < 0)
		fprintf(stderr, "http_submit %s: %s\n", url, err.msg);
	return rc;
}

/* Polls until a request is done (or ms pass). */
static struct http_request *next_done(int ms)
{
	int64_t until = util_mono_ms() + ms;
	struct http_request *r;
	struct cs_error err = { 0 };

	while (!(r = http_next_done(cli)) && util_mono_ms() < until)
		if (http_poll(cli, 100, &err) < 0) {
			fprintf(stderr, "http_poll: %s\n", err.msg);
			break;
		}
	return r;
}

static const char *body_of(struct http_request *r)
{
	static char out[2048];

	snprintf(out, sizeof(out), "%.*s", (int)r->body.len, r->body.data ? r->body.data : "");
	return out;
}

/* One request at a time: what the caller is handed for each scripted answer. */
static void test_answers(void)
{
	static const struct {
		const char *method, *path;
		long status;
		CURLcode result;
		const char *body;
		int64_t retry_after_ms;
		int transient;
	} cases[] = {
		{ "POST", "/ok/hello", 200, CURLE_OK, "hello", -1, 0 },
		{ "GET", "/ok/%7B%22a%22%3A1%7D", 200, CURLE_OK, "%7B%22a%22%3A1%7D", -1, 0 },
		{ "POST", "/status/400", 400, CURLE_OK, "{\"Code\":\"Scripted\"}", -1, 0 },
		{ "POST", "/status/403", 403, CURLE_OK, "{\"Code\":\"Scripted\"}", -1, 0 },
		{ "POST", "/status/500", 500, CURLE_OK, "{\"Code\":\"Scripted\"}", -1, 0 },
		{ "POST", "/retry", 503, CURLE_OK, "{\"Code\":\"Throttling\"}", 1500, 0 },
		{ "POST", "/nope", 404, CURLE_OK, "no such script", -1, 0 },
		/* the server closes mid-body: a transport error a retry may fix, whatever came */
		{ "POST", "/short", 200, CURLE_PARTIAL_FILE, NULL, -1, 1 },
		/* the request read, the connection closed without an answer */
		{ "POST", "/nothing", 0, CURLE_GOT_NOTHING, "", -1, 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_request *r;
		int tag = (int)i;

		if (submit(ep, cases[i].method, cases[i].path, &tag) < 0) {
			CHECK(0);
			continue;
		}
		CHECK_INT(http_in_flight(cli), 1);
		r = next_done(10000);
		CHECK(r != NULL);
		if (!r)
			continue;
		fprintf(stderr, "  %s %s: status %ld, result %d\n", cases[i].method, cases[i].path,
			r->status, r->result);
		CHECK_INT(http_in_flight(cli), 0);
		CHECK(r->user == &tag);
		CHECK_INT(r->status, cases[i].status);
		CHECK_INT(r->result, cases[i].result);
		if (cases[i].body)
			CHECK_STR(body_of(r), cases[i].body);
		CHECK_INT(r->body_too_large, 0);
		CHECK_INT(r->retry_after_ms, cases[i].retry_after_ms);
		CHECK_INT(http_result_transient(r->result), cases[i].transient);
		CHECK(r->result == CURLE_OK || r->errbuf[0] != '\0');
		http_request_release(cli, r);
		CHECK(http_next_done(cli) == NULL);
	}

	/* what the server saw of the last request: the method, the Host header, our agent */
	{
		struct http_request *r;
		char host[64];

		CHECK(submit(ep, "POST", "/ok/x", NULL) == 0);
		r = next_done(10000);
		CHECK(r && r->status == 200);
		http_request_release(cli, r);
		snprintf(host, sizeof(host), "Host: 127.0.0.1:%d\r\n", srv.port);
		pthread_mutex_lock(&srv.mu);
		CHECK(!strncmp(srv.last_head, "POST /ok/x HTTP/1.1\r\n", 21));
		CHECK_CONTAINS(srv.last_head, host);
		CHECK_CONTAINS(srv.last_head, "User-Agent: credsync/" CREDSYNC_VERSION "\r\n");
		CHECK_CONTAINS(srv.last_head, "Accept: application/json\r\n");
		CHECK_CONTAINS(srv.last_head, "Content-Length: 0\r\n");
		pthread_mutex_unlock(&srv.mu);
		snprintf(host, sizeof(host), "127.0.0.1:%d", srv.port);
		CHECK_STR(http_endpoint_host(ep), host);
	}
}

/* An abortive close (RST) in the middle of a body is a transport error, never a page. */
static void test_reset(void)
{
	struct http_request *r;

	CHECK(submit(ep, "POST", "/reset", NULL) == 0);
	r = next_done(10000);
	CHECK(r != NULL);
	if (!r)
		return;
	fprintf(stderr, "  /reset: status %ld, result %d (%s)\n", r->status, r->result, r->errbuf);
	/* the 10 bytes queued before the RST are read, then recv fails: ECONNRESET */
	CHECK_INT(r->result, CURLE_RECV_ERROR);
	CHECK_INT(http_result_transient(r->result), 1);
	http_request_release(cli, r);
}

/* A body past max_body is cut: the transfer stops with CURLE_WRITE_ERROR (transient). */
static void test_body_cap(void)
{
	struct http_endpoint_opts small = opts;
	struct http_endpoint *e = NULL;
	struct cs_error err = { 0 };
	struct http_request *r;

	small.max_body = 100;
	CHECK(http_endpoint_open(cli, base, &small, &e, &err) == 0);
	if (!e)
		return;
	CHECK(submit(e, "POST", "/big", NULL) == 0);
	r = next_done(10000);
	CHECK(r != NULL);
	if (!r)
		return;
	CHECK_INT(r->result, CURLE_WRITE_ERROR);
	CHECK_INT(r->body_too_large, 1);
	CHECK(r->body.len <= 100);
	CHECK_INT(http_result_transient(r->result), 1);
	http_request_release(cli, r);
	/* the same endpoint still answers what fits */
	CHECK(submit(e, "POST", "/ok/fits", NULL) == 0);
	r = next_done(10000);
	CHECK(r && r->result == CURLE_OK && r->status == 200 && !r->body_too_large);
	if (r)
		CHECK_STR(body_of(r), "fits");
	http_request_release(cli, r);
}

/* Sequential requests on one endpoint share one connection (a client of its own, so no
 * connection of the others is at hand). */
static void test_keep_alive(void)
{
	struct http_client *mine = NULL, *saved = cli;
	struct http_endpoint *e = NULL;
	struct cs_error err = { 0 };
	int before, i;

	CHECK(http_client_new(&mine, &err) == 0);
	if (!mine)
		return;
	CHECK(http_endpoint_open(mine, base, &opts, &e, &err) == 0);
	cli = mine;
	before = get(&srv.accepts);
	for (i = 0; e && i < 5; i++) {
		struct http_request *r;
		char path[32], want[16];

		snprintf(path, sizeof(path), "/ok/page-%d", i);
		snprintf(want, sizeof(want), "page-%d", i);
		CHECK(submit(e, i % 2 ? "GET" : "POST", path, NULL) == 0);
		r = next_done(10000);
		CHECK(r && r->status == 200);
		if (r)
			CHECK_STR(body_of(r), want);
		http_request_release(cli, r);
	}
	CHECK_INT(get(&srv.accepts) - before, 1);
	cli = saved;
	http_client_free(mine);
}

/* Three transfers in flight at once: the server answers only when all three wait together;
 * then three more reuse the three connections. */
static void test_concurrent(void)
{
	int tags[3] = { 0, 1, 2 }, seen[3] = { 0, 0, 0 };
	int before = get(&srv.accepts), i;

	for (i = 0; i < 3; i++)
		CHECK(submit(ep, "POST", "/barrier", &tags[i]) == 0);
	CHECK_INT(http_in_flight(cli), 3);
	for (i = 0; i < 3; i++) {
		struct http_request *r = next_done(15000);

		CHECK(r != NULL);
		if (!r)
			break;
		CHECK_INT(r->status, 200);
		CHECK_STR(body_of(r), "together");
		CHECK(r->user == &tags[0] || r->user == &tags[1] || r->user == &tags[2]);
		seen[*(int *)r->user]++;
		http_request_release(cli, r);
	}
	CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
	CHECK_INT(http_in_flight(cli), 0);
	/* ep's earlier connection is reused by one of them, so 2 or 3 new ones */
	CHECK(get(&srv.accepts) - before <= 3);
	CHECK(get(&srv.accepts) - before >= 2);

	before = get(&srv.accepts);
	for (i = 0; i < 3; i++)
		CHECK(submit(ep, "GET", i == 0 ? "/ok/a" : i == 1 ? "/ok/b" : "/ok/c", &tags[i]) == 0);
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < 3; i++) {
		struct http_request *r = next_done(10000);

		CHECK(r != NULL);
		if (!r)
			break;
		CHECK_INT(r->status, 200);
		CHECK_STR(body_of(r), *(int *)r->user == 0 ? "a" : *(int *)r->user == 1 ? "b" : "c");
		seen[*(int *)r->user]++;
		http_request_release(cli, r);
	}
	CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
	CHECK_INT(get(&srv.accepts) - before, 0);
}

/* A server that accepts and never answers: the request timeout ends the transfer. */
static void test_timeout(void)
{
	struct http_endpoint_opts quick = opts;
	struct http_endpoint *e = NULL;
	struct cs_error err = { 0 };
	struct http_request *r;
	int64_t t0, took;
	int eofs = get(&srv.eofs);

	quick.request_timeout_ms = 300;
	CHECK(http_endpoint_open(cli, base, &quick, &e, &err) == 0);
	if (!e)
		return;
	t0 = util_mono_ms();
	CHECK(submit(e, "POST", "/hang", NULL) == 0);
	r = next_done(10000);
	took = util_mono_ms() - t0;
	fprintf(stderr, "  /hang: timed out after %lld ms\n", (long long)took);
	CHECK(r != NULL);
	if (!r)
		return;
	CHECK_INT(r->result, CURLE_OPERATION_TIMEDOUT);
	CHECK_INT(r->status, 0);
	CHECK_INT(r->body.len, 0);
	CHECK_INT(http_result_transient(r->result), 1);
	CHECK(took >= 250);
	CHECK(took < 5000);   /* bounded by the 300 ms timeout, with room for valgrind */
	http_request_release(cli, r);
	/* the timed-out connection is closed, not kept for reuse */
	CHECK_INT(wait_for(&srv.eofs, eofs + 1, 5000), eofs + 1);
}

/* http_abort_all drops the transfers in flight and their connections; the client still
 * works afterwards. */
static void test_abort_all(void)
{
	struct cs_error err = { 0 };
	struct http_request *r;
	int reqs = get(&srv.requests), eofs = get(&srv.eofs), i;

	for (i = 0; i < 2; i++)
		CHECK(submit(ep, "POST", "/hang", NULL) == 0);
	CHECK_INT(http_in_flight(cli), 2);
	/* until the server holds both requests */
	for (i = 0; i < 100 && get(&srv.requests) < reqs + 2; i++)
		http_poll(cli, 20, &err);
	CHECK_INT(get(&srv.requests), reqs + 2);
	http_abort_all(cli);
	CHECK_INT(http_in_flight(cli), 0);
	CHECK(http_next_done(cli) == NULL);
	CHECK(http_poll(cli, 50, &err) == 0);
	CHECK(http_next_done(cli) == NULL);
	/* the server sees both connections closed */
	CHECK_INT(wait_for(&srv.eofs, eofs + 2, 5000), eofs + 2);
	/* with nothing in flight it is a no-op */
	http_abort_all(cli);
	CHECK_INT(http_in_flight(cli), 0);

	CHECK(submit(ep, "POST", "/ok/after", NULL) == 0);
	r = next_done(10000);
	CHECK(r && r->status == 200);
	if (r)
		CHECK_STR(body_of(r), "after");
	http_request_release(cli, r);
}

static void *wake_later(void *arg)
{
	usleep(100 * 1000);
	http_wakeup(arg);
	return NULL;
}

/* http_wakeup ends a long http_poll early (a signal handler uses it). */
static void test_wakeup(void)
{
	struct cs_error err = { 0 };
	pthread_t t;
	int64_t t0, took;

	CHECK(submit(ep, "POST", "/hang", NULL) == 0);
	http_poll(cli, 50, &err);
	t0 = util_mono_ms();
	pthread_create(&t, NULL, wake_later, cli);
	CHECK(http_poll(cli, 4000, &err) == 0);
	took = util_mono_ms() - t0;
	pthread_join(t, NULL);
	fprintf(stderr, "  http_poll woken after %lld ms\n", (long long)took);
	CHECK(took < 3000);
	CHECK(http_next_done(cli) == NULL);
	CHECK_INT(http_in_flight(cli), 1);
	http_abort_all(cli);
	CHECK_INT(http_in_flight(cli), 0);
}

/* A *.localhost name is pinned to 127.0.0.1 and sent as the Host header. */
static void test_localhost_name(void)
{
	struct http_endpoint *e = NULL;
	struct cs_error err = { 0 };
	struct http_request *r;
	char url[64], host[80];

	snprintf(url, sizeof(url), "http://region-a.localhost:%d", srv.port);
	CHECK(http_endpoint_open(cli, url, &opts, &e, &err) == 0);
	if (!e)
		return;
	CHECK_STR(http_endpoint_url(e), url);
	CHECK(submit(e, "POST", "/ok/pinned", NULL) == 0);
	r = next_done(10000);
	CHECK(r && r->status == 200);
	if (r)
		CHECK_STR(body_of(r), "pinned");
	http_request_release(cli, r);
	snprintf(host, sizeof(host), "Host: region-a.localhost:%d\r\n", srv.port);
	pthread_mutex_lock(&srv.mu);
	CHECK_CONTAINS(srv.last_head, host);
	pthread_mutex_unlock(&srv.mu);
}

/*
 * The endpoint policy.  Every refusal below happens in http_endpoint_open, which only
 * parses the URL (curl_url, no resolving, no socket): nothing is connected, so the
 * non-loopback names (192.0.2.1 is TEST-NET-1, .invalid never resolves) are safe.
 */
#define PLAIN_REFUSED "is not allowed: TLS is required for non-loopback hosts (expected " \
	"https://, or http:// only to localhost, *.localhost, 127.0.0.0/8 or [::1])"

static void test_endpoint_policy(void)
{
	static const struct {
		const char *url;
		int ok;
		const char *url_out, *host_out;  /* when ok */
		const char *msg;                 /* the exact message when refused */
	} cases[] = {
		{ "https://onsmqtt.cn-hangzhou.aliyuncs.com", 1,
		  "https://onsmqtt.cn-hangzhou.aliyuncs.com", "onsmqtt.cn-hangzhou.aliyuncs.com", NULL },
		{ "https://onsmqtt.cn-hangzhou.aliyuncs.com/", 1,
		  "https://onsmqtt.cn-hangzhou.aliyuncs.com", "onsmqtt.cn-hangzhou.aliyuncs.com", NULL },
		{ "https://192.0.2.1:8443", 1, "https://192.0.2.1:8443", "192.0.2.1:8443", NULL },
		{ "http://127.0.0.1:18080", 1, "http://127.0.0.1:18080", "127.0.0.1:18080", NULL },
		{ "http://127.1.2.3:18080/", 1, "http://127.1.2.3:18080", "127.1.2.3:18080", NULL },
		{ "http://localhost:18080", 1, "http://localhost:18080", "localhost:18080", NULL },
		{ "http://[::1]:18080", 1, "http://[::1]:18080", "[::1]:18080", NULL },
		{ "http://cn-x.localhost:18080", 1, "http://cn-x.localhost:18080",
		  "cn-x.localhost:18080", NULL },
		/* the messages are endpoint_policy_check's (endpoint.c), shared with the config */
		{ "http://192.0.2.1", 0, NULL, NULL, "endpoint: plain http:// to '192.0.2.1' "
		  PLAIN_REFUSED },
		{ "http://192.0.2.1:80/", 0, NULL, NULL, "endpoint: plain http:// to '192.0.2.1' "
		  PLAIN_REFUSED },
		{ "http://example.invalid", 0, NULL, NULL, "endpoint: plain http:// to 'example.invalid' "
		  PLAIN_REFUSED },
		/* names that only look loopback */
		{ "http://127.0.0.1.example.invalid", 0, NULL, NULL, "endpoint: plain http:// to '127.0.0.1.example.invalid' "
		  PLAIN_REFUSED },
		{ "http://localhost.example.invalid", 0, NULL, NULL, "endpoint: plain http:// to 'localhost.example.invalid' "
		  PLAIN_REFUSED },
		{ "http://[::ffff:192.0.2.1]", 0, NULL, NULL, "endpoint: plain http:// to '[::ffff:192.0.2.1]' "
		  PLAIN_REFUSED },
		{ "ftp://127.0.0.1", 0, NULL, NULL,
		  "endpoint: expected an http:// or https:// URL, got 'ftp://127.0.0.1'" },
		{ "https://example.invalid/api", 0, NULL, NULL,
		  "endpoint: unexpected path '/api' (expected only scheme://host[:port])" },
		{ "not a url", 0, NULL, NULL, "endpoint: expected an http:// or https:// URL, got 'not a url'" },
		{ "", 0, NULL, NULL, "endpoint: expected an http:// or https:// URL, got ''" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_endpoint *e = (struct http_endpoint *)&e;
		struct cs_error err = { 0 };
		int rc = http_endpoint_open(cli, cases[i].url, &opts, &e, &err);

		if (cases[i].ok) {
			CHECK_INT(rc, 0);
			CHECK(e != NULL);
			if (rc == 0 && e) {
				CHECK_STR(http_endpoint_url(e), cases[i].url_out);
				CHECK_STR(http_endpoint_host(e), cases[i].host_out);
			} else {
				fprintf(stderr, "  %s: %s\n", cases[i].url, err.msg);
			}
		} else {
			CHECK_INT(rc, -1);
			CHECK(e == NULL);
			CHECK_INT(err.kind, CS_ERR_CONFIG);
			CHECK_STR(err.msg, cases[i].msg);
		}
	}
}

/* An https-only endpoint never carries a plain http URL: curl refuses the protocol before
 * any connection (the URL points at our own loopback server, so even a failure of this
 * check could not reach anything else; the server counts that nothing arrived). */
static void test_protocol_pinned(void)
{
	struct http_endpoint *e = NULL;
	struct cs_error err = { 0 };
	struct http_request *r;
	char url[64];
	int accepts = get(&srv.accepts);

	CHECK(http_endpoint_open(cli, "https://example.invalid", &opts, &e, &err) == 0);
	if (!e)
		return;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok/leak", srv.port);
	CHECK(http_submit(cli, e, "POST", url, NULL, NULL, &err) == 0);
	r = next_done(10000);
	CHECK(r != NULL);
	if (!r)
		return;
	CHECK_INT(r->result, CURLE_UNSUPPORTED_PROTOCOL);
	CHECK_INT(r->status, 0);
	CHECK_INT(http_result_transient(r->result), 0);
	http_request_release(cli, r);
	usleep(100 * 1000);
	CHECK_INT(get(&srv.accepts), accepts);
}

/* Which transport results a retry may fix. */
static void test_transient(void)
{
	static const struct {
		CURLcode rc;
		int transient;
	} cases[] = {
		{ CURLE_OK, 0 },
		{ CURLE_COULDNT_RESOLVE_HOST, 1 },
		{ CURLE_COULDNT_CONNECT, 1 },
		{ CURLE_OPERATION_TIMEDOUT, 1 },
		{ CURLE_GOT_NOTHING, 1 },
		{ CURLE_SEND_ERROR, 1 },
		{ CURLE_RECV_ERROR, 1 },
		{ CURLE_PARTIAL_FILE, 1 },
		{ CURLE_HTTP2, 1 },
		{ CURLE_HTTP2_STREAM, 1 },
		{ CURLE_SSL_CONNECT_ERROR, 1 },
		{ CURLE_WRITE_ERROR, 1 },
		/* a certificate that does not verify is never retried into acceptance */
		{ CURLE_PEER_FAILED_VERIFICATION, 0 },
		{ CURLE_SSL_CACERT_BADFILE, 0 },
		{ CURLE_UNSUPPORTED_PROTOCOL, 0 },
		{ CURLE_URL_MALFORMAT, 0 },
		{ CURLE_OUT_OF_MEMORY, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_INT(http_result_transient(cases[i].rc), cases[i].transient);
}

int main(void)
{
	struct cs_error err = { 0 };

	if (server_start() < 0) {
		perror("test server");
		return 1;
	}
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", srv.port);
	CHECK(http_client_new(&cli, &err) == 0);
	CHECK(http_endpoint_open(cli, base, &opts, &ep, &err) == 0);
	if (cli && ep) {
		test_answers();
		test_reset();
		test_body_cap();
		test_keep_alive();
		test_concurrent();
		test_timeout();
		test_abort_all();
		test_wakeup();
		test_localhost_name();
		test_endpoint_policy();
		test_protocol_pinned();
	}
	test_transient();
	http_client_free(cli);
	server_stop();
	curl_global_cleanup();
	TEST_DONE();
}
