/*
 * worker-pool.c - a dispatcher, a pool of workers, and a collector.
 *
 * The main thread is the dispatcher: it writes JOBS jobs into one pipe
 * that WORKERS threads all read from (any number of readers and writers
 * may share a pipe), then sends EOF.  Each worker takes jobs until it
 * sees that EOF and writes a result for each into a second pipe, shared
 * by all workers; once every worker has gone, the dispatcher sends EOF
 * on that pipe too, which tells the collector thread it has everything.
 * The collector checks that each job's result came back exactly once and
 * was right.  The messages are typed (typed.h): a job cannot be written
 * where a result is expected.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <polysocket/typed.h>

#define WORKERS 4
#define JOBS 200
#define CAPACITY 8 /* < JOBS: the dispatcher waits for idle workers */
#define BATCH 16

struct job {
	int id;
};

struct result {
	int id;
	long square; /* of id: the work */
	int worker;
};

POLYPIPE_TYPED(job, struct job);
POLYPIPE_TYPED(result, struct result);

struct worker {
	pthread_t thread;
	polypipe *jobs;    /* the read end every worker shares */
	polypipe *results; /* the write end every worker shares */
	int id;
	int done;  /* jobs it did */
	int error; /* errno of a failure, or 0 */
};

struct collector {
	pthread_t thread;
	polypipe *results;
	int seen[JOBS]; /* results per job */
	int error;      /* errno of a failure, or 0 */
	int wrong;      /* results with a bad id or value */
};

_Noreturn static void
die(const char *what)
{
	perror(what);
	exit(1);
}

/* Frees the messages no one read, should a thread fail early. */
static void
free_msg(void *msg, void *arg)
{
	(void)arg;
	free(msg);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct job *j;
	int r;

	/* Several workers wait here; each job goes to exactly one. */
	while ((r = job_read(w->jobs, &j, -1)) == 1) {
		struct result *res = malloc(sizeof *res);

		if (res == NULL) {
			free(j);
			break;
		}
		*res = (struct result){ .id = j->id,
			                .square = (long)j->id * j->id,
			                .worker = w->id };
		free(j);
		if (result_write(w->results, res, -1) < 0) {
			free(res);
			break;
		}
		w->done++;
	}
	if (r != 0) /* not the dispatcher's EOF */
		w->error = errno;
	return NULL;
}

static void *
collector_main(void *arg)
{
	struct collector *c = arg;
	struct result *res[BATCH];
	ssize_t n, i;

	/* Until EOF: no worker is left to write. */
	while ((n = result_read_many(c->results, res, BATCH, -1)) > 0)
		for (i = 0; i < n; i++) {
			int id = res[i]->id;

			if (id < 0 || id >= JOBS ||
			    res[i]->square != (long)id * id)
				c->wrong++;
			else
				c->seen[id]++;
			free(res[i]);
		}
	if (n < 0)
		c->error = errno;
	return NULL;
}

int
main(void)
{
	struct worker workers[WORKERS];
	struct collector col;
	polypipe *jobs_rd, *jobs_wr, *res_rd, *res_wr;
	int i, once = 0, failed = 0;

	memset(workers, 0, sizeof workers);
	memset(&col, 0, sizeof col);
	if (polypipe_create(CAPACITY, &jobs_rd, &jobs_wr) < 0 ||
	    polypipe_create(CAPACITY, &res_rd, &res_wr) < 0 ||
	    polypipe_set_destructor(jobs_rd, free_msg, NULL) < 0 ||
	    polypipe_set_destructor(res_rd, free_msg, NULL) < 0)
		die("polypipe_create");
	col.results = res_rd;
	if ((errno =
	         pthread_create(&col.thread, NULL, collector_main, &col)) != 0)
		die("pthread_create");
	for (i = 0; i < WORKERS; i++) {
		workers[i].jobs = jobs_rd;
		workers[i].results = res_wr;
		workers[i].id = i + 1;
		if ((errno = pthread_create(&workers[i].thread, NULL,
		                            worker_main, &workers[i])) != 0)
			die("pthread_create");
	}
	printf("worker-pool: %d jobs, %d workers, pipes of %d\n", JOBS,
	       WORKERS, CAPACITY);

	for (i = 0; i < JOBS; i++) {
		struct job *j = malloc(sizeof *j);

		if (j == NULL)
			die("malloc");
		j->id = i;
		/* Waits while CAPACITY jobs are queued. */
		if (job_write(jobs_wr, j, -1) < 0)
			die("job_write");
	}
	/* Each worker finishes the queued jobs, then reads 0 and returns. */
	if (polypipe_write_eof(jobs_wr) < 0)
		die("polypipe_write_eof");
	for (i = 0; i < WORKERS; i++) {
		if ((errno = pthread_join(workers[i].thread, NULL)) != 0)
			die("pthread_join");
		failed += workers[i].error != 0;
		printf("  worker %d: %d jobs%s%s\n", workers[i].id,
		       workers[i].done, workers[i].error ? ", " : "",
		       workers[i].error ? strerror(workers[i].error) : "");
	}
	/* No worker is left to write: the collector may stop at EOF. */
	if (polypipe_write_eof(res_wr) < 0)
		die("polypipe_write_eof");
	if ((errno = pthread_join(col.thread, NULL)) != 0)
		die("pthread_join");

	for (i = 0; i < JOBS; i++)
		once += col.seen[i] == 1;
	polypipe_close(jobs_rd);
	polypipe_close(jobs_wr);
	polypipe_close(res_rd);
	polypipe_close(res_wr);
	if (once != JOBS || col.wrong != 0 || col.error != 0 || failed) {
		fprintf(stderr,
		        "FAILED: %d of %d results once, %d wrong, "
		        "%d workers failed%s%s\n",
		        once, JOBS, col.wrong, failed, col.error ? ", " : "",
		        col.error ? strerror(col.error) : "");
		return 1;
	}
	printf("ok: every job's result came back once, and right\n");
	return 0;
}
