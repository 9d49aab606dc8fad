/*
 * check_polyset.c - the polyset suite: every clause of SPEC.md's polyset
 * section (include/polysocket/polyset.h).
 *
 * Readiness is checked two ways after each change of a member: by
 * polyset_wait(..., 0) and, in the loop tests' second run, by poll(2) on
 * polyset_fd first (so both the set without a descriptor and the set with
 * one are covered).  The objects of a test are labelled, so that a
 * failure names what was reported and what was expected.
 *
 * Where a test needs another thread to be blocked inside polyset_wait, it
 * is written so that the outcome is the same whether the main thread acts
 * before or after the block: nothing here sleeps to synchronise.  Threads
 * other than the test's own never call Check's assertions: they record
 * what they saw and the test asserts after joining them.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdalign.h>
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

#include <polysocket/polyset.h>

#include "tests/testutil.h"

Suite *polyset_suite(void);

/* Timed calls in these tests wait this long; elapsed times may exceed it
 * by up to SLACK_MS, as sanitizer and valgrind builds are slow. */
#define TIMED_MS 100
#define SLACK_MS 2000

/* A wait that must end because of another thread's action, well before
 * the test times out. */
#define LONG_MS 5000

/* The most events one check asks for. */
#define EVS_MAX 64

/* The data each member is added with, unless a test says otherwise: not
 * a real pointer, and not the object itself, so that a set that mixed up
 * obj and data is caught. */
#define DATA(obj) ((void *)~(uintptr_t)(obj))

/* --- labels and readiness checks ----------------------------------------- */

/* Whether the current run of a loop test also polls polyset_fd. */
static bool use_fd;

/* Names of the objects of the current test. */
static struct {
	const void *obj;
	const char *name;
} labels[64];
static int nlabels;

static void
setup(void)
{
	use_fd = false;
	nlabels = 0;
}

static void
label(const void *obj, const char *name)
{
	ck_assert_int_lt(nlabels, (int)(sizeof labels / sizeof labels[0]));
	labels[nlabels].obj = obj;
	labels[nlabels].name = name;
	nlabels++;
}

/* The latest label given to obj (objects may be freed and their memory
 * given to new ones). */
static const char *
name_of(const void *obj)
{
	for (int i = nlabels - 1; i >= 0; i--)
		if (labels[i].obj == obj)
			return labels[i].name;
	return "(unlabelled)";
}

/* "a, b, c" for a list of objects, into buf. */
static const char *
names(void *const *objs, size_t n, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && off < size; i++) {
		int k = snprintf(buf + off, size - off, "%s%s", i ? ", " : "",
		                 name_of(objs[i]));

		if (k < 0)
			break;
		off += (size_t)k;
	}
	return buf;
}

static const char *
ev_names(const struct polyset_event *evs, ssize_t n, char *buf, size_t size)
{
	void *objs[EVS_MAX] = { NULL };
	size_t k = 0;

	for (; n > 0 && k < (size_t)n && k < EVS_MAX; k++)
		objs[k] = evs[k].obj;
	return names(objs, k, buf, size);
}

/* Checks polyset_fd's readiness against want (when use_fd). */
static void
check_fd(polyset *set, bool want, const char *when, int line)
{
	int fd;

	if (!use_fd)
		return;
	fd = polyset_fd(set);
	ck_assert_msg(fd >= 0, "line %d: polyset_fd failed: %s", line,
	              strerror(errno));
	ck_assert_msg(fd_readable(fd) == want,
	              "line %d: polyset_fd %s the wait: expected %s, got %s",
	              line, when, want ? "readable" : "not readable",
	              want ? "not readable" : "readable");
}

/*
 * The ready members of set, at most once each, are exactly the n objects
 * of want, in any order, with their DATA; all of them level-triggered, so
 * they stay ready after the wait.
 */
static void
expect_ready(polyset *set, void *const *want, size_t n, int line)
{
	struct polyset_event evs[EVS_MAX];
	char got_s[512], want_s[512];
	ssize_t got;
	int err;

	check_fd(set, n > 0, "before", line);
	memset(evs, 0, sizeof evs);
	errno = 0;
	got = polyset_wait(set, evs, EVS_MAX, 0);
	err = errno;
	names(want, n, want_s, sizeof want_s);
	if (n == 0) {
		ck_assert_msg(got == -1 && err == EAGAIN,
		              "line %d: polyset_wait(0) with nothing ready: "
		              "expected -1 EAGAIN, got %zd (%s) {%s}",
		              line, got, strerror(err),
		              ev_names(evs, got, got_s, sizeof got_s));
		check_fd(set, false, "after", line);
		return;
	}
	ck_assert_msg(got == (ssize_t)n,
	              "line %d: polyset_wait(0): expected %zu ready {%s}, "
	              "got %zd (%s) {%s}",
	              line, n, want_s, got, got < 0 ? strerror(err) : "",
	              ev_names(evs, got, got_s, sizeof got_s));
	for (size_t i = 0; i < n; i++) {
		int seen = 0;

		for (ssize_t j = 0; j < got; j++)
			seen += evs[j].obj == want[i];
		ck_assert_msg(seen == 1,
		              "line %d: %s reported %d times: expected {%s}, "
		              "got {%s}",
		              line, name_of(want[i]), seen, want_s,
		              ev_names(evs, got, got_s, sizeof got_s));
	}
	for (ssize_t j = 0; j < got; j++)
		ck_assert_msg(evs[j].data == DATA(evs[j].obj),
		              "line %d: %s reported with data %p, added with "
		              "%p",
		              line, name_of(evs[j].obj), evs[j].data,
		              DATA(evs[j].obj));
	check_fd(set, true, "after", line);
}

/* polyset_wait(set, evs, max, 0) reports exactly want, in this order. */
static void
expect_seq(polyset *set, size_t max, void *const *want, size_t n, int line)
{
	struct polyset_event evs[EVS_MAX];
	char got_s[512], want_s[512];
	ssize_t got;
	int err;

	ck_assert(max <= EVS_MAX);
	errno = 0;
	got = polyset_wait(set, evs, max, 0);
	err = errno;
	ev_names(evs, got, got_s, sizeof got_s);
	names(want, n, want_s, sizeof want_s);
	ck_assert_msg(got == (ssize_t)n,
	              "line %d: polyset_wait(max %zu): expected [%s], got %zd "
	              "(%s) [%s]",
	              line, max, want_s, got, got < 0 ? strerror(err) : "",
	              got_s);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(evs[i].obj == want[i],
		              "line %d: polyset_wait(max %zu): expected [%s], "
		              "got [%s]",
		              line, max, want_s, got_s);
		ck_assert_msg(evs[i].data == DATA(evs[i].obj),
		              "line %d: %s reported with data %p, expected %p",
		              line, name_of(evs[i].obj), evs[i].data,
		              DATA(evs[i].obj));
	}
}

#define OBJS(...) ((void *const[]){ __VA_ARGS__ })
#define NOBJS(...) (sizeof OBJS(__VA_ARGS__) / sizeof(void *))
/* The set's ready members are exactly these. */
#define EXPECT_READY(set, ...)                                                \
	expect_ready((set), OBJS(__VA_ARGS__), NOBJS(__VA_ARGS__), __LINE__)
/* Nothing is ready: polyset_wait(..., 0) fails with EAGAIN. */
#define EXPECT_NONE(set) expect_ready((set), NULL, 0, __LINE__)
/* A wait of up to max reports exactly these, in this order. */
#define EXPECT_SEQ(set, max, ...)                                             \
	expect_seq((set), (max), OBJS(__VA_ARGS__), NOBJS(__VA_ARGS__),       \
	           __LINE__)

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

/* --- object helpers ------------------------------------------------------ */

static polyset *
new_set(void)
{
	polyset *set = polyset_create();

	ck_assert_msg(set != NULL, "polyset_create: %s", strerror(errno));
	return set;
}

static void
add(polyset *set, void *obj, unsigned flags)
{
	ck_assert_msg(polyset_add(set, obj, flags, DATA(obj)) == 0,
	              "polyset_add(%s): %s", name_of(obj), strerror(errno));
}

static void
pipe_new(size_t capacity, polypipe **rd, polypipe **wr)
{
	*rd = NULL;
	*wr = NULL;
	ck_assert_int_eq(polypipe_create(capacity, rd, wr), 0);
	ck_assert_ptr_nonnull(*rd);
	ck_assert_ptr_nonnull(*wr);
}

static void
pipe_free(polypipe *rd, polypipe *wr)
{
	polypipe_close(rd);
	polypipe_close(wr);
}

#define WRITE_OK(wr, v) ck_assert_int_eq(polypipe_write((wr), MSG(v), 0), 0)

#define READ_IS(rd, v)                                                        \
	do {                                                                  \
		void *m_ = MSG(0xbad);                                        \
		ck_assert_int_eq(polypipe_read((rd), &m_, 0), 1);             \
		ck_assert_uint_eq(MSGVAL(m_), (uintptr_t)(v));                \
	} while (0)

static polyserver *
new_server(void)
{
	polyserver *srv = polyserver_create();

	ck_assert_ptr_nonnull(srv);
	return srv;
}

static polyclient *
new_client(size_t capacity)
{
	polyclient *cl = polyclient_create(capacity);

	ck_assert_ptr_nonnull(cl);
	return cl;
}

static polyclient *
pending_client(polyserver *srv, size_t capacity)
{
	polyclient *cl = new_client(capacity);

	ck_assert_int_eq(polyclient_connect(cl, srv), 0);
	return cl;
}

static void
spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	ck_assert_int_eq(pthread_create(t, NULL, fn, arg), 0);
}

static void
join(pthread_t t)
{
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}

/* A polyset_wait in another thread, started after a barrier with the
 * test's thread. */
struct waiter {
	polyset *set;
	size_t max;
	int timeout;
	pthread_barrier_t *start;
	sem_t *done; /* posted when the wait returned, if not NULL */
	struct polyset_event evs[8];
	ssize_t ret;
	int err;
	int64_t elapsed;
	pthread_t thread;
};

static void *
waiter_run(void *arg)
{
	struct waiter *w = arg;
	int64_t t0;

	if (w->start != NULL)
		pthread_barrier_wait(w->start);
	t0 = now_ms();
	errno = 0;
	w->ret = polyset_wait(w->set, w->evs, w->max, w->timeout);
	w->err = errno;
	w->elapsed = now_ms() - t0;
	if (w->done != NULL)
		sem_post(w->done);
	return NULL;
}

static void
waiter_init(struct waiter *w, polyset *set, pthread_barrier_t *start)
{
	memset(w, 0, sizeof *w);
	w->set = set;
	w->max = 8;
	w->timeout = LONG_MS;
	w->start = start;
}

static void
waiter_spawn(struct waiter *w)
{
	spawn(&w->thread, waiter_run, w);
}

static void
waiter_start(struct waiter *w, polyset *set, pthread_barrier_t *start)
{
	waiter_init(w, set, start);
	waiter_spawn(w);
}

/* The waiter, joined, returned exactly obj with its DATA. */
static void
waiter_got(struct waiter *w, void *obj)
{
	char got_s[256];

	ck_assert_msg(w->ret == 1 && w->evs[0].obj == obj &&
	                  w->evs[0].data == DATA(obj),
	              "blocked polyset_wait: expected {%s}, got %zd (%s) {%s} "
	              "after %lld ms",
	              name_of(obj), w->ret, w->ret < 0 ? strerror(w->err) : "",
	              ev_names(w->evs, w->ret, got_s, sizeof got_s),
	              (long long)w->elapsed);
	ck_assert_int_lt(w->elapsed, LONG_MS);
}

/* The waiter, joined, was ended by a wake: it returned 0 at once. */
static void
waiter_woken(struct waiter *w)
{
	char got_s[256];

	ck_assert_msg(w->ret == 0,
	              "blocked polyset_wait: expected 0 (woken), got %zd (%s) "
	              "{%s} after %lld ms",
	              w->ret, w->ret < 0 ? strerror(w->err) : "",
	              ev_names(w->evs, w->ret, got_s, sizeof got_s),
	              (long long)w->elapsed);
	ck_assert_int_lt(w->elapsed, LONG_MS);
}

/* A notifier that counts its calls. */
static void
count_fn(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

/* A read end of a fresh pipe holding one message, labelled. */
static void
ready_pipe(polypipe **rd, polypipe **wr, const char *name)
{
	pipe_new(4, rd, wr);
	WRITE_OK(*wr, 1);
	label(*rd, name);
}

/* --- basics and errors --------------------------------------------------- */

START_TEST(test_polyset_create_close)
{
	polyset *set = new_set();
	polyset *other = new_set();

	ck_assert_ptr_ne(set, other);
	EXPECT_NONE(set);
	polyset_close(set);
	polyset_close(other);
	polyset_close(NULL);
}
END_TEST

/* Something that is no handle of the library: zeroed, and garbage. */
static alignas(64) unsigned char fake_zero[256];
static alignas(64) unsigned char fake_junk[256];

static void
fakes_init(void)
{
	memset(fake_zero, 0, sizeof fake_zero);
	memset(fake_junk, 0xa5, sizeof fake_junk);
}

START_TEST(test_polyset_add_errors)
{
	polyset *set = new_set(), *other = new_set();
	polypipe *rd, *wr;
	struct polyset_event ev;

	fakes_init();
	pipe_new(4, &rd, &wr);
	WRITE_OK(wr, 1);
	label(rd, "rd");
	ck_assert_fail(polyset_add(NULL, rd, 0, NULL), EINVAL);
	ck_assert_fail(polyset_add(set, NULL, 0, NULL), EINVAL);
	ck_assert_fail(polyset_add(set, rd, 2, NULL), EINVAL);
	ck_assert_fail(polyset_add(set, rd, POLYSET_ONESHOT | 4, NULL),
	               EINVAL);
	ck_assert_fail(polyset_add(set, rd, ~0u, NULL), EINVAL);
	/* Arguments first: unknown flags on a non-handle is EINVAL. */
	ck_assert_fail(polyset_add(set, fake_zero, 2, NULL), EINVAL);
	ck_assert_fail(polyset_add(set, fake_zero, 0, NULL), ENOTSOCK);
	ck_assert_fail(polyset_add(set, fake_junk, 0, NULL), ENOTSOCK);
	ck_assert_fail(polyset_add(set, fake_zero, POLYSET_ONESHOT, NULL),
	               ENOTSOCK);
	/* None of the failures made rd a member. */
	EXPECT_NONE(set);
	add(set, rd, 0);
	ck_assert_fail(polyset_add(set, rd, 0, NULL), EEXIST);
	ck_assert_fail(polyset_add(set, rd, POLYSET_ONESHOT, NULL), EEXIST);
	ck_assert_fail(polyset_add(other, rd, 0, NULL), EBUSY);
	ck_assert_fail(polyset_add(other, rd, POLYSET_ONESHOT, NULL), EBUSY);
	/* The failed adds changed neither the data nor the flags. */
	EXPECT_READY(set, rd);
	EXPECT_READY(set, rd);
	ck_assert_fail(polyset_wait(other, &ev, 1, 0), EAGAIN);
	/* Removed, it may join the other set, and then not this one. */
	ck_assert_int_eq(polyset_remove(set, rd), 0);
	ck_assert_int_eq(polyset_add(other, rd, 0, DATA(rd)), 0);
	ck_assert_fail(polyset_add(set, rd, 0, NULL), EBUSY);
	EXPECT_NONE(set);
	EXPECT_READY(other, rd);
	/* Each end of a pipe is its own member, in the same set or not. */
	add(set, wr, 0);
	label(wr, "wr");
	EXPECT_READY(set, wr);
	pipe_free(rd, wr);
	polyset_close(set);
	polyset_close(other);
}
END_TEST

/* ENOTSOCK for a local int; and sets do not nest: a polyset is not a
 * member of another (the header does not name that errno, so EINVAL and
 * ENOTSOCK are both taken). */
START_TEST(test_polyset_add_set_refused)
{
	polyset *set = new_set(), *inner = new_set();
	int local = 0;
	int rc, err;

	/* A local int is none of the library's handles either. */
	ck_assert_fail(polyset_add(set, &local, 0, NULL), ENOTSOCK);
	/* Nor a member, which is what modify and remove say of it. */
	ck_assert_fail(polyset_modify(set, &local, 0, NULL), ENOENT);
	ck_assert_fail(polyset_remove(set, &local), ENOENT);
	errno = 0;
	rc = polyset_add(set, inner, 0, NULL);
	err = errno;
	ck_assert_msg(rc == -1 && (err == EINVAL || err == ENOTSOCK),
	              "polyset_add(set, another set): expected -1 with EINVAL "
	              "or ENOTSOCK, got %d (%s)",
	              rc, strerror(err));
	ck_assert_int_eq(polyset_wake(inner), 0);
	EXPECT_NONE(set);
	polyset_close(set);
	polyset_close(inner);
}
END_TEST

START_TEST(test_polyset_modify_errors)
{
	polyset *set = new_set(), *other = new_set();
	polypipe *rd, *wr;

	fakes_init();
	ready_pipe(&rd, &wr, "rd");
	label(wr, "wr");
	ck_assert_fail(polyset_modify(set, rd, 0, NULL), ENOENT);
	add(set, rd, 0);
	ck_assert_fail(polyset_modify(NULL, rd, 0, NULL), EINVAL);
	ck_assert_fail(polyset_modify(set, NULL, 0, NULL), EINVAL);
	ck_assert_fail(polyset_modify(set, rd, 2, DATA(rd)), EINVAL);
	ck_assert_fail(polyset_modify(set, rd, ~0u, DATA(rd)), EINVAL);
	ck_assert_fail(polyset_modify(set, fake_zero, 2, NULL), EINVAL);
	ck_assert_fail(polyset_modify(set, fake_zero, 0, NULL), ENOENT);
	ck_assert_fail(polyset_modify(set, fake_junk, 0, NULL), ENOENT);
	/* A member of another set is not a member of this one. */
	ck_assert_fail(polyset_modify(other, rd, 0, NULL), ENOENT);
	/* The other end is another object. */
	ck_assert_fail(polyset_modify(set, wr, 0, NULL), ENOENT);
	/* The failures changed nothing. */
	EXPECT_READY(set, rd);
	ck_assert_int_eq(polyset_remove(set, rd), 0);
	ck_assert_fail(polyset_modify(set, rd, 0, DATA(rd)), ENOENT);
	pipe_free(rd, wr);
	polyset_close(set);
	polyset_close(other);
}
END_TEST

START_TEST(test_polyset_remove_errors)
{
	polyset *set = new_set(), *other = new_set();
	polypipe *rd, *wr;

	fakes_init();
	ready_pipe(&rd, &wr, "rd");
	ck_assert_fail(polyset_remove(set, rd), ENOENT);
	add(set, rd, 0);
	ck_assert_fail(polyset_remove(NULL, rd), EINVAL);
	ck_assert_fail(polyset_remove(set, NULL), EINVAL);
	ck_assert_fail(polyset_remove(set, fake_zero), ENOENT);
	ck_assert_fail(polyset_remove(set, fake_junk), ENOENT);
	ck_assert_fail(polyset_remove(other, rd), ENOENT);
	ck_assert_fail(polyset_remove(set, wr), ENOENT);
	EXPECT_READY(set, rd);
	ck_assert_int_eq(polyset_remove(set, rd), 0);
	ck_assert_fail(polyset_remove(set, rd), ENOENT);
	EXPECT_NONE(set);
	pipe_free(rd, wr);
	polyset_close(set);
	polyset_close(other);
}
END_TEST

/* Bad arguments fail with EINVAL even while a member is ready, and take
 * nothing from the set. */
START_TEST(test_polyset_wait_errors)
{
	polyset *set = new_set();
	struct polyset_event evs[2];
	polypipe *rd, *wr;

	ready_pipe(&rd, &wr, "rd");
	add(set, rd, POLYSET_ONESHOT);
	ck_assert_fail(polyset_wait(NULL, evs, 2, 0), EINVAL);
	ck_assert_fail(polyset_wait(NULL, evs, 2, -1), EINVAL);
	ck_assert_fail(polyset_wait(set, NULL, 2, 0), EINVAL);
	ck_assert_fail(polyset_wait(set, NULL, 2, -1), EINVAL);
	ck_assert_fail(polyset_wait(set, evs, 0, 0), EINVAL);
	ck_assert_fail(polyset_wait(set, evs, 0, -1), EINVAL);
	ck_assert_fail(polyset_wait(set, evs, 2, -2), EINVAL);
	ck_assert_fail(polyset_wait(set, evs, 2, INT_MIN), EINVAL);
	/* The one-shot member is still armed: none of these reported it. */
	ck_assert_int_eq(polyset_wait(set, evs, 2, 0), 1);
	ck_assert_ptr_eq(evs[0].obj, rd);
	ck_assert_fail(polyset_wait(set, evs, 2, 0), EAGAIN);
	ck_assert_fail(polyset_fd(NULL), EINVAL);
	ck_assert_fail(polyset_wake(NULL), EINVAL);
	pipe_free(rd, wr);
	polyset_close(set);
}
END_TEST

/* EAGAIN and ETIMEDOUT while nothing is ready: an empty set, members
 * that are not ready, a one-shot member reported and not re-armed. */
START_TEST(test_polyset_wait_timeouts)
{
	polyset *set = new_set();
	struct polyset_event ev;
	polypipe *rd, *wr, *rd2, *wr2;

	ck_assert_fail(polyset_wait(set, &ev, 1, 0), EAGAIN);
	ck_assert_times_out(polyset_wait(set, &ev, 1, TIMED_MS), TIMED_MS);
	ck_assert_times_out(polyset_wait(set, &ev, 1, 1), 1);
	pipe_new(1, &rd, &wr);
	WRITE_OK(wr, 1);
	add(set, wr, 0); /* full: not ready */
	ready_pipe(&rd2, &wr2, "rd2");
	add(set, rd2, POLYSET_ONESHOT);
	ck_assert_int_eq(polyset_wait(set, &ev, 1, 0), 1);
	ck_assert_ptr_eq(ev.obj, rd2);
	ck_assert_fail(polyset_wait(set, &ev, 1, 0), EAGAIN);
	ck_assert_times_out(polyset_wait(set, &ev, 1, TIMED_MS), TIMED_MS);
	pipe_free(rd, wr);
	pipe_free(rd2, wr2);
	polyset_close(set);
}
END_TEST

/* Every poll(2)-style timeout is taken, and a ready member is reported
 * at once whatever the timeout allows. */
START_TEST(test_polyset_wait_timeout_values)
{
	static const int timeouts[] = { -1, 0, 1, TIMED_MS, INT_MAX };
	polyset *set = new_set();
	struct polyset_event ev;
	polypipe *rd, *wr;
	int64_t t0 = now_ms();

	ready_pipe(&rd, &wr, "rd");
	add(set, rd, 0);
	for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
		ck_assert_int_eq(polyset_wait(set, &ev, 1, timeouts[i]), 1);
		ck_assert_ptr_eq(ev.obj, rd);
		ck_assert_ptr_eq(ev.data, DATA(rd));
	}
	ck_assert_int_lt(now_ms() - t0, SLACK_MS);
	pipe_free(rd, wr);
	polyset_close(set);
}
END_TEST

/* polyset_fd: the same descriptor on every call, an eventfd the set
 * owns; created late, it is readable at once if the set is ready. */
START_TEST(test_polyset_fd_same_and_late)
{
	polyset *set = new_set();
	polypipe *rd, *wr;
	int fd;

	ready_pipe(&rd, &wr, "rd");
	add(set, rd, 0);
	fd = polyset_fd(set);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(polyset_fd(set), fd);
	ck_assert_readable(fd);
	READ_IS(rd, 1);
	ck_assert_not_readable(fd);
	ck_assert_int_eq(polyset_fd(set), fd);
	WRITE_OK(wr, 2);
	ck_assert_readable(fd);
	pipe_free(rd, wr);
	ck_assert_not_readable(fd);
	polyset_close(set);
}
END_TEST

/* --- readiness of each kind of member ------------------------------------ */

/* A pipe's two ends through every state of the buffer. */
START_TEST(test_polyset_ready_pipe)
{
	polyset *set = new_set();
	polypipe *rd, *wr;
	void *const two[2] = { MSG(5), MSG(6) };
	void *out[4];
	void *m;

	use_fd = _i;
	pipe_new(2, &rd, &wr);
	label(rd, "rd");
	label(wr, "wr");
	add(set, rd, 0);
	add(set, wr, 0);
	EXPECT_READY(set, wr); /* empty */
	WRITE_OK(wr, 1);
	EXPECT_READY(set, rd, wr);
	WRITE_OK(wr, 2);
	EXPECT_READY(set, rd); /* full */
	READ_IS(rd, 1);
	EXPECT_READY(set, rd, wr);
	READ_IS(rd, 2);
	EXPECT_READY(set, wr); /* empty again */
	ck_assert_int_eq(polypipe_write_many(wr, two, 2, 0), 2);
	EXPECT_READY(set, rd); /* full */
	ck_assert_int_eq(polypipe_read_many(rd, out, 4, 0), 2);
	EXPECT_READY(set, wr);
	ck_assert_int_eq(polypipe_write_many(wr, two, 2, 0), 2);
	EXPECT_READY(set, rd);
	/* EOF while full: a write fails at once now, with EPIPE. */
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	EXPECT_READY(set, rd, wr);
	ck_assert_int_eq(polypipe_read_many(rd, out, 4, 0), 2);
	/* Ended and drained: a read returns 0 at once. */
	EXPECT_READY(set, rd, wr);
	ck_assert_int_eq(polypipe_read(rd, &m, 0), 0);
	ck_assert_fail(polypipe_write(wr, MSG(1), 0), EPIPE);
	EXPECT_READY(set, rd, wr);
	pipe_free(rd, wr);
	EXPECT_NONE(set);
	polyset_close(set);
}
END_TEST

/* EOF on an empty pipe makes the read end ready. */
START_TEST(test_polyset_ready_pipe_eof)
{
	polyset *set = new_set();
	polypipe *rd, *wr;

	use_fd = _i;
	pipe_new(4, &rd, &wr);
	label(rd, "rd");
	add(set, rd, 0);
	EXPECT_NONE(set);
	ck_assert_int_eq(polypipe_write_eof(wr), 0);
	EXPECT_READY(set, rd);
	pipe_free(rd, wr);
	polyset_close(set);
}
END_TEST

/* An error makes both ends ready, and they stay so while drained. */
START_TEST(test_polyset_ready_pipe_error)
{
	polyset *set = new_set();
	polypipe *rd, *wr;
	void *m;

	use_fd = _i;
	pipe_new(1, &rd, &wr);
	label(rd, "rd");
	label(wr, "wr");
	add(set, rd, 0);
	add(set, wr, 0);
	WRITE_OK(wr, 1);
	EXPECT_READY(set, rd);
	ck_assert_int_eq(polypipe_set_error(rd, EIO), 0);
	EXPECT_READY(set, rd, wr);
	READ_IS(rd, 1);
	EXPECT_READY(set, rd, wr);
	ck_assert_fail(polypipe_read(rd, &m, 0), EIO);
	ck_assert_fail(polypipe_write(wr, MSG(2), 0), EIO);
	EXPECT_READY(set, rd, wr);
	pipe_free(rd, wr);

	/* On an empty pipe, the read end becomes ready. */
	pipe_new(4, &rd, &wr);
	label(rd, "rd2");
	label(wr, "wr2");
	add(set, rd, 0);
	add(set, wr, 0);
	EXPECT_READY(set, wr);
	ck_assert_int_eq(polypipe_set_error(wr, EPROTO), 0);
	EXPECT_READY(set, rd, wr);
	pipe_free(rd, wr);
	polyset_close(set);
}
END_TEST

/* Closing one end makes the other end, a member, ready. */
START_TEST(test_polyset_ready_pipe_peer_close)
{
	polyset *set = new_set();
	polypipe *rd, *wr;

	use_fd = _i;
	/* The write end closes: the reader sees EOF after the buffer. */
	pipe_new(4, &rd, &wr);
	label(rd, "rd");
	add(set, rd, 0);
	EXPECT_NONE(set);
	polypipe_close(wr);
	EXPECT_READY(set, rd);
	polypipe_close(rd);
	EXPECT_NONE(set);

	/* The read end closes on a full pipe: writes fail with EPIPE. */
	pipe_new(1, &rd, &wr);
	label(wr, "wr");
	add(set, wr, 0);
	WRITE_OK(wr, 1);
	EXPECT_NONE(set);
	polypipe_close(rd);
	EXPECT_READY(set, wr);
	ck_assert_fail(polypipe_write(wr, MSG(2), 0), EPIPE);
	EXPECT_READY(set, wr);
	polypipe_close(wr);
	EXPECT_NONE(set);

	/* An unbounded pipe's write end is always ready. */
	pipe_new(POLYPIPE_UNBOUNDED, &rd, &wr);
	label(wr, "wr-unbounded");
	add(set, wr, 0);
	for (int i = 0; i < 100; i++)
		WRITE_OK(wr, i);
	EXPECT_READY(set, wr);
	pipe_free(rd, wr);
	polyset_close(set);
}
END_TEST

/* A server is ready while an attempt is pending, or once shut down. */
START_TEST(test_polyset_ready_server)
{
	polyset *set = new_set();
	polyserver *srv = new_server();
	polyclient *c1, *c2, *c3, *c4, *c5, *c6, *c7, *c8;
	polyendpoint ep1, ep2, ep3, ep6[4];

	use_fd = _i;
	label(srv, "srv");
	add(set, srv, 0);
	EXPECT_NONE(set);
	c1 = pending_client(srv, 2);
	EXPECT_READY(set, srv);
	c2 = pending_client(srv, 2);
	EXPECT_READY(set, srv);
	ck_assert_int_eq(polyserver_accept(srv, &ep1, 0), 0);
	EXPECT_READY(set, srv); /* c2 still pending */
	ck_assert_int_eq(polyserver_accept(srv, &ep2, 0), 0);
	EXPECT_NONE(set);

	/* Refused: not pending any more; refusing: connects fail at once. */
	c3 = pending_client(srv, 2);
	EXPECT_READY(set, srv);
	ck_assert_int_eq(polyserver_refuse(srv), 1);
	EXPECT_NONE(set);
	c4 = new_client(2);
	ck_assert_fail(polyclient_connect(c4, srv), ECONNREFUSED);
	EXPECT_NONE(set);
	ck_assert_fail(polyserver_accept(srv, &ep3, 0), EAGAIN);
	EXPECT_NONE(set);

	/* A withdrawn attempt is never returned: not ready. */
	c5 = pending_client(srv, 2);
	EXPECT_READY(set, srv);
	polyclient_close(c5);
	EXPECT_NONE(set);

	/* A full backlog turns connects away without changing readiness. */
	ck_assert_int_eq(polyserver_set_backlog(srv, 1), 0);
	c6 = pending_client(srv, 2);
	EXPECT_READY(set, srv);
	c7 = new_client(2);
	ck_assert_fail(polyclient_connect(c7, srv), EAGAIN);
	EXPECT_READY(set, srv);
	ck_assert_int_eq(polyserver_accept_many(srv, ep6, 4, 0), 1);
	EXPECT_NONE(set);

	/* Shut down: accept fails at once (ESHUTDOWN), so ready for good. */
	c8 = pending_client(srv, 2);
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	EXPECT_READY(set, srv);
	ck_assert_fail(polyserver_accept(srv, &ep3, 0), ESHUTDOWN);
	EXPECT_READY(set, srv);

	polyendpoint_close(&ep1);
	polyendpoint_close(&ep2);
	polyendpoint_close(&ep6[0]);
	polyclient_close(c1);
	polyclient_close(c2);
	polyclient_close(c3);
	polyclient_close(c4);
	polyclient_close(c6);
	polyclient_close(c7);
	polyclient_close(c8);
	polyserver_close(srv);
	EXPECT_NONE(set);
	polyset_close(set);
}
END_TEST

/* A client is ready once its attempt is decided, and stays so. */
START_TEST(test_polyset_ready_client)
{
	polyset *set = new_set();
	polyserver *srv = new_server(), *srv2 = new_server();
	polyclient *ca, *cb, *cc, *cd, *ce;
	polyendpoint sa, sc, ep;

	use_fd = _i;
	/* Added before connecting: ready once a later attempt is decided. */
	ca = new_client(2);
	label(ca, "ca");
	add(set, ca, 0);
	EXPECT_NONE(set);
	ck_assert_int_eq(polyclient_connect(ca, srv), 0);
	EXPECT_NONE(set); /* pending */
	ck_assert_int_eq(polyserver_accept(srv, &sa, 0), 0);
	EXPECT_READY(set, ca);
	ck_assert_int_eq(polyclient_endpoint(ca, &ep, 0), 0);
	EXPECT_READY(set, ca);

	/* Refused by polyserver_refuse. */
	cb = pending_client(srv, 2);
	label(cb, "cb");
	add(set, cb, 0);
	EXPECT_READY(set, ca);
	ck_assert_int_eq(polyserver_refuse(srv), 1);
	EXPECT_READY(set, ca, cb);
	ck_assert_fail(polyclient_endpoint(cb, &ep, 0), ECONNREFUSED);
	EXPECT_READY(set, ca, cb);

	/* A connect that fails at once decides nothing: the client stays
	 * unconnected, not ready, and may connect again. */
	cc = new_client(2);
	label(cc, "cc");
	add(set, cc, 0);
	ck_assert_fail(polyclient_connect(cc, srv), ECONNREFUSED);
	EXPECT_READY(set, ca, cb);
	ck_assert_fail(polyserver_accept(srv, &sc, 0), EAGAIN);
	ck_assert_int_eq(polyclient_connect(cc, srv), 0);
	EXPECT_READY(set, ca, cb);
	ck_assert_int_eq(polyserver_accept(srv, &sc, 0), 0);
	EXPECT_READY(set, ca, cb, cc);

	/* Refused by the shutdown, and by the close, of its server. */
	cd = pending_client(srv, 2);
	ce = pending_client(srv2, 2);
	label(cd, "cd");
	label(ce, "ce");
	add(set, cd, 0);
	add(set, ce, 0);
	EXPECT_READY(set, ca, cb, cc);
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	EXPECT_READY(set, ca, cb, cc, cd);
	polyserver_close(srv2);
	EXPECT_READY(set, ca, cb, cc, cd, ce);

	polyendpoint_close(&sa);
	polyendpoint_close(&sc);
	polyclient_close(ca);
	polyclient_close(cb);
	polyclient_close(cc);
	polyclient_close(cd);
	polyclient_close(ce);
	EXPECT_NONE(set);
	polyserver_close(srv);
	polyset_close(set);
}
END_TEST

/* Both sides of a connection: the server's endpoint pipes, and the
 * client's asynchronous endpoint before and after a refusal. */
START_TEST(test_polyset_ready_endpoint)
{
	polyset *set = new_set();
	polyserver *srv = new_server();
	polyclient *cl, *cl2;
	polyendpoint sep, cep, aep;
	void *m;

	use_fd = _i;
	cl = pending_client(srv, 1);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_int_eq(polyclient_endpoint(cl, &cep, 0), 0);
	label(sep.rd, "sep.rd");
	label(sep.wr, "sep.wr");
	label(cl, "cl");
	add(set, sep.rd, 0);
	add(set, sep.wr, 0);
	add(set, cl, 0);
	EXPECT_READY(set, sep.wr, cl);
	WRITE_OK(cep.wr, 1);
	EXPECT_READY(set, sep.rd, sep.wr, cl);
	WRITE_OK(sep.wr, 2); /* capacity 1: full */
	EXPECT_READY(set, sep.rd, cl);
	READ_IS(cep.rd, 2);
	EXPECT_READY(set, sep.rd, sep.wr, cl);
	READ_IS(sep.rd, 1);
	WRITE_OK(sep.wr, 3);
	EXPECT_READY(set, cl);
	/* The client goes: its membership ends, its pipes close: EOF for
	 * the server's read end, EPIPE for its write end. */
	polyclient_close(cl);
	EXPECT_READY(set, sep.rd, sep.wr);
	ck_assert_int_eq(polypipe_read(sep.rd, &m, 0), 0);
	ck_assert_fail(polypipe_write(sep.wr, MSG(4), 0), EPIPE);
	polyendpoint_close(&sep);
	EXPECT_NONE(set);

	/* An asynchronous endpoint, refused: its pipes carry the error. */
	cl2 = pending_client(srv, 1);
	ck_assert_int_eq(polyclient_endpoint_async(cl2, &aep), 0);
	label(aep.rd, "aep.rd");
	label(aep.wr, "aep.wr");
	label(cl2, "cl2");
	add(set, aep.rd, 0);
	add(set, aep.wr, 0);
	add(set, cl2, 0);
	EXPECT_READY(set, aep.wr);
	WRITE_OK(aep.wr, 1); /* buffered towards the server; now full */
	EXPECT_NONE(set);
	ck_assert_int_eq(polyserver_refuse(srv), 1);
	EXPECT_READY(set, aep.rd, aep.wr, cl2);
	ck_assert_fail(polypipe_read(aep.rd, &m, 0), ECONNREFUSED);
	polyclient_close(cl2);
	EXPECT_NONE(set);
	polyserver_close(srv);
	polyset_close(set);
}
END_TEST

/* An object that is ready when added is reported; one that is not is
 * not. */
START_TEST(test_polyset_ready_when_added)
{
	polyset *set = new_set();
	polypipe *rd, *wr, *frd, *fwr;
	polyserver *srv = new_server(), *down = new_server();
	polyclient *pend, *acc;
	polyendpoint sep;

	use_fd = _i;
	EXPECT_NONE(set); /* creates the descriptor first, when use_fd */
	ready_pipe(&rd, &wr, "rd");
	add(set, rd, 0);
	EXPECT_READY(set, rd);
	pipe_new(1, &frd, &fwr);
	WRITE_OK(fwr, 1);
	label(fwr, "full wr");
	add(set, fwr, 0);
	EXPECT_READY(set, rd);
	pend = pending_client(srv, 2);
	label(srv, "srv");
	add(set, srv, 0);
	EXPECT_READY(set, rd, srv);
	label(pend, "pending client");
	add(set, pend, 0);
	EXPECT_READY(set, rd, srv);
	acc = pending_client(down, 2);
	ck_assert_int_eq(polyserver_accept(down, &sep, 0), 0);
	label(acc, "accepted client");
	add(set, acc, 0);
	EXPECT_READY(set, rd, srv, acc);
	ck_assert_int_eq(polyserver_shutdown(down), 0);
	label(down, "shut-down srv");
	add(set, down, 0);
	EXPECT_READY(set, rd, srv, acc, down);
	label(wr, "wr");
	add(set, wr, 0);
	EXPECT_READY(set, rd, srv, acc, down, wr);
	polyendpoint_close(&sep);
	polyclient_close(pend);
	polyclient_close(acc);
	polyserver_close(srv);
	polyserver_close(down);
	pipe_free(rd, wr);
	pipe_free(frd, fwr);
	EXPECT_NONE(set);
	polyset_close(set);
}
END_TEST

/* --- level-triggered, order and fairness --------------------------------- */

/* A member still ready is reported by every wait, once per wait. */
START_TEST(test_polyset_level_triggered)
{
	polyset *set = new_set();
	polypipe *rd, *wr;

	use_fd = _i;
	pipe_new(4, &rd, &wr);
	label(rd, "rd");
	add(set, rd, 0);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	WRITE_OK(wr, 3);
	EXPECT_READY(set, rd);
	EXPECT_READY(set, rd);
	READ_IS(rd, 1);
	EXPECT_READY(set, rd);
	READ_IS(rd, 2);
	EXPECT_READY(set, rd);
	READ_IS(rd, 3);
	EXPECT_NONE(set);
	EXPECT_NONE(set);
	WRITE_OK(wr, 4);
	EXPECT_READY(set, rd);
	pipe_free(rd, wr);
	polyset_close(set);
}
END_TEST

/* Members come in the order in which they became ready; one reported
 * and still ready goes behind every other ready member; one that stops
 * being ready and becomes ready again takes its new turn. */
START_TEST(test_polyset_order)
{
	polyset *set = new_set();
	polypipe *rd[4], *wr[4];
	static const char *const nm[4] = { "A", "B", "C", "D" };
	polypipe *a, *b, *c, *d;

	for (int i = 0; i < 4; i++) {
		pipe_new(4, &rd[i], &wr[i]);
		label(rd[i], nm[i]);
		add(set, rd[i], 0);
	}
	a = rd[0], b = rd[1], c = rd[2], d = rd[3];
	WRITE_OK(wr[2], 1); /* C */
	WRITE_OK(wr[0], 1); /* A */
	WRITE_OK(wr[3], 1); /* D */
	WRITE_OK(wr[1], 1); /* B */
	EXPECT_SEQ(set, 1, c);
	EXPECT_SEQ(set, 1, a);
	EXPECT_SEQ(set, 2, d, b);
	EXPECT_SEQ(set, 2, c, a);
	/* Now D, B, C, A.  C stops being ready, then is ready again. */
	READ_IS(c, 1);
	WRITE_OK(wr[2], 2);
	EXPECT_SEQ(set, 4, d, b, a, c);
	/* A message more on a ready member changes nothing of its turn. */
	EXPECT_SEQ(set, 1, d);
	WRITE_OK(wr[1], 2);
	EXPECT_SEQ(set, 1, b);
	EXPECT_SEQ(set, 1, a);
	for (int i = 0; i < 4; i++)
		pipe_free(rd[i], wr[i]);
	polyset_close(set);
}
END_TEST

/* Three members always ready, max 1: the waits rotate through them, a
 * mix of kinds, whether or not the waiter consumes a little each time. */
START_TEST(test_polyset_fairness)
{
	polyset *set = new_set();
	polypipe *rd1, *wr1, *rd2, *wr2, *rd3, *wr3;
	polyserver *srv = new_server();
	polyclient *cl[16];
	void *objs[3];
	int counts[3] = { 0, 0, 0 };
	int consumed = 0;

	pipe_new(64, &rd1, &wr1);
	pipe_new(64, &rd2, &wr2);
	pipe_new(POLYPIPE_UNBOUNDED, &rd3, &wr3);
	for (int i = 0; i < 40; i++) {
		WRITE_OK(wr1, i);
		WRITE_OK(wr2, i);
	}
	for (int i = 0; i < 16; i++)
		cl[i] = pending_client(srv, 1);
	label(rd1, "rd1");
	label(wr3, "wr3");
	label(srv, "srv");
	label(rd2, "rd2");
	objs[0] = rd1;
	objs[1] = wr3;
	objs[2] = srv;
	add(set, rd1, 0);
	add(set, wr3, 0);
	add(set, srv, 0);
	for (int k = 0; k < 30; k++) {
		struct polyset_event ev;
		int want = k % 3;

		ck_assert_int_eq(polyset_wait(set, &ev, 1, 0), 1);
		ck_assert_msg(ev.obj == objs[want],
		              "wait %d: expected %s, got %s", k,
		              name_of(objs[want]), name_of(ev.obj));
		counts[want]++;
		/* Consume a little every other round: still ready. */
		if (k % 2 == 0 && want == 0)
			READ_IS(rd1, consumed++);
	}
	ck_assert_int_eq(counts[0], 10);
	ck_assert_int_eq(counts[1], 10);
	ck_assert_int_eq(counts[2], 10);
	/* A fourth member becoming ready is reported within one round,
	 * busy members or not. */
	add(set, rd2, 0);
	{
		struct polyset_event ev;
		bool seen = false;

		for (int k = 0; k < 4 && !seen; k++) {
			ck_assert_int_eq(polyset_wait(set, &ev, 1, 0), 1);
			seen = ev.obj == rd2;
		}
		ck_assert_msg(seen,
		              "rd2 not reported within 4 waits of max 1");
	}
	polyset_close(set);
	for (int i = 0; i < 16; i++)
		polyclient_close(cl[i]);
	polyserver_close(srv);
	pipe_free(rd1, wr1);
	pipe_free(rd2, wr2);
	pipe_free(rd3, wr3);
}
END_TEST

/* --- POLYSET_ONESHOT ----------------------------------------------------- */

START_TEST(test_polyset_oneshot)
{
	polyset *set = new_set();
	struct polyset_event evs[4];
	polypipe *rd, *wr;
	int fd = -1;

	use_fd = _i;
	if (use_fd)
		fd = polyset_fd(set);
	pipe_new(4, &rd, &wr);
	label(rd, "rd");
	add(set, rd, POLYSET_ONESHOT);
	if (use_fd)
		ck_assert_not_readable(fd);
	WRITE_OK(wr, 1);
	WRITE_OK(wr, 2);
	if (use_fd)
		ck_assert_readable(fd);
	EXPECT_SEQ(set, 4, rd);
	/* Held: still ready, but not reported, and not readable. */
	ck_assert_fail(polyset_wait(set, evs, 4, 0), EAGAIN);
	if (use_fd)
		ck_assert_not_readable(fd);
	ck_assert_times_out(polyset_wait(set, evs, 4, TIMED_MS), TIMED_MS);
	/* Re-armed while ready: due again at once. */
	ck_assert_int_eq(polyset_modify(set, rd, POLYSET_ONESHOT, DATA(rd)),
	                 0);
	if (use_fd)
		ck_assert_readable(fd);
	EXPECT_SEQ(set, 4, rd);
	ck_assert_fail(polyset_wait(set, evs, 4, 0), EAGAIN);
	/* Re-armed with new data: the event carries it. */
	ck_assert_int_eq(polyset_modify(set, rd, POLYSET_ONESHOT, MSG(77)), 0);
	ck_assert_int_eq(polyset_wait(set, evs, 4, 0), 1);
	ck_assert_ptr_eq(evs[0].obj, rd);
	ck_assert_ptr_eq(evs[0].data, MSG(77));
	/* Re-armed while not ready: reported once it becomes ready. */
	READ_IS(rd, 1);
	READ_IS(rd, 2);
	ck_assert_int_eq(polyset_modify(set, rd, POLYSET_ONESHOT, DATA(rd)),
	                 0);
	ck_assert_fail(polyset_wait(set, evs, 4, 0), EAGAIN);
	if (use_fd)
		ck_assert_not_readable(fd);
	WRITE_OK(wr, 3);
	if (use_fd)
		ck_assert_readable(fd);
	EXPECT_SEQ(set, 4, rd);
	ck_assert_fail(polyset_wait(set, evs, 4, 0), EAGAIN);
	/* Made level-triggered by modify: reported by every wait. */
	ck_assert_int_eq(polyset_modify(set, rd, 0, DATA(rd)), 0);
	EXPECT_READY(set, rd);
	EXPECT_READY(set, rd);
	/* And one-shot again (armed, ready): once. */
	ck_assert_int_eq(polyset_modify(set, rd, POLYSET_ONESHOT, DATA(rd)),
	                 0);
	EXPECT_SEQ(set, 4, rd);
	ck_assert_fail(polyset_wait(set, evs, 4, 0), EAGAIN);
	/* A one-shot member added while ready is reported once. */
	polypipe *rd2, *wr2;

	ready_pipe(&rd2, &wr2, "rd2");
	add(set, rd2, POLYSET_ONESHOT);
	EXPECT_SEQ(set, 4, rd2);
	ck_assert_fail(polyset_wait(set, evs, 4, 0), EAGAIN);
	if (use_fd)
		ck_assert_not_readable(fd);
	pipe_free(rd, wr);
	pipe_free(rd2, wr2);
	polyset_close(set);
}
END_TEST

/* A re-armed member that is ready is due again behind the members
 * already due; a held one-shot member does not hide the others. */
START_TEST(test_polyset_oneshot_rearm_order)
{
	polyset *set = new_set();
	polypipe *a, *wa, *b, *wb, *c, *wc;

	use_fd = _i;
	ready_pipe(&a, &wa, "A (oneshot)");
	ready_pipe(&b, &wb, "B");
	ready_pipe(&c, &wc, "C");
	add(set, a, POLYSET_ONESHOT);
	add(set, b, 0);
	EXPECT_SEQ(set, 1, a);
	EXPECT_READY(set, b);
	add(set, c, 0);
	/* Due: B, C.  A re-armed goes behind them. */
	ck_assert_int_eq(polyset_modify(set, a, POLYSET_ONESHOT, DATA(a)), 0);
	EXPECT_SEQ(set, 3, b, c, a);
	EXPECT_READY(set, b, c);
	/* Changing a level member's data keeps it due, with new data. */
	ck_assert_int_eq(polyset_modify(set, b, 0, MSG(5)), 0);
	{
		struct polyset_event evs[4];
		ssize_t n = polyset_wait(set, evs, 4, 0);

		ck_assert_int_eq(n, 2);
		for (ssize_t i = 0; i < n; i++)
			ck_assert_ptr_eq(evs[i].data,
			                 evs[i].obj == b ? MSG(5) : DATA(c));
	}
	pipe_free(a, wa);
	pipe_free(b, wb);
	pipe_free(c, wc);
	polyset_close(set);
}
END_TEST

/* With two threads waiting on a one-shot member, one gets it and the
 * other keeps waiting, until a wake ends it. */
START_TEST(test_polyset_oneshot_one_thread)
{
	polyset *set = new_set();
	polypipe *rd, *wr;
	struct waiter w[2];
	pthread_barrier_t start;
	struct waiter *got, *other;
	struct polyset_event ev;
	sem_t done;
	struct timespec ts;

	pipe_new(4, &rd, &wr);
	label(rd, "rd");
	add(set, rd, POLYSET_ONESHOT);
	ck_assert_int_eq(sem_init(&done, 0, 0), 0);
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, 3), 0);
	for (int i = 0; i < 2; i++) {
		waiter_init(&w[i], set, &start);
		w[i].done = &done;
		waiter_spawn(&w[i]);
	}
	pthread_barrier_wait(&start);
	WRITE_OK(wr, 1);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += LONG_MS / 1000;
	ck_assert_msg(sem_timedwait(&done, &ts) == 0,
	              "no waiter returned after the one-shot member became "
	              "ready");
	/* The one-shot member is held now: nobody else may get it. */
	ck_assert_fail(polyset_wait(set, &ev, 1, 0), EAGAIN);
	ck_assert_int_eq(polyset_wake(set), 0);
	join(w[0].thread);
	join(w[1].thread);
	got = w[0].ret == 1 ? &w[0] : &w[1];
	other = got == &w[0] ? &w[1] : &w[0];
	waiter_got(got, rd);
	waiter_woken(other);
	pthread_barrier_destroy(&start);
	sem_destroy(&done);
	pipe_free(rd, wr);
	polyset_close(set);
}
END_TEST

/* A level-triggered member that becomes ready ends every blocked wait:
 * no wait goes on while a member is ready. */
START_TEST(test_polyset_level_wakes_every_waiter)
{
	polyset *set = new_set();
	polypipe *rd, *wr;
	struct waiter w[2];
	pthread_barrier_t start;

	pipe_new(4, &rd, &wr);
	label(rd, "rd");
	add(set, rd, 0);
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, 3), 0);
	waiter_start(&w[0], set, &start);
	waiter_start(&w[1], set, &start);
	pthread_barrier_wait(&start);
	WRITE_OK(wr, 1);
	join(w[0].thread);
	join(w[1].thread);
	waiter_got(&w[0], rd);
	waiter_got(&w[1], rd);
	pthread_barrier_destroy(&start);
	pipe_free(rd, wr);
	polyset_close(set);
}
END_TEST

/* --- a member becoming ready ends a blocked wait ---------------------------
 */

enum wake_kind {
	WK_WRITE,       /* a message into an empty pipe: read end */
	WK_READ_FULL,   /* a read from a full pipe: write end */
	WK_EOF,         /* EOF on an empty pipe: read end */
	WK_ERROR,       /* an error on a full pipe: write end */
	WK_CLOSE_WRITE, /* the write end closes: read end */
	WK_CLOSE_READ,  /* the read end closes on a full pipe: write end */
	WK_CONNECT,     /* a connect: server */
	WK_SHUTDOWN,    /* a shutdown: server */
	WK_ACCEPT,      /* an accept: client */
	WK_REFUSE,      /* a refusal: client */
	WK_ADD_READY,   /* a ready object added */
	WK_REARM,       /* a ready one-shot member re-armed */
	WK_COUNT
};

static const char *const wk_names[WK_COUNT] = {
	"write",           "read from full", "eof",       "error",
	"close write end", "close read end", "connect",   "shutdown",
	"accept",          "refuse",         "add ready", "re-arm",
};

struct scene {
	polypipe *rd, *wr;
	polyserver *srv;
	polyclient *cl;
	polyendpoint ep;
	void *target;
};

static void
scene_setup(struct scene *sc, enum wake_kind k, polyset *set)
{
	struct polyset_event ev;

	memset(sc, 0, sizeof *sc);
	switch (k) {
	case WK_WRITE:
	case WK_EOF:
	case WK_CLOSE_WRITE:
		pipe_new(4, &sc->rd, &sc->wr);
		sc->target = sc->rd;
		break;
	case WK_READ_FULL:
	case WK_ERROR:
	case WK_CLOSE_READ:
		pipe_new(1, &sc->rd, &sc->wr);
		WRITE_OK(sc->wr, 1);
		sc->target = sc->wr;
		break;
	case WK_CONNECT:
	case WK_SHUTDOWN:
		sc->srv = new_server();
		sc->target = sc->srv;
		break;
	case WK_ACCEPT:
	case WK_REFUSE:
		sc->srv = new_server();
		sc->cl = pending_client(sc->srv, 2);
		sc->target = sc->cl;
		break;
	case WK_ADD_READY:
	case WK_REARM:
		pipe_new(4, &sc->rd, &sc->wr);
		WRITE_OK(sc->wr, 1);
		sc->target = sc->rd;
		break;
	case WK_COUNT:
		break;
	}
	label(sc->target, wk_names[k]);
	if (k == WK_ADD_READY)
		return;
	add(set, sc->target, k == WK_REARM ? POLYSET_ONESHOT : 0);
	if (k == WK_REARM) {
		ck_assert_int_eq(polyset_wait(set, &ev, 1, 0), 1);
		ck_assert_ptr_eq(ev.obj, sc->target);
	}
	EXPECT_NONE(set);
}

static void
scene_act(struct scene *sc, enum wake_kind k, polyset *set)
{
	void *m;

	switch (k) {
	case WK_WRITE:
		WRITE_OK(sc->wr, 1);
		break;
	case WK_READ_FULL:
		ck_assert_int_eq(polypipe_read(sc->rd, &m, 0), 1);
		break;
	case WK_EOF:
		ck_assert_int_eq(polypipe_write_eof(sc->wr), 0);
		break;
	case WK_ERROR:
		ck_assert_int_eq(polypipe_set_error(sc->rd, EIO), 0);
		break;
	case WK_CLOSE_WRITE:
		polypipe_close(sc->wr);
		sc->wr = NULL;
		break;
	case WK_CLOSE_READ:
		polypipe_close(sc->rd);
		sc->rd = NULL;
		break;
	case WK_CONNECT:
		sc->cl = pending_client(sc->srv, 2);
		break;
	case WK_SHUTDOWN:
		ck_assert_int_eq(polyserver_shutdown(sc->srv), 0);
		break;
	case WK_ACCEPT:
		ck_assert_int_eq(polyserver_accept(sc->srv, &sc->ep, 0), 0);
		break;
	case WK_REFUSE:
		ck_assert_int_eq(polyserver_refuse(sc->srv), 1);
		break;
	case WK_ADD_READY:
		add(set, sc->target, 0);
		break;
	case WK_REARM:
		ck_assert_int_eq(polyset_modify(set, sc->target,
		                                POLYSET_ONESHOT,
		                                DATA(sc->target)),
		                 0);
		break;
	case WK_COUNT:
		break;
	}
}

static void
scene_free(struct scene *sc)
{
	if (sc->ep.rd != NULL)
		polyendpoint_close(&sc->ep);
	polyclient_close(sc->cl);
	polyserver_close(sc->srv);
	pipe_free(sc->rd, sc->wr);
}

/* Runs _i / 2 of the scenes: a thread blocked in polyset_wait (even _i)
 * or in poll(2) on polyset_fd (odd _i) wakes when the member becomes
 * ready, and is handed exactly it. */
struct fd_poller {
	int fd;
	pthread_barrier_t *start;
	int ret;
	short revents;
	int64_t elapsed;
	pthread_t thread;
};

static void *
fd_poller_run(void *arg)
{
	struct fd_poller *p = arg;
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
	int64_t t0;

	pthread_barrier_wait(p->start);
	t0 = now_ms();
	do
		p->ret = poll(&pfd, 1, LONG_MS);
	while (p->ret < 0 && errno == EINTR);
	p->revents = pfd.revents;
	p->elapsed = now_ms() - t0;
	return NULL;
}

START_TEST(test_polyset_wait_wakes_on_ready)
{
	enum wake_kind k = (enum wake_kind)(_i / 2);
	bool by_fd = _i % 2 != 0;
	polyset *set = new_set();
	pthread_barrier_t start;
	struct scene sc;
	struct waiter w;
	struct fd_poller p;

	use_fd = by_fd;
	scene_setup(&sc, k, set);
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, 2), 0);
	if (by_fd) {
		memset(&p, 0, sizeof p);
		p.fd = polyset_fd(set);
		ck_assert_int_ge(p.fd, 0);
		p.start = &start;
		spawn(&p.thread, fd_poller_run, &p);
	} else {
		waiter_start(&w, set, &start);
	}
	pthread_barrier_wait(&start);
	scene_act(&sc, k, set);
	if (by_fd) {
		join(p.thread);
		ck_assert_msg(p.ret == 1 && (p.revents & POLLIN) != 0,
		              "%s: poll(polyset_fd) returned %d (revents %#x) "
		              "after %lld ms",
		              wk_names[k], p.ret, (unsigned)p.revents,
		              (long long)p.elapsed);
		EXPECT_SEQ(set, 8, sc.target);
	} else {
		join(w.thread);
		waiter_got(&w, sc.target);
	}
	pthread_barrier_destroy(&start);
	scene_free(&sc);
	polyset_close(set);
}
END_TEST

/* --- polyset_wake -------------------------------------------------------- */

/* A wake with no wait blocked: the next wait that finds nothing ready
 * returns 0 at once; calls before it count as one. */
START_TEST(test_polyset_wake_before_wait)
{
	polyset *set = new_set();
	struct polyset_event ev;
	polypipe *rd, *wr;
	int64_t t0;

	use_fd = _i;
	pipe_new(4, &rd, &wr);
	label(rd, "rd");
	add(set, rd, 0);
	EXPECT_NONE(set);
	ck_assert_int_eq(polyset_wake(set), 0);
	check_fd(set, true, "after a wake,", __LINE__);
	t0 = now_ms();
	ck_assert_int_eq(polyset_wait(set, &ev, 1, LONG_MS), 0);
	ck_assert_int_lt(now_ms() - t0, LONG_MS);
	EXPECT_NONE(set);
	/* Several calls while no wait is blocked count as one. */
	ck_assert_int_eq(polyset_wake(set), 0);
	ck_assert_int_eq(polyset_wake(set), 0);
	ck_assert_int_eq(polyset_wake(set), 0);
	check_fd(set, true, "after three wakes,", __LINE__);
	ck_assert_int_eq(polyset_wait(set, &ev, 1, -1), 0);
	ck_assert_fail(polyset_wait(set, &ev, 1, 0), EAGAIN);
	ck_assert_times_out(polyset_wait(set, &ev, 1, TIMED_MS), TIMED_MS);
	/* A wait with timeout 0 takes a pending wake as well. */
	ck_assert_int_eq(polyset_wake(set), 0);
	ck_assert_int_eq(polyset_wait(set, &ev, 1, 0), 0);
	EXPECT_NONE(set);
	/* An empty set too. */
	polyset *empty = new_set();

	ck_assert_int_eq(polyset_wake(empty), 0);
	ck_assert_int_eq(polyset_wait(empty, &ev, 1, -1), 0);
	ck_assert_fail(polyset_wait(empty, &ev, 1, 0), EAGAIN);
	polyset_close(empty);
	pipe_free(rd, wr);
	polyset_close(set);
}
END_TEST

/* A wait that finds a member ready reports it and leaves the wake
 * pending. */
START_TEST(test_polyset_wake_with_ready_member)
{
	polyset *set = new_set();
	struct polyset_event ev;
	polypipe *rd, *wr;

	use_fd = _i;
	pipe_new(4, &rd, &wr);
	label(rd, "rd");
	add(set, rd, 0);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(polyset_wake(set), 0);
	EXPECT_READY(set, rd);
	EXPECT_READY(set, rd);
	READ_IS(rd, 1);
	check_fd(set, true, "with the wake still pending,", __LINE__);
	ck_assert_int_eq(polyset_wait(set, &ev, 1, LONG_MS), 0);
	EXPECT_NONE(set);
	/* Same with a one-shot member. */
	ck_assert_int_eq(polyset_modify(set, rd, POLYSET_ONESHOT, DATA(rd)),
	                 0);
	WRITE_OK(wr, 2);
	ck_assert_int_eq(polyset_wake(set), 0);
	EXPECT_SEQ(set, 4, rd);
	check_fd(set, true, "with the wake still pending,", __LINE__);
	ck_assert_int_eq(polyset_wait(set, &ev, 1, LONG_MS), 0);
	ck_assert_fail(polyset_wait(set, &ev, 1, 0), EAGAIN);
	pipe_free(rd, wr);
	polyset_close(set);
}
END_TEST

/* A wake ends a wait blocked in another thread, which returns 0. */
START_TEST(test_polyset_wake_blocked)
{
	polyset *set = new_set();
	pthread_barrier_t start;
	polypipe *rd, *wr;
	struct waiter w;

	pipe_new(4, &rd, &wr);
	add(set, rd, 0);
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, 2), 0);
	waiter_init(&w, set, &start);
	w.timeout = -1;
	waiter_spawn(&w);
	pthread_barrier_wait(&start);
	ck_assert_int_eq(polyset_wake(set), 0);
	join(w.thread);
	waiter_woken(&w);
	pthread_barrier_destroy(&start);
	pipe_free(rd, wr);
	polyset_close(set);
}
END_TEST

/*
 * A wake and a member becoming ready at once, for a wait blocked in
 * another thread: it returns 0, or it reports the member and the wake
 * stays pending.  Either way the wake is taken exactly once: by that
 * wait, or by the next one once the member is drained.  Repeated, so
 * that the blocked waiter meets both orders.
 */
START_TEST(test_polyset_wake_blocked_with_ready_member)
{
	polyset *set = new_set();
	pthread_barrier_t start;
	polypipe *rd, *wr;
	struct polyset_event ev;
	int reported = 0;

	pipe_new(4, &rd, &wr);
	label(rd, "rd");
	add(set, rd, 0);
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, 2), 0);
	for (int round = 0; round < 50; round++) {
		struct waiter w;
		int64_t t0;

		waiter_start(&w, set, &start);
		pthread_barrier_wait(&start);
		ck_assert_int_eq(polyset_wake(set), 0);
		WRITE_OK(wr, round);
		join(w.thread);
		ck_assert_int_lt(w.elapsed, LONG_MS);
		READ_IS(rd, round);
		if (w.ret == 0) {
			/* Woken: the wake is taken. */
			ck_assert_fail(polyset_wait(set, &ev, 1, 0), EAGAIN);
			continue;
		}
		waiter_got(&w, rd);
		reported++;
		t0 = now_ms();
		ck_assert_msg(polyset_wait(set, &ev, 1, LONG_MS) == 0,
		              "round %d: the wait reported the member; the "
		              "wake should be pending, but the next wait did "
		              "not return 0 (%s)",
		              round, strerror(errno));
		ck_assert_int_lt(now_ms() - t0, LONG_MS);
		ck_assert_fail(polyset_wait(set, &ev, 1, 0), EAGAIN);
	}
	if (reported == 0 || reported == 50)
		fprintf(stderr,
		        "test_polyset_wake_blocked_with_ready_member: the "
		        "waiter %s in all 50 rounds\n",
		        reported ? "reported the member" : "returned 0");
	pthread_barrier_destroy(&start);
	pipe_free(rd, wr);
	polyset_close(set);
}
END_TEST

/* Two threads blocked: wakes end each of them, with 0. */
START_TEST(test_polyset_wake_two_blocked)
{
	polyset *set = new_set();
	pthread_barrier_t start;
	struct waiter w[2];
	int returned = 0;
	int64_t deadline;
	sem_t done;

	ck_assert_int_eq(sem_init(&done, 0, 0), 0);
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, 3), 0);
	for (int i = 0; i < 2; i++) {
		waiter_init(&w[i], set, &start);
		w[i].done = &done;
		waiter_spawn(&w[i]);
	}
	pthread_barrier_wait(&start);
	deadline = now_ms() + LONG_MS;
	while (returned < 2 && now_ms() < deadline) {
		struct timespec ts;

		ck_assert_int_eq(polyset_wake(set), 0);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (sem_timedwait(&done, &ts) == 0)
			returned++;
	}
	join(w[0].thread);
	join(w[1].thread);
	waiter_woken(&w[0]);
	waiter_woken(&w[1]);
	pthread_barrier_destroy(&start);
	sem_destroy(&done);
	polyset_close(set);
}
END_TEST

/* A notifier callback may wake a set: here another pipe's read notifier
 * ends a wait blocked in another thread. */
struct wake_note {
	polyset *set;
	atomic_int calls;
	atomic_int fails;
};

static void
wake_note_fn(void *arg)
{
	struct wake_note *n = arg;

	atomic_fetch_add(&n->calls, 1);
	if (polyset_wake(n->set) != 0)
		atomic_fetch_add(&n->fails, 1);
}

START_TEST(test_polyset_wake_from_notifier)
{
	polyset *set = new_set();
	pthread_barrier_t start;
	polypipe *rd, *wr, *nrd, *nwr;
	struct wake_note note = { .set = set };
	struct polyset_event ev;
	struct waiter w;

	pipe_new(4, &rd, &wr);
	pipe_new(4, &nrd, &nwr);
	label(rd, "rd");
	add(set, rd, 0);
	ck_assert_int_eq(polypipe_set_read_notify(nrd, wake_note_fn, &note),
	                 0);
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, 2), 0);
	waiter_start(&w, set, &start);
	pthread_barrier_wait(&start);
	WRITE_OK(nwr, 1);
	join(w.thread);
	ck_assert_int_eq(atomic_load(&note.calls), 1);
	ck_assert_int_eq(atomic_load(&note.fails), 0);
	waiter_woken(&w);
	pthread_barrier_destroy(&start);

	/* The member's own notifier wakes the set: the wait reports the
	 * member, the wake stays pending for the next. */
	ck_assert_int_eq(polypipe_set_read_notify(rd, wake_note_fn, &note), 0);
	WRITE_OK(wr, 1);
	ck_assert_int_eq(atomic_load(&note.calls), 2);
	EXPECT_READY(set, rd);
	READ_IS(rd, 1);
	ck_assert_int_eq(polyset_wait(set, &ev, 1, LONG_MS), 0);
	EXPECT_NONE(set);
	ck_assert_int_eq(atomic_load(&note.fails), 0);
	pipe_free(rd, wr);
	pipe_free(nrd, nwr);
	polyset_close(set);
}
END_TEST

/* --- the end of a membership --------------------------------------------- */

START_TEST(test_polyset_remove_ends_membership)
{
	polyset *set = new_set();
	polypipe *rd, *wr;
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 2);

	use_fd = _i;
	ready_pipe(&rd, &wr, "rd");
	label(wr, "wr");
	label(srv, "srv");
	add(set, rd, 0);
	add(set, wr, POLYSET_ONESHOT);
	add(set, srv, 0);
	EXPECT_READY(set, rd, wr, srv);
	ck_assert_int_eq(polyset_remove(set, rd), 0);
	EXPECT_READY(set, srv);
	ck_assert_int_eq(polyset_remove(set, srv), 0);
	EXPECT_NONE(set);
	/* A held one-shot member can be removed too. */
	ck_assert_int_eq(polyset_remove(set, wr), 0);
	/* The objects work as before, and may come back. */
	WRITE_OK(wr, 2);
	READ_IS(rd, 1);
	add(set, rd, 0);
	EXPECT_READY(set, rd);
	add(set, wr, 0);
	EXPECT_READY(set, rd, wr);
	polyclient_close(cl);
	polyserver_close(srv);
	pipe_free(rd, wr);
	polyset_close(set);
}
END_TEST

/* Closing a member ends its membership: every close function. */
START_TEST(test_polyset_close_ends_membership)
{
	polyset *set = new_set();
	polypipe *rd, *wr;
	polyserver *srv = new_server(), *srv2 = new_server();
	polyclient *cl, *cl2;
	polyendpoint sep, cep, sep2;

	use_fd = _i;
	/* polypipe_close of a ready read end, and of a ready write end. */
	ready_pipe(&rd, &wr, "rd");
	label(wr, "wr");
	add(set, rd, 0);
	add(set, wr, 0);
	EXPECT_READY(set, rd, wr);
	polypipe_close(rd);
	EXPECT_READY(set, wr); /* EPIPE now */
	polypipe_close(wr);
	EXPECT_NONE(set);

	/* polyendpoint_close of both ends of a server's endpoint. */
	cl = pending_client(srv, 2);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_int_eq(polyclient_endpoint(cl, &cep, 0), 0);
	WRITE_OK(cep.wr, 1);
	label(sep.rd, "sep.rd");
	label(sep.wr, "sep.wr");
	label(cl, "cl");
	add(set, sep.rd, 0);
	add(set, sep.wr, 0);
	EXPECT_READY(set, sep.rd, sep.wr);
	polyendpoint_close(&sep);
	EXPECT_NONE(set);

	/* polyclient_close of a decided client whose endpoint pipes are
	 * members as well. */
	add(set, cl, 0);
	label(cep.rd, "cep.rd");
	label(cep.wr, "cep.wr");
	add(set, cep.rd, 0);
	add(set, cep.wr, 0);
	EXPECT_READY(set, cl, cep.rd, cep.wr);
	polyclient_close(cl);
	EXPECT_NONE(set);

	/* polyclient_close of a pending client (withdrawn). */
	cl2 = pending_client(srv, 2);
	label(cl2, "cl2");
	label(srv, "srv");
	add(set, cl2, 0);
	add(set, srv, 0);
	EXPECT_READY(set, srv);
	polyclient_close(cl2);
	EXPECT_NONE(set);

	/* polyserver_close of a ready server. */
	cl2 = pending_client(srv2, 2);
	label(srv2, "srv2");
	label(cl2, "cl2 (on srv2)");
	add(set, srv2, 0);
	add(set, cl2, 0);
	EXPECT_READY(set, srv2);
	polyserver_close(srv2);
	/* The close refused cl2: ready, the server gone from the set. */
	EXPECT_READY(set, cl2);
	polyclient_close(cl2);
	EXPECT_NONE(set);

	ck_assert_fail(polyserver_accept(srv, &sep2, 0), EAGAIN);
	polyserver_close(srv);
	EXPECT_NONE(set);
	polyset_close(set);
}
END_TEST

/* polyset_remove while another thread waits: no wait that begins after
 * the remove returned reports the member. */
struct remove_watch {
	polyset *set;
	void *removed;
	void *other;
	atomic_bool remove_returned;
	pthread_barrier_t start;
	int late_reports; /* by a wait begun after the remove */
	int waits;
	bool got_other;
	ssize_t bad_ret;
	int bad_err;
};

static void *
remove_watch_run(void *arg)
{
	struct remove_watch *r = arg;

	pthread_barrier_wait(&r->start);
	while (!r->got_other && r->waits < 8) {
		bool after = atomic_load(&r->remove_returned);
		struct polyset_event evs[4];
		ssize_t n;

		errno = 0;
		n = polyset_wait(r->set, evs, 4, LONG_MS);
		r->waits++;
		if (n <= 0) {
			r->bad_ret = n;
			r->bad_err = errno;
			return NULL;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (evs[i].obj == r->removed && after)
				r->late_reports++;
			if (evs[i].obj == r->other)
				r->got_other = true;
		}
	}
	return NULL;
}

START_TEST(test_polyset_remove_while_waiting)
{
	polyset *set = new_set();
	polypipe *a, *wa, *b, *wb;
	struct remove_watch r;
	pthread_t t;

	memset(&r, 0, sizeof r);
	pipe_new(4, &a, &wa);
	pipe_new(4, &b, &wb);
	label(a, "A");
	label(b, "B");
	add(set, a, 0);
	add(set, b, 0);
	r.set = set;
	r.removed = a;
	r.other = b;
	ck_assert_int_eq(pthread_barrier_init(&r.start, NULL, 2), 0);
	spawn(&t, remove_watch_run, &r);
	pthread_barrier_wait(&r.start);
	ck_assert_int_eq(polyset_remove(set, a), 0);
	atomic_store(&r.remove_returned, true);
	WRITE_OK(wa, 1); /* A ready, but no longer a member */
	WRITE_OK(wb, 1);
	join(t);
	ck_assert_msg(r.bad_ret == 0 || r.got_other,
	              "the waiting thread's polyset_wait returned %zd (%s)",
	              r.bad_ret, strerror(r.bad_err));
	ck_assert_msg(r.got_other, "B was not reported in %d waits", r.waits);
	ck_assert_msg(r.late_reports == 0,
	              "a wait begun after polyset_remove returned reported "
	              "the removed member %d times",
	              r.late_reports);
	EXPECT_READY(set, b);
	pthread_barrier_destroy(&r.start);
	pipe_free(a, wa);
	pipe_free(b, wb);
	polyset_close(set);
}
END_TEST

/* A one-shot member handed to this thread may be closed while another
 * thread waits on the set: that wait never reports it. */
START_TEST(test_polyset_close_while_waiting)
{
	polyset *set = new_set();
	polypipe *a, *wa, *b, *wb;
	pthread_barrier_t start;
	struct waiter w;

	ready_pipe(&a, &wa, "A");
	pipe_new(4, &b, &wb);
	label(b, "B");
	add(set, a, POLYSET_ONESHOT);
	add(set, b, POLYSET_ONESHOT);
	EXPECT_SEQ(set, 4, a); /* handed to this thread */
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, 2), 0);
	waiter_start(&w, set, &start);
	pthread_barrier_wait(&start);
	polypipe_close(a);
	polypipe_close(wa);
	WRITE_OK(wb, 1);
	join(w.thread);
	waiter_got(&w, b);
	ck_assert_fail(polyset_wait(set, w.evs, 4, 0), EAGAIN);
	pthread_barrier_destroy(&start);
	pipe_free(b, wb);
	polyset_close(set);
}
END_TEST

/* polyset_close with members: they stay open and usable, and may join
 * another set. */
START_TEST(test_polyset_close_with_members)
{
	polyset *set = new_set(), *next = new_set();
	polypipe *rd, *wr, *hrd, *hwr;
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 2), *cl2;
	polyendpoint sep, cep;

	use_fd = _i;
	ready_pipe(&rd, &wr, "rd");
	ready_pipe(&hrd, &hwr, "held");
	label(wr, "wr");
	label(srv, "srv");
	label(cl, "cl");
	add(set, rd, 0);
	add(set, wr, 0);
	add(set, srv, 0);
	add(set, cl, 0);
	add(set, hrd, POLYSET_ONESHOT);
	EXPECT_READY(set, rd, wr, srv, hrd);
	/* hrd is held now */
	EXPECT_READY(set, rd, wr, srv);
	ck_assert_int_ge(polyset_fd(set), 0);
	ck_assert_int_eq(polyset_wake(set), 0);
	polyset_close(set);

	READ_IS(rd, 1);
	WRITE_OK(wr, 2);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_int_eq(polyclient_endpoint(cl, &cep, 0), 0);
	cl2 = pending_client(srv, 2);
	add(next, rd, 0);
	add(next, wr, 0);
	add(next, srv, 0);
	add(next, cl, 0);
	add(next, hrd, 0);
	EXPECT_READY(next, rd, wr, srv, cl, hrd);
	polyset_close(next);
	polyendpoint_close(&sep);
	polyclient_close(cl);
	polyclient_close(cl2);
	polyserver_close(srv);
	pipe_free(rd, wr);
	pipe_free(hrd, hwr);
}
END_TEST

/* --- next to descriptors and notifiers ----------------------------------- */

/* A member keeps its descriptors and notifiers: after each change the
 * end's descriptor, its notifier count and the set agree. */
START_TEST(test_polyset_with_fd_and_notifier)
{
	polyset *set = new_set();
	polypipe *rd, *wr;
	atomic_int rn = 0, wn = 0;
	int rfd, wfd;
	void *m;

	use_fd = _i;
	pipe_new(2, &rd, &wr);
	label(rd, "rd");
	label(wr, "wr");
	rfd = polypipe_read_fd(rd);
	wfd = polypipe_write_fd(wr);
	ck_assert_int_ge(rfd, 0);
	ck_assert_int_ge(wfd, 0);
	ck_assert_int_eq(polypipe_set_read_notify(rd, count_fn, &rn), 0);
	ck_assert_int_eq(polypipe_set_write_notify(wr, count_fn, &wn), 0);
	add(set, rd, 0);
	add(set, wr, 0);
#define AGREE(rd_ready, wr_ready, rcalls, wcalls)                             \
	do {                                                                  \
		ck_assert_int_eq(fd_readable(rfd), (rd_ready));               \
		ck_assert_int_eq(fd_readable(wfd), (wr_ready));               \
		ck_assert_int_eq(atomic_load(&rn), (rcalls));                 \
		ck_assert_int_eq(atomic_load(&wn), (wcalls));                 \
		if ((rd_ready) && (wr_ready))                                 \
			EXPECT_READY(set, rd, wr);                            \
		else if (rd_ready)                                            \
			EXPECT_READY(set, rd);                                \
		else if (wr_ready)                                            \
			EXPECT_READY(set, wr);                                \
		else                                                          \
			EXPECT_NONE(set);                                     \
	} while (0)
	AGREE(0, 1, 0, 0);
	WRITE_OK(wr, 1);
	AGREE(1, 1, 1, 0);
	WRITE_OK(wr, 2);
	AGREE(1, 0, 1, 0);
	READ_IS(rd, 1);
	AGREE(1, 1, 1, 1);
	READ_IS(rd, 2);
	AGREE(0, 1, 1, 1);
	WRITE_OK(wr, 3);
	WRITE_OK(wr, 4);
	AGREE(1, 0, 2, 1);
	ck_assert_int_eq(polypipe_write_eof(wr), 0); /* while full */
	AGREE(1, 1, 2, 2);
	READ_IS(rd, 3);
	READ_IS(rd, 4);
	ck_assert_int_eq(polypipe_read(rd, &m, 0), 0);
	AGREE(1, 1, 2, 2);
#undef AGREE
	pipe_free(rd, wr);
	polyset_close(set);
}
END_TEST

/* The same for a server's and a client's descriptor and notifier. */
START_TEST(test_polyset_with_fd_and_notifier_socket)
{
	polyset *set = new_set();
	polyserver *srv = new_server();
	polyclient *cl = new_client(2), *cl2;
	atomic_int an = 0, cn = 0;
	polyendpoint sep;
	int afd, cfd;

	use_fd = _i;
	label(srv, "srv");
	label(cl, "cl");
	afd = polyserver_accept_fd(srv);
	ck_assert_int_ge(afd, 0);
	ck_assert_int_eq(polyserver_set_accept_notify(srv, count_fn, &an), 0);
	ck_assert_int_eq(polyclient_set_connect_notify(cl, count_fn, &cn), 0);
	add(set, srv, 0);
	add(set, cl, 0);
	EXPECT_NONE(set);
	ck_assert_int_eq(polyclient_connect(cl, srv), 0);
	cfd = polyclient_connect_fd(cl);
	ck_assert_int_ge(cfd, 0);
	ck_assert_readable(afd);
	ck_assert_not_readable(cfd);
	ck_assert_int_eq(atomic_load(&an), 1);
	ck_assert_int_eq(atomic_load(&cn), 0);
	EXPECT_READY(set, srv);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_not_readable(afd);
	ck_assert_readable(cfd);
	ck_assert_int_eq(atomic_load(&cn), 1);
	EXPECT_READY(set, cl);
	cl2 = pending_client(srv, 2);
	ck_assert_readable(afd);
	ck_assert_int_eq(atomic_load(&an), 2);
	EXPECT_READY(set, srv, cl);
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_readable(afd);
	EXPECT_READY(set, srv, cl);
	polyendpoint_close(&sep);
	polyclient_close(cl);
	polyclient_close(cl2);
	polyserver_close(srv);
	polyset_close(set);
}
END_TEST

/*
 * A thread with a cancellation pending makes a set's descriptor readable
 * and closes objects that have descriptors: none of the library's calls
 * may be where it ends (a lock held, a close half done).  It ends at its
 * own pthread_testcancel, after the last step.
 */
struct cancel_run {
	polyset *set;
	polyserver *srv;
	polyclient *cl;
	polyendpoint sep;
	int steps;
};

static void *
cancel_pending_thread(void *arg)
{
	struct cancel_run *c = arg;

	test_cancel_pending();
	/* The client is decided: adding it makes the set's fd readable. */
	if (polyset_add(c->set, c->cl, 0, NULL) == 0)
		c->steps++;
	polyendpoint_close(&c->sep); /* a pipe end with its read fd */
	c->steps++;
	polyclient_close(c->cl); /* its connect fd */
	c->steps++;
	polyserver_close(c->srv); /* its accept fd */
	c->steps++;
	polyset_close(c->set); /* its own */
	c->steps++;
	pthread_testcancel();
	return NULL;
}

START_TEST(test_polyset_calls_not_cancellation_points)
{
	struct cancel_run c = { .set = new_set(), .srv = new_server() };
	pthread_t t;
	void *ret;

	c.cl = new_client(2);
	ck_assert_int_ge(polyset_fd(c.set), 0);
	ck_assert_int_ge(polyserver_accept_fd(c.srv), 0);
	ck_assert_int_eq(polyclient_connect(c.cl, c.srv), 0);
	ck_assert_int_ge(polyclient_connect_fd(c.cl), 0);
	ck_assert_int_eq(polyserver_accept(c.srv, &c.sep, 0), 0);
	ck_assert_int_ge(polypipe_read_fd(c.sep.rd), 0);
	ck_assert_not_readable(polyset_fd(c.set));
	ck_assert_int_eq(pthread_create(&t, NULL, cancel_pending_thread, &c),
	                 0);
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert_ptr_eq(ret, PTHREAD_CANCELED);
	ck_assert_int_eq(c.steps, 5);
}
END_TEST

/* --- cost ---------------------------------------------------------------- */

/* Open descriptors of the process, or -1 if /proc is not there. */
static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

enum { MANY = 300 };

/* A membership takes no descriptor: only polyset_fd opens one, once. */
START_TEST(test_polyset_no_descriptor)
{
	polypipe *rd[MANY], *wr[MANY];
	struct polyset_event evs[EVS_MAX];
	polyset *set;
	int before, fd;

	for (int i = 0; i < MANY; i++)
		pipe_new(2, &rd[i], &wr[i]);
	before = count_fds();
	if (before < 0) {
		fprintf(stderr, "test_polyset_no_descriptor: skipped, no "
		                "/proc/self/fd\n");
		goto out;
	}
	set = new_set();
	for (int i = 0; i < MANY; i++) {
		add(set, rd[i], i % 3 == 0 ? POLYSET_ONESHOT : 0);
		add(set, wr[i], 0);
	}
	for (int i = 0; i < MANY; i += 2)
		WRITE_OK(wr[i], i);
	for (int k = 0; k < 20; k++)
		ck_assert_int_gt(polyset_wait(set, evs, EVS_MAX, 0), 0);
	for (int i = 0; i < MANY; i += 4)
		ck_assert_int_eq(polyset_remove(set, rd[i]), 0);
	ck_assert_int_eq(polyset_wake(set), 0);
	ck_assert_int_eq(count_fds(), before);
	fd = polyset_fd(set);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(count_fds(), before + 1);
	ck_assert_int_eq(polyset_fd(set), fd);
	ck_assert_int_eq(count_fds(), before + 1);
	polyset_close(set);
	ck_assert_int_eq(count_fds(), before);
out:
	for (int i = 0; i < MANY; i++)
		pipe_free(rd[i], wr[i]);
}
END_TEST

/*
 * Runs in a child that any system call but exit_group kills.  With no
 * descriptor and nobody waiting (variant 0), members becoming ready and
 * not ready make no system call; with a descriptor on a set that stays
 * ready (variant 1), neither: one for the whole set, not one per member.
 */
static void
fast_path_child(polypipe *rd, polypipe *wr, polypipe *rd2, polypipe *wr2)
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
	void *const two[2] = { MSG(2), MSG(3) };
	void *m = NULL, *out[4];
	int bad = 0;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		_exit(77);
	for (int k = 0; k < 3; k++) {
		/* rd becomes ready, wr (capacity 1) stops being ready. */
		bad += polypipe_write(wr, MSG(1), 0) != 0;
		/* And back: wr becomes ready. */
		bad += polypipe_read(rd, &m, 0) != 1;
		bad += polypipe_write_many(wr2, two, 2, 0) != 2;
		bad += polypipe_read_many(rd2, out, 4, 0) != 2;
		bad += polypipe_write(wr2, MSG(4), -1) != 0;
		bad += polypipe_read(rd2, &m, LONG_MS) != 1;
	}
	syscall(SYS_exit_group, bad == 0 ? 0 : 1);
}

START_TEST(test_polyset_fast_path_no_syscall)
{
	const char *preload = getenv("LD_PRELOAD");
	polyset *set = new_set();
	polypipe *rd, *wr, *rd2, *wr2, *krd = NULL, *kwr = NULL;
	pid_t pid;
	int status;

	if (preload != NULL && strstr(preload, "vgpreload") != NULL) {
		fprintf(stderr, "test_polyset_fast_path_no_syscall: skipped "
		                "under valgrind\n");
		polyset_close(set);
		return;
	}
	/* check_main.c puts the seed there in a chaos build, whose points
	 * yield and sleep. */
	if (getenv("POLYSOCKET_CHAOS_SEED") != NULL) {
		fprintf(stderr, "test_polyset_fast_path_no_syscall: skipped "
		                "in a chaos build\n");
		polyset_close(set);
		return;
	}
	pipe_new(1, &rd, &wr);
	pipe_new(4, &rd2, &wr2);
	label(rd, "rd");
	label(wr, "wr");
	label(rd2, "rd2");
	add(set, rd, 0);
	add(set, wr, 0);
	add(set, rd2, POLYSET_ONESHOT);
	if (_i == 1) {
		/* A member that keeps the set ready, and a descriptor. */
		ready_pipe(&krd, &kwr, "keeper");
		add(set, krd, 0);
		ck_assert_int_ge(polyset_fd(set), 0);
		ck_assert_readable(polyset_fd(set));
	}
	/* Warm up, so that any memory the calls need exists already. */
	WRITE_OK(wr, 1);
	READ_IS(rd, 1);
	WRITE_OK(wr2, 1);
	READ_IS(rd2, 1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		fast_path_child(rd, wr, rd2, wr2);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(!WIFSIGNALED(status),
	              "a member becoming ready made a system call (killed by "
	              "%s)%s",
	              strsignal(WTERMSIG(status)),
	              _i == 1 ? " on a set with a descriptor that stayed "
	                        "ready"
	                      : " with no descriptor and nobody waiting");
	ck_assert(WIFEXITED(status));
	ck_assert_msg(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 77,
	              "the calls failed in the child");
	if (WEXITSTATUS(status) == 77)
		fprintf(stderr, "test_polyset_fast_path_no_syscall: skipped, "
		                "seccomp not available\n");
	polyset_close(set);
	pipe_free(rd, wr);
	pipe_free(rd2, wr2);
	pipe_free(krd, kwr);
}
END_TEST

/* --- errno across a wait ------------------------------------------------ */

struct errno_wait {
	polyset *set;
	int timeout_ms;
	struct polyset_event ev;
	ssize_t ret;
	int err;
	atomic_long tid;
	atomic_int done;
};

static void *
errno_wait_main(void *arg)
{
	struct errno_wait *w = arg;

	atomic_store(&w->tid, test_tid());
	errno = 4242;
	w->ret = polyset_wait(w->set, &w->ev, 1, w->timeout_ms);
	w->err = errno;
	atomic_store(&w->done, 1);
	return NULL;
}

/*
 * A polyset_wait that sleeps and then reports a member leaves errno as
 * it was, with a timeout and without (_i), even when a signal made its
 * futex call fail (EINTR) meanwhile.
 */
START_TEST(test_polyset_wait_keeps_errno)
{
	struct errno_wait w = { .set = new_set(),
		                .timeout_ms = _i == 0 ? LONG_MS : -1 };
	polypipe *rd, *wr;
	pthread_t t;

	pipe_new(4, &rd, &wr);
	label(rd, "rd");
	add(w.set, rd, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, errno_wait_main, &w), 0);
	ck_assert_msg(test_wait_blocked(&w.tid, &w.done, LONG_MS),
	              "polyset_wait did not block on an idle set");
	test_interrupt(t);
	ck_assert_msg(test_wait_blocked(&w.tid, &w.done, LONG_MS),
	              "polyset_wait did not block again after a signal");
	WRITE_OK(wr, 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(w.ret, 1);
	ck_assert_ptr_eq(w.ev.obj, rd);
	ck_assert_int_eq(w.err, 4242);
	polyset_close(w.set);
	pipe_free(rd, wr);
}
END_TEST

/* --- the suite ----------------------------------------------------------- */

Suite *
polyset_suite(void)
{
	Suite *s = suite_create("polyset");
	TCase *tc;

	tc = new_tcase(s, "errors", 20);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_polyset_create_close);
	tcase_add_test(tc, test_polyset_add_errors);
	tcase_add_test(tc, test_polyset_add_set_refused);
	tcase_add_test(tc, test_polyset_modify_errors);
	tcase_add_test(tc, test_polyset_remove_errors);
	tcase_add_test(tc, test_polyset_wait_errors);
	tcase_add_test(tc, test_polyset_wait_timeouts);
	tcase_add_test(tc, test_polyset_wait_timeout_values);
	tcase_add_test(tc, test_polyset_fd_same_and_late);

	tc = new_tcase(s, "readiness", 20);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_polyset_ready_pipe, 0, 2);
	tcase_add_loop_test(tc, test_polyset_ready_pipe_eof, 0, 2);
	tcase_add_loop_test(tc, test_polyset_ready_pipe_error, 0, 2);
	tcase_add_loop_test(tc, test_polyset_ready_pipe_peer_close, 0, 2);
	tcase_add_loop_test(tc, test_polyset_ready_server, 0, 2);
	tcase_add_loop_test(tc, test_polyset_ready_client, 0, 2);
	tcase_add_loop_test(tc, test_polyset_ready_endpoint, 0, 2);
	tcase_add_loop_test(tc, test_polyset_ready_when_added, 0, 2);

	tc = new_tcase(s, "order", 20);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_polyset_level_triggered, 0, 2);
	tcase_add_test(tc, test_polyset_order);
	tcase_add_test(tc, test_polyset_fairness);

	tc = new_tcase(s, "oneshot", 20);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_polyset_oneshot, 0, 2);
	tcase_add_loop_test(tc, test_polyset_oneshot_rearm_order, 0, 2);
	tcase_add_test(tc, test_polyset_oneshot_one_thread);
	tcase_add_test(tc, test_polyset_level_wakes_every_waiter);

	tc = new_tcase(s, "blocked", 20);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_polyset_wait_wakes_on_ready, 0,
	                    2 * WK_COUNT);

	tc = new_tcase(s, "wake", 20);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_polyset_wake_before_wait, 0, 2);
	tcase_add_loop_test(tc, test_polyset_wake_with_ready_member, 0, 2);
	tcase_add_test(tc, test_polyset_wake_blocked);
	tcase_add_test(tc, test_polyset_wake_blocked_with_ready_member);
	tcase_add_test(tc, test_polyset_wake_two_blocked);
	tcase_add_test(tc, test_polyset_wake_from_notifier);

	tc = new_tcase(s, "membership", 20);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_polyset_remove_ends_membership, 0, 2);
	tcase_add_loop_test(tc, test_polyset_close_ends_membership, 0, 2);
	tcase_add_test(tc, test_polyset_remove_while_waiting);
	tcase_add_test(tc, test_polyset_close_while_waiting);
	tcase_add_loop_test(tc, test_polyset_close_with_members, 0, 2);

	tc = new_tcase(s, "views", 20);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_polyset_with_fd_and_notifier, 0, 2);
	tcase_add_loop_test(tc, test_polyset_with_fd_and_notifier_socket, 0,
	                    2);
	tcase_add_test(tc, test_polyset_calls_not_cancellation_points);

	tc = new_tcase(s, "errno", 30);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_polyset_wait_keeps_errno, 0, 2);

	tc = new_tcase(s, "cost", 20);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_polyset_no_descriptor);
	tcase_add_loop_test(tc, test_polyset_fast_path_no_syscall, 0, 2);
	return s;
}
