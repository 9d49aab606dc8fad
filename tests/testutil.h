/*
 * testutil.h - helpers shared by the Check suites.
 *
 * Assertions print both the expected and the actual value (Check's
 * ck_assert_int_eq does the same for plain values).
 */
#ifndef POLYSOCKET_TESTUTIL_H
#define POLYSOCKET_TESTUTIL_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

#endif /* POLYSOCKET_TESTUTIL_H */
