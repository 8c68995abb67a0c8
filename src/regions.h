/*
 * regions.h - the OnsMqtt regions credsync knows (API.md's list) and the endpoint of each,
 * with the override tests and the simulator use.
 */
#ifndef CREDSYNC_REGIONS_H
#define CREDSYNC_REGIONS_H

#include <stddef.h>

#include "buf.h"
#include "error.h"

/* The environment variable whose value, with every "{region}" replaced, is a region's
 * endpoint instead of https://onsmqtt.<region>.aliyuncs.com. */
#define REGIONS_TEMPLATE_ENV "CREDSYNC_ENDPOINT_TEMPLATE"

/* The known regions, NULL-terminated, in API.md's order. */
extern const char *const regions_known[];

/* 1 when region is a well-formed region name (lower-case letters, digits and '-'). */
int regions_valid(const char *region);

/* Appends region's endpoint to out: tmpl with "{region}" replaced when tmpl is not NULL,
 * else the public one.  Returns 0, or -1 (CS_ERR_NOMEM) with err set. */
int regions_endpoint(struct cs_buf *out, const char *tmpl, const char *region,
		     struct cs_error *err);

#endif
