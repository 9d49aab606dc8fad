/*
 * check_polypipe.c - the polypipe half of SPEC.md (polypipe.h, typed.h).
 *
 * Where a test needs another thread to be blocked inside a call, it is
 * written so that the outcome is the same whether the peer acts before or
 * after the block: nothing here sleeps to synchronise.  Threads other than
 * the main one never call Check's assertions (they are not thread-safe,
 * and with CK_FORK=no they would jump out of the wrong thread): they
 * record what happened, and the main thread asserts once it joined them.
 * Check's assertions write to a file each time, so long loops count
 * failures and assert once.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include <polysocket/polypipe.h>
#include <polysocket/typed.h>

#include "testutil.h"

Suite *polypipe_suite(void);

/* Timed calls in these tests wait this long; elapsed times may exceed it
 * by up to SLACK_MS, as sanitizer and valgrind builds are slow. */
#define TIMED_MS 100
#define SLACK_MS 2000

/* A wait that must end because of the peer's action, well before the test
 * times out. */
#define LONG_MS 5000

/* --- helpers ------------------------------------------------------------- */

static void
pipe_new(size_t capacity, polypipe **rd, polypipe **wr)
{
	*rd = NULL;
	*wr = NULL;
	ck_assert_int_eq(polypipe_create(capacity, rd, wr), 0);
	ck_assert_ptr_nonnull(*rd);
	ck_assert_ptr_nonnull(*wr);
	ck_assert_ptr_ne(*rd, *wr);
}

static void
pipe_free(polypipe *rd, polypipe *wr)
{
	polypipe_close(rd);
	polypipe_close(wr);
}

#define WRITE_OK(wr, v) ck_assert_int_eq(polypipe_write((wr), MSG(v), 0), 0)

/* The next message, without waiting, is v. */
#define READ_IS(rd, v)                                                        \
	do {                                                                  \
		void *m_ = MSG(0xbad);                                        \
		ck_assert_int_eq(polypipe_read((rd), &m_, 0), 1);             \
		ck_assert_uint_eq(MSGVAL(m_), (uintptr_t)(v));                \
	} while (0)

/* The stream has ended and is drained: read returns 0 without waiting. */
#define READ_ENDS(rd)                                                         \
	do {                                                                  \
		void *m_ = NULL;                                              \
		ck_assert_int_eq(polypipe_read((rd), &m_, 0), 0);             \
	} while (0)

/* expr fails with ETIMEDOUT after at least ms, and not absurdly later. */
#define ck_assert_times_out(expr, ms)                                         \
	do {                                                                  \
		int64_t t0_ = now_ms();                                       \
		ck_assert_fail(expr, ETIMEDOUT);                              \
		int64_t dt_ = now_ms() - t0_;                                 \
		ck_assert_msg(dt_ >= (ms) && dt_ < (ms) + SLACK_MS,           \
		              "%s: timed out after %lld ms, asked for %d",    \
		              #expr, (long long)dt_, (int)(ms));              \
	} while (0)

/* One library call made in another thread. */
enum op_kind {
	OP_READ,
	OP_WRITE,
	OP_READ_MANY,
	OP_WRITE_MANY,
	OP_WRITE_EOF,
	OP_CLOSE
};

struct op {
	enum op_kind kind;
	polypipe *p;
	int timeout_ms;
	void *msgs[8]; /* what to write, or what was read */
	size_t n;      /* the count for the *_many calls */
	long ret;
	int err;
	atomic_int done;
	atomic_long tid; /* its kernel thread id, once known */
	pthread_t thread;
};

static void *
op_run(void *arg)
{
	struct op *op = arg;

	atomic_store(&op->tid, syscall(SYS_gettid));
	errno = 0;
	switch (op->kind) {
	case OP_READ:
		op->ret = polypipe_read(op->p, &op->msgs[0], op->timeout_ms);
		break;
	case OP_WRITE:
		op->ret = polypipe_write(op->p, op->msgs[0], op->timeout_ms);
		break;
	case OP_READ_MANY:
		op->ret =
		    polypipe_read_many(op->p, op->msgs, op->n, op->timeout_ms);
		break;
	case OP_WRITE_MANY:
		op->ret = polypipe_write_many(op->p, op->msgs, op->n,
		                              op->timeout_ms);
		break;
	case OP_WRITE_EOF:
		op->ret = polypipe_write_eof(op->p);
		break;
	case OP_CLOSE:
		polypipe_close(op->p);
		op->ret = 0;
		break;
	}
	op->err = errno;
	atomic_store(&op->done, 1);
	return NULL;
}

static void
op_start(struct op *op, enum op_kind kind, polypipe *p, int timeout_ms)
{
	op->kind = kind;
	op->p = p;
	op->timeout_ms = timeout_ms;
	op->ret = -2;
	op->err = 0;
	atomic_store(&op->done, 0);
	ck_assert_int_eq(pthread_create(&op->thread, NULL, op_run, op), 0);
}

static void
op_join(struct op *op)
{
	ck_assert_int_eq(pthread_join(op->thread, NULL), 0);
}

/* Whether thread tid of this process sleeps in the kernel now. */
static bool
thread_asleep(long tid)
{
	char path[64], buf[512];
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p != NULL && p[1] == ' ' && (p[2] == 'S' || p[2] == 'D');
}

/*
 * Returns once op's thread sleeps in the kernel, most likely blocked in
 * its call, or has finished, or after two seconds, without sleeping
 * itself.  Tests pass whether or not the thread got that far: this only
 * makes the blocked case, the one worth testing, the likely one.
 */
static void
op_wait_asleep(struct op *op)
{
	int64_t t0 = now_ms();
	long tid;

	while (!atomic_load(&op->done) && now_ms() - t0 < 2000) {
		tid = atomic_load(&op->tid);
		if (tid != 0 && thread_asleep(tid))
			return;
		sched_yield();
	}
}

/* The call made by op returned r, and set errno to e if r is -1. */
#define ck_assert_op(op, r, e)                                                \
	ck_assert_msg((op).ret == (r) && ((r) != -1 || (op).err == (e)),      \
	              "thread call returned %ld (errno %s), expected %ld "    \
	              "(errno %s)",                                           \
	              (op).ret, strerror((op).err), (long)(r), strerror(e))

/* Records destructor calls. */
#define DTOR_MAX 64

struct dtor_log {
	int calls;
	uintptr_t msgs[DTOR_MAX];
	pthread_t thread;
	polypipe *wr; /* if set, each call writes to it: */
	int wr_epipe; /* the writes that failed with EPIPE */
	int wr_other; /* those that did anything else */
};

static void
dtor_record(void *msg, void *arg)
{
	struct dtor_log *dl = arg;

	if (dl->calls < DTOR_MAX)
		dl->msgs[dl->calls] = MSGVAL(msg);
	dl->calls++;
	dl->thread = pthread_self();
	if (dl->wr != NULL) {
		errno = 0;
		if (polypipe_write(dl->wr, MSG(999), 0) == -1 &&
		    errno == EPIPE)
			dl->wr_epipe++;
		else
			dl->wr_other++;
	}
}

static void
dtor_count(void *msg, void *arg)
{
	(void)msg;
	++*(int *)arg;
}

static void
dtor_free(void *msg, void *arg)
{
	free(msg);
	++*(int *)arg;
}

/* How many times the destructor was called for v. */
static int
dtor_seen(const struct dtor_log *dl, uintptr_t v)
{
	int i, n = 0;

	for (i = 0; i < dl->calls && i < DTOR_MAX; i++)
		n += dl->msgs[i] == v;
	return n;
}

/* Records notifier calls; some callbacks act on p from inside. */
struct notify_log {
	atomic_long calls;
	atomic_int running;
	pthread_t thread; /* the thread of the last call */
	polypipe *p;
	int ret; /* what the call made from inside returned */
	int err;
	void *msg; /* what the read made from inside read */
};

static void
notify_record(void *arg)
{
	struct notify_log *nl = arg;

	atomic_store(&nl->running, 1);
	nl->thread = pthread_self();
	atomic_fetch_add(&nl->calls, 1);
	atomic_store(&nl->running, 0);
}

static void
notify_read_inside(void *arg)
{
	struct notify_log *nl = arg;

	errno = 0;
	nl->ret = polypipe_read(nl->p, &nl->msg, 0);
	nl->err = errno;
	atomic_fetch_add(&nl->calls, 1);
}

static void
notify_write_inside(void *arg)
{
	struct notify_log *nl = arg;

	errno = 0;
	nl->ret = polypipe_write(nl->p, MSG(42), 0);
	nl->err = errno;
	atomic_fetch_add(&nl->calls, 1);
}

static void
notify_unset_read_inside(void *arg)
{
	struct notify_log *nl = arg;

	nl->ret = polypipe_set_read_notify(nl->p, NULL, NULL);
	atomic_fetch_add(&nl->calls, 1);
}

static void
notify_unset_write_inside(void *arg)
{
	struct notify_log *nl = arg;

	nl->ret = polypipe_set_write_notify(nl->p, NULL, NULL);
	atomic_fetch_add(&nl->calls, 1);
}

static long
calls_of(struct notify_log *nl)
{
	return atomic_load(&nl->calls);
}

/* --- basic --------------------------------------------------------------- */

START_TEST(test_polypipe_create_bad_args)
{
	polypipe *rd = NULL, *wr = NULL;

	ck_assert_fail(polypipe_create(4, NULL, &wr), EINVAL);
	ck_assert_fail(polypipe_create(4, &rd, NULL), EINVAL);
	ck_assert_fail(polypipe_create(4, NULL, NULL), EINVAL);
	ck_assert_fail(polypipe_create(0, &rd, &wr), EINVAL);
	ck_assert_fail(polypipe_create(0, NULL, NULL), EINVAL);
}
END_TEST

START_TEST(test_polypipe_create_capacity_one)
{
	polypipe *rd, *wr;

	pipe_new(1, &rd, &wr);
	ck_assert_uint_eq(polypipe_capacity(rd), 1);
	ck_assert_uint_eq(polypipe_capacity(wr), 1);
	WRITE_OK(wr, 1);
	ck_assert_fail(polypipe_write(wr, MSG(2), 0), EAGAIN);
	ck_assert_uint_eq(polypipe_length(wr), 1);
	READ_IS(rd, 1);
	WRITE_OK(wr, 2);
	READ_IS(rd, 2);
	ck_assert_uint_eq(polypipe_length(rd), 0);
	pipe_free(rd, wr);
}
END_TEST

#define UNBOUNDED_COUNT 5000

START_TEST(test_polypipe_create_unbounded)
{
	polypipe *rd, *wr;
	uintptr_t i;
	long bad = 0;

	pipe_new(POLYPIPE_UNBOUNDED, &rd, &wr);
	ck_assert_uint_eq(polypipe_capacity(rd), POLYPIPE_UNBOUNDED);
	ck_assert_uint_eq(polypipe_capacity(wr), POLYPIPE_UNBOUNDED);
	for (i = 0; i < UNBOUNDED_COUNT; i++)
		bad += polypipe_write(wr, MSG(i), 0) != 0;
	ck_assert_int_eq(bad, 0);
	ck_assert_uint_eq(polypipe_length(rd), UNBOUNDED_COUNT);
	for (i = 0; i < UNBOUNDED_COUNT; i++) {
		void *m = NULL;

		bad += polypipe_read(rd, &m, 0) != 1 || MSGVAL(m) != i;
	}
	ck_assert_int_eq(bad, 0);
	ck_assert_uint_eq(polypipe_length(rd), 0);
	pipe_free(rd, wr);
}
END_TEST

/* Memory follows the messages, never the capacity: huge capacities cost
 * nothing up front. */
START_TEST(test_polypipe_capacity_costs_no_memory)
{
	static const size_t caps[] = {
		POLYPIPE_UNBOUNDED, SIZE_MAX / 2,    SIZE_MAX / 16,
		(size_t)1 << 40,    (size_t)1 << 32,
	};
	polypipe *rd[5], *wr[5];
	size_t i;

	for (i = 0; i < 5; i++) {
		pipe_new(caps[i], &rd[i], &wr[i]);
		ck_assert_uint_eq(polypipe_capacity(wr[i]), caps[i]);
		WRITE_OK(wr[i], i);
	}
	for (i = 0; i < 5; i++) {
		READ_IS(rd[i], i);
		pipe_free(rd[i], wr[i]);
	}
}
END_TEST

START_TEST(test_polypipe_queries_both_ends)
{
	polypipe *rd, *wr, *end[2];
	int i;

	pipe_new(3, &rd, &wr);
	end[0] = rd;
	end[1] = wr;
	for (i = 0; i < 2; i++) {
		ck_assert_uint_eq(polypipe_capacity(end[i]), 3);
		ck_assert_uint_eq(polypipe_length(end[i]), 0);
		ck_assert(!polypipe_eof(end[i]));
		ck_assert_int_eq(polypipe_get_error(end[i]), 0);
	}
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	for (i = 0; i < 2; i++)
		ck_assert_uint_eq(polypipe_length(end[i]), 2);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	for (i = 0; i < 2; i++) {
		ck_assert(polypipe_eof(end[i]));
		ck_assert_uint_eq(polypipe_length(end[i]), 2);
	}
	READ_IS(rd, 1);
	for (i = 0; i < 2; i++)
		ck_assert_uint_eq(polypipe_length(end[i]), 1);
	ck_assert_int_eq(polypipe_set_error(rd, EIO), 0);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(polypipe_get_error(end[i]), EIO);
		ck_assert_uint_eq(polypipe_capacity(end[i]), 3);
	}
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_queries_null)
{
	ck_assert_uint_eq(polypipe_capacity(NULL), 0);
	ck_assert_uint_eq(polypipe_length(NULL), 0);
	ck_assert(!polypipe_eof(NULL));
	/* SPEC: -1 with EINVAL, as for every function returning int. */
	ck_assert_fail(polypipe_get_error(NULL), EINVAL);
	polypipe_close(NULL);
}
END_TEST

START_TEST(test_polypipe_fifo_order)
{
	polypipe *rd, *wr;
	uintptr_t i;

	pipe_new(8, &rd, &wr);
	for (i = 1; i <= 8; i++)
		WRITE_OK(wr, i);
	for (i = 1; i <= 4; i++)
		READ_IS(rd, i);
	for (i = 9; i <= 12; i++)
		WRITE_OK(wr, i);
	for (i = 5; i <= 12; i++)
		READ_IS(rd, i);
	ck_assert_uint_eq(polypipe_length(rd), 0);
	pipe_free(rd, wr);
}
END_TEST

/*
 * The ring grows with bursts and shrinks after them, the writer's view of
 * the read side lagging behind: each burst here is written whole, then
 * read, partly or whole, with single and batch calls, and every message
 * must come out once, in order.  (A shrink once left the writer counting
 * free slots against the old size and overwriting unread messages.)
 */
START_TEST(test_polypipe_fifo_order_grow_shrink)
{
	static const size_t bursts[] = { 205, 150,  300, 20, 1000, 3, 500,
		                         64,  4097, 7,   1,  2000, 13 };
	polypipe *rd, *wr;
	void *batch[37], *m;
	uintptr_t next_w = 0, next_r = 0;
	size_t b, i, n;
	ssize_t got;

	pipe_new(POLYPIPE_UNBOUNDED, &rd, &wr);
	for (b = 0; b < sizeof bursts / sizeof bursts[0]; b++) {
		for (i = 0; i < bursts[b]; i += n) {
			n = bursts[b] - i < 37 ? bursts[b] - i : 37;
			if (b % 2 == 0) {
				WRITE_OK(wr, next_w);
				next_w++;
				n = 1;
				continue;
			}
			for (size_t k = 0; k < n; k++)
				batch[k] = MSG(next_w + k);
			ck_assert_int_eq(polypipe_write_many(wr, batch, n, 0),
			                 (ssize_t)n);
			next_w += n;
		}
		/* Leave a few behind every other burst. */
		while (next_r < next_w - (b % 2 == 0 ? 0 : next_w % 5)) {
			if (b % 3 == 0) {
				ck_assert_int_eq(polypipe_read(rd, &m, 0), 1);
				ck_assert_uint_eq(MSGVAL(m), next_r);
				next_r++;
				continue;
			}
			got = polypipe_read_many(rd, batch, 37, 0);
			ck_assert_int_gt(got, 0);
			for (i = 0; i < (size_t)got; i++, next_r++)
				ck_assert_uint_eq(MSGVAL(batch[i]), next_r);
		}
		ck_assert_uint_eq(polypipe_length(rd), next_w - next_r);
	}
	while (next_r < next_w) {
		ck_assert_int_eq(polypipe_read(rd, &m, 0), 1);
		ck_assert_uint_eq(MSGVAL(m), next_r);
		next_r++;
	}
	ck_assert_int_eq(polypipe_read(rd, &m, 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_null_message)
{
	polypipe *rd, *wr;
	void *m = MSG(0xbad), *out[4] = { MSG(0xbad), MSG(0xbad) };
	void *const nulls[2] = { NULL, NULL };

	pipe_new(4, &rd, &wr);
	ck_assert_int_eq(polypipe_write(wr, NULL, 0), 0);
	WRITE_OK(wr, 1);
	ck_assert_uint_eq(polypipe_length(rd), 2);
	ck_assert_int_eq(polypipe_read(rd, &m, 0), 1);
	ck_assert_ptr_null(m);
	READ_IS(rd, 1);
	ck_assert_int_eq(polypipe_write_many(wr, nulls, 2, 0), 2);
	ck_assert_int_eq(polypipe_read_many(rd, out, 4, 0), 2);
	ck_assert_ptr_null(out[0]);
	ck_assert_ptr_null(out[1]);
	ck_assert_uint_eq(polypipe_length(rd), 0);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_read_many_fifo)
{
	polypipe *rd, *wr;
	void *out[8];
	uintptr_t i;

	pipe_new(8, &rd, &wr);
	for (i = 1; i <= 5; i++)
		WRITE_OK(wr, i);
	ck_assert_int_eq(polypipe_read_many(rd, out, 2, 0), 2);
	ck_assert_uint_eq(MSGVAL(out[0]), 1);
	ck_assert_uint_eq(MSGVAL(out[1]), 2);
	ck_assert_int_eq(polypipe_read_many(rd, out, 8, 0), 3);
	for (i = 0; i < 3; i++)
		ck_assert_uint_eq(MSGVAL(out[i]), i + 3);
	ck_assert_uint_eq(polypipe_length(rd), 0);
	WRITE_OK(wr, 6);
	ck_assert_int_eq(polypipe_read_many(rd, out, 1, 0), 1);
	ck_assert_uint_eq(MSGVAL(out[0]), 6);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_many_in_order)
{
	polypipe *rd, *wr;
	void *const msgs[5] = { MSG(1), MSG(2), MSG(3), MSG(4), MSG(5) };
	uintptr_t i;

	pipe_new(8, &rd, &wr);
	ck_assert_int_eq(polypipe_write_many(wr, msgs, 5, 0), 5);
	ck_assert_uint_eq(polypipe_length(rd), 5);
	WRITE_OK(wr, 6);
	ck_assert_int_eq(polypipe_write_many(wr, msgs, 1, 0), 1);
	for (i = 1; i <= 6; i++)
		READ_IS(rd, i);
	READ_IS(rd, 1);
	pipe_free(rd, wr);
}
END_TEST

/* Every poll(2)-style timeout is accepted, and a call that need not wait
 * completes at once whatever it allows. */
START_TEST(test_polypipe_timeout_values)
{
	static const int timeouts[] = { -1, 0, 1, TIMED_MS, INT_MAX };
	polypipe *rd, *wr;
	void *m, *out[2];
	void *const two[2] = { MSG(7), MSG(8) };
	size_t i;
	int64_t t0 = now_ms();

	pipe_new(4, &rd, &wr);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(polypipe_write(wr, MSG(i), timeouts[i]), 0);
		ck_assert_int_eq(polypipe_read(rd, &m, timeouts[i]), 1);
		ck_assert_uint_eq(MSGVAL(m), i);
		ck_assert_int_eq(polypipe_write_many(wr, two, 2, timeouts[i]),
		                 2);
		ck_assert_int_eq(polypipe_read_many(rd, out, 2, timeouts[i]),
		                 2);
		ck_assert_uint_eq(MSGVAL(out[1]), 8);
	}
	ck_assert_int_lt(now_ms() - t0, SLACK_MS);
	pipe_free(rd, wr);
}
END_TEST

/* The seccomp filter that lets through exit_group only. */
static int
only_exit_group(void)
{
	struct sock_filter only_exit[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		         offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit_group, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog = {
		.len = sizeof only_exit / sizeof only_exit[0],
		.filter = only_exit,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/*
 * Why test_polypipe_fast_path_no_syscall cannot run here, or NULL: under
 * valgrind, which makes system calls of its own in the child, or where
 * a seccomp filter cannot be installed (tried in a child).
 */
static const char *
fast_path_unwatchable(void)
{
	const char *preload = getenv("LD_PRELOAD");
	pid_t pid;
	int status;

	if (preload != NULL && strstr(preload, "vgpreload") != NULL)
		return "under valgrind, which makes system calls of its own";
	/* check_main.c puts the seed there in a chaos build. */
	if (getenv("POLYSOCKET_CHAOS_SEED") != NULL)
		return "in a chaos build, whose preemption points yield and "
		       "sleep";
	pid = fork();
	if (pid < 0)
		return "fork failed";
	if (pid == 0)
		syscall(SYS_exit_group, only_exit_group() == 0 ? 0 : 77);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return "no seccomp filter can be installed here";
	return NULL;
}

/* Runs in a child that any system call but exit_group kills: calls that
 * need not wait, with no descriptor asked for and nobody to wake. */
static void
fast_path_child(polypipe *rd, polypipe *wr)
{
	void *const two[2] = { MSG(2), MSG(3) };
	void *m = NULL, *out[4];
	int bad = 0;

	if (only_exit_group() != 0)
		syscall(SYS_exit_group, 2);
	bad += polypipe_write(wr, MSG(1), 0) != 0;
	bad += polypipe_write(wr, MSG(1), -1) != 0;
	bad += polypipe_write_many(wr, two, 2, LONG_MS) != 2;
	bad += polypipe_read(rd, &m, 0) != 1;
	bad += polypipe_read(rd, &m, LONG_MS) != 1;
	bad += polypipe_read_many(rd, out, 4, -1) != 2;
	bad += polypipe_length(rd) != 0;
	syscall(SYS_exit_group, bad == 0 ? 0 : 1);
}

/* SPEC: the fast path makes no system call (no futex, no eventfd).
 * Skipped where it cannot be watched (fast_path_unwatchable). */
START_TEST(test_polypipe_fast_path_no_syscall)
{
	polypipe *rd, *wr;
	pid_t pid;
	int status;

	pipe_new(4, &rd, &wr);
	/* Warm up, so that the buffer memory exists before the child. */
	WRITE_OK(wr, 1);
	READ_IS(rd, 1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		fast_path_child(rd, wr);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(!WIFSIGNALED(status),
	              "the fast path made a system call (killed by %s)",
	              strsignal(WTERMSIG(status)));
	ck_assert(WIFEXITED(status));
	ck_assert_msg(WEXITSTATUS(status) != 2,
	              "the seccomp filter failed in the child");
	ck_assert_msg(WEXITSTATUS(status) == 0,
	              "the calls failed in the child");
	pipe_free(rd, wr);
}
END_TEST

/* Either end may be closed first; buffered messages reach the destructor
 * either way, and nothing leaks (valgrind, LeakSanitizer). */
START_TEST(test_polypipe_close_either_order)
{
	int order, i;

	for (order = 0; order < 2; order++) {
		polypipe *rd, *wr;
		int freed = 0;

		pipe_new(8, &rd, &wr);
		ck_assert_int_eq(
		    polypipe_set_destructor(rd, dtor_free, &freed), 0);
		for (i = 0; i < 4; i++) {
			int *x = malloc(sizeof *x);

			ck_assert_ptr_nonnull(x);
			*x = i;
			ck_assert_int_eq(polypipe_write(wr, x, 0), 0);
		}
		if (order == 0) {
			polypipe_close(rd);
			ck_assert_int_eq(freed, 4);
			polypipe_close(wr);
		} else {
			polypipe_close(wr);
			ck_assert_int_eq(freed, 0);
			polypipe_close(rd);
		}
		ck_assert_int_eq(freed, 4);
	}
}
END_TEST

/* --- errors -------------------------------------------------------------- */

START_TEST(test_polypipe_read_bad_args)
{
	polypipe *rd, *wr;
	void *m;

	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 7);
	ck_assert_fail(polypipe_read(NULL, &m, 0), EINVAL);
	ck_assert_fail(polypipe_read(NULL, &m, -1), EINVAL);
	ck_assert_fail(polypipe_read(rd, NULL, 0), EINVAL);
	ck_assert_fail(polypipe_read(rd, &m, -2), EINVAL);
	ck_assert_fail(polypipe_read(rd, &m, INT_MIN), EINVAL);
	ck_assert_fail(polypipe_read(wr, &m, 0), EBADF);
	ck_assert_fail(polypipe_read(wr, &m, -1), EBADF);
	ck_assert_uint_eq(polypipe_length(rd), 1);
	READ_IS(rd, 7);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_bad_args)
{
	polypipe *rd, *wr;
	struct dtor_log dl = { 0 };

	pipe_new(4, &rd, &wr);
	ck_assert_int_eq(polypipe_set_destructor(wr, dtor_record, &dl), 0);
	ck_assert_fail(polypipe_write(NULL, MSG(1), 0), EINVAL);
	ck_assert_fail(polypipe_write(wr, MSG(2), -2), EINVAL);
	ck_assert_fail(polypipe_write(wr, MSG(3), INT_MIN), EINVAL);
	ck_assert_fail(polypipe_write(rd, MSG(4), 0), EBADF);
	ck_assert_fail(polypipe_write(rd, MSG(5), -1), EBADF);
	ck_assert_uint_eq(polypipe_length(wr), 0);
	ck_assert_fail(polypipe_read(rd, &(void *){ NULL }, 0), EAGAIN);
	polypipe_close(rd);
	ck_assert_int_eq(dl.calls, 0);
	polypipe_close(wr);
}
END_TEST

START_TEST(test_polypipe_read_many_bad_args)
{
	polypipe *rd, *wr;
	void *out[4];

	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 7);
	ck_assert_fail(polypipe_read_many(NULL, out, 4, 0), EINVAL);
	ck_assert_fail(polypipe_read_many(rd, NULL, 4, 0), EINVAL);
	ck_assert_fail(polypipe_read_many(rd, out, 0, 0), EINVAL);
	ck_assert_fail(polypipe_read_many(rd, out, 4, -2), EINVAL);
	ck_assert_fail(polypipe_read_many(wr, out, 4, 0), EBADF);
	ck_assert_uint_eq(polypipe_length(rd), 1);
	READ_IS(rd, 7);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_many_bad_args)
{
	polypipe *rd, *wr;
	void *const msgs[2] = { MSG(1), MSG(2) };

	pipe_new(4, &rd, &wr);
	ck_assert_fail(polypipe_write_many(NULL, msgs, 2, 0), EINVAL);
	ck_assert_fail(polypipe_write_many(wr, NULL, 2, 0), EINVAL);
	ck_assert_fail(polypipe_write_many(wr, msgs, 0, 0), EINVAL);
	ck_assert_fail(polypipe_write_many(wr, msgs, 2, -2), EINVAL);
	ck_assert_fail(polypipe_write_many(rd, msgs, 2, 0), EBADF);
	ck_assert_uint_eq(polypipe_length(wr), 0);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_eof_bad_args)
{
	polypipe *rd, *wr;

	pipe_new(4, &rd, &wr);
	ck_assert_fail(polypipe_write_eof(NULL), EINVAL);
	ck_assert_fail(polypipe_write_eof(rd), EBADF);
	ck_assert(!polypipe_eof(rd));
	ck_assert(!polypipe_eof(wr));
	WRITE_OK(wr, 1);
	READ_IS(rd, 1);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_set_error_bad_args)
{
	polypipe *rd, *wr;

	pipe_new(4, &rd, &wr);
	ck_assert_fail(polypipe_set_error(NULL, EIO), EINVAL);
	ck_assert_fail(polypipe_set_error(rd, 0), EINVAL);
	ck_assert_fail(polypipe_set_error(wr, 0), EINVAL);
	ck_assert_fail(polypipe_set_error(wr, -1), EINVAL);
	ck_assert_fail(polypipe_set_error(rd, INT_MIN), EINVAL);
	ck_assert_int_eq(polypipe_get_error(rd), 0);
	ck_assert_int_eq(polypipe_get_error(wr), 0);
	ck_assert(!polypipe_eof(rd));
	WRITE_OK(wr, 1);
	READ_IS(rd, 1);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_set_destructor_bad_args)
{
	polypipe *rd, *wr;
	int n = 0;

	ck_assert_fail(polypipe_set_destructor(NULL, dtor_count, &n), EINVAL);
	ck_assert_fail(polypipe_set_destructor(NULL, NULL, NULL), EINVAL);
	pipe_new(4, &rd, &wr);
	ck_assert_int_eq(polypipe_set_destructor(rd, NULL, NULL), 0);
	ck_assert_int_eq(polypipe_set_destructor(wr, NULL, NULL), 0);
	pipe_free(rd, wr);
}
END_TEST

/* A bad argument fails even where the call could otherwise complete, and
 * before a stored error, EPIPE, or waiting. */
START_TEST(test_polypipe_args_checked_first)
{
	polypipe *rd, *wr;
	void *m, *out[2];
	void *const one[1] = { MSG(1) };

	/* Empty: would wait. */
	pipe_new(1, &rd, &wr);
	ck_assert_fail(polypipe_read(rd, &m, -2), EINVAL);
	ck_assert_fail(polypipe_read_many(rd, out, 0, 0), EINVAL);
	/* Full: would wait. */
	WRITE_OK(wr, 1);
	ck_assert_fail(polypipe_write(wr, MSG(2), -2), EINVAL);
	ck_assert_fail(polypipe_write_many(wr, one, 0, 0), EINVAL);
	/* Ended and drained: read would return 0; write would fail EPIPE. */
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	READ_IS(rd, 1);
	ck_assert_fail(polypipe_read(rd, &m, -2), EINVAL);
	ck_assert_fail(polypipe_read(rd, NULL, 0), EINVAL);
	ck_assert_fail(polypipe_read_many(rd, out, 0, 0), EINVAL);
	ck_assert_fail(polypipe_read(wr, &m, 0), EBADF);
	ck_assert_fail(polypipe_write(wr, MSG(2), -2), EINVAL);
	ck_assert_fail(polypipe_write(rd, MSG(2), 0), EBADF);
	ck_assert_fail(polypipe_write_many(wr, one, 0, 0), EINVAL);
	READ_ENDS(rd);
	pipe_free(rd, wr);

	/* Error stored, a message buffered: read would complete. */
	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_set_error(wr, EIO), 0);
	ck_assert_fail(polypipe_read(rd, &m, -2), EINVAL);
	ck_assert_fail(polypipe_read_many(rd, NULL, 2, 0), EINVAL);
	ck_assert_fail(polypipe_read(wr, &m, 0), EBADF);
	ck_assert_fail(polypipe_write(wr, MSG(2), -2), EINVAL);
	ck_assert_fail(polypipe_write_many(wr, NULL, 1, 0), EINVAL);
	ck_assert_fail(polypipe_write_many(rd, one, 1, 0), EBADF);
	ck_assert_fail(polypipe_write_eof(rd), EBADF);
	ck_assert_uint_eq(polypipe_length(rd), 1);
	READ_IS(rd, 1);
	pipe_free(rd, wr);

	/* Read end closed: write would fail with EPIPE. */
	pipe_new(4, &rd, &wr);
	polypipe_close(rd);
	ck_assert_fail(polypipe_write(wr, MSG(2), -2), EINVAL);
	ck_assert_fail(polypipe_write_many(wr, one, 0, -1), EINVAL);
	polypipe_close(wr);
}
END_TEST

/* --- blocking ------------------------------------------------------------ */

START_TEST(test_polypipe_read_empty_eagain)
{
	polypipe *rd, *wr;
	void *m, *out[2];

	pipe_new(2, &rd, &wr);
	ck_assert_fail(polypipe_read(rd, &m, 0), EAGAIN);
	ck_assert_fail(polypipe_read_many(rd, out, 2, 0), EAGAIN);
	WRITE_OK(wr, 1);
	READ_IS(rd, 1);
	ck_assert_fail(polypipe_read(rd, &m, 0), EAGAIN);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_full_eagain)
{
	polypipe *rd, *wr;
	void *const msgs[2] = { MSG(3), MSG(4) };

	pipe_new(2, &rd, &wr);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	ck_assert_fail(polypipe_write(wr, MSG(3), 0), EAGAIN);
	ck_assert_fail(polypipe_write_many(wr, msgs, 2, 0), EAGAIN);
	ck_assert_uint_eq(polypipe_length(wr), 2);
	READ_IS(rd, 1);
	READ_IS(rd, 2);
	ck_assert_fail(polypipe_read(rd, &(void *){ NULL }, 0), EAGAIN);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_read_times_out)
{
	polypipe *rd, *wr;
	void *m, *out[2];

	pipe_new(2, &rd, &wr);
	ck_assert_times_out(polypipe_read(rd, &m, TIMED_MS), TIMED_MS);
	ck_assert_times_out(polypipe_read_many(rd, out, 2, TIMED_MS),
	                    TIMED_MS);
	ck_assert_times_out(polypipe_read(rd, &m, 1), 1);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_times_out)
{
	polypipe *rd, *wr;
	void *const msgs[2] = { MSG(3), MSG(4) };
	struct dtor_log dl = { 0 };

	pipe_new(2, &rd, &wr);
	ck_assert_int_eq(polypipe_set_destructor(rd, dtor_record, &dl), 0);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	ck_assert_times_out(polypipe_write(wr, MSG(3), TIMED_MS), TIMED_MS);
	ck_assert_times_out(polypipe_write_many(wr, msgs, 2, TIMED_MS),
	                    TIMED_MS);
	ck_assert_times_out(polypipe_write(wr, MSG(3), 1), 1);
	ck_assert_uint_eq(polypipe_length(wr), 2);
	polypipe_close(rd);
	ck_assert_int_eq(dl.calls, 2);
	ck_assert_int_eq(dtor_seen(&dl, 1) + dtor_seen(&dl, 2), 2);
	polypipe_close(wr);
}
END_TEST

START_TEST(test_polypipe_read_waits_for_write)
{
	polypipe *rd, *wr;
	struct op r = { 0 };

	pipe_new(4, &rd, &wr);
	op_start(&r, OP_READ, rd, -1);
	op_wait_asleep(&r);
	WRITE_OK(wr, 5);
	op_join(&r);
	ck_assert_op(r, 1, 0);
	ck_assert_uint_eq(MSGVAL(r.msgs[0]), 5);
	ck_assert_uint_eq(polypipe_length(rd), 0);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_waits_for_read)
{
	polypipe *rd, *wr;
	struct op w = { .msgs = { MSG(2) } };
	void *m = NULL;

	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	op_start(&w, OP_WRITE, wr, -1);
	op_wait_asleep(&w);
	READ_IS(rd, 1);
	ck_assert_int_eq(polypipe_read(rd, &m, -1), 1);
	ck_assert_uint_eq(MSGVAL(m), 2);
	op_join(&w);
	ck_assert_op(w, 0, 0);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_timed_read_gets_message)
{
	polypipe *rd, *wr;
	struct op r = { 0 };

	pipe_new(4, &rd, &wr);
	op_start(&r, OP_READ, rd, LONG_MS);
	op_wait_asleep(&r);
	WRITE_OK(wr, 5);
	op_join(&r);
	ck_assert_op(r, 1, 0);
	ck_assert_uint_eq(MSGVAL(r.msgs[0]), 5);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_timed_write_gets_slot)
{
	polypipe *rd, *wr;
	struct op w = { .msgs = { MSG(2) } };
	void *m = NULL;

	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	op_start(&w, OP_WRITE, wr, LONG_MS);
	op_wait_asleep(&w);
	READ_IS(rd, 1);
	ck_assert_int_eq(polypipe_read(rd, &m, LONG_MS), 1);
	ck_assert_uint_eq(MSGVAL(m), 2);
	op_join(&w);
	ck_assert_op(w, 0, 0);
	pipe_free(rd, wr);
}
END_TEST

/* write_many is one lock, so a waiting read_many gets the whole batch. */
START_TEST(test_polypipe_read_many_waits_for_batch)
{
	polypipe *rd, *wr;
	struct op r = { .n = 8 };
	void *const msgs[3] = { MSG(1), MSG(2), MSG(3) };
	int i;

	pipe_new(8, &rd, &wr);
	op_start(&r, OP_READ_MANY, rd, -1);
	op_wait_asleep(&r);
	ck_assert_int_eq(polypipe_write_many(wr, msgs, 3, 0), 3);
	op_join(&r);
	ck_assert_op(r, 3, 0);
	for (i = 0; i < 3; i++)
		ck_assert_ptr_eq(r.msgs[i], msgs[i]);
	ck_assert_uint_eq(polypipe_length(rd), 0);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_many_partial)
{
	polypipe *rd, *wr;
	void *const msgs[5] = { MSG(10), MSG(11), MSG(12), MSG(13), MSG(14) };

	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_write_many(wr, msgs, 5, 0), 3);
	ck_assert_uint_eq(polypipe_length(wr), 4);
	ck_assert_fail(polypipe_write_many(wr, msgs + 3, 2, 0), EAGAIN);
	READ_IS(rd, 1);
	READ_IS(rd, 10);
	ck_assert_int_eq(polypipe_write_many(wr, msgs + 3, 2, TIMED_MS), 2);
	READ_IS(rd, 11);
	READ_IS(rd, 12);
	READ_IS(rd, 13);
	READ_IS(rd, 14);
	ck_assert_uint_eq(polypipe_length(rd), 0);
	pipe_free(rd, wr);
}
END_TEST

/* Whether the writer blocks before or after the read, exactly one slot is
 * free for it, so it must return 1 rather than wait for all three. */
START_TEST(test_polypipe_write_many_waits_for_one_slot)
{
	polypipe *rd, *wr;
	struct op w = { .msgs = { MSG(10), MSG(11), MSG(12) }, .n = 3 };

	pipe_new(2, &rd, &wr);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	op_start(&w, OP_WRITE_MANY, wr, -1);
	op_wait_asleep(&w);
	READ_IS(rd, 1);
	op_join(&w);
	ck_assert_op(w, 1, 0);
	READ_IS(rd, 2);
	READ_IS(rd, 10);
	ck_assert_uint_eq(polypipe_length(rd), 0);
	pipe_free(rd, wr);
}
END_TEST

/* A batch wakes as many waiting readers as it brings messages. */
START_TEST(test_polypipe_write_many_wakes_enough_readers)
{
	polypipe *rd, *wr;
	struct op r1 = { 0 }, r2 = { 0 };
	void *const two[2] = { MSG(1), MSG(2) };

	pipe_new(4, &rd, &wr);
	op_start(&r1, OP_READ, rd, -1);
	op_start(&r2, OP_READ, rd, -1);
	op_wait_asleep(&r1);
	op_wait_asleep(&r2);
	ck_assert_int_eq(polypipe_write_many(wr, two, 2, 0), 2);
	op_join(&r1);
	op_join(&r2);
	ck_assert_op(r1, 1, 0);
	ck_assert_op(r2, 1, 0);
	ck_assert_ptr_ne(r1.msgs[0], r2.msgs[0]);
	ck_assert_uint_eq(MSGVAL(r1.msgs[0]) + MSGVAL(r2.msgs[0]), 3);
	pipe_free(rd, wr);
}
END_TEST

/* A batch read wakes as many waiting writers as it frees slots. */
START_TEST(test_polypipe_read_many_wakes_enough_writers)
{
	polypipe *rd, *wr;
	struct op w1 = { .msgs = { MSG(3) } }, w2 = { .msgs = { MSG(4) } };
	void *out[2];

	pipe_new(2, &rd, &wr);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	op_start(&w1, OP_WRITE, wr, -1);
	op_start(&w2, OP_WRITE, wr, -1);
	op_wait_asleep(&w1);
	op_wait_asleep(&w2);
	ck_assert_int_eq(polypipe_read_many(rd, out, 2, 0), 2);
	ck_assert_uint_eq(MSGVAL(out[0]), 1);
	ck_assert_uint_eq(MSGVAL(out[1]), 2);
	op_join(&w1);
	op_join(&w2);
	ck_assert_op(w1, 0, 0);
	ck_assert_op(w2, 0, 0);
	ck_assert_int_eq(polypipe_read_many(rd, out, 2, 0), 2);
	ck_assert_uint_eq(MSGVAL(out[0]) + MSGVAL(out[1]), 7);
	pipe_free(rd, wr);
}
END_TEST

static void
on_signal(int sig)
{
	(void)sig;
}

/* Without SA_RESTART, so that a wait the library does not resume would
 * surface as EINTR. */
static void
catch_sigusr1(struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, old), 0);
}

START_TEST(test_polypipe_blocking_calls_not_interrupted)
{
	polypipe *rd, *wr, *frd, *fwr;
	struct op r = { 0 }, w = { .msgs = { MSG(2) } };
	struct sigaction old;
	void *m = NULL;
	int i, bad = 0;

	catch_sigusr1(&old);
	pipe_new(1, &rd, &wr);
	pipe_new(1, &frd, &fwr);
	WRITE_OK(fwr, 1);
	op_start(&r, OP_READ, rd, -1);
	op_start(&w, OP_WRITE, fwr, -1);
	op_wait_asleep(&r);
	op_wait_asleep(&w);
	for (i = 0; i < 200; i++) {
		bad += pthread_kill(r.thread, SIGUSR1) != 0;
		bad += pthread_kill(w.thread, SIGUSR1) != 0;
		sched_yield();
	}
	ck_assert_int_eq(bad, 0);
	WRITE_OK(wr, 3);
	READ_IS(frd, 1);
	op_join(&r);
	op_join(&w);
	ck_assert_op(r, 1, 0);
	ck_assert_uint_eq(MSGVAL(r.msgs[0]), 3);
	ck_assert_op(w, 0, 0);
	ck_assert_int_eq(polypipe_read(frd, &m, 0), 1);
	ck_assert_uint_eq(MSGVAL(m), 2);
	pipe_free(rd, wr);
	pipe_free(frd, fwr);
	ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
}
END_TEST

/* Signals keep arriving for the whole wait: the call neither fails with
 * EINTR nor restarts its full timeout on each one. */
START_TEST(test_polypipe_timed_wait_not_interrupted)
{
	polypipe *rd, *wr;
	struct op r = { 0 };
	struct sigaction old;
	int64_t t0, dt;
	int bad = 0;

	catch_sigusr1(&old);
	pipe_new(1, &rd, &wr);
	t0 = now_ms();
	op_start(&r, OP_READ, rd, 2 * TIMED_MS);
	while (!atomic_load(&r.done)) {
		bad += pthread_kill(r.thread, SIGUSR1) != 0;
		sched_yield();
	}
	op_join(&r);
	dt = now_ms() - t0;
	ck_assert_int_eq(bad, 0);
	ck_assert_op(r, -1, ETIMEDOUT);
	ck_assert_int_ge(dt, 2 * TIMED_MS);
	ck_assert_int_lt(dt, 2 * TIMED_MS + SLACK_MS);
	pipe_free(rd, wr);
	ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
}
END_TEST

/* --- eof_error ----------------------------------------------------------- */

START_TEST(test_polypipe_eof_then_drain)
{
	polypipe *rd, *wr;
	void *m, *out[8];

	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	WRITE_OK(wr, 3);
	ck_assert(!polypipe_eof(rd));
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert(polypipe_eof(rd));
	ck_assert(polypipe_eof(wr));
	ck_assert_uint_eq(polypipe_length(rd), 3);
	READ_IS(rd, 1);
	ck_assert_int_eq(polypipe_read_many(rd, out, 8, 0), 2);
	ck_assert_uint_eq(MSGVAL(out[0]), 2);
	ck_assert_uint_eq(MSGVAL(out[1]), 3);
	READ_ENDS(rd);
	ck_assert_int_eq(polypipe_read(rd, &m, -1), 0);
	ck_assert_int_eq(polypipe_read(rd, &m, TIMED_MS), 0);
	ck_assert_int_eq(polypipe_read_many(rd, out, 8, 0), 0);
	ck_assert_int_eq(polypipe_read_many(rd, out, 8, -1), 0);
	ck_assert_int_eq(polypipe_get_error(rd), 0);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_after_eof_epipe)
{
	polypipe *rd, *wr;
	void *const msgs[2] = { MSG(3), MSG(4) };

	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_fail(polypipe_write(wr, MSG(2), 0), EPIPE);
	ck_assert_fail(polypipe_write(wr, MSG(2), -1), EPIPE);
	ck_assert_fail(polypipe_write(wr, MSG(2), TIMED_MS), EPIPE);
	ck_assert_fail(polypipe_write_many(wr, msgs, 2, 0), EPIPE);
	ck_assert_fail(polypipe_write_many(wr, msgs, 2, -1), EPIPE);
	ck_assert_uint_eq(polypipe_length(rd), 1);
	READ_IS(rd, 1);
	READ_ENDS(rd);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_eof_idempotent)
{
	polypipe *rd, *wr;

	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert(polypipe_eof(rd));
	READ_IS(rd, 1);
	READ_ENDS(rd);
	polypipe_close(rd);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	polypipe_close(wr);

	pipe_new(4, &rd, &wr);
	polypipe_close(rd);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	polypipe_close(wr);
}
END_TEST

START_TEST(test_polypipe_write_eof_on_full_pipe)
{
	polypipe *rd, *wr;
	void *const msgs[2] = { MSG(1), MSG(2) };
	int64_t t0 = now_ms();

	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert(polypipe_eof(rd));
	ck_assert_uint_eq(polypipe_length(rd), 1);
	READ_IS(rd, 1);
	READ_ENDS(rd);
	pipe_free(rd, wr);

	pipe_new(2, &rd, &wr);
	ck_assert_int_eq(polypipe_write_many(wr, msgs, 2, 0), 2);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	READ_IS(rd, 1);
	READ_IS(rd, 2);
	READ_ENDS(rd);
	pipe_free(rd, wr);
	ck_assert_int_lt(now_ms() - t0, SLACK_MS);
}
END_TEST

/* A full pipe after EOF: the write fails at once with EPIPE rather than
 * waiting (EAGAIN, ETIMEDOUT). */
START_TEST(test_polypipe_epipe_before_waiting)
{
	polypipe *rd, *wr;
	void *const msgs[1] = { MSG(2) };
	int64_t t0;

	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_fail(polypipe_write(wr, MSG(2), 0), EPIPE);
	ck_assert_fail(polypipe_write_many(wr, msgs, 1, 0), EPIPE);
	t0 = now_ms();
	ck_assert_fail(polypipe_write(wr, MSG(2), 10 * TIMED_MS), EPIPE);
	ck_assert_int_lt(now_ms() - t0, 10 * TIMED_MS);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_close_write_end_ends_stream)
{
	polypipe *rd, *wr;
	void *out[4];

	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	polypipe_close(wr);
	ck_assert(polypipe_eof(rd));
	ck_assert_int_eq(polypipe_get_error(rd), 0);
	ck_assert_uint_eq(polypipe_length(rd), 2);
	READ_IS(rd, 1);
	READ_IS(rd, 2);
	READ_ENDS(rd);
	ck_assert_int_eq(polypipe_read_many(rd, out, 4, -1), 0);
	polypipe_close(rd);
}
END_TEST

START_TEST(test_polypipe_close_read_end_epipe)
{
	polypipe *rd, *wr;
	void *const msgs[2] = { MSG(3), MSG(4) };

	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 1);
	polypipe_close(rd);
	ck_assert_fail(polypipe_write(wr, MSG(2), 0), EPIPE);
	ck_assert_fail(polypipe_write(wr, MSG(2), -1), EPIPE);
	ck_assert_fail(polypipe_write(wr, MSG(2), TIMED_MS), EPIPE);
	ck_assert_fail(polypipe_write_many(wr, msgs, 2, -1), EPIPE);
	ck_assert(!polypipe_eof(wr));
	ck_assert_int_eq(polypipe_get_error(wr), 0);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_fail(polypipe_write(wr, MSG(2), 0), EPIPE);
	polypipe_close(wr);
}
END_TEST

/* Two writers wait on a full pipe, or get there after the close: either
 * way both fail with EPIPE, and their messages stay theirs. */
START_TEST(test_polypipe_read_close_wakes_blocked_writers)
{
	polypipe *rd, *wr;
	struct op w1 = { .msgs = { MSG(2) } }, w2 = { .msgs = { MSG(3) } };
	struct dtor_log dl = { 0 };

	pipe_new(1, &rd, &wr);
	ck_assert_int_eq(polypipe_set_destructor(wr, dtor_record, &dl), 0);
	WRITE_OK(wr, 1);
	op_start(&w1, OP_WRITE, wr, -1);
	op_start(&w2, OP_WRITE, wr, -1);
	op_wait_asleep(&w1);
	op_wait_asleep(&w2);
	polypipe_close(rd);
	ck_assert_int_eq(dl.calls, 1);
	ck_assert_int_eq(dtor_seen(&dl, 1), 1);
	op_join(&w1);
	op_join(&w2);
	ck_assert_op(w1, -1, EPIPE);
	ck_assert_op(w2, -1, EPIPE);
	ck_assert_int_eq(dl.calls, 1);
	polypipe_close(wr);
	ck_assert_int_eq(dl.calls, 1);
}
END_TEST

START_TEST(test_polypipe_eof_wakes_blocked_writers)
{
	polypipe *rd, *wr;
	struct op w1 = { .msgs = { MSG(2) } }, w2 = { .msgs = { MSG(3) } };

	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	op_start(&w1, OP_WRITE, wr, -1);
	op_start(&w2, OP_WRITE, wr, -1);
	op_wait_asleep(&w1);
	op_wait_asleep(&w2);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	op_join(&w1);
	op_join(&w2);
	ck_assert_op(w1, -1, EPIPE);
	ck_assert_op(w2, -1, EPIPE);
	READ_IS(rd, 1);
	READ_ENDS(rd);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_eof_wakes_blocked_readers)
{
	polypipe *rd, *wr;
	struct op r1 = { 0 }, r2 = { .n = 4 };

	pipe_new(4, &rd, &wr);
	op_start(&r1, OP_READ, rd, -1);
	op_start(&r2, OP_READ_MANY, rd, -1);
	op_wait_asleep(&r1);
	op_wait_asleep(&r2);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	op_join(&r1);
	op_join(&r2);
	ck_assert_op(r1, 0, 0);
	ck_assert_op(r2, 0, 0);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_close_wakes_blocked_readers)
{
	polypipe *rd, *wr;
	struct op r1 = { 0 }, r2 = { .n = 4 };

	pipe_new(4, &rd, &wr);
	op_start(&r1, OP_READ, rd, -1);
	op_start(&r2, OP_READ_MANY, rd, LONG_MS);
	op_wait_asleep(&r1);
	op_wait_asleep(&r2);
	polypipe_close(wr);
	op_join(&r1);
	op_join(&r2);
	ck_assert_op(r1, 0, 0);
	ck_assert_op(r2, 0, 0);
	polypipe_close(rd);
}
END_TEST

START_TEST(test_polypipe_error_wakes_blocked_readers)
{
	polypipe *rd, *wr;
	struct op r1 = { 0 }, r2 = { .n = 4 };

	pipe_new(4, &rd, &wr);
	op_start(&r1, OP_READ, rd, -1);
	op_start(&r2, OP_READ_MANY, rd, -1);
	op_wait_asleep(&r1);
	op_wait_asleep(&r2);
	ck_assert_int_eq(polypipe_set_error(wr, ECONNRESET), 0);
	op_join(&r1);
	op_join(&r2);
	ck_assert_op(r1, -1, ECONNRESET);
	ck_assert_op(r2, -1, ECONNRESET);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_error_wakes_blocked_writers)
{
	polypipe *rd, *wr;
	struct op w1 = { .msgs = { MSG(2) } };
	struct op w2 = { .msgs = { MSG(3), MSG(4) }, .n = 2 };
	void *m;

	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	op_start(&w1, OP_WRITE, wr, -1);
	op_start(&w2, OP_WRITE_MANY, wr, -1);
	op_wait_asleep(&w1);
	op_wait_asleep(&w2);
	ck_assert_int_eq(polypipe_set_error(rd, EIO), 0);
	op_join(&w1);
	op_join(&w2);
	ck_assert_op(w1, -1, EIO);
	ck_assert_op(w2, -1, EIO);
	READ_IS(rd, 1);
	ck_assert_fail(polypipe_read(rd, &m, 0), EIO);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_set_error_first_wins)
{
	polypipe *rd, *wr;
	void *m;

	pipe_new(4, &rd, &wr);
	ck_assert_int_eq(polypipe_set_error(wr, EIO), 0);
	ck_assert_int_eq(polypipe_set_error(rd, EPROTO), 0);
	ck_assert_int_eq(polypipe_set_error(wr, ENOSPC), 0);
	ck_assert_int_eq(polypipe_set_error(rd, ECONNRESET), 0);
	ck_assert_int_eq(polypipe_get_error(rd), EIO);
	ck_assert_int_eq(polypipe_get_error(wr), EIO);
	ck_assert_fail(polypipe_write(wr, MSG(1), 0), EIO);
	ck_assert_fail(polypipe_read(rd, &m, 0), EIO);
	ck_assert_fail(polypipe_set_error(rd, 0), EINVAL);
	ck_assert_int_eq(polypipe_get_error(rd), EIO);
	pipe_free(rd, wr);
}
END_TEST

/* The error reaches the writers at once: no EOF, no EPIPE, a free slot. */
START_TEST(test_polypipe_set_error_fails_writers)
{
	polypipe *rd, *wr;
	void *const msgs[2] = { MSG(3), MSG(4) };

	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_set_error(rd, EIO), 0);
	ck_assert(polypipe_eof(rd));
	ck_assert(polypipe_eof(wr));
	ck_assert_fail(polypipe_write(wr, MSG(2), 0), EIO);
	ck_assert_fail(polypipe_write(wr, MSG(2), -1), EIO);
	ck_assert_fail(polypipe_write(wr, MSG(2), TIMED_MS), EIO);
	ck_assert_fail(polypipe_write_many(wr, msgs, 2, 0), EIO);
	ck_assert_fail(polypipe_write_many(wr, msgs, 2, -1), EIO);
	ck_assert_uint_eq(polypipe_length(wr), 1);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_fail(polypipe_write(wr, MSG(2), 0), EIO);
	pipe_free(rd, wr);

	/* A full pipe: the error, not EAGAIN. */
	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_set_error(wr, ENOSPC), 0);
	ck_assert_fail(polypipe_write(wr, MSG(2), 0), ENOSPC);
	ck_assert_fail(polypipe_write_many(wr, msgs, 1, 0), ENOSPC);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_set_error_readers_drain)
{
	polypipe *rd, *wr;
	void *m, *out[4];

	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	WRITE_OK(wr, 3);
	ck_assert_int_eq(polypipe_set_error(wr, EPROTO), 0);
	ck_assert(polypipe_eof(rd));
	ck_assert_uint_eq(polypipe_length(rd), 3);
	READ_IS(rd, 1);
	ck_assert_int_eq(polypipe_read_many(rd, out, 4, 0), 2);
	ck_assert_uint_eq(MSGVAL(out[0]), 2);
	ck_assert_uint_eq(MSGVAL(out[1]), 3);
	ck_assert_fail(polypipe_read(rd, &m, 0), EPROTO);
	ck_assert_fail(polypipe_read(rd, &m, -1), EPROTO);
	ck_assert_fail(polypipe_read(rd, &m, TIMED_MS), EPROTO);
	ck_assert_fail(polypipe_read_many(rd, out, 4, -1), EPROTO);
	ck_assert_fail(polypipe_read(rd, &m, 0), EPROTO);
	pipe_free(rd, wr);
}
END_TEST

/* A stored error wins over EPIPE and over EOF, whenever it was set. */
START_TEST(test_polypipe_error_before_epipe)
{
	polypipe *rd, *wr;
	void *m;

	/* EOF, then the error. */
	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_int_eq(polypipe_set_error(rd, EIO), 0);
	ck_assert_int_eq(polypipe_get_error(wr), EIO);
	ck_assert_fail(polypipe_write(wr, MSG(2), 0), EIO);
	READ_IS(rd, 1);
	ck_assert_fail(polypipe_read(rd, &m, 0), EIO);
	pipe_free(rd, wr);

	/* The error, then EOF. */
	pipe_new(4, &rd, &wr);
	ck_assert_int_eq(polypipe_set_error(rd, EIO), 0);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_fail(polypipe_write(wr, MSG(2), 0), EIO);
	ck_assert_fail(polypipe_read(rd, &m, 0), EIO);
	pipe_free(rd, wr);

	/* Read end closed, then the error. */
	pipe_new(4, &rd, &wr);
	polypipe_close(rd);
	ck_assert_int_eq(polypipe_set_error(wr, EIO), 0);
	ck_assert_int_eq(polypipe_get_error(wr), EIO);
	ck_assert_fail(polypipe_write(wr, MSG(2), 0), EIO);
	polypipe_close(wr);

	/* Write end closed, then the error. */
	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 1);
	polypipe_close(wr);
	ck_assert_int_eq(polypipe_set_error(rd, EIO), 0);
	READ_IS(rd, 1);
	ck_assert_fail(polypipe_read(rd, &m, 0), EIO);
	polypipe_close(rd);
}
END_TEST

START_TEST(test_polypipe_close_is_not_error)
{
	polypipe *rd, *wr;

	pipe_new(4, &rd, &wr);
	polypipe_close(wr);
	ck_assert_int_eq(polypipe_get_error(rd), 0);
	READ_ENDS(rd);
	polypipe_close(rd);

	pipe_new(4, &rd, &wr);
	polypipe_close(rd);
	ck_assert_int_eq(polypipe_get_error(wr), 0);
	ck_assert(!polypipe_eof(wr));
	ck_assert_fail(polypipe_write(wr, MSG(1), 0), EPIPE);
	polypipe_close(wr);
}
END_TEST

/* --- destructor ---------------------------------------------------------- */

START_TEST(test_polypipe_destructor_unread_on_read_close)
{
	polypipe *rd, *wr;
	struct dtor_log dl = { 0 };
	uintptr_t i;

	pipe_new(8, &rd, &wr);
	ck_assert_int_eq(polypipe_set_destructor(rd, dtor_record, &dl), 0);
	for (i = 1; i <= 5; i++)
		WRITE_OK(wr, i);
	ck_assert_int_eq(polypipe_write(wr, NULL, 0), 0);
	READ_IS(rd, 1);
	READ_IS(rd, 2);
	ck_assert_int_eq(dl.calls, 0);
	polypipe_close(rd);
	ck_assert_int_eq(dl.calls, 4);
	ck_assert_int_eq(dtor_seen(&dl, 0), 1);
	for (i = 3; i <= 5; i++)
		ck_assert_int_eq(dtor_seen(&dl, i), 1);
	polypipe_close(wr);
	ck_assert_int_eq(dl.calls, 4);
}
END_TEST

START_TEST(test_polypipe_destructor_not_on_write_close)
{
	polypipe *rd, *wr;
	struct dtor_log dl = { 0 };

	pipe_new(8, &rd, &wr);
	ck_assert_int_eq(polypipe_set_destructor(wr, dtor_record, &dl), 0);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	WRITE_OK(wr, 3);
	polypipe_close(wr);
	ck_assert_int_eq(dl.calls, 0);
	READ_IS(rd, 1);
	READ_IS(rd, 2);
	ck_assert_int_eq(dl.calls, 0);
	polypipe_close(rd);
	ck_assert_int_eq(dl.calls, 1);
	ck_assert_int_eq(dtor_seen(&dl, 3), 1);
}
END_TEST

START_TEST(test_polypipe_destructor_last_set_wins)
{
	polypipe *rd, *wr;
	struct dtor_log a = { 0 }, b = { 0 };
	int counted = 0;

	pipe_new(8, &rd, &wr);
	ck_assert_int_eq(polypipe_set_destructor(rd, dtor_record, &a), 0);
	ck_assert_int_eq(polypipe_set_destructor(wr, dtor_count, &counted), 0);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	polypipe_close(rd);
	ck_assert_int_eq(a.calls, 0);
	ck_assert_int_eq(counted, 2);
	polypipe_close(wr);

	counted = 0;
	pipe_new(8, &rd, &wr);
	ck_assert_int_eq(polypipe_set_destructor(wr, dtor_count, &counted), 0);
	ck_assert_int_eq(polypipe_set_destructor(rd, dtor_record, &a), 0);
	ck_assert_int_eq(polypipe_set_destructor(wr, dtor_record, &b), 0);
	WRITE_OK(wr, 1);
	polypipe_close(rd);
	ck_assert_int_eq(counted, 0);
	ck_assert_int_eq(a.calls, 0);
	ck_assert_int_eq(b.calls, 1);
	ck_assert_int_eq(dtor_seen(&b, 1), 1);
	polypipe_close(wr);
}
END_TEST

START_TEST(test_polypipe_destructor_null_removes)
{
	polypipe *rd, *wr;
	struct dtor_log dl = { 0 };

	pipe_new(8, &rd, &wr);
	ck_assert_int_eq(polypipe_set_destructor(rd, dtor_record, &dl), 0);
	ck_assert_int_eq(polypipe_set_destructor(rd, NULL, NULL), 0);
	WRITE_OK(wr, 1);
	polypipe_close(rd);
	ck_assert_int_eq(dl.calls, 0);
	polypipe_close(wr);

	pipe_new(8, &rd, &wr);
	ck_assert_int_eq(polypipe_set_destructor(wr, dtor_record, &dl), 0);
	ck_assert_int_eq(polypipe_set_destructor(rd, NULL, &dl), 0);
	WRITE_OK(wr, 1);
	polypipe_close(rd);
	ck_assert_int_eq(dl.calls, 0);
	polypipe_close(wr);
}
END_TEST

/* Every failed write leaves its message with the caller: only the two
 * messages the pipe accepted reach the destructor. */
START_TEST(test_polypipe_destructor_not_for_failed_writes)
{
	polypipe *rd, *wr;
	struct dtor_log dl = { 0 };
	void *const five_six[2] = { MSG(5), MSG(6) };
	void *const nine_ten[2] = { MSG(9), MSG(10) };

	pipe_new(2, &rd, &wr);
	ck_assert_int_eq(polypipe_set_destructor(wr, dtor_record, &dl), 0);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	ck_assert_fail(polypipe_write(wr, MSG(3), 0), EAGAIN);
	ck_assert_fail(polypipe_write(wr, MSG(4), 1), ETIMEDOUT);
	ck_assert_fail(polypipe_write_many(wr, five_six, 2, 0), EAGAIN);
	ck_assert_fail(polypipe_write(wr, MSG(7), -2), EINVAL);
	ck_assert_fail(polypipe_write(rd, MSG(8), 0), EBADF);
	READ_IS(rd, 1);
	ck_assert_int_eq(polypipe_write_many(wr, nine_ten, 2, 0), 1);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_fail(polypipe_write(wr, MSG(11), 0), EPIPE);
	ck_assert_int_eq(dl.calls, 0);
	polypipe_close(rd);
	ck_assert_int_eq(dl.calls, 2);
	ck_assert_int_eq(dtor_seen(&dl, 2), 1);
	ck_assert_int_eq(dtor_seen(&dl, 9), 1);
	ck_assert_fail(polypipe_write(wr, MSG(12), 0), EPIPE);
	polypipe_close(wr);
	ck_assert_int_eq(dl.calls, 2);

	pipe_new(2, &rd, &wr);
	ck_assert_int_eq(polypipe_set_destructor(rd, dtor_record, &dl), 0);
	ck_assert_int_eq(polypipe_set_error(wr, EIO), 0);
	ck_assert_fail(polypipe_write(wr, MSG(13), 0), EIO);
	ck_assert_fail(polypipe_write_many(wr, nine_ten, 2, 0), EIO);
	pipe_free(rd, wr);
	ck_assert_int_eq(dl.calls, 2);
}
END_TEST

/* set_error hands nothing to the destructor: the messages stay readable. */
START_TEST(test_polypipe_destructor_not_on_error)
{
	polypipe *rd, *wr;
	struct dtor_log dl = { 0 };

	pipe_new(4, &rd, &wr);
	ck_assert_int_eq(polypipe_set_destructor(rd, dtor_record, &dl), 0);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	ck_assert_int_eq(polypipe_set_error(wr, EIO), 0);
	ck_assert_int_eq(dl.calls, 0);
	READ_IS(rd, 1);
	polypipe_close(wr);
	ck_assert_int_eq(dl.calls, 0);
	polypipe_close(rd);
	ck_assert_int_eq(dl.calls, 1);
	ck_assert_int_eq(dtor_seen(&dl, 2), 1);
}
END_TEST

START_TEST(test_polypipe_destructor_in_closing_thread)
{
	polypipe *rd, *wr;
	struct dtor_log dl = { 0 };
	struct op c = { 0 };

	pipe_new(4, &rd, &wr);
	ck_assert_int_eq(polypipe_set_destructor(wr, dtor_record, &dl), 0);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	op_start(&c, OP_CLOSE, rd, 0);
	op_join(&c);
	ck_assert_int_eq(dl.calls, 2);
	ck_assert(pthread_equal(dl.thread, c.thread));
	polypipe_close(wr);
	ck_assert_int_eq(dl.calls, 2);
}
END_TEST

/* The destructor runs with no lock held, and the closed read end accepts
 * nothing more, even from inside it. */
START_TEST(test_polypipe_destructor_may_call_library)
{
	polypipe *rd, *wr;
	struct dtor_log dl = { 0 };

	pipe_new(4, &rd, &wr);
	dl.wr = wr;
	ck_assert_int_eq(polypipe_set_destructor(rd, dtor_record, &dl), 0);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	WRITE_OK(wr, 3);
	polypipe_close(rd);
	ck_assert_int_eq(dl.calls, 3);
	ck_assert_int_eq(dl.wr_epipe, 3);
	ck_assert_int_eq(dl.wr_other, 0);
	ck_assert_int_eq(dtor_seen(&dl, 999), 0);
	dl.wr = NULL;
	polypipe_close(wr);
	ck_assert_int_eq(dl.calls, 3);
}
END_TEST

/* --- fd ------------------------------------------------------------------ */

START_TEST(test_polypipe_fd_bad_args)
{
	polypipe *rd, *wr;

	pipe_new(4, &rd, &wr);
	ck_assert_fail(polypipe_read_fd(NULL), EINVAL);
	ck_assert_fail(polypipe_write_fd(NULL), EINVAL);
	ck_assert_fail(polypipe_read_fd(wr), EBADF);
	ck_assert_fail(polypipe_write_fd(rd), EBADF);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_fd_same_every_call)
{
	polypipe *rd, *wr;
	int rfd, wfd;

	pipe_new(2, &rd, &wr);
	rfd = polypipe_read_fd(rd);
	wfd = polypipe_write_fd(wr);
	ck_assert_int_ge(rfd, 0);
	ck_assert_int_ge(wfd, 0);
	ck_assert_int_ne(rfd, wfd);
	ck_assert_int_ne(fcntl(rfd, F_GETFD), -1);
	ck_assert_int_ne(fcntl(wfd, F_GETFD), -1);
	ck_assert_int_eq(polypipe_read_fd(rd), rfd);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	ck_assert_int_eq(polypipe_read_fd(rd), rfd);
	ck_assert_int_eq(polypipe_write_fd(wr), wfd);
	READ_IS(rd, 1);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_int_eq(polypipe_read_fd(rd), rfd);
	ck_assert_int_eq(polypipe_write_fd(wr), wfd);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_read_fd_follows_state)
{
	polypipe *rd, *wr;
	void *out[2];
	void *const two[2] = { MSG(3), MSG(4) };
	int rfd;

	pipe_new(2, &rd, &wr);
	rfd = polypipe_read_fd(rd);
	ck_assert_int_ge(rfd, 0);
	ck_assert_not_readable(rfd);
	WRITE_OK(wr, 1);
	ck_assert_readable(rfd);
	WRITE_OK(wr, 2);
	ck_assert_readable(rfd);
	READ_IS(rd, 1);
	ck_assert_readable(rfd);
	READ_IS(rd, 2);
	ck_assert_not_readable(rfd);
	ck_assert_int_eq(polypipe_write_many(wr, two, 2, 0), 2);
	ck_assert_readable(rfd);
	ck_assert_int_eq(polypipe_read_many(rd, out, 2, 0), 2);
	ck_assert_not_readable(rfd);
	WRITE_OK(wr, 5);
	ck_assert_readable(rfd);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_readable(rfd);
	READ_IS(rd, 5);
	ck_assert_readable(rfd);
	READ_ENDS(rd);
	ck_assert_readable(rfd);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_fd_follows_state)
{
	polypipe *rd, *wr;
	void *out[2];
	void *const three[3] = { MSG(3), MSG(4), MSG(5) };
	int wfd;

	pipe_new(2, &rd, &wr);
	wfd = polypipe_write_fd(wr);
	ck_assert_int_ge(wfd, 0);
	ck_assert_readable(wfd);
	WRITE_OK(wr, 1);
	ck_assert_readable(wfd);
	WRITE_OK(wr, 2);
	ck_assert_not_readable(wfd);
	READ_IS(rd, 1);
	ck_assert_readable(wfd);
	WRITE_OK(wr, 3);
	ck_assert_not_readable(wfd);
	ck_assert_int_eq(polypipe_read_many(rd, out, 2, 0), 2);
	ck_assert_readable(wfd);
	ck_assert_int_eq(polypipe_write_many(wr, three, 3, 0), 2);
	ck_assert_not_readable(wfd);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_readable(wfd);
	READ_IS(rd, 3);
	ck_assert_readable(wfd);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_fd_on_error)
{
	polypipe *rd, *wr;
	void *m;
	int rfd, wfd;

	pipe_new(1, &rd, &wr);
	rfd = polypipe_read_fd(rd);
	wfd = polypipe_write_fd(wr);
	WRITE_OK(wr, 1);
	ck_assert_readable(rfd);
	ck_assert_not_readable(wfd);
	ck_assert_int_eq(polypipe_set_error(rd, EIO), 0);
	ck_assert_readable(rfd);
	ck_assert_readable(wfd);
	READ_IS(rd, 1);
	ck_assert_readable(rfd);
	ck_assert_readable(wfd);
	ck_assert_fail(polypipe_read(rd, &m, 0), EIO);
	ck_assert_readable(rfd);
	pipe_free(rd, wr);

	pipe_new(1, &rd, &wr);
	rfd = polypipe_read_fd(rd);
	wfd = polypipe_write_fd(wr);
	ck_assert_not_readable(rfd);
	ck_assert_readable(wfd);
	ck_assert_int_eq(polypipe_set_error(wr, EIO), 0);
	ck_assert_readable(rfd);
	ck_assert_readable(wfd);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_fd_on_read_close)
{
	polypipe *rd, *wr;
	int wfd;

	pipe_new(1, &rd, &wr);
	wfd = polypipe_write_fd(wr);
	ck_assert_int_ge(polypipe_read_fd(rd), 0);
	WRITE_OK(wr, 1);
	ck_assert_not_readable(wfd);
	polypipe_close(rd);
	ck_assert_readable(wfd);
	ck_assert_int_eq(polypipe_write_fd(wr), wfd);
	polypipe_close(wr);
}
END_TEST

START_TEST(test_polypipe_fd_on_write_close)
{
	polypipe *rd, *wr;
	int rfd;

	pipe_new(1, &rd, &wr);
	rfd = polypipe_read_fd(rd);
	ck_assert_int_ge(polypipe_write_fd(wr), 0);
	ck_assert_not_readable(rfd);
	polypipe_close(wr);
	ck_assert_readable(rfd);
	READ_ENDS(rd);
	ck_assert_readable(rfd);
	polypipe_close(rd);
}
END_TEST

/* A descriptor created on a pipe with a history starts at the right
 * level. */
START_TEST(test_polypipe_fd_exact_when_created_late)
{
	polypipe *rd, *wr;
	int rfd, wfd;

	/* Holding messages, full. */
	pipe_new(2, &rd, &wr);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	rfd = polypipe_read_fd(rd);
	wfd = polypipe_write_fd(wr);
	ck_assert_readable(rfd);
	ck_assert_not_readable(wfd);
	READ_IS(rd, 1);
	ck_assert_readable(wfd);
	READ_IS(rd, 2);
	ck_assert_not_readable(rfd);
	pipe_free(rd, wr);

	/* Filled and drained before: empty. */
	pipe_new(2, &rd, &wr);
	WRITE_OK(wr, 1);
	READ_IS(rd, 1);
	rfd = polypipe_read_fd(rd);
	ck_assert_not_readable(rfd);
	pipe_free(rd, wr);

	/* Ended. */
	pipe_new(2, &rd, &wr);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_readable(polypipe_read_fd(rd));
	pipe_free(rd, wr);

	/* Full, with an error. */
	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_set_error(rd, EIO), 0);
	ck_assert_readable(polypipe_read_fd(rd));
	ck_assert_readable(polypipe_write_fd(wr));
	pipe_free(rd, wr);

	/* Full, read end closed. */
	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	polypipe_close(rd);
	ck_assert_readable(polypipe_write_fd(wr));
	polypipe_close(wr);
}
END_TEST

/* A poll in one thread wakes for a change made in another. */
START_TEST(test_polypipe_fd_wakes_poll)
{
	polypipe *rd, *wr;
	struct op w = { .msgs = { MSG(1) } }, r = { 0 }, e = { 0 };
	struct op c = { 0 };
	int rfd, wfd;

	pipe_new(1, &rd, &wr);
	rfd = polypipe_read_fd(rd);
	wfd = polypipe_write_fd(wr);
	op_start(&w, OP_WRITE, wr, -1);
	ck_assert(fd_readable_within(rfd, LONG_MS));
	op_join(&w);
	ck_assert_op(w, 0, 0);
	ck_assert_not_readable(wfd);
	op_start(&r, OP_READ, rd, -1);
	ck_assert(fd_readable_within(wfd, LONG_MS));
	op_join(&r);
	ck_assert_op(r, 1, 0);
	ck_assert_not_readable(rfd);
	op_start(&e, OP_WRITE_EOF, wr, 0);
	ck_assert(fd_readable_within(rfd, LONG_MS));
	op_join(&e);
	ck_assert_op(e, 0, 0);
	pipe_free(rd, wr);

	pipe_new(1, &rd, &wr);
	wfd = polypipe_write_fd(wr);
	WRITE_OK(wr, 1);
	ck_assert_not_readable(wfd);
	op_start(&c, OP_CLOSE, rd, 0);
	ck_assert(fd_readable_within(wfd, LONG_MS));
	op_join(&c);
	polypipe_close(wr);
}
END_TEST

START_TEST(test_polypipe_write_fd_unbounded)
{
	polypipe *rd, *wr;
	int wfd, i, bad = 0;

	pipe_new(POLYPIPE_UNBOUNDED, &rd, &wr);
	wfd = polypipe_write_fd(wr);
	for (i = 0; i < 100; i++)
		bad += polypipe_write(wr, MSG(i), 0) != 0;
	ck_assert_int_eq(bad, 0);
	ck_assert_readable(wfd);
	ck_assert_readable(polypipe_read_fd(rd));
	pipe_free(rd, wr);
}
END_TEST

/*
 * A thread with a cancellation pending calls what touches the
 * descriptors: each eventfd write and read, and the close of the
 * descriptors.  None may be where the thread ends, with a lock held or
 * the unread messages not yet destroyed; it ends at its own
 * pthread_testcancel, after the last step.
 */
struct cancel_run {
	polypipe *rd, *wr;
	void *m; /* not on the thread's stack, which the cancellation
	          * unwinds past AddressSanitizer's bookkeeping */
	int steps;
	int destroyed;
};

static void *
cancel_pending_thread(void *arg)
{
	struct cancel_run *c = arg;

	test_cancel_pending();
	if (polypipe_write(c->wr, MSG(1), 0) == 0) /* makes rd's readable */
		c->steps++;
	if (polypipe_read(c->rd, &c->m, 0) == 1) /* and unreadable */
		c->steps++;
	if (polypipe_write(c->wr, MSG(2), 0) == 0)
		c->steps++;
	polypipe_close(c->rd); /* closes both descriptors, destroys 2 */
	c->steps++;
	pthread_testcancel();
	return NULL;
}

START_TEST(test_polypipe_fd_calls_not_cancellation_points)
{
	struct cancel_run c = { 0 };
	pthread_t t;
	void *ret;

	pipe_new(4, &c.rd, &c.wr);
	ck_assert_int_ge(polypipe_read_fd(c.rd), 0);
	ck_assert_int_ge(polypipe_write_fd(c.wr), 0);
	ck_assert_int_eq(
	    polypipe_set_destructor(c.wr, dtor_count, &c.destroyed), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, cancel_pending_thread, &c),
	                 0);
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert_ptr_eq(ret, PTHREAD_CANCELED);
	ck_assert_int_eq(c.steps, 4);
	ck_assert_int_eq(c.destroyed, 1);
	/* No lock was left held: the write end still answers. */
	ck_assert_fail(polypipe_write(c.wr, MSG(3), 0), EPIPE);
	ck_assert_int_eq(polypipe_write_eof(c.wr), 0);
	polypipe_close(c.wr);
}
END_TEST

/* --- notify -------------------------------------------------------------- */

START_TEST(test_polypipe_notify_bad_args)
{
	polypipe *rd, *wr;
	struct notify_log nl = { 0 };

	pipe_new(4, &rd, &wr);
	ck_assert_fail(polypipe_set_read_notify(NULL, notify_record, &nl),
	               EINVAL);
	ck_assert_fail(polypipe_set_write_notify(NULL, notify_record, &nl),
	               EINVAL);
	ck_assert_fail(polypipe_set_read_notify(wr, notify_record, &nl),
	               EBADF);
	ck_assert_fail(polypipe_set_write_notify(rd, notify_record, &nl),
	               EBADF);
	ck_assert_fail(polypipe_set_read_notify(wr, NULL, NULL), EBADF);
	ck_assert_fail(polypipe_set_write_notify(rd, NULL, NULL), EBADF);
	WRITE_OK(wr, 1);
	READ_IS(rd, 1);
	ck_assert_int_eq(calls_of(&nl), 0);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_read_notify_empty_to_nonempty)
{
	polypipe *rd, *wr;
	struct notify_log nl = { 0 };
	void *out[4];
	void *const three[3] = { MSG(4), MSG(5), MSG(6) };

	pipe_new(8, &rd, &wr);
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_record, &nl), 0);
	ck_assert_int_eq(calls_of(&nl), 0);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	WRITE_OK(wr, 3);
	ck_assert_int_eq(calls_of(&nl), 1);
	READ_IS(rd, 1);
	WRITE_OK(wr, 4);
	ck_assert_int_eq(calls_of(&nl), 1);
	ck_assert_int_eq(polypipe_read_many(rd, out, 4, 0), 3);
	ck_assert_int_eq(calls_of(&nl), 1);
	ck_assert_int_eq(polypipe_write_many(wr, three, 3, 0), 3);
	ck_assert_int_eq(calls_of(&nl), 2);
	ck_assert_int_eq(polypipe_read_many(rd, out, 4, 0), 3);
	WRITE_OK(wr, 7);
	ck_assert_int_eq(calls_of(&nl), 3);
	pipe_free(rd, wr);
}
END_TEST

/* The end of the stream while empty is a transition; while messages are
 * buffered it is not, nor is anything after it. */
START_TEST(test_polypipe_read_notify_on_end_of_stream)
{
	polypipe *rd, *wr;
	struct notify_log nl = { 0 };
	void *m;

	pipe_new(4, &rd, &wr);
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_record, &nl), 0);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_int_eq(calls_of(&nl), 1);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	READ_ENDS(rd);
	ck_assert_int_eq(calls_of(&nl), 1);
	pipe_free(rd, wr);

	atomic_store(&nl.calls, 0);
	pipe_new(4, &rd, &wr);
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_record, &nl), 0);
	polypipe_close(wr);
	ck_assert_int_eq(calls_of(&nl), 1);
	polypipe_close(rd);

	atomic_store(&nl.calls, 0);
	pipe_new(4, &rd, &wr);
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_record, &nl), 0);
	ck_assert_int_eq(polypipe_set_error(wr, EIO), 0);
	ck_assert_int_eq(calls_of(&nl), 1);
	ck_assert_fail(polypipe_read(rd, &m, 0), EIO);
	pipe_free(rd, wr);

	/* The error set from the read end itself changes the read side. */
	atomic_store(&nl.calls, 0);
	pipe_new(4, &rd, &wr);
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_record, &nl), 0);
	ck_assert_int_eq(polypipe_set_error(rd, EIO), 0);
	ck_assert_int_eq(calls_of(&nl), 1);
	pipe_free(rd, wr);

	/* Not empty: already ready, no transition. */
	atomic_store(&nl.calls, 0);
	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_record, &nl), 0);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	READ_IS(rd, 1);
	READ_ENDS(rd);
	ck_assert_int_eq(calls_of(&nl), 0);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_notify_full_to_not_full)
{
	polypipe *rd, *wr;
	struct notify_log nl = { 0 };
	void *out[2];
	void *const two[2] = { MSG(3), MSG(4) };

	pipe_new(2, &rd, &wr);
	ck_assert_int_eq(polypipe_set_write_notify(wr, notify_record, &nl), 0);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	ck_assert_int_eq(calls_of(&nl), 0);
	READ_IS(rd, 1);
	ck_assert_int_eq(calls_of(&nl), 1);
	READ_IS(rd, 2);
	ck_assert_int_eq(calls_of(&nl), 1);
	ck_assert_int_eq(polypipe_write_many(wr, two, 2, 0), 2);
	ck_assert_int_eq(calls_of(&nl), 1);
	ck_assert_int_eq(polypipe_read_many(rd, out, 2, 0), 2);
	ck_assert_int_eq(calls_of(&nl), 2);
	WRITE_OK(wr, 5);
	READ_IS(rd, 5);
	ck_assert_int_eq(calls_of(&nl), 2);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_notify_on_end_while_full)
{
	polypipe *rd, *wr;
	struct notify_log nl = { 0 };

	/* EOF while full; reading afterwards is no new transition. */
	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_set_write_notify(wr, notify_record, &nl), 0);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_int_eq(calls_of(&nl), 1);
	READ_IS(rd, 1);
	ck_assert_int_eq(calls_of(&nl), 1);
	pipe_free(rd, wr);

	atomic_store(&nl.calls, 0);
	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_set_write_notify(wr, notify_record, &nl), 0);
	polypipe_close(rd);
	ck_assert_int_eq(calls_of(&nl), 1);
	polypipe_close(wr);

	atomic_store(&nl.calls, 0);
	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_set_write_notify(wr, notify_record, &nl), 0);
	ck_assert_int_eq(polypipe_set_error(rd, EIO), 0);
	ck_assert_int_eq(calls_of(&nl), 1);
	pipe_free(rd, wr);

	atomic_store(&nl.calls, 0);
	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_set_write_notify(wr, notify_record, &nl), 0);
	ck_assert_int_eq(polypipe_set_error(wr, EIO), 0);
	ck_assert_int_eq(calls_of(&nl), 1);
	pipe_free(rd, wr);

	/* Not full: already ready, no transition. */
	atomic_store(&nl.calls, 0);
	pipe_new(2, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_set_write_notify(wr, notify_record, &nl), 0);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	polypipe_close(rd);
	ck_assert_int_eq(calls_of(&nl), 0);
	polypipe_close(wr);
}
END_TEST

/* Edge-triggered (polypipe.h): setting a notifier on an end that is
 * already ready does not call it. */
START_TEST(test_polypipe_notify_not_called_when_set)
{
	polypipe *rd, *wr;
	struct notify_log r = { 0 }, w = { 0 };

	pipe_new(2, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_record, &r), 0);
	ck_assert_int_eq(polypipe_set_write_notify(wr, notify_record, &w), 0);
	ck_assert_int_eq(calls_of(&r), 0);
	ck_assert_int_eq(calls_of(&w), 0);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_notify_in_causing_thread)
{
	polypipe *rd, *wr;
	struct notify_log nr = { 0 }, nw = { 0 };
	struct op w = { .msgs = { MSG(1) } }, r = { 0 }, e = { 0 };

	pipe_new(1, &rd, &wr);
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_record, &nr), 0);
	ck_assert_int_eq(polypipe_set_write_notify(wr, notify_record, &nw), 0);
	op_start(&w, OP_WRITE, wr, 0);
	op_join(&w);
	ck_assert_op(w, 0, 0);
	ck_assert_int_eq(calls_of(&nr), 1);
	ck_assert(pthread_equal(nr.thread, w.thread));
	op_start(&r, OP_READ, rd, 0);
	op_join(&r);
	ck_assert_op(r, 1, 0);
	ck_assert_int_eq(calls_of(&nw), 1);
	ck_assert(pthread_equal(nw.thread, r.thread));
	op_start(&e, OP_WRITE_EOF, wr, 0);
	op_join(&e);
	ck_assert_int_eq(calls_of(&nr), 2);
	ck_assert(pthread_equal(nr.thread, e.thread));
	pipe_free(rd, wr);
}
END_TEST

/* The callback runs with no lock held and before the causing call
 * returns, so it can take the message it was told about. */
START_TEST(test_polypipe_read_notify_may_read)
{
	polypipe *rd, *wr;
	struct notify_log nl = { 0 };

	pipe_new(4, &rd, &wr);
	nl.p = rd;
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_read_inside, &nl),
	                 0);
	WRITE_OK(wr, 7);
	ck_assert_int_eq(calls_of(&nl), 1);
	ck_assert_int_eq(nl.ret, 1);
	ck_assert_uint_eq(MSGVAL(nl.msg), 7);
	ck_assert_uint_eq(polypipe_length(rd), 0);
	WRITE_OK(wr, 8);
	ck_assert_int_eq(calls_of(&nl), 2);
	ck_assert_int_eq(nl.ret, 1);
	ck_assert_uint_eq(MSGVAL(nl.msg), 8);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_write_notify_may_write)
{
	polypipe *rd, *wr;
	struct notify_log nl = { 0 };

	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	nl.p = wr;
	ck_assert_int_eq(
	    polypipe_set_write_notify(wr, notify_write_inside, &nl), 0);
	READ_IS(rd, 1);
	ck_assert_int_eq(calls_of(&nl), 1);
	ck_assert_int_eq(nl.ret, 0);
	ck_assert_uint_eq(polypipe_length(rd), 1);
	READ_IS(rd, 42);
	ck_assert_int_eq(calls_of(&nl), 2);
	ck_assert_int_eq(polypipe_set_write_notify(wr, NULL, NULL), 0);
	pipe_free(rd, wr);
}
END_TEST

/* Removing its own notifier from inside the callback returns at once
 * (waiting for the callback to finish would deadlock). */
START_TEST(test_polypipe_notify_remove_from_inside)
{
	polypipe *rd, *wr;
	struct notify_log nr = { .ret = -1 }, nw = { .ret = -1 };

	pipe_new(1, &rd, &wr);
	nr.p = rd;
	nw.p = wr;
	ck_assert_int_eq(
	    polypipe_set_read_notify(rd, notify_unset_read_inside, &nr), 0);
	ck_assert_int_eq(
	    polypipe_set_write_notify(wr, notify_unset_write_inside, &nw), 0);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(calls_of(&nr), 1);
	ck_assert_int_eq(nr.ret, 0);
	READ_IS(rd, 1);
	ck_assert_int_eq(calls_of(&nw), 1);
	ck_assert_int_eq(nw.ret, 0);
	WRITE_OK(wr, 2);
	READ_IS(rd, 2);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	ck_assert_int_eq(calls_of(&nr), 1);
	ck_assert_int_eq(calls_of(&nw), 1);
	pipe_free(rd, wr);
}
END_TEST

START_TEST(test_polypipe_notify_null_removes)
{
	polypipe *rd, *wr;
	struct notify_log nr = { 0 }, nw = { 0 };

	pipe_new(1, &rd, &wr);
	ck_assert_int_eq(polypipe_set_read_notify(rd, NULL, NULL), 0);
	ck_assert_int_eq(polypipe_set_write_notify(wr, NULL, NULL), 0);
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_record, &nr), 0);
	ck_assert_int_eq(polypipe_set_write_notify(wr, notify_record, &nw), 0);
	ck_assert_int_eq(polypipe_set_read_notify(rd, NULL, &nr), 0);
	ck_assert_int_eq(polypipe_set_write_notify(wr, NULL, NULL), 0);
	WRITE_OK(wr, 1);
	READ_IS(rd, 1);
	WRITE_OK(wr, 2);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	polypipe_close(rd);
	ck_assert_int_eq(calls_of(&nr), 0);
	ck_assert_int_eq(calls_of(&nw), 0);
	polypipe_close(wr);
}
END_TEST

START_TEST(test_polypipe_notify_replace)
{
	polypipe *rd, *wr;
	struct notify_log a = { 0 }, b = { 0 };

	pipe_new(1, &rd, &wr);
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_record, &a), 0);
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_record, &b), 0);
	ck_assert_int_eq(polypipe_set_write_notify(wr, notify_record, &a), 0);
	ck_assert_int_eq(polypipe_set_write_notify(wr, notify_record, &b), 0);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(calls_of(&b), 1);
	READ_IS(rd, 1);
	ck_assert_int_eq(calls_of(&b), 2);
	ck_assert_int_eq(calls_of(&a), 0);
	pipe_free(rd, wr);
}
END_TEST

/* Waits for s, at most ms milliseconds; false if that ran out. */
static bool
sem_wait_ms(sem_t *s, int ms)
{
	struct timespec ts;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	do
		r = sem_timedwait(s, &ts);
	while (r != 0 && errno == EINTR);
	return r == 0;
}

/*
 * The removal race: in each round a churn thread makes read-side and
 * write-side transitions (a write into the empty pipe of capacity 1, a
 * read back) until told to stop, while the main thread removes the
 * notifier after a different number of steps each round, meeting a call
 * in progress, then lets the churn go on.  The churn never blocks; the
 * main thread waits for the churn's progress, and for the callback to be
 * inside, with semaphores of the test's own.
 */
#define RACE_ROUNDS 40
#define RACE_AFTER 100   /* steps watched after each removal */
#define RACE_SPINS 20000 /* how long the met call stays inside */

struct race_log {
	atomic_long calls;
	atomic_int running;
	atomic_int armed; /* the next call: post entered, wait go */
	atomic_long spin;
	sem_t entered;
	sem_t go;
};

static void
race_notify(void *arg)
{
	struct race_log *rl = arg;
	long i;

	atomic_store(&rl->running, 1);
	atomic_fetch_add(&rl->calls, 1);
	if (atomic_exchange(&rl->armed, 0)) {
		sem_post(&rl->entered);
		(void)sem_wait_ms(&rl->go, LONG_MS);
		/* Still inside when a removal that does not wait returns. */
		for (i = 0; i < RACE_SPINS; i++)
			atomic_fetch_add(&rl->spin, 1);
	}
	atomic_store(&rl->running, 0);
}

struct churn {
	polypipe *rd, *wr;
	pthread_barrier_t start;
	pthread_barrier_t end;
	atomic_long steps;   /* done in this round */
	atomic_long post_at; /* post reached once steps get there */
	sem_t reached;
	atomic_int stop; /* ends the round */
	atomic_int failed;
};

static void *
churn_run(void *arg)
{
	struct churn *c = arg;
	void *m;
	int round;
	long i, at;

	for (round = 0; round < RACE_ROUNDS; round++) {
		pthread_barrier_wait(&c->start);
		for (i = 1; !atomic_load(&c->stop); i++) {
			if (polypipe_write(c->wr, MSG(i), 0) != 0 ||
			    polypipe_read(c->rd, &m, 0) != 1)
				atomic_store(&c->failed, 1);
			atomic_store(&c->steps, i);
			at = atomic_load(&c->post_at);
			if (at > 0 && i >= at &&
			    atomic_compare_exchange_strong(&c->post_at, &at,
			                                   0))
				sem_post(&c->reached);
			/* Valgrind's scheduler starves the other threads of
			 * one that never blocks. */
			sched_yield();
		}
		pthread_barrier_wait(&c->end);
	}
	return NULL;
}

static int
set_notify(polypipe *p, bool read_side, polypipe_notify_fn *fn, void *arg)
{
	return read_side ? polypipe_set_read_notify(p, fn, arg)
	                 : polypipe_set_write_notify(p, fn, arg);
}

static void
notify_removal_race(bool read_side)
{
	polypipe *rd, *wr, *end;
	struct churn c = { 0 };
	struct race_log rl = { 0 };
	pthread_t t;
	int round;

	pipe_new(1, &rd, &wr);
	end = read_side ? rd : wr;
	c.rd = rd;
	c.wr = wr;
	ck_assert_int_eq(sem_init(&c.reached, 0, 0), 0);
	ck_assert_int_eq(sem_init(&rl.entered, 0, 0), 0);
	ck_assert_int_eq(sem_init(&rl.go, 0, 0), 0);
	ck_assert_int_eq(pthread_barrier_init(&c.start, NULL, 2), 0);
	ck_assert_int_eq(pthread_barrier_init(&c.end, NULL, 2), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, churn_run, &c), 0);
	for (round = 0; round < RACE_ROUNDS; round++) {
		long target = 1 + 10 * (round % 10), done, calls;

		atomic_store(&c.steps, 0);
		atomic_store(&c.stop, 0);
		atomic_store(&rl.calls, 0);
		atomic_store(&c.post_at, target);
		ck_assert_int_eq(set_notify(end, read_side, race_notify, &rl),
		                 0);
		pthread_barrier_wait(&c.start);
		ck_assert(sem_wait_ms(&c.reached, LONG_MS));
		atomic_store(&rl.armed, 1);
		ck_assert_msg(sem_wait_ms(&rl.entered, LONG_MS),
		              "the notifier was not called");
		sem_post(&rl.go);
		ck_assert_int_eq(set_notify(end, read_side, NULL, NULL), 0);
		ck_assert_msg(!atomic_load(&rl.running),
		              "the removed notifier is still running");
		calls = atomic_load(&rl.calls);
		done = atomic_load(&c.steps);
		atomic_store(&c.post_at, done + RACE_AFTER);
		ck_assert(sem_wait_ms(&c.reached, LONG_MS));
		ck_assert_msg(atomic_load(&rl.calls) == calls,
		              "the removed notifier was called %ld more times",
		              atomic_load(&rl.calls) - calls);
		atomic_store(&c.stop, 1);
		pthread_barrier_wait(&c.end);
		/* Each step while it was set was a transition. */
		ck_assert_int_gt(calls, target);
		ck_assert_int_le(calls, done + 1);
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(atomic_load(&c.failed), 0);
	pthread_barrier_destroy(&c.start);
	pthread_barrier_destroy(&c.end);
	sem_destroy(&c.reached);
	sem_destroy(&rl.entered);
	sem_destroy(&rl.go);
	pipe_free(rd, wr);
}

START_TEST(test_polypipe_read_notify_removal_race)
{
	notify_removal_race(true);
}
END_TEST

START_TEST(test_polypipe_write_notify_removal_race)
{
	notify_removal_race(false);
}
END_TEST

/* Closing an end removes its own notifier first, so the close never calls
 * it, even where the close changes that end's side; the peer's notifier
 * fires for what the close causes. */
START_TEST(test_polypipe_close_skips_own_notifier)
{
	polypipe *rd, *wr;
	struct notify_log nr = { 0 }, nw = { 0 };

	/* Full: closing the write end would look like EOF while full. */
	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_record, &nr), 0);
	ck_assert_int_eq(polypipe_set_write_notify(wr, notify_record, &nw), 0);
	polypipe_close(wr);
	ck_assert_int_eq(calls_of(&nw), 0);
	ck_assert_int_eq(calls_of(&nr), 0);
	polypipe_close(rd);
	ck_assert_int_eq(calls_of(&nr), 0);
	ck_assert_int_eq(calls_of(&nw), 0);

	/* Empty: closing the write end fires the reader's notifier. */
	pipe_new(1, &rd, &wr);
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_record, &nr), 0);
	ck_assert_int_eq(polypipe_set_write_notify(wr, notify_record, &nw), 0);
	polypipe_close(wr);
	ck_assert_int_eq(calls_of(&nr), 1);
	ck_assert_int_eq(calls_of(&nw), 0);
	polypipe_close(rd);
	ck_assert_int_eq(calls_of(&nr), 1);

	/* Full: closing the read end fires the writer's notifier. */
	atomic_store(&nr.calls, 0);
	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polypipe_set_read_notify(rd, notify_record, &nr), 0);
	ck_assert_int_eq(polypipe_set_write_notify(wr, notify_record, &nw), 0);
	polypipe_close(rd);
	ck_assert_int_eq(calls_of(&nw), 1);
	ck_assert_int_eq(calls_of(&nr), 0);
	polypipe_close(wr);
	ck_assert_int_eq(calls_of(&nw), 1);
}
END_TEST

/* --- typed --------------------------------------------------------------- */

struct job {
	int id;
};

POLYPIPE_TYPED(job, struct job);

START_TEST(test_polypipe_typed_round_trip)
{
	polypipe *rd, *wr;
	struct job jobs[4] = { { 0 }, { 1 }, { 2 }, { 3 } };
	struct job *const batch[3] = { &jobs[1], &jobs[2], &jobs[3] };
	struct job *j = NULL, *out[4] = { NULL };
	int i;

	pipe_new(4, &rd, &wr);
	ck_assert_int_eq(job_write(wr, &jobs[0], 0), 0);
	ck_assert_int_eq(job_read(rd, &j, 0), 1);
	ck_assert_ptr_eq(j, &jobs[0]);
	ck_assert_int_eq(j->id, 0);
	ck_assert_int_eq(job_write_many(wr, batch, 3, 0), 3);
	ck_assert_int_eq(job_read_many(rd, out, 4, 0), 3);
	for (i = 0; i < 3; i++) {
		ck_assert_ptr_eq(out[i], &jobs[i + 1]);
		ck_assert_int_eq(out[i]->id, i + 1);
	}
	ck_assert_int_eq(job_write(wr, NULL, 0), 0);
	j = &jobs[0];
	ck_assert_int_eq(job_read(rd, &j, 0), 1);
	ck_assert_ptr_null(j);
	pipe_free(rd, wr);
}
END_TEST

/* The wrappers pass failures through and leave *msg alone on them. */
START_TEST(test_polypipe_typed_errors)
{
	polypipe *rd, *wr;
	struct job one = { 1 };
	struct job *j = &one, *out[2];

	pipe_new(1, &rd, &wr);
	ck_assert_fail(job_read(rd, NULL, 0), EINVAL);
	ck_assert_fail(job_read(rd, &j, 0), EAGAIN);
	ck_assert_ptr_eq(j, &one);
	ck_assert_fail(job_read_many(rd, out, 2, 0), EAGAIN);
	ck_assert_fail(job_read(wr, &j, 0), EBADF);
	ck_assert_fail(job_write(rd, &one, 0), EBADF);
	ck_assert_int_eq(job_write(wr, &one, 0), 0);
	ck_assert_fail(job_write(wr, &one, 0), EAGAIN);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	j = NULL;
	ck_assert_int_eq(job_read(rd, &j, -1), 1);
	ck_assert_ptr_eq(j, &one);
	j = &one;
	ck_assert_int_eq(job_read(rd, &j, -1), 0);
	ck_assert_ptr_eq(j, &one);
	ck_assert_int_eq(job_read_many(rd, out, 2, -1), 0);
	pipe_free(rd, wr);
}
END_TEST

/* --- mpmc ---------------------------------------------------------------- */

#define MPMC_PRODUCERS 2
#define MPMC_CONSUMERS 2
#define MPMC_PER_PRODUCER 15000
#define MPMC_BATCH 3

/* A message is seq * MPMC_PRODUCERS + producer. */
struct producer {
	polypipe *wr;
	uintptr_t id;
	int err;         /* errno of a failed write, or 0 */
	long bad_counts; /* write_many returned more than asked */
	pthread_t thread;
};

struct consumer {
	polypipe *rd;
	int err; /* errno of a failed read, or 0 */
	long received;
	long out_of_order;
	long bogus;
	unsigned char seen[MPMC_PRODUCERS][MPMC_PER_PRODUCER];
	pthread_t thread;
};

static void *
producer_run(void *arg)
{
	struct producer *pr = arg;
	uintptr_t seq = 0;
	bool many = false;

	while (seq < MPMC_PER_PRODUCER) {
		void *batch[MPMC_BATCH];
		size_t n;
		ssize_t w;

		many = !many;
		if (!many) {
			if (polypipe_write(pr->wr,
			                   MSG(seq * MPMC_PRODUCERS + pr->id),
			                   -1) != 0) {
				pr->err = errno;
				return NULL;
			}
			seq++;
			continue;
		}
		for (n = 0; n < MPMC_BATCH && seq + n < MPMC_PER_PRODUCER; n++)
			batch[n] = MSG((seq + n) * MPMC_PRODUCERS + pr->id);
		w = polypipe_write_many(pr->wr, batch, n, -1);
		if (w < 0) {
			pr->err = errno;
			return NULL;
		}
		if (w == 0 || (size_t)w > n) {
			pr->bad_counts++;
			return NULL;
		}
		seq += (uintptr_t)w;
	}
	return NULL;
}

static void *
consumer_run(void *arg)
{
	struct consumer *co = arg;
	long last[MPMC_PRODUCERS];
	bool many = false;
	int p;

	for (p = 0; p < MPMC_PRODUCERS; p++)
		last[p] = -1;
	for (;;) {
		void *batch[MPMC_BATCH];
		ssize_t n, i;

		many = !many;
		if (many)
			n = polypipe_read_many(co->rd, batch, MPMC_BATCH, -1);
		else
			n = polypipe_read(co->rd, &batch[0], -1);
		if (n == 0)
			return NULL;
		if (n < 0) {
			co->err = errno;
			return NULL;
		}
		if (n > MPMC_BATCH) {
			co->bogus++;
			return NULL;
		}
		for (i = 0; i < n; i++) {
			uintptr_t v = MSGVAL(batch[i]);
			uintptr_t from = v % MPMC_PRODUCERS;
			uintptr_t seq = v / MPMC_PRODUCERS;

			if (seq >= MPMC_PER_PRODUCER) {
				co->bogus++;
				continue;
			}
			if ((long)seq <= last[from])
				co->out_of_order++;
			last[from] = (long)seq;
			if (co->seen[from][seq] < UCHAR_MAX)
				co->seen[from][seq]++;
			co->received++;
		}
	}
}

START_TEST(test_polypipe_mpmc_no_loss_no_dup_in_order)
{
	polypipe *rd, *wr;
	struct producer pr[MPMC_PRODUCERS];
	struct consumer *co;
	long received = 0, missing = 0, duplicated = 0;
	int i, j, k;

	co = calloc(MPMC_CONSUMERS, sizeof *co);
	ck_assert_ptr_nonnull(co);
	memset(pr, 0, sizeof pr);
	pipe_new(4, &rd, &wr);
	for (i = 0; i < MPMC_CONSUMERS; i++) {
		co[i].rd = rd;
		ck_assert_int_eq(
		    pthread_create(&co[i].thread, NULL, consumer_run, &co[i]),
		    0);
	}
	for (i = 0; i < MPMC_PRODUCERS; i++) {
		pr[i].wr = wr;
		pr[i].id = (uintptr_t)i;
		ck_assert_int_eq(
		    pthread_create(&pr[i].thread, NULL, producer_run, &pr[i]),
		    0);
	}
	for (i = 0; i < MPMC_PRODUCERS; i++)
		ck_assert_int_eq(pthread_join(pr[i].thread, NULL), 0);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	for (i = 0; i < MPMC_CONSUMERS; i++)
		ck_assert_int_eq(pthread_join(co[i].thread, NULL), 0);

	for (i = 0; i < MPMC_PRODUCERS; i++) {
		ck_assert_int_eq(pr[i].err, 0);
		ck_assert_int_eq(pr[i].bad_counts, 0);
	}
	for (i = 0; i < MPMC_CONSUMERS; i++) {
		ck_assert_int_eq(co[i].err, 0);
		ck_assert_int_eq(co[i].bogus, 0);
		ck_assert_int_eq(co[i].out_of_order, 0);
		received += co[i].received;
	}
	for (i = 0; i < MPMC_PRODUCERS; i++)
		for (j = 0; j < MPMC_PER_PRODUCER; j++) {
			int n = 0;

			for (k = 0; k < MPMC_CONSUMERS; k++)
				n += co[k].seen[i][j];
			missing += n == 0;
			duplicated += n > 1;
		}
	ck_assert_int_eq(missing, 0);
	ck_assert_int_eq(duplicated, 0);
	ck_assert_int_eq(received, MPMC_PRODUCERS * MPMC_PER_PRODUCER);
	ck_assert_uint_eq(polypipe_length(rd), 0);
	READ_ENDS(rd);
	pipe_free(rd, wr);
	free(co);
}
END_TEST

/* --- the suite ----------------------------------------------------------- */

/* --- errno across a wait --------------------------------------------- */

struct errno_read {
	polypipe *rd;
	int timeout_ms;
	void *msg;
	int ret, err;
	atomic_long tid;
	atomic_int done;
};

static void *
errno_read_main(void *arg)
{
	struct errno_read *r = arg;

	atomic_store(&r->tid, test_tid());
	errno = 4242;
	r->ret = polypipe_read(r->rd, &r->msg, r->timeout_ms);
	r->err = errno;
	atomic_store(&r->done, 1);
	return NULL;
}

/*
 * A read that sleeps and then succeeds leaves errno as it was, with a
 * timeout and without (_i), even when a signal made its futex call fail
 * (EINTR) meanwhile.
 */
START_TEST(test_polypipe_read_keeps_errno)
{
	struct errno_read r = { .timeout_ms = _i == 0 ? 10000 : -1 };
	polypipe *wr;
	pthread_t t;

	ck_assert_int_eq(polypipe_create(4, &r.rd, &wr), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, errno_read_main, &r), 0);
	ck_assert_msg(test_wait_blocked(&r.tid, &r.done, 10000),
	              "the read did not block on an empty pipe");
	test_interrupt(t);
	ck_assert_msg(test_wait_blocked(&r.tid, &r.done, 10000),
	              "the read did not block again after a signal");
	ck_assert_int_eq(polypipe_write(wr, MSG(7), 0), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(r.ret, 1);
	ck_assert_uint_eq(MSGVAL(r.msg), 7);
	ck_assert_int_eq(r.err, 4242);
	polypipe_close(wr);
	polypipe_close(r.rd);
}
END_TEST

Suite *
polypipe_suite(void)
{
	Suite *s = suite_create("polypipe");
	TCase *tc;

	tc = new_tcase(s, "basic", 20);
	tcase_add_test(tc, test_polypipe_create_bad_args);
	tcase_add_test(tc, test_polypipe_create_capacity_one);
	tcase_add_test(tc, test_polypipe_create_unbounded);
	tcase_add_test(tc, test_polypipe_capacity_costs_no_memory);
	tcase_add_test(tc, test_polypipe_queries_both_ends);
	tcase_add_test(tc, test_polypipe_queries_null);
	tcase_add_test(tc, test_polypipe_fifo_order);
	tcase_add_test(tc, test_polypipe_fifo_order_grow_shrink);
	tcase_add_test(tc, test_polypipe_null_message);
	tcase_add_test(tc, test_polypipe_read_many_fifo);
	tcase_add_test(tc, test_polypipe_write_many_in_order);
	tcase_add_test(tc, test_polypipe_timeout_values);
	tcase_add_test(tc, test_polypipe_close_either_order);
	tcase_add_test_unless(tc, test_polypipe_fast_path_no_syscall,
	                      fast_path_unwatchable());

	tc = new_tcase(s, "errors", 20);
	tcase_add_test(tc, test_polypipe_read_bad_args);
	tcase_add_test(tc, test_polypipe_write_bad_args);
	tcase_add_test(tc, test_polypipe_read_many_bad_args);
	tcase_add_test(tc, test_polypipe_write_many_bad_args);
	tcase_add_test(tc, test_polypipe_write_eof_bad_args);
	tcase_add_test(tc, test_polypipe_set_error_bad_args);
	tcase_add_test(tc, test_polypipe_set_destructor_bad_args);
	tcase_add_test(tc, test_polypipe_args_checked_first);

	tc = new_tcase(s, "blocking", 20);
	tcase_add_test(tc, test_polypipe_read_empty_eagain);
	tcase_add_test(tc, test_polypipe_write_full_eagain);
	tcase_add_test(tc, test_polypipe_read_times_out);
	tcase_add_test(tc, test_polypipe_write_times_out);
	tcase_add_test(tc, test_polypipe_read_waits_for_write);
	tcase_add_test(tc, test_polypipe_write_waits_for_read);
	tcase_add_test(tc, test_polypipe_timed_read_gets_message);
	tcase_add_test(tc, test_polypipe_timed_write_gets_slot);
	tcase_add_test(tc, test_polypipe_read_many_waits_for_batch);
	tcase_add_test(tc, test_polypipe_write_many_partial);
	tcase_add_test(tc, test_polypipe_write_many_waits_for_one_slot);
	tcase_add_test(tc, test_polypipe_write_many_wakes_enough_readers);
	tcase_add_test(tc, test_polypipe_read_many_wakes_enough_writers);
	tcase_add_test(tc, test_polypipe_blocking_calls_not_interrupted);
	tcase_add_test(tc, test_polypipe_timed_wait_not_interrupted);

	tc = new_tcase(s, "eof_error", 20);
	tcase_add_test(tc, test_polypipe_eof_then_drain);
	tcase_add_test(tc, test_polypipe_write_after_eof_epipe);
	tcase_add_test(tc, test_polypipe_write_eof_idempotent);
	tcase_add_test(tc, test_polypipe_write_eof_on_full_pipe);
	tcase_add_test(tc, test_polypipe_epipe_before_waiting);
	tcase_add_test(tc, test_polypipe_close_write_end_ends_stream);
	tcase_add_test(tc, test_polypipe_close_read_end_epipe);
	tcase_add_test(tc, test_polypipe_read_close_wakes_blocked_writers);
	tcase_add_test(tc, test_polypipe_eof_wakes_blocked_writers);
	tcase_add_test(tc, test_polypipe_eof_wakes_blocked_readers);
	tcase_add_test(tc, test_polypipe_write_close_wakes_blocked_readers);
	tcase_add_test(tc, test_polypipe_error_wakes_blocked_readers);
	tcase_add_test(tc, test_polypipe_error_wakes_blocked_writers);
	tcase_add_test(tc, test_polypipe_set_error_first_wins);
	tcase_add_test(tc, test_polypipe_set_error_fails_writers);
	tcase_add_test(tc, test_polypipe_set_error_readers_drain);
	tcase_add_test(tc, test_polypipe_error_before_epipe);
	tcase_add_test(tc, test_polypipe_close_is_not_error);

	tc = new_tcase(s, "destructor", 20);
	tcase_add_test(tc, test_polypipe_destructor_unread_on_read_close);
	tcase_add_test(tc, test_polypipe_destructor_not_on_write_close);
	tcase_add_test(tc, test_polypipe_destructor_last_set_wins);
	tcase_add_test(tc, test_polypipe_destructor_null_removes);
	tcase_add_test(tc, test_polypipe_destructor_not_for_failed_writes);
	tcase_add_test(tc, test_polypipe_destructor_not_on_error);
	tcase_add_test(tc, test_polypipe_destructor_in_closing_thread);
	tcase_add_test(tc, test_polypipe_destructor_may_call_library);

	tc = new_tcase(s, "fd", 20);
	tcase_add_test(tc, test_polypipe_fd_bad_args);
	tcase_add_test(tc, test_polypipe_fd_same_every_call);
	tcase_add_test(tc, test_polypipe_read_fd_follows_state);
	tcase_add_test(tc, test_polypipe_write_fd_follows_state);
	tcase_add_test(tc, test_polypipe_fd_on_error);
	tcase_add_test(tc, test_polypipe_fd_on_read_close);
	tcase_add_test(tc, test_polypipe_fd_on_write_close);
	tcase_add_test(tc, test_polypipe_fd_exact_when_created_late);
	tcase_add_test(tc, test_polypipe_fd_wakes_poll);
	tcase_add_test(tc, test_polypipe_write_fd_unbounded);
	tcase_add_test(tc, test_polypipe_fd_calls_not_cancellation_points);

	tc = new_tcase(s, "notify", 20);
	tcase_add_test(tc, test_polypipe_notify_bad_args);
	tcase_add_test(tc, test_polypipe_read_notify_empty_to_nonempty);
	tcase_add_test(tc, test_polypipe_read_notify_on_end_of_stream);
	tcase_add_test(tc, test_polypipe_write_notify_full_to_not_full);
	tcase_add_test(tc, test_polypipe_write_notify_on_end_while_full);
	tcase_add_test(tc, test_polypipe_notify_not_called_when_set);
	tcase_add_test(tc, test_polypipe_notify_in_causing_thread);
	tcase_add_test(tc, test_polypipe_read_notify_may_read);
	tcase_add_test(tc, test_polypipe_write_notify_may_write);
	tcase_add_test(tc, test_polypipe_notify_remove_from_inside);
	tcase_add_test(tc, test_polypipe_notify_null_removes);
	tcase_add_test(tc, test_polypipe_notify_replace);
	tcase_add_test(tc, test_polypipe_read_notify_removal_race);
	tcase_add_test(tc, test_polypipe_write_notify_removal_race);
	tcase_add_test(tc, test_polypipe_close_skips_own_notifier);

	tc = new_tcase(s, "errno", 30);
	tcase_add_loop_test(tc, test_polypipe_read_keeps_errno, 0, 2);

	tc = new_tcase(s, "typed", 20);
	tcase_add_test(tc, test_polypipe_typed_round_trip);
	tcase_add_test(tc, test_polypipe_typed_errors);

	tc = new_tcase(s, "mpmc", 20);
	tcase_add_test(tc, test_polypipe_mpmc_no_loss_no_dup_in_order);

	return s;
}
