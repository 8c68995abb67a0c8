/*
 * sim_data.c - the simulator's dataset: instances, their groups and each group's client IDs,
 * kept sorted by byte order so a page is a slice and a NextToken a binary search.  Also the
 * NextToken format.
 *
 * Strings loaded or generated at startup live in one arena per group (a million IDs cost one
 * allocation, not a million); IDs added later are malloc'd one by one, which is why removal
 * checks where a string lives before freeing it.  No locking here: callers hold the lock.
 */
#include "sim.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* CreateTime of the first group; later groups are a minute apart so the values look real. */
#define SIM_EPOCH_MS 1735689600000LL

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_instance(const void *a, const void *b)
{
	return strcmp(((const struct sim_instance *)a)->id, ((const struct sim_instance *)b)->id);
}

static int cmp_group(const void *a, const void *b)
{
	return strcmp(((const struct sim_group *)a)->id, ((const struct sim_group *)b)->id);
}

static void group_release(struct sim_group *g)
{
	size_t i;

	for (i = 0; i < g->n; i++) {
		char *p = g->ids[i];

		if (!(p >= g->arena && p < g->arena + g->arena_len))
			free(p);
	}
	free(g->ids);
	free(g->lens);
	free(g->arena);
	free(g->id);
	memset(g, 0, sizeof(*g));
}

void sim_data_release(struct sim_dataset *d)
{
	size_t i, j;

	for (i = 0; i < d->ninst; i++) {
		for (j = 0; j < d->inst[i].ngroups; j++)
			group_release(&d->inst[i].groups[j]);
		free(d->inst[i].groups);
		free(d->inst[i].id);
	}
	free(d->inst);
	d->inst = NULL;
	d->ninst = 0;
}

/* Sorts the IDs (unless already sorted, the common case for generated data) and drops
 * duplicates, which a dataset file may legitimately contain. */
static void group_sort_unique(struct sim_group *g)
{
	size_t i, o;
	int sorted = 1;

	for (i = 1; i < g->n && sorted; i++)
		if (strcmp(g->ids[i - 1], g->ids[i]) >= 0)
			sorted = 0;
	if (sorted)
		return;
	qsort(g->ids, g->n, sizeof(*g->ids), cmp_str);
	for (i = 0, o = 0; i < g->n; i++) {
		/* every string here lives in the arena, so dropping one frees nothing */
		if (o && !strcmp(g->ids[o - 1], g->ids[i]))
			continue;
		g->ids[o++] = g->ids[i];
	}
	g->n = o;
}

static uint32_t id_len_flags(const char *id)
{
	const unsigned char *p = (const unsigned char *)id;
	uint32_t flags = 0;

	for (; *p; p++)
		if (*p < 0x20 || *p == '"' || *p == '\\')
			flags = SIM_LEN_ESCAPE;
	return (uint32_t)((const char *)p - id) | flags;
}

/* Fills g->lens for the g->n IDs.  Returns 0 or -1 on OOM. */
static int group_index_lengths(struct sim_group *g)
{
	size_t i;

	g->lens = malloc(g->cap * sizeof(*g->lens));
	if (!g->lens)
		return -1;
	for (i = 0; i < g->n; i++)
		g->lens[i] = id_len_flags(g->ids[i]);
	return 0;
}

static void quote(const char *s, char *out, size_t outlen)
{
	util_quote_bytes(s, strlen(s), out, outlen);
}

static int load_group(struct sim_group *g, const char *path, const char *inst_id,
		      const cJSON *list, size_t *total, struct cs_error *err)
{
	const cJSON *it;
	size_t n = 0, bytes = 0, i = 0, off = 0;
	char qi[96], qg[96];

	quote(inst_id, qi, sizeof(qi));
	quote(g->id, qg, sizeof(qg));
	if (!cJSON_IsArray(list))
		return cs_error_set(err, CS_ERR_CONFIG,
				    "%s: instances.'%s'.groups.'%s': expected an array of client IDs",
				    path, qi, qg);
	cJSON_ArrayForEach(it, list) {
		if (!cJSON_IsString(it) || !it->valuestring || !*it->valuestring)
			return cs_error_set(err, CS_ERR_CONFIG,
					    "%s: instances.'%s'.groups.'%s'[%zu]: expected a non-empty string",
					    path, qi, qg, n);
		if (!util_utf8_valid(it->valuestring, strlen(it->valuestring)))
			return cs_error_set(err, CS_ERR_CONFIG,
					    "%s: instances.'%s'.groups.'%s'[%zu]: not valid UTF-8",
					    path, qi, qg, n);
		bytes += strlen(it->valuestring) + 1;
		n++;
	}
	if (n > SIM_MAX_IDS - *total)
		return cs_error_set(err, CS_ERR_CONFIG, "%s: more than %d client IDs in all", path,
				    SIM_MAX_IDS);
	*total += n;
	g->ids = malloc((n ? n : 1) * sizeof(*g->ids));
	g->arena = malloc(bytes ? bytes : 1);
	if (!g->ids || !g->arena)
		return cs_error_set(err, CS_ERR_NOMEM, "%s: out of memory", path);
	g->cap = n ? n : 1;
	g->arena_len = bytes;
	cJSON_ArrayForEach(it, list) {
		size_t len = strlen(it->valuestring) + 1;

		memcpy(g->arena + off, it->valuestring, len);
		g->ids[i++] = g->arena + off;
		off += len;
	}
	g->n = n;
	group_sort_unique(g);
	if (group_index_lengths(g) < 0)
		return cs_error_set(err, CS_ERR_NOMEM, "%s: out of memory", path);
	return 0;
}

static int load_instance(struct sim_instance *in, const char *path, const cJSON *obj,
			 size_t *total, struct cs_error *err)
{
	const cJSON *groups, *it;
	size_t n = 0, i;
	char qi[96];

	quote(in->id, qi, sizeof(qi));
	if (!cJSON_IsObject(obj))
		return cs_error_set(err, CS_ERR_CONFIG, "%s: instances.'%s': expected an object",
				    path, qi);
	cJSON_ArrayForEach(it, obj) {
		if (strcmp(it->string, "groups")) {
			char qk[96];

			quote(it->string, qk, sizeof(qk));
			return cs_error_set(err, CS_ERR_CONFIG,
					    "%s: instances.'%s': unknown key '%s' (expected \"groups\")",
					    path, qi, qk);
		}
	}
	groups = cJSON_GetObjectItemCaseSensitive(obj, "groups");
	if (!groups)
		return 0;  /* an instance with no groups is legitimate */
	if (!cJSON_IsObject(groups))
		return cs_error_set(err, CS_ERR_CONFIG,
				    "%s: instances.'%s'.groups: expected an object of group IDs",
				    path, qi);
	cJSON_ArrayForEach(it, groups)
		n++;
	in->groups = calloc(n ? n : 1, sizeof(*in->groups));
	if (!in->groups)
		return cs_error_set(err, CS_ERR_NOMEM, "%s: out of memory", path);
	i = 0;
	cJSON_ArrayForEach(it, groups) {
		struct sim_group *g = &in->groups[i];

		g->id = strdup(it->string);
		if (!g->id)
			return cs_error_set(err, CS_ERR_NOMEM, "%s: out of memory", path);
		in->ngroups = ++i;
		g->create_ms = SIM_EPOCH_MS + (int64_t)i * 60000;
		g->next_seq = 1;
		if (!*g->id)
			return cs_error_set(err, CS_ERR_CONFIG,
					    "%s: instances.'%s'.groups: empty group ID", path, qi);
		if (load_group(g, path, in->id, it, total, err) < 0)
			return -1;
	}
	qsort(in->groups, in->ngroups, sizeof(*in->groups), cmp_group);
	for (i = 1; i < in->ngroups; i++) {
		if (!strcmp(in->groups[i - 1].id, in->groups[i].id)) {
			char qg[96];

			quote(in->groups[i].id, qg, sizeof(qg));
			return cs_error_set(err, CS_ERR_CONFIG,
					    "%s: instances.'%s': group '%s' appears twice", path, qi, qg);
		}
	}
	return 0;
}

static int read_file(const char *path, struct cs_buf *out, struct cs_error *err)
{
	FILE *f = fopen(path, "rb");
	char chunk[65536];
	size_t n;
	int ret = -1;

	if (!f)
		return cs_error_set(err, CS_ERR_RUNTIME, "%s: cannot open: %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	if (ferror(f)) {
		cs_error_set(err, CS_ERR_RUNTIME, "%s: read error: %s", path, strerror(errno));
		goto out;
	}
	if (out->oom) {
		cs_error_set(err, CS_ERR_NOMEM, "%s: out of memory", path);
		goto out;
	}
	ret = 0;
out:
	fclose(f);
	return ret;
}

int sim_data_load_file(struct sim_dataset *d, const char *path, struct cs_error *err)
{
	struct cs_buf text = CS_BUF_INIT;
	cJSON *root = NULL;
	const cJSON *insts, *it;
	size_t n = 0, i, total = 0;
	int ret = -1;

	if (read_file(path, &text, err) < 0)
		goto out;
	root = cJSON_ParseWithLength(buf_str(&text), text.len);
	if (!root) {
		const char *at = cJSON_GetErrorPtr();
		size_t line = 1, col = 1;
		const char *p;

		/* cJSON only says where it stopped; turn that into a line and column */
		for (p = buf_str(&text); at && p < at && *p; p++) {
			if (*p == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		cs_error_set(err, CS_ERR_CONFIG, "%s:%zu:%zu: not valid JSON", path, line, col);
		goto out;
	}
	insts = cJSON_GetObjectItemCaseSensitive(root, "instances");
	if (!cJSON_IsObject(root) || !cJSON_IsObject(insts)) {
		cs_error_set(err, CS_ERR_CONFIG,
			     "%s: expected {\"instances\": {\"INSTANCE\": {\"groups\": {\"GID\": [IDs]}}}}",
			     path);
		goto out;
	}
	cJSON_ArrayForEach(it, insts)
		n++;
	d->inst = calloc(n ? n : 1, sizeof(*d->inst));
	if (!d->inst) {
		cs_error_set(err, CS_ERR_NOMEM, "%s: out of memory", path);
		goto out;
	}
	cJSON_ArrayForEach(it, insts) {
		struct sim_instance *in = &d->inst[d->ninst];

		in->id = strdup(it->string);
		if (!in->id) {
			cs_error_set(err, CS_ERR_NOMEM, "%s: out of memory", path);
			goto out;
		}
		d->ninst++;
		if (!*in->id) {
			cs_error_set(err, CS_ERR_CONFIG, "%s: instances: empty instance ID", path);
			goto out;
		}
		if (load_instance(in, path, it, &total, err) < 0)
			goto out;
	}
	qsort(d->inst, d->ninst, sizeof(*d->inst), cmp_instance);
	for (i = 1; i < d->ninst; i++) {
		if (!strcmp(d->inst[i - 1].id, d->inst[i].id)) {
			char qi[96];

			quote(d->inst[i].id, qi, sizeof(qi));
			cs_error_set(err, CS_ERR_CONFIG, "%s: instance '%s' appears twice", path, qi);
			goto out;
		}
	}
	ret = 0;
out:
	if (ret < 0)
		sim_data_release(d);
	cJSON_Delete(root);
	buf_release(&text);
	return ret;
}

static size_t ndigits(uint64_t v)
{
	size_t n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* Writes v zero-padded to width digits at p (width >= ndigits(v)). */
static void put_padded(char *p, uint64_t v, size_t width)
{
	while (width--) {
		p[width] = (char)('0' + v % 10);
		v /= 10;
	}
}

static int generate_group(struct sim_group *g, long ndevices, struct cs_error *err)
{
	size_t plen = strlen(g->id) + strlen("@@@dev-"), off = 0, bytes = 0;
	uint64_t k;

	for (k = 1; k <= (uint64_t)ndevices; k++)
		bytes += plen + (ndigits(k) > 7 ? ndigits(k) : 7) + 1;
	g->ids = malloc((ndevices ? (size_t)ndevices : 1) * sizeof(*g->ids));
	g->arena = malloc(bytes ? bytes : 1);
	if (!g->ids || !g->arena)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory generating %ld client IDs",
				    ndevices);
	g->cap = ndevices ? (size_t)ndevices : 1;
	g->arena_len = bytes;
	for (k = 1; k <= (uint64_t)ndevices; k++) {
		size_t width = ndigits(k) > 7 ? ndigits(k) : 7;
		char *p = g->arena + off;

		memcpy(p, g->id, plen - 7);
		memcpy(p + plen - 7, "@@@dev-", 7);
		put_padded(p + plen, k, width);
		p[plen + width] = '\0';
		g->ids[k - 1] = p;
		off += plen + width + 1;
	}
	g->n = (size_t)ndevices;
	g->generated = 1;
	g->next_seq = (uint64_t)ndevices + 1;
	group_sort_unique(g);
	if (group_index_lengths(g) < 0)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory generating %ld client IDs",
				    ndevices);
	return 0;
}

int sim_data_generate(struct sim_dataset *d, long ninst, long ngroups, long ndevices,
		      struct cs_error *err)
{
	long i, j;
	char id[64];

	if ((double)ninst * (double)ngroups * (double)ndevices > SIM_MAX_IDS)
		return cs_error_set(err, CS_ERR_USAGE,
				    "%ld instances x %ld groups x %ld devices is more than %d client IDs",
				    ninst, ngroups, ndevices, SIM_MAX_IDS);
	d->inst = calloc((size_t)ninst ? (size_t)ninst : 1, sizeof(*d->inst));
	if (!d->inst)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	for (i = 0; i < ninst; i++) {
		struct sim_instance *in = &d->inst[i];

		snprintf(id, sizeof(id), "mqtt-sim-%ld", i + 1);
		in->id = strdup(id);
		in->groups = calloc((size_t)ngroups ? (size_t)ngroups : 1, sizeof(*in->groups));
		d->ninst++;
		if (!in->id || !in->groups)
			goto oom;
		for (j = 0; j < ngroups; j++) {
			struct sim_group *g = &in->groups[j];

			snprintf(id, sizeof(id), "GID_sim_%ld", j + 1);
			g->id = strdup(id);
			in->ngroups++;
			if (!g->id)
				goto oom;
			g->create_ms = SIM_EPOCH_MS + (int64_t)(i * ngroups + j) * 60000;
			if (generate_group(g, ndevices, err) < 0) {
				sim_data_release(d);
				return -1;
			}
		}
		qsort(in->groups, in->ngroups, sizeof(*in->groups), cmp_group);
	}
	qsort(d->inst, d->ninst, sizeof(*d->inst), cmp_instance);
	return 0;
oom:
	sim_data_release(d);
	return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
}

struct sim_instance *sim_data_instance(const struct sim_dataset *d, const char *id)
{
	struct sim_instance key = { .id = (char *)id };

	return bsearch(&key, d->inst, d->ninst, sizeof(*d->inst), cmp_instance);
}

struct sim_group *sim_data_group(const struct sim_instance *inst, const char *id)
{
	struct sim_group key = { .id = (char *)id };

	return bsearch(&key, inst->groups, inst->ngroups, sizeof(*inst->groups), cmp_group);
}

size_t sim_group_upper_bound(const struct sim_group *g, const char *key)
{
	size_t lo = 0, hi = g->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(g->ids[mid], key) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const char *sim_group_add_new(struct sim_group *g)
{
	char *id = NULL;
	size_t at;

	for (;;) {
		int len;

		free(id);
		if (g->generated)
			len = snprintf(NULL, 0, "%s@@@dev-%07llu", g->id,
				       (unsigned long long)g->next_seq);
		else
			len = snprintf(NULL, 0, "%s@@@churn-%llu", g->id,
				       (unsigned long long)g->next_seq);
		id = malloc((size_t)len + 1);
		if (!id)
			return NULL;
		if (g->generated)
			snprintf(id, (size_t)len + 1, "%s@@@dev-%07llu", g->id,
				 (unsigned long long)g->next_seq);
		else
			snprintf(id, (size_t)len + 1, "%s@@@churn-%llu", g->id,
				 (unsigned long long)g->next_seq);
		g->next_seq++;
		at = sim_group_upper_bound(g, id);
		/* a dataset file may already hold an ID of this shape: take the next number */
		if (!at || strcmp(g->ids[at - 1], id))
			break;
	}
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 16;
		char **p = realloc(g->ids, cap * sizeof(*p));
		uint32_t *l;

		if (!p) {
			free(id);
			return NULL;
		}
		g->ids = p;
		l = realloc(g->lens, cap * sizeof(*l));
		if (!l) {
			free(id);
			return NULL;
		}
		g->lens = l;
		g->cap = cap;
	}
	memmove(g->ids + at + 1, g->ids + at, (g->n - at) * sizeof(*g->ids));
	memmove(g->lens + at + 1, g->lens + at, (g->n - at) * sizeof(*g->lens));
	g->ids[at] = id;
	g->lens[at] = id_len_flags(id);
	g->n++;
	return id;
}

void sim_group_remove_at(struct sim_group *g, size_t i, struct cs_buf *removed, size_t *count)
{
	char *p = g->ids[i];

	if (removed)
		sim_json_item(removed, count, p);
	if (!(p >= g->arena && p < g->arena + g->arena_len))
		free(p);
	memmove(g->ids + i, g->ids + i + 1, (g->n - i - 1) * sizeof(*g->ids));
	memmove(g->lens + i, g->lens + i + 1, (g->n - i - 1) * sizeof(*g->lens));
	g->n--;
}

void sim_group_page_json(const struct sim_group *g, size_t start, size_t end, struct cs_buf *out)
{
	size_t i, count = 0;

	for (i = start; i < end; i++) {
		uint32_t len = g->lens[i];
		char tmp[256];

		if (!(len & SIM_LEN_ESCAPE) && len + 3 <= sizeof(tmp)) {
			/* the common case: one append of ,"ID" */
			size_t n = 0;

			if (count++)
				tmp[n++] = ',';
			tmp[n++] = '"';
			memcpy(tmp + n, g->ids[i], len);
			n += len;
			tmp[n++] = '"';
			buf_append(out, tmp, n);
		} else {
			sim_json_item(out, &count, g->ids[i]);
		}
	}
}

void sim_data_dump(const struct sim_dataset *d, struct cs_buf *out)
{
	size_t i, j, k;

	buf_puts(out, "{\"instances\":{");
	for (i = 0; i < d->ninst; i++) {
		const struct sim_instance *in = &d->inst[i];

		if (i)
			buf_putc(out, ',');
		sim_json_str(out, in->id);
		buf_puts(out, ":{\"groups\":{");
		for (j = 0; j < in->ngroups; j++) {
			const struct sim_group *g = &in->groups[j];
			size_t count = 0;

			if (j)
				buf_putc(out, ',');
			sim_json_str(out, g->id);
			buf_puts(out, ":[");
			for (k = 0; k < g->n; k++)
				sim_json_item(out, &count, g->ids[k]);
			buf_putc(out, ']');
		}
		buf_puts(out, "}}");
	}
	buf_puts(out, "}}\n");
}

/* FNV-1a: a checksum that makes a mangled or foreign token fail to decode. */
static uint32_t fnv1a32(const unsigned char *s, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--) {
		h ^= *s++;
		h *= 16777619u;
	}
	return h;
}

#define TOKEN_TAG "c1"

void sim_token_encode(struct cs_buf *out, const char *id)
{
	static const char hx[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)id;
	size_t len = strlen(id), i;
	char sum[9];

	buf_puts(out, TOKEN_TAG);
	for (i = 0; i < len; i++) {
		char two[2] = { hx[p[i] >> 4], hx[p[i] & 15] };

		buf_append(out, two, 2);
	}
	snprintf(sum, sizeof(sum), "%08x", (unsigned)fnv1a32(p, len));
	buf_append(out, sum, 8);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int sim_token_decode(struct cs_buf *out, const char *tok)
{
	size_t len = strlen(tok), n, i;
	char sum[9];

	buf_reset(out);
	if (len < 2 + 8 || (len - 10) % 2 || strncmp(tok, TOKEN_TAG, 2))
		return -1;
	n = (len - 10) / 2;
	for (i = 0; i < n; i++) {
		int hi = hexval(tok[2 + 2 * i]), lo = hexval(tok[3 + 2 * i]);

		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -1;
		buf_putc(out, (char)(hi << 4 | lo));
	}
	snprintf(sum, sizeof(sum), "%08x",
		 (unsigned)fnv1a32((const unsigned char *)buf_str(out), out->len));
	if (out->oom || strcmp(sum, tok + 2 + 2 * n))
		return -1;
	return 0;
}
