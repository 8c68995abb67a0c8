/*
 * replay_main.c - runs a fuzz target over saved inputs without libFuzzer, so that every
 * corpus is a regression test in the ordinary gcc build (ctest -L fuzz) and under
 * ASan/UBSan.  Arguments are files or directories; a directory's files are replayed, and
 * those of its subdirectories one level down.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads path whole into a buffer of exactly its size (so ASan sees any overread) and runs
 * the target on it.  Returns 0, or -1 when the file cannot be read. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	long size;
	int ret = -1;

	if (!f) {
		fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "replay: cannot size %s\n", path);
		goto out;
	}
	/* malloc(0) may return NULL: keep one byte but pass the true size */
	data = malloc(size ? (size_t)size : 1);
	if (!data || (size && fread(data, 1, (size_t)size, f) != (size_t)size)) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		goto out;
	}
	/* named first, so that a crash or a failed invariant says which input it was */
	fprintf(stderr, "replay: %s\n", path);
	LLVMFuzzerTestOneInput(data, (size_t)size);
	ret = 0;
out:
	free(data);
	fclose(f);
	return ret;
}

/* Replays path: a file, or a directory's entries (sorted, so runs are reproducible) down to
 * depth levels of subdirectories.  Adds the inputs run to *count. */
static int replay_path(const char *path, int depth, size_t *count)
{
	struct dirent **names = NULL;
	struct stat st;
	int n, i, ret = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (replay_file(path) < 0)
			return -1;
		(*count)++;
		return 0;
	}
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: cannot list %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char *child;
		size_t len;

		if (name[0] == '.' || ret < 0)
			continue;
		len = strlen(path) + strlen(name) + 2;
		child = malloc(len);
		if (!child) {
			ret = -1;
			continue;
		}
		snprintf(child, len, "%s/%s", path, name);
		if (stat(child, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (depth > 0 && replay_path(child, depth - 1, count) < 0)
				ret = -1;
		} else if (replay_path(child, 0, count) < 0) {
			ret = -1;
		}
		free(child);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int i, failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 64;
	}
	for (i = 1; i < argc; i++)
		if (replay_path(argv[i], 1, &count) < 0)
			failed = 1;
	printf("replayed %zu inputs\n", count);
	if (!count) {
		/* an empty or misplaced corpus would otherwise pass silently */
		fprintf(stderr, "replay: no inputs found\n");
		return 1;
	}
	return failed;
}
