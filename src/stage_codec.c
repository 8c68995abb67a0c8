/*
 * stage_codec.c - the staged-page format of stage_codec.h: the encoder and its decoder side
 * by side, so that one cannot change without the other (tests/unit/test_store.c checks that
 * every byte survives the round trip).
 */
#include "stage_codec.h"

/* Appends s[0..len) as a quoted JSON string (RFC 8259 escapes; UTF-8 passes through). */
static void put_id(struct cs_buf *b, const char *s, size_t len)
{
	static const char hx[] = "0123456789abcdef";
	size_t i, run = 0;

	buf_putc(b, '"');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = { '\\', 'u', '0', '0', hx[c >> 4], hx[c & 15] };

		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
			continue;
		buf_append(b, s + run, i - run);
		run = i + 1;
		if (c == '"')
			buf_append(b, "\\\"", 2);
		else if (c == '\\')
			buf_append(b, "\\\\", 2);
		else if (c == '\n')
			buf_append(b, "\\n", 2);
		else if (c == '\t')
			buf_append(b, "\\t", 2);
		else if (c == '\r')
			buf_append(b, "\\r", 2);
		else
			buf_append(b, esc, 6);
	}
	buf_append(b, s + run, len - run);
	buf_putc(b, '"');
}


void stage_encode(struct cs_buf *page, const char *const *ids, const size_t *lens, size_t n)
{
	size_t i;

	buf_putc(page, '[');
	for (i = 0; i < n; i++) {
		if (i)
			buf_putc(page, ',');
		put_id(page, ids[i], lens[i]);
	}
	buf_putc(page, ']');
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * The next string of a staged page, a JSON array as stage_encode writes it, into
 * key.  Returns 1, 0 at the end of the array, or -1 when the text is not such an array
 * (it always is: we wrote it).
 */
int stage_decode_next(const char **pp, const char *end, struct cs_buf *key)
{
	const char *p = *pp, *q;

	while (p < end && (*p == '[' || *p == ',' || *p == ' '))
		p++;
	if (p >= end || *p == ']') {
		*pp = end;
		return 0;
	}
	if (*p++ != '"')
		return -1;
	buf_reset(key);
	for (;;) {
		for (q = p; q < end && *q != '"' && *q != '\\'; q++)
			;
		buf_append(key, p, (size_t)(q - p));
		if (q >= end)
			return -1;
		if (*q == '"') {
			*pp = q + 1;
			return key->oom ? -1 : 1;
		}
		if (q + 1 >= end)
			return -1;
		switch (q[1]) {
		case '"': buf_putc(key, '"'); break;
		case '\\': buf_putc(key, '\\'); break;
		case '/': buf_putc(key, '/'); break;
		case 'n': buf_putc(key, '\n'); break;
		case 't': buf_putc(key, '\t'); break;
		case 'r': buf_putc(key, '\r'); break;
		case 'b': buf_putc(key, '\b'); break;
		case 'f': buf_putc(key, '\f'); break;
		case 'u': {
			int h0, h1, h2, h3;

			/* put_id escapes only bytes below 0x20 and 0x7f this way */
			if (q + 5 >= end || (h0 = hexval(q[2])) != 0 || (h1 = hexval(q[3])) != 0 ||
			    (h2 = hexval(q[4])) < 0 || (h3 = hexval(q[5])) < 0)
				return -1;
			buf_putc(key, (char)(h2 << 4 | h3));
			q += 4;
			break;
		}
		default:
			return -1;
		}
		p = q + 2;
	}
}

