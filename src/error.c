/* error.c - filling struct cs_error; see error.h for the contract. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cs_error_set(struct cs_error *err, enum cs_error_kind kind, const char *fmt, ...)
{
	va_list ap;

	if (!err || err->kind != CS_ERR_NONE)
		return -1;
	err->kind = kind;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

void cs_error_prefix(struct cs_error *err, const char *fmt, ...)
{
	char prefix[512];
	size_t plen, mlen;
	va_list ap;

	if (!err || err->kind == CS_ERR_NONE)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	plen = strlen(prefix);
	mlen = strlen(err->msg);
	if (plen + mlen >= sizeof(err->msg))
		mlen = sizeof(err->msg) - 1 - plen;
	memmove(err->msg + plen, err->msg, mlen);
	memcpy(err->msg, prefix, plen);
	err->msg[plen + mlen] = '\0';
}

void cs_error_clear(struct cs_error *err)
{
	if (!err)
		return;
	err->kind = CS_ERR_NONE;
	err->msg[0] = '\0';
}
