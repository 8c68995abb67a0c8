/*
 * sim_ctl.c - the unsigned /_sim control endpoints tests drive the simulator with: mutate the
 * dataset, read and reset the counters, dump the data.
 *
 * Control requests are not RPC traffic: they are not counted, signed, delayed or faulted.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MUTATE_MAX 1000000

static void ctl_reply(struct sim_reply *rep, unsigned status)
{
	rep->status = status;
	rep->content_type = "application/json";
}

static void ctl_error(struct sim_req *r, struct sim_reply *rep, unsigned status,
		      const char *what, const char *arg)
{
	char q[160];

	buf_reset(&r->out);
	buf_puts(&r->out, "{\"error\":");
	util_quote_bytes(arg, strlen(arg), q, sizeof(q));
	buf_reset(&r->tmp);
	buf_puts(&r->tmp, what);
	buf_puts(&r->tmp, q);
	if (*what && what[strlen(what) - 1] == '\'')
		buf_putc(&r->tmp, '\'');
	sim_json_str(&r->out, buf_str(&r->tmp));
	buf_puts(&r->out, "}\n");
	ctl_reply(rep, status);
}

static void put_counters(struct cs_buf *out, const char *name, const struct sim_counters *c)
{
	size_t i;

	buf_printf(out, ",\"%s\":{", name);
	for (i = 0; i < c->n; i++) {
		if (i)
			buf_putc(out, ',');
		sim_json_str(out, c->v[i].name);
		buf_printf(out, ":%llu", (unsigned long long)c->v[i].n);
	}
	buf_putc(out, '}');
}

static void ctl_stats(struct sim_server *s, struct sim_req *r, struct sim_reply *rep)
{
	const struct sim_stats *st = &s->stats;
	struct cs_buf *out = &r->out;

	buf_reset(out);
	pthread_mutex_lock(&s->lock);
	buf_printf(out, "{\"requests\":%llu,\"rpc_requests\":%llu,\"pages\":%llu,\"throttled\":%llu"
		   ",\"issued\":%llu",
		   (unsigned long long)st->requests, (unsigned long long)st->rpc_requests,
		   (unsigned long long)st->pages, (unsigned long long)st->throttled,
		   (unsigned long long)st->issued);
	put_counters(out, "by_action", &st->by_action);
	put_counters(out, "by_code", &st->by_code);
	put_counters(out, "faults", &st->faults);
	buf_printf(out, ",\"blocks\":%llu", (unsigned long long)s->blocks);
	pthread_mutex_unlock(&s->lock);
	buf_puts(out, "}\n");
	ctl_reply(rep, 200);
}

static int parse_amount(const char *s, long *out)
{
	char *end;
	long v;

	if (!s) {
		*out = 0;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -1;
	v = strtol(s, &end, 10);
	if (*end || v < 0 || v > MUTATE_MAX)
		return -1;
	*out = v;
	return 0;
}

static void ctl_mutate(struct sim_server *s, struct sim_req *r, struct sim_reply *rep)
{
	const char *inst_id = sim_param(r, "instance"), *group_id = sim_param(r, "group");
	struct cs_buf added = CS_BUF_INIT, removed = CS_BUF_INIT;
	size_t i, j, nadded = 0, nremoved = 0, matched = 0;
	long add, remove, k;
	int oom = 0;

	if (parse_amount(sim_param(r, "add"), &add) < 0) {
		ctl_error(r, rep, 400, "add: expected an integer from 0 to 1000000, got '",
			  sim_param(r, "add"));
		return;
	}
	if (parse_amount(sim_param(r, "remove"), &remove) < 0) {
		ctl_error(r, rep, 400, "remove: expected an integer from 0 to 1000000, got '",
			  sim_param(r, "remove"));
		return;
	}
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->data.ninst; i++) {
		struct sim_instance *in = &s->data.inst[i];

		if (inst_id && strcmp(inst_id, in->id))
			continue;
		for (j = 0; j < in->ngroups; j++) {
			struct sim_group *g = &in->groups[j];

			if (group_id && strcmp(group_id, g->id))
				continue;
			matched++;
			/* remove first, so "add=1&remove=1" never takes back what it just added */
			for (k = 0; k < remove && g->n; k++)
				sim_group_remove_at(g, (size_t)(sim_rand(s) % g->n), &removed,
						    &nremoved);
			for (k = 0; k < add; k++) {
				const char *id = sim_group_add_new(g);

				if (!id) {
					oom = 1;
					break;
				}
				sim_json_item(&added, &nadded, id);
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (oom || added.oom || removed.oom) {
		ctl_error(r, rep, 500, "out of memory", "");
	} else if (!matched) {
		buf_reset(&r->tmp2);
		buf_printf(&r->tmp2, "%s%s%s", inst_id ? inst_id : "", group_id ? "/" : "",
			   group_id ? group_id : "");
		ctl_error(r, rep, 404, "no group matches '", buf_str(&r->tmp2));
	} else {
		buf_reset(&r->out);
		buf_puts(&r->out, "{\"added\":[");
		buf_append(&r->out, buf_str(&added), added.len);
		buf_puts(&r->out, "],\"removed\":[");
		buf_append(&r->out, buf_str(&removed), removed.len);
		buf_puts(&r->out, "]}\n");
		ctl_reply(rep, 200);
	}
	buf_release(&added);
	buf_release(&removed);
}

void sim_ctl(struct sim_server *s, struct sim_req *r, struct sim_reply *rep)
{
	static const struct {
		const char *path;
		const char *method;
	} routes[] = {
		{ "/_sim/mutate", "POST" },
		{ "/_sim/stats", "GET" },
		{ "/_sim/reset-stats", "POST" },
		{ "/_sim/dump", "GET" },
	};
	size_t i;

	if (sim_sts_ctl(s, r, rep))
		return;
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (!strcmp(r->url, routes[i].path))
			break;
	if (i == sizeof(routes) / sizeof(routes[0])) {
		ctl_error(r, rep, 404, "unknown control endpoint '", r->url);
		return;
	}
	if (strcmp(r->method, routes[i].method)) {
		buf_reset(&r->tmp2);
		buf_printf(&r->tmp2, "%s needs %s, not '", routes[i].path, routes[i].method);
		ctl_error(r, rep, 405, buf_str(&r->tmp2), r->method);
		return;
	}
	switch (i) {
	case 0:
		ctl_mutate(s, r, rep);
		break;
	case 1:
		ctl_stats(s, r, rep);
		break;
	case 2:
		pthread_mutex_lock(&s->lock);
		memset(&s->stats, 0, sizeof(s->stats));
		s->blocks = 0; /* the count; a block in force stays until it ends */
		pthread_mutex_unlock(&s->lock);
		buf_reset(&r->out);
		buf_puts(&r->out, "{\"reset\":true}\n");
		ctl_reply(rep, 200);
		break;
	default:
		buf_reset(&r->out);
		pthread_mutex_lock(&s->lock);
		sim_data_dump(&s->data, &r->out);
		pthread_mutex_unlock(&s->lock);
		ctl_reply(rep, 200);
		break;
	}
}
