/*
 * check_faults.c - allocation failure and descriptor exhaustion.
 *
 * Built with the library's sources and PSYNC_FAULTS (common/sync.h), so
 * a test can make the N-th allocation fail.  Each test tries N = 1, 2, ...
 * until the operation succeeds without reaching the failing allocation:
 * so every allocation the operation makes fails once.  A failing call
 * must return -1 (or NULL) with ENOMEM and change nothing observable;
 * leaks are caught by LeakSanitizer and valgrind, which run this suite.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <unistd.h>

#include <check.h>
#include <polysocket/polysocket.h>

#include "common/sync.h"
#include "tests/testutil.h"

/* Arms the N-th allocation from now to fail. */
static void
fail_at(unsigned long n)
{
	psync_fail_at = n;
}

/* Disarms, and says whether the failing allocation was reached. */
static int
reached(void)
{
	int hit = psync_fail_at == 0;

	psync_fail_at = 0;
	return hit;
}

static unsigned destroyed;

static void
count_dtor(void *msg, void *arg)
{
	(void)msg;
	(void)arg;
	destroyed++;
}

START_TEST(test_faults_polypipe_create)
{
	polypipe *rd = MSG(1), *wr = MSG(2);
	unsigned long n;
	int r;

	for (n = 1;; n++) {
		fail_at(n);
		r = polypipe_create(4, &rd, &wr);
		if (!reached())
			break;
		ck_assert_int_eq(r, -1);
		ck_assert_int_eq(errno, ENOMEM);
		ck_assert_ptr_eq(rd, MSG(1));
		ck_assert_ptr_eq(wr, MSG(2));
	}
	ck_assert_int_eq(r, 0);
	ck_assert_uint_eq(n, 2); /* one allocation */
	polypipe_close(rd);
	polypipe_close(wr);
}
END_TEST

static unsigned notified;

static void
count_notify(void *arg)
{
	(void)arg;
	notified++;
}

/* The first notifier of a pipe allocates its readiness bookkeeping (the
 * side's readiness, then its descriptor and notifier part): when either
 * fails, the call fails with ENOMEM, sets nothing, and the pipe carries
 * messages as before; the retry that succeeds works in full. */
START_TEST(test_faults_polypipe_notify)
{
	polypipe *rd, *wr;
	unsigned long n;
	void *m;
	int r;

	ck_assert_int_eq(polypipe_create(4, &rd, &wr), 0);
	notified = 0;
	for (n = 1;; n++) {
		fail_at(n);
		r = polypipe_set_read_notify(rd, count_notify, NULL);
		if (!reached())
			break;
		ck_assert_int_eq(r, -1);
		ck_assert_int_eq(errno, ENOMEM);
		ck_assert_int_eq(polypipe_write(wr, MSG(n), 0), 0);
		ck_assert_int_eq(polypipe_read(rd, &m, 0), 1);
		ck_assert_ptr_eq(m, MSG(n));
		ck_assert_uint_eq(notified, 0);
	}
	ck_assert_int_eq(r, 0);
	ck_assert_uint_eq(n, 3); /* two allocations */
	ck_assert_int_eq(polypipe_write(wr, MSG(7), 0), 0);
	ck_assert_uint_eq(notified, 1);
	/* Removing it needs no memory. */
	fail_at(1);
	ck_assert_int_eq(polypipe_set_read_notify(rd, NULL, NULL), 0);
	ck_assert(!reached());
	polypipe_close(rd);
	polypipe_close(wr);
}
END_TEST

/* A write that must grow the ring fails with ENOMEM, takes nothing, and
 * leaves the pipe as it was. */
START_TEST(test_faults_polypipe_write_grows)
{
	polypipe *rd, *wr;
	void *m;
	int i, held;

	ck_assert_int_eq(polypipe_create(POLYPIPE_UNBOUNDED, &rd, &wr), 0);
	polypipe_set_destructor(rd, count_dtor, NULL);
	destroyed = 0;
	for (held = 0; held < 100; held++) {
		fail_at(1);
		if (polypipe_write(wr, MSG(held), 0) == 0) {
			ck_assert(!reached()); /* the ring had room */
			continue;
		}
		ck_assert(reached());
		ck_assert_int_eq(errno, ENOMEM);
		ck_assert_uint_eq(polypipe_length(rd), (size_t)held);
		ck_assert_int_eq(polypipe_write(wr, MSG(held), 0), 0);
	}
	ck_assert_uint_eq(destroyed, 0);
	for (i = 0; i < held; i++) {
		ck_assert_int_eq(polypipe_read(rd, &m, 0), 1);
		ck_assert_uint_eq(MSGVAL(m), (uintptr_t)i);
	}
	ck_assert_fail(polypipe_read(rd, &m, 0), EAGAIN);
	polypipe_close(wr);
	polypipe_close(rd);
	ck_assert_uint_eq(destroyed, 0);
}
END_TEST

/* write_many appends what the ring already holds room for when it cannot
 * grow, and fails with ENOMEM only when nothing fits. */
START_TEST(test_faults_polypipe_write_many_partial)
{
	void *msgs[16], *got[16];
	polypipe *rd, *wr;
	ssize_t n;
	int i;

	for (i = 0; i < 16; i++)
		msgs[i] = MSG(i);
	ck_assert_int_eq(polypipe_create(64, &rd, &wr), 0);
	ck_assert_int_eq(polypipe_write_many(wr, msgs, 5, 0), 5);
	fail_at(1);
	n = polypipe_write_many(wr, msgs + 5, 11, 0);
	ck_assert(reached());
	ck_assert_int_gt(n, 0); /* what fitted the first ring */
	ck_assert_int_lt(n, 11);
	ck_assert_uint_eq(polypipe_length(rd), 5 + (size_t)n);
	fail_at(1);
	ck_assert_fail(polypipe_write_many(wr, msgs, 16, 0), ENOMEM);
	ck_assert(reached());
	ck_assert_int_eq(polypipe_read_many(rd, got, 16, 0), 5 + n);
	for (i = 0; i < 5 + n; i++)
		ck_assert_uint_eq(MSGVAL(got[i]), (uintptr_t)i);
	polypipe_close(rd);
	polypipe_close(wr);
}
END_TEST

/* Shrinking after a burst is an allocation too; when it fails the pipe
 * keeps its larger ring and loses nothing. */
START_TEST(test_faults_polypipe_shrink)
{
	polypipe *rd, *wr;
	unsigned long failed = 0;
	void *m;
	int i;

	ck_assert_int_eq(polypipe_create(POLYPIPE_UNBOUNDED, &rd, &wr), 0);
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(polypipe_write(wr, MSG(i), 0), 0);
	/* Then one message at a time, long enough for the ring to be found
	 * too large (and fail to shrink) again and again. */
	for (i = 0; i < 5000; i++) {
		if (i >= 1000)
			ck_assert_int_eq(polypipe_write(wr, MSG(i), 0), 0);
		fail_at(1);
		ck_assert_int_eq(polypipe_read(rd, &m, 0), 1);
		failed += reached();
		ck_assert_uint_eq(MSGVAL(m), (uintptr_t)i);
	}
	ck_assert_uint_gt(failed, 1);
	polypipe_close(rd);
	polypipe_close(wr);
}
END_TEST

/*
 * A pipe whose fill swings from full to a trickle: the ring shrinks only
 * after a ring's worth of reads at a low fill, and grows back to the size
 * it had by doubling, so each swing costs a few allocations, where
 * growing back a few slots at a time took over a hundred.
 */
START_TEST(test_faults_polypipe_resize_swings)
{
	polypipe *rd, *wr;
	uintptr_t next_w = 0, next_r = 0;
	unsigned long allocs;
	void *m;
	int swing, i;

	ck_assert_int_eq(polypipe_create(1024, &rd, &wr), 0);
	for (swing = 0; swing < 11; swing++) {
		/* The first fill grows the ring from nothing: not counted. */
		if (swing == 1)
			psync_allocs = 0;
		while (polypipe_write(wr, MSG(next_w), 0) == 0)
			next_w++;
		ck_assert_int_eq(errno, EAGAIN);
		ck_assert_uint_eq(next_w - next_r, 1024);
		/* Drain to one left, then a trickle, one in and one out,
		 * long enough for a few shrinks. */
		while (next_w - next_r > 1) {
			ck_assert_int_eq(polypipe_read(rd, &m, 0), 1);
			ck_assert_uint_eq(MSGVAL(m), next_r);
			next_r++;
		}
		for (i = 0; i < 3 * 1024; i++) {
			ck_assert_int_eq(polypipe_write(wr, MSG(next_w), 0),
			                 0);
			next_w++;
			ck_assert_int_eq(polypipe_read(rd, &m, 0), 1);
			ck_assert_uint_eq(MSGVAL(m), next_r);
			next_r++;
		}
	}
	allocs = psync_allocs;
	printf("faults: 10 swings of a pipe from full to a trickle make %lu "
	       "allocations\n",
	       allocs);
	/* Each swing shrinks the ring a few times and grows it back. */
	ck_assert_uint_ge(allocs, 10 * 2);
	ck_assert_uint_le(allocs, 10 * 16);
	polypipe_close(rd);
	polypipe_close(wr);
}
END_TEST

START_TEST(test_faults_polyserver_create)
{
	polyserver *srv;
	unsigned long n;

	for (n = 1;; n++) {
		fail_at(n);
		srv = polyserver_create();
		if (!reached())
			break;
		ck_assert_ptr_null(srv);
		ck_assert_int_eq(errno, ENOMEM);
	}
	ck_assert_ptr_nonnull(srv);
	polyserver_close(srv);
}
END_TEST

/* A client is two allocations: itself, and its two pipes in one block
 * (pipe_create_pair). */
START_TEST(test_faults_polyclient_create)
{
	polyclient *cl;
	unsigned long n;

	for (n = 1;; n++) {
		fail_at(n);
		cl = polyclient_create(4);
		if (!reached())
			break;
		ck_assert_ptr_null(cl);
		ck_assert_int_eq(errno, ENOMEM);
	}
	ck_assert_ptr_nonnull(cl);
	ck_assert_uint_eq(n, 3);
	polyclient_close(cl);
}
END_TEST

/* A bind that cannot allocate leaves the name free and the server
 * unnamed, so both can be bound later. */
START_TEST(test_faults_polyserver_bind)
{
	polyserver *srv = polyserver_create();
	polyclient *cl = polyclient_create(1);

	ck_assert_ptr_nonnull(srv);
	fail_at(1);
	ck_assert_fail(polyserver_bind(srv, "faults.bind"), ENOMEM);
	ck_assert(reached());
	ck_assert_fail(polyclient_connect_name(cl, "faults.bind"),
	               ECONNREFUSED);
	ck_assert_int_eq(polyserver_bind(srv, "faults.bind"), 0);
	ck_assert_int_eq(polyclient_connect_name(cl, "faults.bind"), 0);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

/*
 * A whole conversation, failing each of its allocations in turn: server,
 * name, client, messages written before and after acceptance.  Whatever
 * step fails, it fails with ENOMEM and the rest unwinds cleanly.
 */
static int
conversation(void)
{
	polyserver *srv = polyserver_create();
	polyclient *cl = NULL;
	polyendpoint mine, theirs = { NULL, NULL };
	int i, r = -1;
	void *m;

	if (srv == NULL || polyserver_bind(srv, "faults.talk") < 0)
		goto out;
	cl = polyclient_create(64);
	if (cl == NULL || polyclient_connect_name(cl, "faults.talk") < 0 ||
	    polyclient_endpoint_async(cl, &mine) < 0)
		goto out;
	for (i = 0; i < 20; i++)
		if (polypipe_write(mine.wr, MSG(i), 0) < 0)
			goto out;
	if (polyserver_accept(srv, &theirs, 0) < 0)
		goto out;
	for (i = 0; i < 20; i++) {
		if (polypipe_write(theirs.wr, MSG(i), 0) < 0)
			goto out;
		ck_assert_int_eq(polypipe_read(theirs.rd, &m, 0), 1);
		ck_assert_uint_eq(MSGVAL(m), (uintptr_t)i);
	}
	r = 0;
out:
	if (r < 0)
		ck_assert_int_eq(errno, ENOMEM);
	polyendpoint_close(&theirs);
	polyclient_close(cl);
	polyserver_close(srv);
	return r;
}

START_TEST(test_faults_conversation)
{
	unsigned long n, total;

	psync_allocs = 0;
	ck_assert_int_eq(conversation(), 0);
	total = psync_allocs;
	for (n = 1; n <= total; n++) {
		fail_at(n);
		ck_assert_int_eq(conversation(), -1);
		ck_assert(reached());
	}
	fail_at(total + 1);
	ck_assert_int_eq(conversation(), 0);
	ck_assert(!reached());
	printf("faults: a conversation makes %lu allocations; each failed "
	       "once\n",
	       total);
}
END_TEST

/* Descriptor exhaustion: the soft limit is lowered to the lowest free
 * descriptor, so the next one cannot be made. */
static struct rlimit saved_limit;

static void
fds_exhaust(void)
{
	struct rlimit lim;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved_limit), 0);
	lim = saved_limit;
	lim.rlim_cur = (rlim_t)fd;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
}

static void
fds_restore(void)
{
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved_limit), 0);
}

START_TEST(test_faults_pipe_fds)
{
	polypipe *rd, *wr;
	void *m;

	ck_assert_int_eq(polypipe_create(1, &rd, &wr), 0);
	fds_exhaust();
	ck_assert_fail(polypipe_read_fd(rd), EMFILE);
	ck_assert_fail(polypipe_write_fd(wr), EMFILE);
	/* The pipe works without them. */
	ck_assert_int_eq(polypipe_write(wr, MSG(7), 0), 0);
	ck_assert_fail(polypipe_write(wr, MSG(8), 0), EAGAIN);
	fds_restore();
	ck_assert_readable(polypipe_read_fd(rd));
	ck_assert_not_readable(polypipe_write_fd(wr));
	ck_assert_int_eq(polypipe_read(rd, &m, 0), 1);
	ck_assert_uint_eq(MSGVAL(m), 7);
	ck_assert_not_readable(polypipe_read_fd(rd));
	ck_assert_readable(polypipe_write_fd(wr));
	polypipe_close(rd);
	polypipe_close(wr);
}
END_TEST

START_TEST(test_faults_socket_fds)
{
	polyserver *srv = polyserver_create();
	polyclient *cl = polyclient_create(1);
	polyendpoint ep;

	ck_assert_int_eq(polyclient_connect(cl, srv), 0);
	fds_exhaust();
	ck_assert_fail(polyserver_accept_fd(srv), EMFILE);
	ck_assert_fail(polyclient_connect_fd(cl), EMFILE);
	ck_assert(polyserver_pending(srv));
	fds_restore();
	ck_assert_readable(polyserver_accept_fd(srv));
	ck_assert_not_readable(polyclient_connect_fd(cl));
	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	ck_assert_not_readable(polyserver_accept_fd(srv));
	ck_assert_readable(polyclient_connect_fd(cl));
	polyendpoint_close(&ep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

Suite *faults_suite(void);

Suite *
faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = new_tcase(s, "alloc", 60);

	tcase_add_test(tc, test_faults_polypipe_create);
	tcase_add_test(tc, test_faults_polypipe_notify);
	tcase_add_test(tc, test_faults_polypipe_write_grows);
	tcase_add_test(tc, test_faults_polypipe_write_many_partial);
	tcase_add_test(tc, test_faults_polypipe_shrink);
	tcase_add_test(tc, test_faults_polypipe_resize_swings);
	tcase_add_test(tc, test_faults_polyserver_create);
	tcase_add_test(tc, test_faults_polyclient_create);
	tcase_add_test(tc, test_faults_polyserver_bind);
	tcase_add_test(tc, test_faults_conversation);

	tc = new_tcase(s, "fds", 60);
	tcase_add_test(tc, test_faults_pipe_fds);
	tcase_add_test(tc, test_faults_socket_fds);
	return s;
}
