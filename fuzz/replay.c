/*
 * replay.c - runs the fuzz harness (api_fuzz.c) on saved inputs, without
 * libFuzzer, so that the seed corpus and any crash reproducer are a
 * regression test in every build, with any compiler.
 *
 * Usage: replay [FILE|DIR]...  A directory stands for the files in it.
 * Without arguments it replays $srcdir/fuzz/corpus (srcdir as set by
 * make check, else the source tree this was built from), since the
 * check program also runs as a test with no arguments.  A chaos build
 * prints its seed first (common/chaos.h).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/chaos.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long inputs;

static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL, *nbuf;
	size_t len = 0, size = 0, n;

	if (f == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	do {
		if (len == size) {
			size = size == 0 ? 4096 : 2 * size;
			nbuf = realloc(buf, size);
			if (nbuf == NULL) {
				fprintf(stderr, "replay: out of memory\n");
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, size - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		fprintf(stderr, "replay: %s: read error\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	/* A crash aborts here; printing the name first says which input. */
	if (getenv("API_FUZZ_TRACE") != NULL)
		fprintf(stderr, "replay: %s\n", path);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	inputs++;
	return 0;
}

static int
replay_path(const char *path)
{
	struct dirent *de;
	struct stat st;
	char *sub;
	DIR *d;
	int rc = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);
	d = opendir(path);
	if (d == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		sub = malloc(strlen(path) + strlen(de->d_name) + 2);
		if (sub == NULL) {
			rc = -1;
			break;
		}
		sprintf(sub, "%s/%s", path, de->d_name);
		if (stat(sub, &st) == 0 && S_ISREG(st.st_mode))
			rc = replay_file(sub);
		free(sub);
	}
	closedir(d);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *srcdir = getenv("srcdir");
	char *corpus;
	int i, rc = 0;

	psync_chaos_announce();
	if (argc < 2) {
#ifdef FUZZ_TOP_SRCDIR
		if (srcdir == NULL)
			srcdir = FUZZ_TOP_SRCDIR;
#endif
		if (srcdir == NULL)
			srcdir = ".";
		corpus = malloc(strlen(srcdir) + sizeof "/fuzz/corpus");
		if (corpus == NULL)
			return 1;
		sprintf(corpus, "%s/fuzz/corpus", srcdir);
		rc = replay_path(corpus);
		free(corpus);
	}
	for (i = 1; rc == 0 && i < argc; i++)
		rc = replay_path(argv[i]);
	if (rc != 0)
		return 1;
	if (inputs == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		return 1;
	}
	printf("replay: %lu inputs, all agree with the model\n", inputs);
	return 0;
}
