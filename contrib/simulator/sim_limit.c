/*
 * sim_limit.c - the rate limits: token buckets (the server-wide --qps, ListGroupId's own
 * limit) and the service's per-source limits, a bucket per source address and API
 * (--bucket) and the per-address block (--block-above, --block-for).
 */
#include "sim.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

void sim_bucket_init(struct sim_bucket *b, double rate, double burst)
{
	b->rate = rate;
	b->burst = burst;
	b->tokens = burst;
	b->last_us = sim_now_us();
}

/* Takes one token; the lock must be held.  Returns 1 when there was one. */
static int bucket_take(struct sim_bucket *b)
{
	int64_t now = sim_now_us();

	b->tokens += (double)(now - b->last_us) * b->rate / 1e6;
	if (b->tokens > b->burst)
		b->tokens = b->burst;
	b->last_us = now;
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}

int sim_bucket_take_locked(struct sim_server *s, struct sim_bucket *b)
{
	int ok;

	pthread_mutex_lock(&s->lock);
	ok = bucket_take(b);
	pthread_mutex_unlock(&s->lock);
	return ok;
}

/* The client's address as text ("?" when MHD cannot say). */
static void source_addr(struct sim_req *r, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(out, len, "?");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len);
}

/* The source's entry for action; the lock must be held.  NULL when the table is full. */
static struct sim_source *source_for(struct sim_server *s, const char *addr, const char *action)
{
	const struct sim_options *o = s->opt;
	struct sim_source *src;
	size_t i;

	for (i = 0; i < s->nsources; i++)
		if (!strcmp(s->sources[i].addr, addr) && !strcmp(s->sources[i].action, action))
			return &s->sources[i];
	if (s->nsources == SIM_MAX_SOURCES)
		return NULL;
	src = &s->sources[s->nsources++];
	memset(src, 0, sizeof(*src));
	snprintf(src->addr, sizeof(src->addr), "%s", addr);
	snprintf(src->action, sizeof(src->action), "%s", action);
	sim_bucket_init(&src->bucket, o->bucket_rate,
			o->bucket_burst > 0 ? o->bucket_burst : (o->bucket_rate > 1 ? o->bucket_rate : 1));
	sim_bucket_init(&src->block, o->block_above, o->block_above > 1 ? o->block_above : 1);
	return src;
}

/*
 * The service's per-source limits, as the real one applies them: a token bucket per source
 * address and API (SystemOverFlow, with the status the service uses now), and above a
 * higher rate the source is blocked outright for a while (every request refused, whatever
 * the API), which a client must never provoke.  Returns 1 when the request was refused.
 */
int sim_source_limits(struct sim_server *s, struct sim_req *r, const struct sim_call *call,
			 struct sim_reply *rep)
{
	const struct sim_options *o = s->opt;
	struct sim_source *src;
	char addr[48];
	int64_t now = sim_now_us();
	int blocked = 0, throttled = 0;

	if (o->bucket_rate <= 0 && o->block_above <= 0)
		return 0;
	source_addr(r, addr, sizeof(addr));
	pthread_mutex_lock(&s->lock);
	/* the block is per address, across APIs: keyed with an empty action */
	if (o->block_above > 0 && (src = source_for(s, addr, ""))) {
		if (src->blocked_until_us > now) {
			blocked = 1;
		} else if (!bucket_take(&src->block)) {
			src->blocked_until_us = now + o->block_for_ms * 1000;
			s->blocks++;
			blocked = 1;
		}
	}
	if (!blocked && o->bucket_rate > 0 && call->action &&
	    (src = source_for(s, addr, call->action)) && !bucket_take(&src->bucket))
		throttled = 1;
	pthread_mutex_unlock(&s->lock);
	if (blocked) {
		sim_error(r, rep, 403, "Forbidden.IpBlocked",
			  "Your IP address has been blocked for sending requests above the allowed "
			  "rate. Try again later.");
		return 1;
	}
	if (throttled) {
		sim_throttled(s, r, rep, o->throttle_status, "SystemOverFlow", SIM_MSG_OVERFLOW);
		return 1;
	}
	return 0;
}
