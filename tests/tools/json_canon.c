/*
 * json_canon - reads JSON on stdin with cJSON (the parser credsync itself uses) and writes it
 * back compactly, so a test can check that cJSON reads a report exactly as Python does.
 * Exit 1 with the offset of the error when the input is not JSON.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	size_t len = 0, cap = 1 << 16, n;
	char *buf = malloc(cap), *out;
	cJSON *root;
	const char *end = NULL;

	if (!buf)
		return 2;
	while ((n = fread(buf + len, 1, cap - len, stdin)) > 0) {
		len += n;
		if (len == cap) {
			char *p = realloc(buf, cap *= 2);

			if (!p)
				return 2;
			buf = p;
		}
	}
	root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	if (!root) {
		fprintf(stderr, "json_canon: not JSON at byte %ld\n", end ? (long)(end - buf) : -1L);
		return 1;
	}
	out = cJSON_PrintUnformatted(root);
	if (!out)
		return 2;
	puts(out);
	cJSON_free(out);
	cJSON_Delete(root);
	free(buf);
	return 0;
}
