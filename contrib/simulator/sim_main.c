/*
 * sim_main.c - credsync-sim's HTTP server (libmicrohttpd, one thread per connection) and the
 * routing of each request to the RPC side (sim_api.c), the metadata service (sim_sts.c) or
 * the control endpoints (sim_ctl.c).  It owns the options' and the server state's lifetime
 * (sim_opts.c parses them), the per-thread request buffers and the port file.
 *
 * One thread per connection means a handler that sleeps (--latency, --hang) blocks only its
 * own connection, and lets each thread keep one request context whose buffers are reused
 * from request to request instead of allocated for each.
 */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define EX_OK 0
#define EX_FAIL 1
#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_NOINPUT 66

/* ---- requests ---- */

static pthread_key_t req_key;

static void req_free(void *p)
{
	struct sim_req *r = p;

	buf_release(&r->body);
	buf_release(&r->form);
	buf_release(&r->out);
	buf_release(&r->tmp);
	buf_release(&r->tmp2);
	free(r);
}

/* The calling connection thread's request context, created on first use.  Only valid with
 * MHD_USE_THREAD_PER_CONNECTION: a thread serves one connection, one request at a time. */
static struct sim_req *req_for_thread(void)
{
	struct sim_req *r = pthread_getspecific(req_key);

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return NULL;
		if (pthread_setspecific(req_key, r)) {
			free(r);
			return NULL;
		}
	}
	return r;
}

static enum MHD_Result add_query_param(void *cls, enum MHD_ValueKind kind, const char *key,
				       const char *value)
{
	return sim_add_param(cls, key, value ? value : "") < 0 ? MHD_NO : MHD_YES;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes application/x-www-form-urlencoded in place: '+' is a space, %XX a byte. */
static void form_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '+') {
			*o++ = ' ';
		} else if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			*o++ = (char)(hexval(s[1]) << 4 | hexval(s[2]));
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* Adds the parameters of a form body (a copy in r->form; the raw body stays for v3). */
static void add_form_params(struct sim_req *r)
{
	const char *ct = sim_header(r, "Content-Type");
	char *p;

	if (!r->body.len || !ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33))
		return;
	buf_reset(&r->form);
	buf_append(&r->form, r->body.data, r->body.len);
	if (r->form.oom)
		return;
	for (p = r->form.data; p && *p;) {
		char *amp = strchr(p, '&'), *eq;

		if (amp)
			*amp = '\0';
		eq = strchr(p, '=');
		if (eq)
			*eq = '\0';
		if (*p) {
			form_decode(p);
			if (eq)
				form_decode(eq + 1);
			if (sim_add_param(r, p, eq ? eq + 1 : "") < 0)
				return;
		}
		p = amp ? amp + 1 : NULL;
	}
}

static enum MHD_Result send_reply(struct sim_server *s, struct sim_req *r,
				  const struct sim_reply *rep, int rpc)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int64_t delay = rep->delay_ms + (rpc ? s->opt->latency_ms : 0);

	if (delay > 0)
		sim_sleep_ms(s, delay);
	if (!rep->status)
		return MHD_NO;  /* reset and timeout faults: close without a word */
	/* PERSISTENT is safe: the buffer belongs to this connection's thread and is not touched
	 * again before the next request on the connection, which comes after this response */
	resp = MHD_create_response_from_buffer(r->out.len, r->out.data ? r->out.data : (char *)"",
					       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	if (rep->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rep->content_type);
	if (rpc)
		MHD_add_response_header(resp, "x-acs-request-id", r->request_id);
	if (rep->retry_after_ms >= 0) {
		char v[32];

		snprintf(v, sizeof(v), "%lld", (long long)rep->retry_after_ms);
		MHD_add_response_header(resp, "x-acs-retry-after", v);
	}
	ret = MHD_queue_response(r->conn, rep->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct sim_server *s = cls;
	struct sim_req *r = *con_cls;
	struct sim_reply rep = { .retry_after_ms = -1 };
	int rpc;

	if (!r) {
		/* first call: headers only; the body (if any) follows in later calls */
		r = req_for_thread();
		if (!r)
			return MHD_NO;
		r->conn = conn;
		r->method = method;
		r->url = url;
		buf_reset(&r->body);
		r->body_too_large = 0;
		r->nparams = r->nquery = 0;
		r->too_many_params = 0;
		r->request_id[0] = '\0';
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (r->body.len + *upload_data_size > SIM_MAX_BODY)
			r->body_too_large = 1;
		else
			buf_append(&r->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->body.oom)
		r->body_too_large = 1;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_query_param, r);
	r->nquery = r->nparams;
	add_form_params(r);

	rpc = strncmp(url, "/_sim/", 6) != 0;
	if (!strncmp(url, "/latest/", 8)) {
		sim_imds(s, r, &rep);
		rpc = 0;
	} else if (rpc)
		sim_rpc(s, r, &rep);
	else
		sim_ctl(s, r, &rep);
	return send_reply(s, r, &rep, rpc);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	/* the context belongs to the thread, not the request: only forget it */
	*con_cls = NULL;
}

/* ---- startup ---- */

static int write_port_file(const char *path, unsigned port)
{
	struct cs_buf tmp = CS_BUF_INIT;
	FILE *f;
	int ret = -1;

	buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid());
	if (tmp.oom)
		goto out;
	f = fopen(buf_str(&tmp), "w");
	if (!f) {
		fprintf(stderr, "credsync-sim: %s: cannot create: %s\n", buf_str(&tmp), strerror(errno));
		goto out;
	}
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0) {
		fprintf(stderr, "credsync-sim: %s: write failed: %s\n", buf_str(&tmp), strerror(errno));
		unlink(buf_str(&tmp));
		goto out;
	}
	/* rename is atomic: a reader sees no file or a whole one */
	if (rename(buf_str(&tmp), path) != 0) {
		fprintf(stderr, "credsync-sim: %s: cannot rename into place: %s\n", path,
			strerror(errno));
		unlink(buf_str(&tmp));
		goto out;
	}
	ret = 0;
out:
	buf_release(&tmp);
	return ret;
}

static int resolve(const struct sim_options *o, struct sockaddr_storage *ss, int *ipv6)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	int rc;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(o->listen_host, NULL, &hints, &res);
	if (rc || !res) {
		fprintf(stderr, "credsync-sim: --listen: cannot resolve '%s': %s\n", o->listen_host,
			gai_strerror(rc));
		return -1;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*ipv6 = res->ai_family == AF_INET6;
	if (*ipv6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)o->listen_port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)o->listen_port);
	freeaddrinfo(res);
	return 0;
}

static void seed_rng(struct sim_server *s, uint64_t seed, int seeded)
{
	uint64_t x;
	int i;

	if (!seeded && RAND_bytes((unsigned char *)&seed, sizeof(seed)) != 1)
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	/* xoshiro's state from splitmix64, as its authors recommend */
	x = seed;
	for (i = 0; i < 4; i++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ULL);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		s->rng[i] = z ^ (z >> 31);
	}
	if (RAND_bytes((unsigned char *)&s->reqid_hi, sizeof(s->reqid_hi)) != 1)
		s->reqid_hi = seed ^ 0x5bd1e9955bd1e995ULL;
}

static int load_dataset(struct sim_server *s, const struct sim_options *o)
{
	struct cs_error err = { 0 };
	int64_t t0 = util_mono_ms();
	int rc;

	if (o->dataset)
		rc = sim_data_load_file(&s->data, o->dataset, &err);
	else
		rc = sim_data_generate(&s->data, o->instances, o->groups, o->devices, &err);
	if (rc < 0) {
		fprintf(stderr, "credsync-sim: %s\n", err.msg);
		if (err.kind == CS_ERR_CONFIG)
			return EX_DATAERR;
		if (err.kind == CS_ERR_RUNTIME && o->dataset)
			return EX_NOINPUT;
		return EX_FAIL;
	}
	{
		size_t i;

		/* instances sorted by id take the regions in turn */
		for (i = 0; i < s->data.ninst; i++)
			s->data.inst[i].region = o->nregions ? o->regions[i % o->nregions]
							     : SIM_DEFAULT_REGION;
	}
	if (o->verbose) {
		size_t i, j, ids = 0, groups = 0;

		for (i = 0; i < s->data.ninst; i++)
			for (j = 0; j < s->data.inst[i].ngroups; j++, groups++)
				ids += s->data.inst[i].groups[j].n;
		fprintf(stderr, "credsync-sim: %zu instances, %zu groups, %zu client IDs in %lld ms\n",
			s->data.ninst, groups, ids, (long long)(util_mono_ms() - t0));
	}
	return EX_OK;
}

int main(int argc, char **argv)
{
	struct sim_options opt = { 0 };
	struct sim_server srv = { 0 };
	struct MHD_Daemon *d = NULL;
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage ss;
	sigset_t stop;
	unsigned port;
	int rc, ipv6 = 0, sig = 0, lock_ready = 0, key_ready = 0;
	int ret = EX_FAIL;

	rc = sim_options_parse(argc, argv, &opt);
	if (rc) {
		ret = rc > 0 ? EX_OK : EX_USAGE;
		goto out;
	}
	if (resolve(&opt, &ss, &ipv6) < 0) {
		ret = EX_USAGE;
		goto out;
	}
	srv.opt = &opt;
	seed_rng(&srv, opt.seed, opt.seed_set);
	if (pthread_mutex_init(&srv.lock, NULL)) {
		fputs("credsync-sim: cannot create a mutex\n", stderr);
		goto out;
	}
	lock_ready = 1;
	if (pthread_key_create(&req_key, req_free)) {
		fputs("credsync-sim: cannot create a thread key\n", stderr);
		goto out;
	}
	key_ready = 1;
	if (sim_nonces_init(&srv.nonces, SIM_NONCE_WINDOW) < 0) {
		fputs("credsync-sim: out of memory for the nonce set\n", stderr);
		goto out;
	}
	ret = load_dataset(&srv, &opt);
	if (ret != EX_OK)
		goto out;
	ret = EX_FAIL;
	sim_bucket_init(&srv.qps, opt.qps, opt.qps / 10 > 1 ? opt.qps / 10 : 1);
	sim_bucket_init(&srv.list_group, opt.list_group_qps,
			opt.list_group_qps > 1 ? opt.list_group_qps : 1);

	/* every thread MHD starts inherits this mask, so only sigwait() below sees the signals */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			     MHD_USE_POLL | (ipv6 ? MHD_USE_IPv6 : 0) |
			     (opt.verbose ? MHD_USE_ERROR_LOG : 0),
			     (uint16_t)opt.listen_port, NULL, NULL, on_request, &srv,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			     MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024,
			     MHD_OPTION_CONNECTION_LIMIT, 1000u,
			     MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
			     MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "credsync-sim: cannot listen on %s%s%s:%u: %s\n", ipv6 ? "[" : "",
			opt.listen_host, ipv6 ? "]" : "", opt.listen_port,
			errno ? strerror(errno) : "libmicrohttpd failed to start");
		goto out;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	port = info ? info->port : opt.listen_port;
	if (opt.port_file && write_port_file(opt.port_file, port) < 0)
		goto out;
	fprintf(stderr, "credsync-sim listening on http://%s%s%s:%u\n", ipv6 ? "[" : "",
		opt.listen_host, ipv6 ? "]" : "", port);

	while (sigwait(&stop, &sig) == 0)
		if (sig == SIGINT || sig == SIGTERM)
			break;
	if (opt.verbose)
		fprintf(stderr, "credsync-sim: %s, stopping\n", strsignal(sig));
	ret = EX_OK;
out:
	atomic_store(&srv.stopping, 1);
	if (d)
		MHD_stop_daemon(d);
	sim_data_release(&srv.data);
	sim_nonces_release(&srv.nonces);
	sim_sts_release(&srv);
	if (lock_ready)
		pthread_mutex_destroy(&srv.lock);
	if (key_ready)
		pthread_key_delete(req_key);
	sim_options_release(&opt);
	return ret;
}
