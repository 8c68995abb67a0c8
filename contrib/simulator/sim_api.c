/*
 * sim_api.c - the RPC side of the simulator: one request on "/" goes through fault draw,
 * authentication, version, the server-wide rate limit, injected errors and finally the
 * action (ListDeviceCredentialClientId, ListGroupId; the secret-returning actions are
 * refused and counted).  It owns the fault table; the error body and RequestIds are
 * sim_util.c's, the rate limits sim_limit.c's.
 *
 * The success body of ListDeviceCredentialClientId is written by hand, under the lock, into
 * the request's reusable buffer: it is the hot path of every benchmark.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MSG_THROTTLED "Request was denied due to user flow control."
#define MSG_OVERFLOW SIM_MSG_OVERFLOW
#define MSG_TOKEN_OVERFLOW "You have applied for tokens too many times. Please try again later."
#define MSG_INTERNAL "An error occurred while processing your request. Try again later."
#define MSG_UNAVAILABLE "The request has failed due to a temporary failure of the server."
#define MSG_STS "An error occurred while checking the account information by the STS token."
#define MSG_PARAMS "An error occurred while validating the parameters. " \
	"The parameters may be missing or invalid."
#define MSG_PARAM "An error occurred while validating the parameter. " \
	"The parameter may be missing or invalid."
#define MSG_INSTANCE "An error occurred while validating the permissions of the instance. " \
	"Please verify the account that created the instance and its permissions settings."
#define MSG_GROUP "An error occurred while validating the resource permissions. Please check " \
	"the account that created the instance, topic, and GroupId, and check their " \
	"permission settings."

/* ---- faults ---- */

static const struct {
	const char *code;
	unsigned status;
	int throttle;
	const char *message;
} known_codes[] = {
	{ "SystemOverFlow", 500, 1, MSG_OVERFLOW },
	{ "ApplyTokenOverFlow", 400, 1, MSG_TOKEN_OVERFLOW },
	{ "InternalError", 500, 0, MSG_INTERNAL },
	{ "Throttling", 400, 1, MSG_THROTTLED },
	{ "Throttling.User", 400, 1, MSG_THROTTLED },
	{ "Throttling.Api", 400, 1, MSG_THROTTLED },
	{ "ServiceUnavailable", 503, 0, MSG_UNAVAILABLE },
	{ "CheckAccountInfoFailed", 400, 0, MSG_STS },
	{ "InstancePermissionCheckFailed", 400, 0, MSG_INSTANCE },
	{ "PermissionCheckFailed", 400, 0, MSG_GROUP },
	{ "ParameterCheckFailed", 400, 0, MSG_PARAMS },
	{ "ApiNotSupport", 404, 0, "The specified API is not supported." },
	{ "InvalidAccessKeyId.NotFound", 404, 0, "Specified access key is not found." },
	{ "SignatureDoesNotMatch", 400, 0, "Specified signature is not matched with our calculation." },
};

static const struct {
	const char *code;
	enum sim_fault_kind kind;
} network_faults[] = {
	{ "reset", SIM_FAULT_RESET },
	{ "timeout", SIM_FAULT_TIMEOUT },
	{ "truncated", SIM_FAULT_TRUNCATED },
	{ "garbage", SIM_FAULT_GARBAGE },
	{ "html", SIM_FAULT_HTML },
};

int sim_fault_classify(struct sim_fault *f)
{
	const char *p;
	size_t i;

	if (!*f->code)
		return -1;
	for (p = f->code; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return -1;
	for (i = 0; i < sizeof(network_faults) / sizeof(network_faults[0]); i++) {
		if (!strcmp(f->code, network_faults[i].code)) {
			f->kind = network_faults[i].kind;
			return 0;
		}
	}
	f->kind = SIM_FAULT_ERROR;
	f->status = 400;
	f->message = "The request failed (fault injected by credsync-sim).";
	for (i = 0; i < sizeof(known_codes) / sizeof(known_codes[0]); i++) {
		if (!strcmp(f->code, known_codes[i].code)) {
			f->status = known_codes[i].status;
			f->throttle = known_codes[i].throttle;
			f->message = known_codes[i].message;
		}
	}
	return 0;
}

/* One uniform draw picks at most one of the faults that apply to this call's scope. */
static const struct sim_fault *draw_fault(struct sim_server *s, const struct sim_call *call)
{
	const struct sim_options *o = s->opt;
	double u, acc = 0;
	size_t i;

	if (!o->nfaults)
		return NULL;
	pthread_mutex_lock(&s->lock);
	u = sim_rand_unit(s);
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < o->nfaults; i++) {
		const struct sim_fault *f = &o->faults[i];

		if (f->instance && (!call->instance || strcmp(f->instance, call->instance)))
			continue;
		if (f->group && (!call->group || strcmp(f->group, call->group)))
			continue;
		acc += f->rate;
		if (u < acc)
			return f;
	}
	return NULL;
}

static const char nginx_502[] =
	"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
	"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
	"</body>\r\n</html>\r\n";

/* Applies a fault that acts before authentication; truncation waits for the real reply. */
static void network_fault(struct sim_server *s, struct sim_req *r, const struct sim_fault *f,
			  struct sim_reply *rep)
{
	unsigned char junk[64];
	size_t i;

	rep->fault = f->code;
	buf_reset(&r->out);
	switch (f->kind) {
	case SIM_FAULT_RESET:
		rep->status = 0;
		break;
	case SIM_FAULT_TIMEOUT:
		rep->status = 0;
		rep->delay_ms = s->opt->hang_ms;
		break;
	case SIM_FAULT_GARBAGE:
		pthread_mutex_lock(&s->lock);
		for (i = 0; i < sizeof(junk); i += 8) {
			uint64_t v = sim_rand(s);

			memcpy(junk + i, &v, 8);
		}
		pthread_mutex_unlock(&s->lock);
		/* 0xFF never occurs in UTF-8 and cannot start JSON: the body is surely garbage */
		junk[0] = 0xFF;
		buf_append(&r->out, junk, sizeof(junk));
		rep->status = 200;
		rep->content_type = "application/json;charset=utf-8";
		break;
	case SIM_FAULT_HTML:
		buf_append(&r->out, nginx_502, sizeof(nginx_502) - 1);
		rep->status = 502;
		rep->content_type = "text/html";
		break;
	default:
		break;
	}
}

/* ---- ListDeviceCredentialClientId ---- */

/* Parses a plain decimal (digits only, at most 18 of them).  Returns 0 or -1. */
static int parse_count(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t n = 0;

	for (; *s; s++, n++) {
		if (*s < '0' || *s > '9' || n == 18)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (!n)
		return -1;
	*out = v;
	return 0;
}

static void put_u64(struct cs_buf *b, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf_append(b, tmp + i, sizeof(tmp) - i);
}

static void quoted(const char *s, char *out, size_t outlen)
{
	util_quote_bytes(s, strlen(s), out, outlen);
}

/* ---- regions and RAM denials ---- */

/* An instance as the request's region sees it: an instance of another region is as unknown
 * as one that does not exist (the real endpoint of a region serves only its own).  Lock
 * held. */
static struct sim_instance *instance_here(struct sim_server *s, const struct sim_req *r,
					  const char *id)
{
	struct sim_instance *in = sim_data_instance(&s->data, id);
	char region[64];

	if (in && sim_req_region(r, region, sizeof(region)) && strcmp(region, in->region))
		return NULL;
	return in;
}

/* 1 when --deny refuses this action here (filled the reply). */
static int denied(struct sim_server *s, struct sim_req *r, const struct sim_call *call,
		  struct sim_reply *rep)
{
	const struct sim_options *o = s->opt;
	char region[64];
	int has_region = sim_req_region(r, region, sizeof(region));
	size_t i;

	for (i = 0; i < o->ndenies; i++) {
		const struct sim_deny *d = &o->denies[i];

		if (strcmp(d->action, call->action))
			continue;
		if (d->scope && !(has_region && !strcmp(d->scope, region)) &&
		    !(call->instance && !strcmp(d->scope, call->instance)))
			continue;
		sim_error(r, rep, 403, "Forbidden.RAM",
			  "User not authorized to operate on the specified resource, or this API "
			  "doesn't support RAM.");
		return 1;
	}
	return 0;
}

static void list_clients(struct sim_server *s, struct sim_req *r, struct sim_reply *rep)
{
	static const char *const required[] = { "InstanceId", "GroupId", "PageNo", "PageSize" };
	const struct sim_options *o = s->opt;
	const char *tok = sim_param(r, "NextToken"), *v[4];
	struct sim_instance *in;
	struct sim_group *g;
	struct cs_buf *out = &r->out;
	uint64_t page_no, page_size, eff, start, end, i;
	int use_token, bad_token = 0;
	char q[128];

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		v[i] = sim_param(r, required[i]);
		if (!v[i] || !*v[i]) {
			sim_error(r, rep, 400, "ParameterCheckFailed", MSG_PARAMS " Missing: %s.",
				  required[i]);
			return;
		}
	}
	if (parse_count(v[3], &page_size) < 0 || page_size < 1 || page_size > 100) {
		quoted(v[3], q, sizeof(q));
		sim_error(r, rep, 400, "InvalidParameter.PageSize",
			  MSG_PARAM " PageSize must be an integer from 1 to 100, not '%s'.", q);
		return;
	}
	if (parse_count(v[2], &page_no) < 0 || page_no < 1) {
		quoted(v[2], q, sizeof(q));
		sim_error(r, rep, 400, "InvalidParameter.PageNo",
			  MSG_PARAM " PageNo must be an integer of at least 1, not '%s'.", q);
		return;
	}
	eff = o->page_cap && (uint64_t)o->page_cap < page_size ? (uint64_t)o->page_cap : page_size;
	/* --no-token is pure PageNo paging: a token the client sends anyway is ignored */
	use_token = tok && *tok && !o->no_token;
	if (use_token && sim_token_decode(&r->tmp, tok) < 0)
		bad_token = 1;

	pthread_mutex_lock(&s->lock);
	in = instance_here(s, r, v[0]);
	g = in ? sim_data_group(in, v[1]) : NULL;
	if (!g || bad_token) {
		pthread_mutex_unlock(&s->lock);
		if (!in)
			sim_error(r, rep, 400, "InstancePermissionCheckFailed", MSG_INSTANCE);
		else if (!g)
			sim_error(r, rep, 400, "PermissionCheckFailed", MSG_GROUP);
		else
			sim_error(r, rep, 400, "InvalidParameter.NextToken",
				  MSG_PARAM " NextToken is not a token this service issued.");
		return;
	}
	/*
	 * The data moves under a crawler's feet, as it does on the real service: between the
	 * pages of a walk (before a page that continues one), never after its last page, so the
	 * state a finished walk leaves behind is the one its last page saw.
	 */
	if (o->churn > 0 && (use_token || page_no > 1) && sim_rand_unit(s) < o->churn) {
		if (g->n)
			sim_group_remove_at(g, (size_t)(sim_rand(s) % g->n), NULL, NULL);
		sim_group_add_new(g);
	}
	if (use_token)
		start = sim_group_upper_bound(g, buf_str(&r->tmp));
	else
		start = page_no - 1 >= g->n / eff + 1 ? g->n : (page_no - 1) * eff;
	if (start > g->n)
		start = g->n;
	end = start + eff < g->n ? start + eff : g->n;

	buf_reset(out);
	buf_puts(out, "{\"RequestId\":\"");
	buf_puts(out, r->request_id);
	buf_puts(out, "\",\"DeviceCredentialClientIdList\":{\"Total\":");
	if (!o->total_as_number)
		buf_putc(out, '"');
	put_u64(out, g->n);
	buf_puts(out, o->total_as_number ? ",\"ClientIdList\":[" : "\",\"ClientIdList\":[");
	sim_group_page_json(g, (size_t)start, (size_t)end, out);
	buf_puts(out, "],\"PageNo\":\"");
	put_u64(out, page_no);
	buf_puts(out, "\",\"PageSize\":\"");
	put_u64(out, eff);
	buf_putc(out, '"');
	if (!o->no_token) {
		if (end < g->n) {
			buf_puts(out, ",\"NextToken\":\"");
			sim_token_encode(out, g->ids[end - 1]);
			buf_putc(out, '"');
		} else if (o->last_token == SIM_LAST_TOKEN_EMPTY) {
			buf_puts(out, ",\"NextToken\":\"\"");
		} else if (o->last_token == SIM_LAST_TOKEN_SAME && tok) {
			buf_puts(out, ",\"NextToken\":");
			sim_json_str(out, tok);
		}
	}
	buf_puts(out, "}}");

	pthread_mutex_unlock(&s->lock);

	rep->status = 200;
	rep->page = 1;
	rep->content_type = "application/json;charset=utf-8";
}

/* ---- ListInstances ---- */

static void list_instances(struct sim_server *s, struct sim_req *r, struct sim_reply *rep)
{
	struct cs_buf *out = &r->out;
	char region[64];
	int has_region = sim_req_region(r, region, sizeof(region));
	size_t i, n = 0;

	pthread_mutex_lock(&s->lock);
	buf_reset(out);
	buf_puts(out, "{\"RequestId\":\"");
	buf_puts(out, r->request_id);
	/* as the real service: a success body with Code "200" and Success "true" */
	buf_puts(out, "\",\"Code\":\"200\",\"Success\":\"true\",\"Instances\":[");
	for (i = 0; i < s->data.ninst; i++) {
		const struct sim_instance *in = &s->data.inst[i];

		if (has_region && strcmp(region, in->region))
			continue;
		if (n++)
			buf_putc(out, ',');
		buf_puts(out, "{\"InstanceId\":");
		sim_json_str(out, in->id);
		buf_puts(out, ",\"InstanceName\":");
		{
			struct cs_buf name = CS_BUF_INIT;

			buf_printf(&name, "simulated %s", in->id);
			sim_json_str(out, buf_str(&name));
			buf_release(&name);
		}
		buf_puts(out, ",\"InstanceStatus\":\"2\",\"InstanceType\":\"professional\","
			 "\"RegionId\":");
		sim_json_str(out, in->region);
		buf_puts(out, ",\"CreateTime\":1700000000000,\"ExpireTime\":4102444800000,"
			 "\"Tags\":[]}");
	}
	buf_puts(out, "]}");
	pthread_mutex_unlock(&s->lock);
	rep->status = 200;
	rep->content_type = "application/json;charset=utf-8";
}

/* ---- ListGroupId ---- */

static void list_groups(struct sim_server *s, struct sim_req *r, struct sim_reply *rep)
{
	const struct sim_options *o = s->opt;
	const char *id = sim_param(r, "InstanceId");
	struct sim_instance *in;
	struct cs_buf *out = &r->out;
	size_t i;

	if (!id || !*id) {
		sim_error(r, rep, 400, "ParameterCheckFailed", MSG_PARAMS " Missing: InstanceId.");
		return;
	}
	if (o->list_group_qps > 0 && !sim_bucket_take_locked(s, &s->list_group)) {
		sim_throttled(s, r, rep, 400, "Throttling.User", MSG_THROTTLED);
		return;
	}
	pthread_mutex_lock(&s->lock);
	in = instance_here(s, r, id);
	if (!in) {
		pthread_mutex_unlock(&s->lock);
		sim_error(r, rep, 400, "InstancePermissionCheckFailed", MSG_INSTANCE);
		return;
	}
	buf_reset(out);
	buf_puts(out, "{\"RequestId\":\"");
	buf_puts(out, r->request_id);
	buf_puts(out, "\",\"Data\":[");
	for (i = 0; i < in->ngroups; i++) {
		const struct sim_group *g = &in->groups[i];

		if (i)
			buf_putc(out, ',');
		buf_puts(out, "{\"GroupId\":");
		sim_json_str(out, g->id);
		buf_puts(out, ",\"InstanceId\":");
		sim_json_str(out, in->id);
		buf_printf(out, ",\"CreateTime\":%lld,\"UpdateTime\":%lld", (long long)g->create_ms,
			   (long long)g->create_ms);
		buf_puts(out, ",\"IndependentNaming\":true,\"Tags\":[]}");
	}
	buf_puts(out, "]}");
	pthread_mutex_unlock(&s->lock);
	rep->status = 200;
	rep->content_type = "application/json;charset=utf-8";
}

/* ---- dispatch ---- */

static void dispatch(struct sim_server *s, struct sim_req *r, const struct sim_call *call,
		     struct sim_reply *rep)
{
	static const char *const secret_actions[] = {
		"GetDeviceCredential", "RegisterDeviceCredential", "RefreshDeviceCredential",
	};
	char q[128];
	size_t i;

	if (denied(s, r, call, rep))
		return;
	if (!strcmp(call->action, "ListInstances")) {
		list_instances(s, r, rep);
		return;
	}
	if (!strcmp(call->action, "ListDeviceCredentialClientId")) {
		list_clients(s, r, rep);
		return;
	}
	if (!strcmp(call->action, "ListGroupId")) {
		list_groups(s, r, rep);
		return;
	}
	for (i = 0; i < sizeof(secret_actions) / sizeof(secret_actions[0]); i++) {
		if (!strcmp(call->action, secret_actions[i])) {
			sim_error(r, rep, 400, "Forbidden.Simulator",
				  "%s returns device secrets; credsync must never call it.",
				  secret_actions[i]);
			return;
		}
	}
	quoted(call->action, q, sizeof(q));
	sim_error(r, rep, 404, "InvalidAction.NotFound",
		  "Specified api is not found, please check your url and method. (Action '%s')", q);
}

/* Checks that the request is a well-formed RPC call at all.  Returns 0 or -1 (reply set). */
static int check_request(struct sim_req *r, struct sim_reply *rep)
{
	const char *dup;
	char q[128];

	if (strcmp(r->url, "/")) {
		quoted(r->url, q, sizeof(q));
		sim_error(r, rep, 404, "InvalidPath",
			  "Specified path '%s' is not found; the RPC endpoint is \"/\".", q);
		return -1;
	}
	if (strcmp(r->method, "GET") && strcmp(r->method, "POST")) {
		quoted(r->method, q, sizeof(q));
		sim_error(r, rep, 405, "UnsupportedHTTPMethod",
			  "Specified http method '%s' is not supported (use GET or POST).", q);
		return -1;
	}
	if (r->body_too_large) {
		sim_error(r, rep, 413, "InvalidParameter.BodyTooLarge",
			  "The request body is larger than %d bytes.", SIM_MAX_BODY);
		return -1;
	}
	if (r->too_many_params) {
		sim_error(r, rep, 400, "InvalidParameter.TooMany",
			  "The request has more than %d parameters.", SIM_MAX_PARAMS);
		return -1;
	}
	dup = sim_param_repeated(r);
	if (dup) {
		quoted(dup, q, sizeof(q));
		sim_error(r, rep, 400, "InvalidParameter.Duplicate",
			  "The parameter '%s' is given more than once.", q);
		return -1;
	}
	return 0;
}

static void record(struct sim_server *s, const struct sim_req *r, const struct sim_call *call,
		   const struct sim_reply *rep)
{
	struct sim_stats *st = &s->stats;

	pthread_mutex_lock(&s->lock);
	st->requests++;
	if (!strcmp(r->url, "/"))
		st->rpc_requests++;
	if (call->action && *call->action)
		sim_counter_add(&st->by_action, call->action);
	if (rep->code)
		sim_counter_add(&st->by_code, rep->code);
	if (rep->fault)
		sim_counter_add(&st->faults, rep->fault);
	st->throttled += rep->throttled ? 1 : 0;
	st->pages += rep->page ? 1 : 0;
	pthread_mutex_unlock(&s->lock);
}

void sim_rpc(struct sim_server *s, struct sim_req *r, struct sim_reply *rep)
{
	const struct sim_options *o = s->opt;
	const struct sim_fault *f = NULL;
	struct sim_call call;

	sim_new_request_id(s, r->request_id);
	sim_call_describe(r, &call);
	if (check_request(r, rep) < 0)
		goto out;
	/* connection-level faults strike before the gateway looks at the request */
	f = draw_fault(s, &call);
	if (f && f->kind != SIM_FAULT_ERROR && f->kind != SIM_FAULT_TRUNCATED) {
		network_fault(s, r, f, rep);
		goto out;
	}
	/* STS: AssumeRoleWithOIDC is unsigned; AssumeRole is signed like any RPC call */
	if (call.action && !strcmp(call.action, "AssumeRoleWithOIDC")) {
		sim_sts(s, r, &call, rep);
		goto out;
	}
	if (sim_auth_check(s, r, &call, rep) < 0)
		goto out;
	if (!strcmp(call.action, "AssumeRole")) {
		sim_sts(s, r, &call, rep);
		goto out;
	}
	if (strcmp(call.version, SIM_API_VERSION)) {
		char q[64];

		quoted(call.version, q, sizeof(q));
		sim_error(r, rep, 400, "InvalidVersion",
			  "Specified parameter Version is not valid. (got '%s', expected '"
			  SIM_API_VERSION "')", q);
		goto out;
	}
	if (sim_source_limits(s, r, &call, rep))
		goto out;
	if (o->qps > 0 && !sim_bucket_take_locked(s, &s->qps)) {
		sim_throttled(s, r, rep, o->throttle_status, "SystemOverFlow", MSG_OVERFLOW);
		goto out;
	}
	if (f && f->kind == SIM_FAULT_ERROR) {
		sim_error(r, rep, f->status, f->code, "%s", f->message);
		rep->fault = f->code;
		if (f->throttle) {
			rep->throttled = 1;
			rep->retry_after_ms = o->retry_after_ms;
		}
		goto out;
	}
	dispatch(s, r, &call, rep);
out:
	if (f && f->kind == SIM_FAULT_TRUNCATED) {
		/* a proxy lost the second half: Content-Length follows the cut body */
		r->out.len /= 2;
		if (r->out.data)
			r->out.data[r->out.len] = '\0';
		rep->fault = f->code;
	}
	record(s, r, &call, rep);
	if (o->verbose) {
		char qu[96], qa[96], qi[96], qg[96];

		/* the names come off the network: quote them before they reach a terminal */
		quoted(r->url, qu, sizeof(qu));
		quoted(call.action ? call.action : "-", qa, sizeof(qa));
		quoted(call.instance ? call.instance : "-", qi, sizeof(qi));
		quoted(call.group ? call.group : "-", qg, sizeof(qg));
		fprintf(stderr, "credsync-sim: %s %s action=%s instance=%s group=%s -> %u %s%s%s\n",
			r->method, qu, qa, qi, qg, rep->status, rep->code ? rep->code : "OK",
			rep->fault ? " fault=" : "", rep->fault ? rep->fault : "");
	}
}
