/* atomic.c - temporary file + rename; see atomic.h. */
#include "atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int atomic_open(struct atomic_file *af, const char *path, mode_t mode, struct cs_error *err)
{
	size_t len = strlen(path) + 32;
	mode_t mask;
	int fd;

	memset(af, 0, sizeof(*af));
	af->tmp = malloc(len);
	af->path = strdup(path);
	if (!af->tmp || !af->path) {
		atomic_abort(af);
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	}
	snprintf(af->tmp, len, "%s.tmp.XXXXXX", path);
	fd = mkstemp(af->tmp);
	if (fd < 0) {
		cs_error_set(err, CS_ERR_RUNTIME, "cannot create a file beside %s: %s", path,
			     strerror(errno));
		free(af->tmp);
		af->tmp = NULL;
		atomic_abort(af);
		return -1;
	}
	/* mkstemp makes 0600; widen to the requested mode as the umask allows */
	mask = umask(0);
	umask(mask);
	fchmod(fd, mode & ~mask);
	af->f = fdopen(fd, "w");
	if (!af->f) {
		close(fd);
		atomic_abort(af);
		return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
	}
	return 0;
}

int atomic_commit(struct atomic_file *af, struct cs_error *err)
{
	return atomic_commit_mode(af, 1, err);
}

int atomic_commit_mode(struct atomic_file *af, int replace, struct cs_error *err)
{
	int ret = 0;

	if (fflush(af->f) != 0 || ferror(af->f) || fsync(fileno(af->f)) != 0) {
		ret = cs_error_set(err, CS_ERR_RUNTIME, "cannot write %s: %s", af->path,
				   strerror(errno));
	}
	if (fclose(af->f) != 0 && ret == 0)
		ret = cs_error_set(err, CS_ERR_RUNTIME, "cannot write %s: %s", af->path,
				   strerror(errno));
	af->f = NULL;
	if (ret == 0 && replace && rename(af->tmp, af->path) != 0)
		ret = cs_error_set(err, CS_ERR_RUNTIME, "cannot replace %s: %s", af->path,
				   strerror(errno));
	/* link() fails with EEXIST instead of replacing: a file that appeared meanwhile is
	 * kept, and readers still see the new one whole or not at all */
	if (ret == 0 && !replace) {
		if (link(af->tmp, af->path) != 0)
			ret = cs_error_set(err, CS_ERR_RUNTIME, "cannot create %s: %s", af->path,
					   errno == EEXIST ? "it exists (appeared meanwhile)"
					   : strerror(errno));
		unlink(af->tmp);
	}
	if (ret < 0)
		unlink(af->tmp);
	free(af->tmp);
	free(af->path);
	af->tmp = af->path = NULL;
	return ret;
}

void atomic_abort(struct atomic_file *af)
{
	if (af->f)
		fclose(af->f);
	if (af->tmp)
		unlink(af->tmp);
	free(af->tmp);
	free(af->path);
	memset(af, 0, sizeof(*af));
}
