/* regions.c - known regions and their endpoints; see regions.h. */
#include "regions.h"

#include <string.h>

const char *const regions_known[] = {
	"cn-qingdao", "cn-beijing", "cn-zhangjiakou", "cn-huhehaote", "cn-wulanchabu",
	"cn-hangzhou", "cn-shanghai", "cn-shenzhen", "cn-guangzhou", "cn-chengdu",
	"cn-hongkong", "ap-northeast-1", "ap-southeast-1", "ap-southeast-3",
	"ap-southeast-5", "ap-southeast-6", NULL,
};

int regions_valid(const char *region)
{
	const char *p;

	if (!*region || strlen(region) > 63 || *region == '-')
		return 0;
	for (p = region; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return 0;
	return 1;
}

int regions_endpoint(struct cs_buf *out, const char *tmpl, const char *region,
		     struct cs_error *err)
{
	const char *p, *hit;

	if (!tmpl || !*tmpl) {
		buf_printf(out, "https://onsmqtt.%s.aliyuncs.com", region);
	} else {
		for (p = tmpl; (hit = strstr(p, "{region}")); p = hit + strlen("{region}")) {
			buf_append(out, p, (size_t)(hit - p));
			buf_puts(out, region);
		}
		buf_puts(out, p);
	}
	if (out->oom)
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	return 0;
}
