/* scrub.c - removing secrets from what services say; see scrub.h. */
#include "scrub.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "sign.h"

#define MASK "***"

/* Finds needle in hay, ignoring case when fold is set (percent-escapes come in both). */
static char *find(char *hay, const char *needle, size_t nlen, int fold)
{
	for (; *hay; hay++)
		if (fold ? !strncasecmp(hay, needle, nlen) : !strncmp(hay, needle, nlen))
			return hay;
	return NULL;
}

/* Replaces every occurrence of needle by MASK; text shrinks or stays (needle >= 4 bytes). */
static void mask_all(char *text, const char *needle, size_t nlen, int fold)
{
	char *p = text;

	if (nlen < 4)
		return;
	while ((p = find(p, needle, nlen, fold))) {
		memcpy(p, MASK, 3);
		memmove(p + 3, p + nlen, strlen(p + nlen) + 1);
		p += 3;
	}
}

void scrub_text(char *text, size_t cap, const char *const *secrets, size_t n)
{
	static const char withheld[] = "[string to sign withheld: it quotes the request's credentials]";
	struct cs_buf once = CS_BUF_INIT, twice = CS_BUF_INIT;
	char *p;
	size_t i;

	if (!text || !cap)
		return;
	/* SignatureDoesNotMatch: "... server string to sign is:POST&%2F&AccessKeyId..." */
	if ((p = find(text, "string to sign", 14, 1)) || (p = find(text, "stringtosign", 12, 1))) {
		size_t keep = (size_t)(p - text);

		if (keep + sizeof(withheld) <= cap)
			memcpy(p, withheld, sizeof(withheld));
		else
			*p = '\0';
	}
	for (i = 0; i < n; i++) {
		const char *s = secrets[i];

		if (!s || strlen(s) < 4)
			continue;
		buf_reset(&once);
		buf_reset(&twice);
		sign_percent_encode(&once, s, strlen(s));
		sign_percent_encode(&twice, buf_str(&once), once.len);
		mask_all(text, s, strlen(s), 0);
		mask_all(text, buf_str(&once), once.len, 1);
		mask_all(text, buf_str(&twice), twice.len, 1);
	}
	/* a signature is no secret, but it proves one: mask its value too */
	for (p = text; (p = find(p, "Signature=", 10, 1)); ) {
		char *v = p + 10, *e = v;

		while (*e && *e != '&' && *e != ' ' && *e != '"' && *e != ',')
			e++;
		if (e - v > 3) {
			memcpy(v, MASK, 3);
			memmove(v + 3, e, strlen(e) + 1);
		}
		p = v;
	}
	buf_release(&once);
	buf_release(&twice);
}
