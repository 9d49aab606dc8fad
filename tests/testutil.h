/*
 * testutil.h - helpers shared by the Check suites.
 *
 * Assertions print both the expected and the actual value (Check's
 * ck_assert_int_eq does the same for plain values).
 */
#ifndef POLYSOCKET_TESTUTIL_H
#define POLYSOCKET_TESTUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

/* Asserts that expr returns -1 (or a NULL pointer is not meant here)
 * and sets errno to err. */
#define ck_assert_fail(expr, err)                                             \
	do {                                                                  \
		errno = 0;                                                    \
		long r_ = (long)(expr);                                       \
		int e_ = errno;                                               \
		ck_assert_msg(r_ == -1 && e_ == (err),                        \
		              "%s: expected -1 with errno %s, got %ld with "  \
		              "errno %s",                                     \
		              #expr, strerror(err), r_, strerror(e_));        \
	} while (0)

/* Asserts that a pointer-returning expr returns NULL with errno err. */
#define ck_assert_null_errno(expr, err)                                       \
	do {                                                                  \
		errno = 0;                                                    \
		const void *p_ = (expr);                                      \
		int e_ = errno;                                               \
		ck_assert_msg(p_ == NULL && e_ == (err),                      \
		              "%s: expected NULL with errno %s, got %p with " \
		              "errno %s",                                     \
		              #expr, strerror(err), p_, strerror(e_));        \
	} while (0)

/* Whether fd polls readable right now. */
static inline int
fd_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int n = poll(&pfd, 1, 0);

	ck_assert_int_ge(n, 0);
	return n == 1 && (pfd.revents & POLLIN) != 0;
}

/* Whether fd becomes readable within timeout_ms. */
static inline int
fd_readable_within(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int n;

	do
		n = poll(&pfd, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	ck_assert_int_ge(n, 0);
	return n == 1 && (pfd.revents & POLLIN) != 0;
}

#define ck_assert_readable(fd)                                                \
	ck_assert_msg(fd_readable(fd), "fd %s (%d) should be readable", #fd,  \
	              (int)(fd))
#define ck_assert_not_readable(fd)                                            \
	ck_assert_msg(!fd_readable(fd), "fd %s (%d) should not be readable",  \
	              #fd, (int)(fd))

/* Milliseconds of CLOCK_MONOTONIC. */
static inline int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A test case added to s, each of whose tests fails after timeout_s. */
static inline TCase *
new_tcase(Suite *s, const char *name, int timeout_s)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, timeout_s);
	suite_add_tcase(s, tc);
	return tc;
}

/*
 * A test that cannot run here is not added to its suite, so that Check
 * neither runs it nor counts it as passed: tcase_add_test_unless(tc, t,
 * why) adds t if why is NULL, else prints "SKIP: t: why" on stderr and
 * counts it in test_skips; the runner (check_main.c) then exits 77 once
 * every other test passed, automake's "skipped".
 */
extern int test_skips;

static inline void
test_skip(const char *name, const char *why)
{
	fprintf(stderr, "SKIP: %s: %s\n", name, why);
	test_skips++;
}

#define tcase_add_test_unless(tc, tf, why)                                    \
	do {                                                                  \
		const char *why_ = (why);                                     \
		if (why_ == NULL)                                             \
			tcase_add_test(tc, tf);                               \
		else                                                          \
			test_skip(#tf, why_);                                 \
	} while (0)

/* A message value that is not a real pointer: (void *)(uintptr_t)n. */
#define MSG(n) ((void *)(uintptr_t)(n))
#define MSGVAL(p) ((uintptr_t)(p))

/* Leaves a cancellation pending on the calling thread (deferred, as by
 * default): it acts at the thread's next cancellation point. */
static inline void
test_cancel_pending(void)
{
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_cancel(pthread_self());
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
}

/* --- threads blocked in a call ------------------------------------------ */

/* The calling thread's kernel id. */
static inline long
test_tid(void)
{
	return (long)syscall(SYS_gettid);
}

/* /proc/self/task/<tid>/<file> into buf (NUL-terminated): false if it
 * cannot be read. */
static inline bool
test_task_file(long tid, const char *file, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/self/task/%ld/%s", tid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return true;
}

/*
 * Whether thread tid sleeps in futex(2) now: state S or D in its stat,
 * and futex as its system call where /proc tells it (a thread of a
 * valgrind run waiting for valgrind's own lock sleeps in another call).
 */
static inline bool
test_blocked_in_futex(long tid)
{
	char buf[512];
	const char *p;

	if (!test_task_file(tid, "stat", buf, sizeof buf))
		return false;
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ' || (p[2] != 'S' && p[2] != 'D'))
		return false;
	if (!test_task_file(tid, "syscall", buf, sizeof buf))
		return true; /* not told: the state will do */
	return strtol(buf, NULL, 10) == SYS_futex;
}

/*
 * Polls, every 200 us for up to timeout_ms, until the thread whose id is
 * in *tid (0 while not yet known) sleeps in futex(2), or *done is set:
 * whether it was seen asleep.  A test then acts knowing that the thread
 * fell asleep in its library call, which is the case it means to test;
 * no sleep stands in for synchronisation.
 */
static inline bool
test_wait_blocked(atomic_long *tid, atomic_int *done, int timeout_ms)
{
	struct timespec pause = { .tv_nsec = 200000 };
	int64_t t0 = now_ms();
	long t;

	while (!atomic_load(done) && now_ms() - t0 < timeout_ms) {
		t = atomic_load(tid);
		if (t != 0 && test_blocked_in_futex(t))
			return true;
		nanosleep(&pause, NULL);
	}
	return false;
}

static void
test_no_op(int sig)
{
	(void)sig;
}

/*
 * Interrupts thread t's system call with a signal whose handler does
 * nothing and that does not restart calls: a futex wait returns EINTR,
 * which the library must treat as a spurious wake-up and hide from
 * errno.
 */
static inline void
test_interrupt(pthread_t t)
{
	struct sigaction sa = { .sa_handler = test_no_op };

	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	ck_assert_int_eq(pthread_kill(t, SIGUSR1), 0);
}

#endif /* POLYSOCKET_TESTUTIL_H */
