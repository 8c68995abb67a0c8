/* http.c - libcurl multi transfers with pooled, reused easy handles; see http.h. */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "endpoint.h"

struct http_endpoint {
	char *url;        /* scheme://host[:port], no trailing slash */
	char *host;       /* host[:port] for the Host header */
	const char *protocols;       /* endpoint_policy_check's curl_protocols: the scheme only */
	struct curl_slist *resolve;  /* a *.localhost host pinned to 127.0.0.1, else NULL */
	struct http_endpoint_opts opts;
	char *ca_file;
	CURL **pool;      /* idle easy handles, reused for keep-alive */
	size_t npool, cappool;
	struct http_endpoint *next;
};

struct http_client {
	CURLM *multi;
	struct http_endpoint *endpoints;
	struct http_request *done_head, *done_tail;
	struct http_request *active;  /* in flight, for http_abort_all */
	int in_flight;
	int wake[2];      /* self-pipe: a signal handler writes, curl_multi_poll wakes */
};

static int curl_ready;

int http_client_new(struct http_client **out, struct cs_error *err)
{
	struct http_client *c;

	*out = NULL;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return cs_error_set(err, CS_ERR_RUNTIME, "libcurl initialisation failed");
		curl_ready = 1;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	c->wake[0] = c->wake[1] = -1;
	c->multi = curl_multi_init();
	if (!c->multi || pipe(c->wake) < 0) {
		http_client_free(c);
		return cs_error_set(err, CS_ERR_RUNTIME, "cannot set up HTTP transfers");
	}
	fcntl(c->wake[0], F_SETFL, O_NONBLOCK);
	fcntl(c->wake[1], F_SETFL, O_NONBLOCK);
	fcntl(c->wake[0], F_SETFD, FD_CLOEXEC);
	fcntl(c->wake[1], F_SETFD, FD_CLOEXEC);
	/* connections are reused across requests; keep a few more than we run at once */
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 64L);
	*out = c;
	return 0;
}

static void request_free(struct http_request *r)
{
	if (!r)
		return;
	curl_slist_free_all(r->headers);
	buf_release(&r->body);
	free(r);
}

void http_client_free(struct http_client *c)
{
	struct http_endpoint *ep, *next;
	struct http_request *r, *rn;

	if (!c)
		return;
	http_abort_all(c);
	for (r = c->done_head; r; r = rn) {
		rn = r->next;
		http_request_release(c, r);
	}
	for (ep = c->endpoints; ep; ep = next) {
		size_t i;

		next = ep->next;
		for (i = 0; i < ep->npool; i++)
			curl_easy_cleanup(ep->pool[i]);
		free(ep->pool);
		curl_slist_free_all(ep->resolve);
		free(ep->url);
		free(ep->host);
		free(ep->ca_file);
		free(ep);
	}
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->wake[0] >= 0)
		close(c->wake[0]);
	if (c->wake[1] >= 0)
		close(c->wake[1]);
	free(c);
}

int http_endpoint_open(struct http_client *c, const char *base_url,
		       const struct http_endpoint_opts *opts, struct http_endpoint **out,
		       struct cs_error *err)
{
	struct endpoint_info info;
	struct http_endpoint *ep = NULL;
	const char *ca = opts->ca_file ? opts->ca_file : getenv("CURL_CA_BUNDLE");
	int ret = -1;

	*out = NULL;
	/* the config checked the same rule already; a URL from elsewhere (init's regions) is
	 * held to it here */
	if (endpoint_policy_check(base_url, &info, err) < 0)
		return -1;
	ep = calloc(1, sizeof(*ep));
	if (!ep || !(ep->url = strdup(info.url)) || !(ep->host = strdup(info.authority)) ||
	    (ca && !(ep->ca_file = strdup(ca)))) {
		cs_error_set(err, CS_ERR_NOMEM, "out of memory");
		goto out;
	}
	ep->protocols = info.curl_protocols;
	if (info.loopback && info.host_kind == ENDPOINT_HOST_NAME &&
	    strcasecmp(info.host, "localhost")) {
		/* a name under .localhost: resolved here, never by a resolver that might not
		 * know RFC 6761 */
		char pin[ENDPOINT_HOST_MAX + 32];

		snprintf(pin, sizeof(pin), "%s:%d:127.0.0.1", info.host,
			 info.port ? info.port : info.tls ? 443 : 80);
		if (!(ep->resolve = curl_slist_append(NULL, pin))) {
			cs_error_set(err, CS_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	ep->opts = *opts;
	ep->opts.ca_file = ep->ca_file;
	if (!ep->opts.max_body)
		ep->opts.max_body = HTTP_DEFAULT_MAX_BODY;
	ep->next = c->endpoints;
	c->endpoints = ep;
	*out = ep;
	ep = NULL;
	ret = 0;
out:
	if (ep) {
		curl_slist_free_all(ep->resolve);
		free(ep->host);
		free(ep->url);
		free(ep->ca_file);
		free(ep);
	}
	return ret;
}

const char *http_endpoint_host(const struct http_endpoint *ep)
{
	return ep->host;
}

const char *http_endpoint_url(const struct http_endpoint *ep)
{
	return ep->url;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_request *r = arg;
	size_t n = size * nmemb;

	if (r->body.len + n > r->ep->opts.max_body) {
		r->body_too_large = 1;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	buf_append(&r->body, data, n);
	return r->body.oom ? 0 : n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_request *r = arg;
	size_t n = size * nmemb;
	static const char name[] = "x-acs-retry-after:";

	if (n > sizeof(name) && !strncasecmp(data, name, sizeof(name) - 1)) {
		char tmp[32];
		size_t len = n - (sizeof(name) - 1);
		char *end;
		long long v;

		if (len >= sizeof(tmp))
			len = sizeof(tmp) - 1;
		memcpy(tmp, data + sizeof(name) - 1, len);
		tmp[len] = '\0';
		v = strtoll(tmp, &end, 10);
		if (end != tmp && v >= 0)
			r->retry_after_ms = v;
	}
	return n;
}

static CURL *easy_get(struct http_endpoint *ep)
{
	CURL *e;

	if (ep->npool)
		return ep->pool[--ep->npool];
	e = curl_easy_init();
	if (!e)
		return NULL;
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ep->opts.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ep->opts.request_timeout_ms);
	/* only the endpoint's own scheme, for a redirect too should one ever be followed */
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, ep->protocols);
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, ep->protocols);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "credsync/" CREDSYNC_VERSION);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	/* verification stays on (the defaults) for every host, loopback too: endpoint.h has no
	 * way to turn it off, and only the bundle may change */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ep->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, ep->ca_file);
	if (ep->resolve)
		curl_easy_setopt(e, CURLOPT_RESOLVE, ep->resolve);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	return e;
}

int http_submit(struct http_client *c, struct http_endpoint *ep, const char *method,
		const char *url, struct curl_slist *headers, void *user, struct cs_error *err)
{
	struct http_request *r = calloc(1, sizeof(*r));

	if (!r) {
		curl_slist_free_all(headers);
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	}
	r->ep = ep;
	r->headers = headers;
	r->user = user;
	r->retry_after_ms = -1;
	r->easy = easy_get(ep);
	if (!r->easy) {
		request_free(r);
		return cs_error_set(err, CS_ERR_NOMEM, "cannot create a transfer");
	}
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(r->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, 0L);
	} else {
		curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
	}
	if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
		http_request_release(c, r);
		return cs_error_set(err, CS_ERR_RUNTIME, "cannot start a transfer");
	}
	r->act_next = c->active;
	if (c->active)
		c->active->act_prev = r;
	c->active = r;
	c->in_flight++;
	return 0;
}

static void active_unlink(struct http_client *c, struct http_request *r)
{
	if (r->act_prev)
		r->act_prev->act_next = r->act_next;
	else
		c->active = r->act_next;
	if (r->act_next)
		r->act_next->act_prev = r->act_prev;
	r->act_prev = r->act_next = NULL;
	c->in_flight--;
}

static void collect_done(struct http_client *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left))) {
		struct http_request *r = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		r->result = m->data.result;
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
		curl_multi_remove_handle(c->multi, r->easy);
		active_unlink(c, r);
		r->next = NULL;
		if (c->done_tail)
			c->done_tail->next = r;
		else
			c->done_head = r;
		c->done_tail = r;
	}
}

int http_poll(struct http_client *c, int timeout_ms, struct cs_error *err)
{
	struct curl_waitfd wfd = { .fd = c->wake[0], .events = CURL_WAIT_POLLIN };
	int running = 0;
	CURLMcode mc;
	char drain[64];

	mc = curl_multi_perform(c->multi, &running);
	if (mc == CURLM_OK)
		collect_done(c);
	if (mc == CURLM_OK && !c->done_head && timeout_ms > 0) {
		wfd.revents = 0;
		mc = curl_multi_poll(c->multi, &wfd, 1, timeout_ms, NULL);
		if (mc == CURLM_OK)
			mc = curl_multi_perform(c->multi, &running);
		if (mc == CURLM_OK)
			collect_done(c);
	}
	while (read(c->wake[0], drain, sizeof(drain)) > 0)
		;
	if (mc != CURLM_OK)
		return cs_error_set(err, CS_ERR_RUNTIME, "HTTP transfer loop: %s",
				    curl_multi_strerror(mc));
	return 0;
}

void http_wakeup(struct http_client *c)
{
	int saved = errno;
	ssize_t n = write(c->wake[1], "x", 1);

	(void)n;
	errno = saved;
}

struct http_request *http_next_done(struct http_client *c)
{
	struct http_request *r = c->done_head;

	if (r) {
		c->done_head = r->next;
		if (!c->done_head)
			c->done_tail = NULL;
		r->next = NULL;
	}
	return r;
}

void http_request_release(struct http_client *c, struct http_request *r)
{
	struct http_endpoint *ep;

	(void)c;
	if (!r)
		return;
	ep = r->ep;
	if (r->easy) {
		/* the easy handle goes back to the pool; it keeps no pointer to r */
		curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, NULL);
		if (ep->npool == ep->cappool) {
			size_t cap = ep->cappool ? ep->cappool * 2 : 8;
			CURL **p = realloc(ep->pool, cap * sizeof(*p));

			if (!p) {
				curl_easy_cleanup(r->easy);
				r->easy = NULL;
			} else {
				ep->pool = p;
				ep->cappool = cap;
			}
		}
		if (r->easy)
			ep->pool[ep->npool++] = r->easy;
	}
	request_free(r);
}

void http_abort_all(struct http_client *c)
{
	if (!c || !c->multi)
		return;
	while (c->active) {
		struct http_request *r = c->active;

		curl_multi_remove_handle(c->multi, r->easy);
		active_unlink(c, r);
		http_request_release(c, r);
	}
}

int http_in_flight(const struct http_client *c)
{
	return c->in_flight;
}

int http_result_transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_WRITE_ERROR: /* our body cap or out of memory: may be a passing proxy page */
		return 1;
	default:
		return 0;
	}
}
