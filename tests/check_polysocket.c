/*
 * check_polysocket.c - the Check suite for servers, clients and endpoints
 * (include/polysocket/polysocket.h), written against SPEC.md.
 *
 * Threads other than the test's own never call ck_assert: in CK_FORK=no
 * mode a failed assertion longjmps, which must happen on the test's stack.
 * They record what they saw and the test asserts after joining them.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
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

#include <polysocket/polysocket.h>

#include "testutil.h"

Suite *polysocket_suite(void);

/* A bound for waits that should end at once, so that a broken library
 * fails a test instead of hanging the run (CK_FORK=no has no timeout). */
#define WAIT_MS 10000
#define SHORT_MS 100

/* --- helpers ------------------------------------------------------------ */

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

/* A client connected to srv whose attempt is pending. */
static polyclient *
pending_client(polyserver *srv, size_t capacity)
{
	polyclient *cl = new_client(capacity);

	ck_assert_int_eq(polyclient_connect(cl, srv), 0);
	return cl;
}

/* A client accepted by srv: *sep is the server's side, *cep the client's. */
static polyclient *
accepted_client(polyserver *srv, size_t capacity, polyendpoint *sep,
                polyendpoint *cep)
{
	polyclient *cl = pending_client(srv, capacity);

	ck_assert_int_eq(polyserver_accept(srv, sep, 0), 0);
	ck_assert_int_eq(polyclient_endpoint(cl, cep, 0), 0);
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

/* Writes msg on wr without waiting and reads it back on rd. */
static void
assert_passes(polypipe *wr, polypipe *rd, uintptr_t val)
{
	void *m = MSG(0xdead);

	ck_assert_int_eq(polypipe_write(wr, MSG(val), 0), 0);
	ck_assert_int_eq(polypipe_read(rd, &m, WAIT_MS), 1);
	ck_assert_uint_eq(MSGVAL(m), val);
}

/* Messages flow both ways between the server's and the client's side. */
static void
assert_connected(const polyendpoint *sep, const polyendpoint *cep)
{
	assert_passes(cep->wr, sep->rd, 0x1234);
	assert_passes(sep->wr, cep->rd, 0x4321);
}

static void
assert_elapsed(int64_t start, int timeout_ms)
{
	int64_t elapsed = now_ms() - start;

	ck_assert_int_ge(elapsed, timeout_ms);
	ck_assert_int_lt(elapsed, timeout_ms + 2000);
}

/* A process-wide name no other test (or process) uses. */
static const char *
uniq_name(char *buf, size_t size, const char *tag)
{
	int n = snprintf(buf, size, "check_polysocket/%ld/%s", (long)getpid(),
	                 tag);

	ck_assert(n > 0 && (size_t)n < size);
	return buf;
}

/* A unique name of exactly len bytes; buf holds at least len + 1. */
static const char *
long_name(char *buf, size_t len, char fill)
{
	int n = snprintf(buf, len + 1, "cps-%ld-", (long)getpid());

	ck_assert(n > 0 && (size_t)n < len);
	memset(buf + n, fill, len - (size_t)n);
	buf[len] = '\0';
	return buf;
}

/* A notifier that counts its calls and remembers the calling thread. */
struct note {
	atomic_int calls;
	pthread_t thread;
};

static void
note_init(struct note *n)
{
	atomic_init(&n->calls, 0);
	n->thread = pthread_self();
}

static void
note_fn(void *arg)
{
	struct note *n = arg;

	n->thread = pthread_self();
	atomic_fetch_add(&n->calls, 1);
}

static int
note_calls(struct note *n)
{
	return atomic_load(&n->calls);
}

/* A destructor that counts the messages it is handed and sums them. */
struct dtor_count {
	atomic_int calls;
	atomic_uintptr_t sum;
};

static void
dtor_init(struct dtor_count *d)
{
	atomic_init(&d->calls, 0);
	atomic_init(&d->sum, 0);
}

static void
dtor_fn(void *msg, void *arg)
{
	struct dtor_count *d = arg;

	atomic_fetch_add(&d->sum, MSGVAL(msg));
	atomic_fetch_add(&d->calls, 1);
}

/* Threads. */
struct acceptor {
	polyserver *srv;
	int timeout;
	int rc;
	int err;
	polyendpoint ep;
	pthread_t self;
};

static void *
accept_thread(void *arg)
{
	struct acceptor *a = arg;

	a->self = pthread_self();
	errno = 0;
	a->rc = polyserver_accept(a->srv, &a->ep, a->timeout);
	a->err = errno;
	return NULL;
}

struct refuser {
	polyserver *srv;
	int rc;
	pthread_t self;
};

static void *
refuse_thread(void *arg)
{
	struct refuser *r = arg;

	r->self = pthread_self();
	r->rc = polyserver_refuse(r->srv);
	return NULL;
}

struct connector {
	polyserver *srv;
	polyclient *cl;
	int rc;
	int err;
	pthread_t self;
};

static void *
connect_thread(void *arg)
{
	struct connector *c = arg;

	c->self = pthread_self();
	errno = 0;
	c->rc = polyclient_connect(c->cl, c->srv);
	c->err = errno;
	return NULL;
}

struct waiter {
	polyclient *cl;
	int timeout;
	int rc;
	int err;
	polyendpoint ep;
};

static void *
endpoint_thread(void *arg)
{
	struct waiter *w = arg;

	errno = 0;
	w->rc = polyclient_endpoint(w->cl, &w->ep, w->timeout);
	w->err = errno;
	return NULL;
}

/* --- server ------------------------------------------------------------- */

START_TEST(test_polyserver_create)
{
	polyserver *srv = new_server();
	polyendpoint ep;

	ck_assert(!polyserver_pending(srv));
	ck_assert_fail(polyserver_accept(srv, &ep, 0), EAGAIN);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_create_unbounded_backlog)
{
	enum { N = 100 };
	polyserver *srv = new_server();
	polyclient *cl[N];
	polyendpoint eps[N];

	for (int i = 0; i < N; i++)
		cl[i] = pending_client(srv, 1);
	ck_assert_int_eq(polyserver_accept_many(srv, eps, N, 0), N);
	for (int i = 0; i < N; i++) {
		polyendpoint_close(&eps[i]);
		polyclient_close(cl[i]);
	}
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_set_backlog_einval)
{
	polyserver *srv = new_server();

	ck_assert_fail(polyserver_set_backlog(NULL, 1), EINVAL);
	ck_assert_fail(polyserver_set_backlog(srv, 0), EINVAL);
	ck_assert_int_eq(polyserver_set_backlog(srv, 1), 0);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_set_backlog_limits)
{
	polyserver *srv = new_server();
	polyclient *a, *b, *c;
	polyendpoint ep;

	ck_assert_int_eq(polyserver_set_backlog(srv, 2), 0);
	a = pending_client(srv, 1);
	b = pending_client(srv, 1);
	c = new_client(1);
	ck_assert_fail(polyclient_connect(c, srv), EAGAIN);
	ck_assert_int_eq(polyserver_set_backlog(srv, 3), 0);
	ck_assert_int_eq(polyclient_connect(c, srv), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
		polyendpoint_close(&ep);
	}
	polyclient_close(a);
	polyclient_close(b);
	polyclient_close(c);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_set_backlog_lower_keeps_pending)
{
	enum { N = 3 };
	polyserver *srv = new_server();
	polyclient *cl[N], *late = new_client(1), *late2 = new_client(1);
	polyendpoint ep, cep;

	for (int i = 0; i < N; i++)
		cl[i] = pending_client(srv, 1);
	ck_assert_int_eq(polyserver_set_backlog(srv, 1), 0);
	ck_assert(polyserver_pending(srv));
	ck_assert_fail(polyclient_connect(late, srv), EAGAIN);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
		ck_assert_int_eq(polyclient_endpoint(cl[i], &cep, 0), 0);
		assert_connected(&ep, &cep);
		polyendpoint_close(&ep);
	}
	ck_assert(!polyserver_pending(srv));
	/* The lowered limit now applies. */
	ck_assert_int_eq(polyclient_connect(late, srv), 0);
	ck_assert_fail(polyclient_connect(late2, srv), EAGAIN);
	for (int i = 0; i < N; i++)
		polyclient_close(cl[i]);
	polyclient_close(late);
	polyclient_close(late2);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_set_backlog_after_shutdown)
{
	polyserver *srv = new_server();
	polyclient *cl = new_client(1);

	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_int_eq(polyserver_set_backlog(srv, 1), 0);
	ck_assert_int_eq(polyserver_set_backlog(srv, 5), 0);
	ck_assert_fail(polyserver_set_backlog(srv, 0), EINVAL);
	ck_assert_fail(polyclient_connect(cl, srv), ECONNREFUSED);
	ck_assert(!polyserver_pending(srv));
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_blocking)
{
	polyserver *srv = new_server();
	struct connector c = { .srv = srv, .cl = new_client(2) };
	polyendpoint sep, cep;
	pthread_t t;

	/* Either the connect or the blocking accept comes first. */
	spawn(&t, connect_thread, &c);
	ck_assert_int_eq(polyserver_accept(srv, &sep, -1), 0);
	join(t);
	ck_assert_int_eq(c.rc, 0);
	ck_assert_int_eq(polyclient_endpoint(c.cl, &cep, 0), 0);
	assert_connected(&sep, &cep);
	polyendpoint_close(&sep);
	polyclient_close(c.cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_oldest_first)
{
	enum { N = 4 };
	polyserver *srv = new_server();
	polyclient *cl[N];
	polyendpoint sep, cep;

	for (int i = 0; i < N; i++) {
		cl[i] = pending_client(srv, 2);
		ck_assert_int_eq(polyclient_endpoint_async(cl[i], &cep), 0);
		ck_assert_int_eq(polypipe_write(cep.wr, MSG(i + 1), 0), 0);
	}
	for (int i = 0; i < N; i++) {
		void *m;

		ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
		ck_assert_int_eq(polypipe_read(sep.rd, &m, 0), 1);
		ck_assert_uint_eq(MSGVAL(m), (uintptr_t)i + 1);
		polyendpoint_close(&sep);
	}
	for (int i = 0; i < N; i++)
		polyclient_close(cl[i]);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_timeout_zero)
{
	polyserver *srv = new_server();
	polyendpoint ep;
	int64_t start = now_ms();

	ck_assert_fail(polyserver_accept(srv, &ep, 0), EAGAIN);
	ck_assert_int_lt(now_ms() - start, 1000);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_timed)
{
	polyserver *srv = new_server();
	polyendpoint ep;
	int64_t start = now_ms();

	ck_assert_fail(polyserver_accept(srv, &ep, SHORT_MS), ETIMEDOUT);
	assert_elapsed(start, SHORT_MS);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_timed_succeeds)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 1);
	polyendpoint ep;
	int64_t start = now_ms();

	ck_assert_int_eq(polyserver_accept(srv, &ep, WAIT_MS), 0);
	ck_assert_int_lt(now_ms() - start, 2000);
	polyendpoint_close(&ep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_eshutdown)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 1);
	polyendpoint ep;

	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	/* The pending attempt was refused, not left for accept. */
	ck_assert_fail(polyserver_accept(srv, &ep, 0), ESHUTDOWN);
	ck_assert_fail(polyserver_accept(srv, &ep, SHORT_MS), ESHUTDOWN);
	ck_assert_fail(polyserver_accept(srv, &ep, -1), ESHUTDOWN);
	ck_assert_fail(polyserver_accept_many(srv, &ep, 1, -1), ESHUTDOWN);
	ck_assert_fail(polyclient_endpoint(cl, &ep, 0), ECONNREFUSED);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_woken_by_shutdown)
{
	polyserver *srv = new_server();
	struct acceptor a = { .srv = srv, .timeout = -1 };
	pthread_t t;

	/* The accept fails with ESHUTDOWN whether it blocked before the
	 * shutdown or started after it. */
	spawn(&t, accept_thread, &a);
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	join(t);
	ck_assert_int_eq(a.rc, -1);
	ck_assert_int_eq(a.err, ESHUTDOWN);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_einval)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 1);
	polyendpoint ep;

	/* Arguments are checked first, even with an attempt pending. */
	ck_assert_fail(polyserver_accept(NULL, &ep, 0), EINVAL);
	ck_assert_fail(polyserver_accept(srv, NULL, 0), EINVAL);
	ck_assert_fail(polyserver_accept(srv, &ep, -2), EINVAL);
	ck_assert_fail(polyserver_accept(srv, &ep, -1000), EINVAL);
	ck_assert(polyserver_pending(srv));
	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	polyendpoint_close(&ep);
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_fail(polyserver_accept(srv, NULL, 0), EINVAL);
	ck_assert_fail(polyserver_accept(srv, &ep, -2), EINVAL);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_many)
{
	enum { N = 5, SLOTS = 4 };
	polyserver *srv = new_server();
	polyclient *cl[N];
	polyendpoint eps[SLOTS], cep;
	polypipe *const sentinel = (polypipe *)MSG(0x5e71);
	void *m;

	for (int i = 0; i < N; i++) {
		cl[i] = pending_client(srv, 2);
		ck_assert_int_eq(polyclient_endpoint_async(cl[i], &cep), 0);
		ck_assert_int_eq(polypipe_write(cep.wr, MSG(i + 1), 0), 0);
	}
	for (int i = 0; i < SLOTS; i++)
		eps[i].rd = eps[i].wr = sentinel;
	ck_assert_int_eq(polyserver_accept_many(srv, eps, 3, 0), 3);
	ck_assert_ptr_eq(eps[3].rd, sentinel);
	ck_assert_ptr_eq(eps[3].wr, sentinel);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(polypipe_read(eps[i].rd, &m, 0), 1);
		ck_assert_uint_eq(MSGVAL(m), (uintptr_t)i + 1);
		polyendpoint_close(&eps[i]);
		eps[i].rd = eps[i].wr = sentinel;
	}
	/* Fewer pending than max: takes what there is. */
	ck_assert_int_eq(polyserver_accept_many(srv, eps, SLOTS, 0), 2);
	for (int i = 2; i < SLOTS; i++) {
		ck_assert_ptr_eq(eps[i].rd, sentinel);
		ck_assert_ptr_eq(eps[i].wr, sentinel);
	}
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(polypipe_read(eps[i].rd, &m, 0), 1);
		ck_assert_uint_eq(MSGVAL(m), (uintptr_t)i + 4);
		ck_assert_int_eq(polyclient_endpoint(cl[i + 3], &cep, 0), 0);
		assert_connected(&eps[i], &cep);
		polyendpoint_close(&eps[i]);
	}
	ck_assert(!polyserver_pending(srv));
	ck_assert_fail(polyserver_accept_many(srv, eps, SLOTS, 0), EAGAIN);
	for (int i = 0; i < N; i++)
		polyclient_close(cl[i]);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_many_completes_clients)
{
	polyserver *srv = new_server();
	polyclient *a = new_client(1), *b = new_client(1);
	struct note na, nb;
	polyendpoint eps[2], cep;

	note_init(&na);
	note_init(&nb);
	ck_assert_int_eq(polyclient_set_connect_notify(a, note_fn, &na), 0);
	ck_assert_int_eq(polyclient_set_connect_notify(b, note_fn, &nb), 0);
	ck_assert_int_eq(polyclient_connect(a, srv), 0);
	ck_assert_int_eq(polyclient_connect(b, srv), 0);
	ck_assert_int_eq(polyserver_accept_many(srv, eps, 2, 0), 2);
	ck_assert_int_eq(note_calls(&na), 1);
	ck_assert_int_eq(note_calls(&nb), 1);
	ck_assert_readable(polyclient_connect_fd(a));
	ck_assert_readable(polyclient_connect_fd(b));
	ck_assert_int_eq(polyclient_endpoint(a, &cep, 0), 0);
	assert_connected(&eps[0], &cep);
	ck_assert_int_eq(polyclient_endpoint(b, &cep, 0), 0);
	assert_connected(&eps[1], &cep);
	polyendpoint_close(&eps[0]);
	polyendpoint_close(&eps[1]);
	polyclient_close(a);
	polyclient_close(b);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_many_waits)
{
	polyserver *srv = new_server();
	struct connector c = { .srv = srv, .cl = new_client(1) };
	polyendpoint eps[3];
	int64_t start = now_ms();
	pthread_t t;

	ck_assert_fail(polyserver_accept_many(srv, eps, 3, 0), EAGAIN);
	ck_assert_fail(polyserver_accept_many(srv, eps, 3, SHORT_MS),
	               ETIMEDOUT);
	assert_elapsed(start, SHORT_MS);
	spawn(&t, connect_thread, &c);
	ck_assert_int_eq(polyserver_accept_many(srv, eps, 3, -1), 1);
	join(t);
	ck_assert_int_eq(c.rc, 0);
	polyendpoint_close(&eps[0]);
	polyclient_close(c.cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_many_einval)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 1);
	polyendpoint eps[2];

	ck_assert_fail(polyserver_accept_many(NULL, eps, 2, 0), EINVAL);
	ck_assert_fail(polyserver_accept_many(srv, NULL, 2, 0), EINVAL);
	ck_assert_fail(polyserver_accept_many(srv, eps, 0, 0), EINVAL);
	ck_assert_fail(polyserver_accept_many(srv, eps, 2, -2), EINVAL);
	ck_assert(polyserver_pending(srv));
	ck_assert_int_eq(polyserver_accept_many(srv, eps, 2, 0), 1);
	polyendpoint_close(&eps[0]);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_null_handle)
{
	ck_assert(!polyserver_pending(NULL));
	ck_assert_fail(polyserver_refuse(NULL), EINVAL);
	ck_assert_fail(polyserver_accept_fd(NULL), EINVAL);
	ck_assert_fail(polyserver_set_accept_notify(NULL, note_fn, NULL),
	               EINVAL);
	ck_assert_fail(polyserver_bind(NULL, "check_polysocket/null"), EINVAL);
	ck_assert_fail(polyserver_shutdown(NULL), EINVAL);
	polyserver_close(NULL);
}
END_TEST

/* --- refuse ------------------------------------------------------------- */

START_TEST(test_polyserver_refuse_every_form)
{
	enum { N = 3 };
	polyserver *srv = new_server();
	polyclient *cl[N];
	struct note notes[N];
	polyendpoint aep, ep;
	int fd[N];
	void *m = MSG(7);

	for (int i = 0; i < N; i++) {
		cl[i] = new_client(2);
		note_init(&notes[i]);
		ck_assert_int_eq(
		    polyclient_set_connect_notify(cl[i], note_fn, &notes[i]),
		    0);
		ck_assert_int_eq(polyclient_connect(cl[i], srv), 0);
		fd[i] = polyclient_connect_fd(cl[i]);
		ck_assert_int_ge(fd[i], 0);
		ck_assert_not_readable(fd[i]);
	}
	ck_assert_int_eq(polyclient_endpoint_async(cl[1], &aep), 0);
	ck_assert_int_eq(polyserver_refuse(srv), N);
	ck_assert(!polyserver_pending(srv));
	for (int i = 0; i < N; i++) {
		ck_assert_fail(polyclient_endpoint(cl[i], &ep, 0),
		               ECONNREFUSED);
		ck_assert_fail(polyclient_endpoint(cl[i], &ep, -1),
		               ECONNREFUSED);
		ck_assert_fail(polyclient_endpoint_async(cl[i], &ep),
		               ECONNREFUSED);
		ck_assert_int_eq(polyclient_connect_fd(cl[i]), fd[i]);
		ck_assert_readable(fd[i]);
		ck_assert_int_eq(note_calls(&notes[i]), 1);
		ck_assert(pthread_equal(notes[i].thread, pthread_self()));
	}
	ck_assert_int_eq(polypipe_get_error(aep.rd), ECONNREFUSED);
	ck_assert_int_eq(polypipe_get_error(aep.wr), ECONNREFUSED);
	ck_assert_fail(polypipe_read(aep.rd, &m, 0), ECONNREFUSED);
	ck_assert_fail(polypipe_read(aep.rd, &m, -1), ECONNREFUSED);
	ck_assert_fail(polypipe_write(aep.wr, MSG(1), 0), ECONNREFUSED);
	ck_assert_fail(polypipe_write(aep.wr, MSG(1), -1), ECONNREFUSED);
	ck_assert_uint_eq(MSGVAL(m), 7);
	ck_assert_int_eq(polyserver_refuse(srv), 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(note_calls(&notes[i]), 1);
		polyclient_close(cl[i]);
	}
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_refuse_wakes_waiting_client)
{
	polyserver *srv = new_server();
	struct waiter w = { .cl = pending_client(srv, 1), .timeout = -1 };
	pthread_t t;

	/* The wait fails whether it starts before or after the refusal. */
	spawn(&t, endpoint_thread, &w);
	ck_assert_int_eq(polyserver_refuse(srv), 1);
	join(t);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.err, ECONNREFUSED);
	polyclient_close(w.cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_refuse_notifier_from_refusing_thread)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 1);
	struct refuser r = { .srv = srv };
	struct note n;
	pthread_t t;

	note_init(&n);
	ck_assert_int_eq(polyclient_set_connect_notify(cl, note_fn, &n), 0);
	spawn(&t, refuse_thread, &r);
	join(t);
	ck_assert_int_eq(r.rc, 1);
	ck_assert_int_eq(note_calls(&n), 1);
	ck_assert(pthread_equal(n.thread, r.self));
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_refuse_blocks_new_connects)
{
	polyserver *srv = new_server();
	polyclient *cl = new_client(1);
	polyendpoint ep;

	ck_assert_int_eq(polyserver_refuse(srv), 0);
	ck_assert_fail(polyclient_connect(cl, srv), ECONNREFUSED);
	ck_assert_fail(polyclient_connect(cl, srv), ECONNREFUSED);
	/* Not queued, so not refused for good: still unconnected. */
	ck_assert_fail(polyclient_endpoint(cl, &ep, 0), ENOTCONN);
	ck_assert_fail(polyclient_connect_fd(cl), ENOTCONN);
	ck_assert(!polyserver_pending(srv));
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_refuse_ended_by_failed_accept)
{
	polyserver *srv = new_server();
	polyclient *cl = new_client(1);
	polyendpoint sep, cep;

	ck_assert_int_eq(polyserver_refuse(srv), 0);
	ck_assert_fail(polyclient_connect(cl, srv), ECONNREFUSED);
	ck_assert_fail(polyserver_accept(srv, &sep, 0), EAGAIN);
	ck_assert_int_eq(polyclient_connect(cl, srv), 0);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_int_eq(polyclient_endpoint(cl, &cep, 0), 0);
	assert_connected(&sep, &cep);
	polyendpoint_close(&sep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_refuse_ended_by_timed_out_accept)
{
	polyserver *srv = new_server();
	polyclient *cl = new_client(1);
	polyendpoint ep;

	ck_assert_int_eq(polyserver_refuse(srv), 0);
	ck_assert_fail(polyclient_connect(cl, srv), ECONNREFUSED);
	ck_assert_fail(polyserver_accept(srv, &ep, 1), ETIMEDOUT);
	ck_assert_int_eq(polyclient_connect(cl, srv), 0);
	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	polyendpoint_close(&ep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_refuse_ended_by_accept_many)
{
	polyserver *srv = new_server();
	polyclient *cl = new_client(1);
	polyendpoint eps[2];

	ck_assert_int_eq(polyserver_refuse(srv), 0);
	ck_assert_fail(polyclient_connect(cl, srv), ECONNREFUSED);
	ck_assert_fail(polyserver_accept_many(srv, eps, 2, 0), EAGAIN);
	ck_assert_int_eq(polyclient_connect(cl, srv), 0);
	ck_assert_int_eq(polyserver_accept_many(srv, eps, 2, 0), 1);
	polyendpoint_close(&eps[0]);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_refuse_then_accept)
{
	polyserver *srv = new_server();
	polyclient *a = pending_client(srv, 1), *b = pending_client(srv, 1);
	polyclient *c = new_client(1);
	polyendpoint sep, cep;

	ck_assert_int_eq(polyserver_refuse(srv), 2);
	ck_assert_fail(polyclient_connect(c, srv), ECONNREFUSED);
	ck_assert_fail(polyserver_accept(srv, &sep, 0), EAGAIN);
	ck_assert_int_eq(polyclient_connect(c, srv), 0);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_int_eq(polyclient_endpoint(c, &cep, 0), 0);
	assert_connected(&sep, &cep);
	ck_assert_fail(polyclient_endpoint(a, &cep, 0), ECONNREFUSED);
	ck_assert_fail(polyclient_endpoint(b, &cep, 0), ECONNREFUSED);
	polyendpoint_close(&sep);
	polyclient_close(a);
	polyclient_close(b);
	polyclient_close(c);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_refuse_destroys_async_messages)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 4);
	struct dtor_count d;
	polyendpoint ep;

	dtor_init(&d);
	ck_assert_int_eq(polyclient_endpoint_async(cl, &ep), 0);
	ck_assert_int_eq(polypipe_set_destructor(ep.wr, dtor_fn, &d), 0);
	for (int i = 1; i <= 3; i++)
		ck_assert_int_eq(polypipe_write(ep.wr, MSG(i), 0), 0);
	ck_assert_int_eq(polyserver_refuse(srv), 1);
	ck_assert_int_eq(atomic_load(&d.calls), 3);
	ck_assert_uint_eq(atomic_load(&d.sum), 6);
	ck_assert_uint_eq(polypipe_length(ep.wr), 0);
	polyclient_close(cl);
	ck_assert_int_eq(atomic_load(&d.calls), 3);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_refuse_after_shutdown)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 1);
	polyendpoint ep;

	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_int_eq(polyserver_refuse(srv), 0);
	ck_assert_fail(polyclient_endpoint(cl, &ep, 0), ECONNREFUSED);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_refused_for_good)
{
	polyserver *srv = new_server(), *other = new_server();
	polyclient *cl = pending_client(srv, 1);
	polyendpoint ep;

	ck_assert_int_eq(polyserver_refuse(srv), 1);
	ck_assert_fail(polyserver_accept(srv, &ep, 0), EAGAIN);
	ck_assert_fail(polyclient_connect(cl, srv), ECONNREFUSED);
	ck_assert_fail(polyclient_connect(cl, other), ECONNREFUSED);
	ck_assert(!polyserver_pending(srv));
	ck_assert(!polyserver_pending(other));
	ck_assert_fail(polyclient_endpoint(cl, &ep, 0), ECONNREFUSED);
	ck_assert_fail(polyclient_endpoint_async(cl, &ep), ECONNREFUSED);
	polyclient_close(cl);
	polyserver_close(srv);
	polyserver_close(other);
}
END_TEST

/* --- readiness ---------------------------------------------------------- */

START_TEST(test_polyserver_pending)
{
	polyserver *srv = new_server();
	polyclient *a, *b;
	polyendpoint ep;

	ck_assert(!polyserver_pending(srv));
	a = pending_client(srv, 1);
	ck_assert(polyserver_pending(srv));
	b = pending_client(srv, 1);
	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	ck_assert(polyserver_pending(srv));
	polyendpoint_close(&ep);
	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	ck_assert(!polyserver_pending(srv));
	polyendpoint_close(&ep);
	polyclient_close(a);
	polyclient_close(b);

	a = pending_client(srv, 1);
	ck_assert(polyserver_pending(srv));
	ck_assert_int_eq(polyserver_refuse(srv), 1);
	ck_assert(!polyserver_pending(srv));
	polyclient_close(a);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_fd_level)
{
	polyserver *srv = new_server();
	int fd = polyserver_accept_fd(srv);
	polyclient *a, *b;
	polyendpoint ep;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(polyserver_accept_fd(srv), fd);
	ck_assert_not_readable(fd);
	a = pending_client(srv, 1);
	ck_assert_readable(fd);
	ck_assert_readable(fd);
	b = pending_client(srv, 1);
	ck_assert_readable(fd);
	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	polyendpoint_close(&ep);
	ck_assert_readable(fd);
	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	polyendpoint_close(&ep);
	ck_assert_not_readable(fd);
	ck_assert_int_eq(polyserver_accept_fd(srv), fd);
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_readable(fd);
	ck_assert_readable(fd);
	ck_assert_int_eq(polyserver_accept_fd(srv), fd);
	polyclient_close(a);
	polyclient_close(b);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_fd_created_late)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 1);
	polyserver *down = new_server();
	int fd = polyserver_accept_fd(srv);

	/* A descriptor created after the event reports the current state. */
	ck_assert_int_ge(fd, 0);
	ck_assert_readable(fd);
	ck_assert_int_eq(polyserver_shutdown(down), 0);
	fd = polyserver_accept_fd(down);
	ck_assert_int_ge(fd, 0);
	ck_assert_readable(fd);
	polyclient_close(cl);
	polyserver_close(srv);
	polyserver_close(down);
}
END_TEST

START_TEST(test_polyserver_accept_fd_refuse)
{
	polyserver *srv = new_server();
	int fd = polyserver_accept_fd(srv);
	polyclient *a = pending_client(srv, 1), *b = pending_client(srv, 1);

	ck_assert_int_ge(fd, 0);
	ck_assert_readable(fd);
	ck_assert_int_eq(polyserver_refuse(srv), 2);
	ck_assert_not_readable(fd);
	polyclient_close(a);
	polyclient_close(b);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_fd_wakes_poll)
{
	polyserver *srv = new_server();
	struct connector c = { .srv = srv, .cl = new_client(1) };
	int fd = polyserver_accept_fd(srv);
	polyendpoint ep;
	pthread_t t;

	ck_assert_int_ge(fd, 0);
	spawn(&t, connect_thread, &c);
	ck_assert(fd_readable_within(fd, WAIT_MS));
	join(t);
	ck_assert_int_eq(c.rc, 0);
	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	polyendpoint_close(&ep);
	polyclient_close(c.cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_notify_edge)
{
	polyserver *srv = new_server();
	polyclient *cl[4];
	polyendpoint eps[3];
	struct note n;

	note_init(&n);
	ck_assert_int_eq(polyserver_set_accept_notify(srv, note_fn, &n), 0);
	ck_assert_int_eq(note_calls(&n), 0);
	for (int i = 0; i < 3; i++)
		cl[i] = pending_client(srv, 1);
	ck_assert_int_eq(note_calls(&n), 1);
	ck_assert_int_eq(polyserver_accept(srv, &eps[0], 0), 0);
	ck_assert_int_eq(polyserver_accept_many(srv, &eps[1], 2, 0), 2);
	ck_assert_int_eq(note_calls(&n), 1);
	cl[3] = pending_client(srv, 1);
	ck_assert_int_eq(note_calls(&n), 2);
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_int_eq(note_calls(&n), 3);
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_int_eq(note_calls(&n), 3);
	polyserver_close(srv);
	ck_assert_int_eq(note_calls(&n), 3);
	for (int i = 0; i < 3; i++)
		polyendpoint_close(&eps[i]);
	for (int i = 0; i < 4; i++)
		polyclient_close(cl[i]);
}
END_TEST

START_TEST(test_polyserver_accept_notify_after_refuse)
{
	polyserver *srv = new_server();
	polyclient *a = pending_client(srv, 1), *b;
	polyendpoint ep;
	struct note n;

	note_init(&n);
	/* Already non-empty when set: no call until the next transition. */
	ck_assert_int_eq(polyserver_set_accept_notify(srv, note_fn, &n), 0);
	ck_assert_int_eq(note_calls(&n), 0);
	ck_assert_int_eq(polyserver_refuse(srv), 1);
	ck_assert_fail(polyserver_accept(srv, &ep, 0), EAGAIN);
	ck_assert_int_eq(note_calls(&n), 0);
	b = pending_client(srv, 1);
	ck_assert_int_eq(note_calls(&n), 1);
	polyclient_close(a);
	polyclient_close(b);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_notify_from_connecting_thread)
{
	polyserver *srv = new_server();
	struct connector c = { .srv = srv, .cl = new_client(1) };
	struct note n;
	pthread_t t;

	note_init(&n);
	ck_assert_int_eq(polyserver_set_accept_notify(srv, note_fn, &n), 0);
	spawn(&t, connect_thread, &c);
	join(t);
	ck_assert_int_eq(c.rc, 0);
	ck_assert_int_eq(note_calls(&n), 1);
	ck_assert(pthread_equal(n.thread, c.self));
	ck_assert(!pthread_equal(n.thread, pthread_self()));
	polyclient_close(c.cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_accept_notify_shutdown_once)
{
	polyserver *srv = new_server();
	struct note n;

	note_init(&n);
	ck_assert_int_eq(polyserver_set_accept_notify(srv, note_fn, &n), 0);
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_int_eq(note_calls(&n), 1);
	ck_assert(pthread_equal(n.thread, pthread_self()));
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_int_eq(note_calls(&n), 1);
	polyserver_close(srv);
	ck_assert_int_eq(note_calls(&n), 1);
}
END_TEST

START_TEST(test_polyserver_accept_notify_removed)
{
	polyserver *srv = new_server();
	polyclient *cl;
	struct note n;

	note_init(&n);
	ck_assert_int_eq(polyserver_set_accept_notify(srv, note_fn, &n), 0);
	ck_assert_int_eq(polyserver_set_accept_notify(srv, NULL, NULL), 0);
	cl = pending_client(srv, 1);
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_int_eq(note_calls(&n), 0);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_close_skips_accept_notify)
{
	polyserver *srv = new_server();
	struct note n;

	note_init(&n);
	ck_assert_int_eq(polyserver_set_accept_notify(srv, note_fn, &n), 0);
	polyserver_close(srv);
	ck_assert_int_eq(note_calls(&n), 0);
}
END_TEST

/* --- backlog ------------------------------------------------------------ */

START_TEST(test_polyserver_backlog_full)
{
	polyserver *srv = new_server();
	polyclient *a = new_client(1), *b = new_client(2);
	struct note n;
	polyendpoint ep, sep;

	note_init(&n);
	ck_assert_int_eq(polyserver_set_backlog(srv, 1), 0);
	ck_assert_int_eq(polyclient_connect(a, srv), 0);
	ck_assert_int_eq(polyclient_set_connect_notify(b, note_fn, &n), 0);
	ck_assert_fail(polyclient_connect(b, srv), EAGAIN);
	ck_assert_fail(polyclient_connect(b, srv), EAGAIN);
	/* b is left unconnected. */
	ck_assert_fail(polyclient_endpoint(b, &ep, 0), ENOTCONN);
	ck_assert_fail(polyclient_endpoint_async(b, &ep), ENOTCONN);
	ck_assert_fail(polyclient_connect_fd(b), ENOTCONN);
	ck_assert_int_eq(note_calls(&n), 0);

	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	polyendpoint_close(&sep);
	ck_assert_int_eq(polyclient_connect(b, srv), 0);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_int_eq(note_calls(&n), 1);
	ck_assert_int_eq(polyclient_endpoint(b, &ep, 0), 0);
	ck_assert_uint_eq(polypipe_capacity(ep.rd), 2);
	assert_connected(&sep, &ep);
	polyendpoint_close(&sep);
	polyclient_close(a);
	polyclient_close(b);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_backlog_freed_by_refuse)
{
	polyserver *srv = new_server();
	polyclient *a = pending_client(srv, 1), *b = new_client(1);
	polyendpoint ep;

	ck_assert_int_eq(polyserver_set_backlog(srv, 1), 0);
	ck_assert_fail(polyclient_connect(b, srv), EAGAIN);
	ck_assert_int_eq(polyserver_refuse(srv), 1);
	ck_assert_fail(polyclient_connect(b, srv), ECONNREFUSED);
	ck_assert_fail(polyserver_accept(srv, &ep, 0), EAGAIN);
	ck_assert_int_eq(polyclient_connect(b, srv), 0);
	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	polyendpoint_close(&ep);
	polyclient_close(a);
	polyclient_close(b);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_backlog_freed_by_close)
{
	polyserver *srv = new_server();
	polyclient *a = pending_client(srv, 1), *b = new_client(1);
	polyendpoint sep, cep;

	ck_assert_int_eq(polyserver_set_backlog(srv, 1), 0);
	ck_assert_fail(polyclient_connect(b, srv), EAGAIN);
	polyclient_close(a);
	ck_assert_int_eq(polyclient_connect(b, srv), 0);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_int_eq(polyclient_endpoint(b, &cep, 0), 0);
	assert_connected(&sep, &cep);
	polyendpoint_close(&sep);
	polyclient_close(b);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_backlog_accept_notify)
{
	polyserver *srv = new_server();
	polyclient *a = new_client(1), *b = new_client(1);
	struct note n;

	note_init(&n);
	ck_assert_int_eq(polyserver_set_backlog(srv, 1), 0);
	ck_assert_int_eq(polyserver_set_accept_notify(srv, note_fn, &n), 0);
	ck_assert_int_eq(polyclient_connect(a, srv), 0);
	ck_assert_fail(polyclient_connect(b, srv), EAGAIN);
	ck_assert_int_eq(note_calls(&n), 1);
	ck_assert_int_eq(polyserver_set_accept_notify(srv, NULL, NULL), 0);
	polyclient_close(a);
	polyclient_close(b);
	polyserver_close(srv);
}
END_TEST

/* --- names -------------------------------------------------------------- */

START_TEST(test_polyserver_bind_connect_name)
{
	char name[128];
	polyserver *srv = new_server();
	polyclient *cl = new_client(3);
	polyendpoint sep, cep;

	uniq_name(name, sizeof(name), "connect");
	ck_assert_int_eq(polyserver_bind(srv, name), 0);
	ck_assert_int_eq(polyclient_connect_name(cl, name), 0);
	ck_assert(polyserver_pending(srv));
	ck_assert_fail(polyclient_connect_name(cl, name), EALREADY);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_int_eq(polyclient_endpoint(cl, &cep, 0), 0);
	ck_assert_uint_eq(polypipe_capacity(sep.rd), 3);
	assert_connected(&sep, &cep);
	ck_assert_fail(polyclient_connect_name(cl, name), EISCONN);
	polyendpoint_close(&sep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_bind_eaddrinuse)
{
	char name[128], other[128];
	polyserver *a = new_server(), *b = new_server();
	polyclient *cl = new_client(1);

	uniq_name(name, sizeof(name), "inuse");
	uniq_name(other, sizeof(other), "inuse-other");
	ck_assert_int_eq(polyserver_bind(a, name), 0);
	ck_assert_fail(polyserver_bind(b, name), EADDRINUSE);
	/* The failed bind left b without a name. */
	ck_assert_int_eq(polyserver_bind(b, other), 0);
	ck_assert_int_eq(polyclient_connect_name(cl, name), 0);
	ck_assert(polyserver_pending(a));
	ck_assert(!polyserver_pending(b));
	polyclient_close(cl);
	polyserver_close(a);
	polyserver_close(b);
}
END_TEST

START_TEST(test_polyserver_bind_einval)
{
	char name[128], second[128];
	polyserver *srv = new_server(), *other = new_server();

	uniq_name(name, sizeof(name), "einval");
	uniq_name(second, sizeof(second), "einval-second");
	ck_assert_fail(polyserver_bind(NULL, name), EINVAL);
	ck_assert_fail(polyserver_bind(srv, NULL), EINVAL);
	ck_assert_fail(polyserver_bind(srv, ""), EINVAL);
	ck_assert_int_eq(polyserver_bind(srv, name), 0);
	ck_assert_fail(polyserver_bind(srv, second), EINVAL);
	/* The rejected name was not taken. */
	ck_assert_int_eq(polyserver_bind(other, second), 0);
	polyserver_close(srv);
	polyserver_close(other);
}
END_TEST

START_TEST(test_polyserver_bind_name_length)
{
	char name255[256], name256[257];
	polyserver *srv = new_server(), *other = new_server();
	polyclient *cl = new_client(1);
	polyendpoint ep;

	long_name(name255, 255, 'a');
	long_name(name256, 256, 'b');
	ck_assert_fail(polyserver_bind(srv, name256), ENAMETOOLONG);
	ck_assert_int_eq(polyserver_bind(srv, name255), 0);
	ck_assert_fail(polyserver_bind(other, name255), EADDRINUSE);
	ck_assert_fail(polyclient_connect_name(cl, name256), ENAMETOOLONG);
	ck_assert_int_eq(polyclient_connect_name(cl, name255), 0);
	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	polyendpoint_close(&ep);
	polyclient_close(cl);
	polyserver_close(srv);
	polyserver_close(other);
}
END_TEST

START_TEST(test_polyserver_bind_after_shutdown)
{
	char name[128];
	polyserver *srv = new_server(), *other = new_server();

	uniq_name(name, sizeof(name), "after-shutdown");
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_fail(polyserver_bind(srv, name), ESHUTDOWN);
	ck_assert_fail(polyserver_bind(srv, NULL), EINVAL);
	ck_assert_int_eq(polyserver_bind(other, name), 0);
	polyserver_close(srv);
	polyserver_close(other);
}
END_TEST

START_TEST(test_polyserver_bind_released_at_shutdown)
{
	char name[128];
	polyserver *srv = new_server(), *next = new_server();
	polyclient *a = new_client(1), *b = new_client(1);
	polyendpoint sep, cep;

	uniq_name(name, sizeof(name), "released-shutdown");
	ck_assert_int_eq(polyserver_bind(srv, name), 0);
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_fail(polyclient_connect_name(a, name), ECONNREFUSED);
	ck_assert_int_eq(polyserver_bind(next, name), 0);
	ck_assert_int_eq(polyclient_connect_name(a, name), 0);
	ck_assert(polyserver_pending(next));
	ck_assert_int_eq(polyserver_accept(next, &sep, 0), 0);
	ck_assert_int_eq(polyclient_endpoint(a, &cep, 0), 0);
	assert_connected(&sep, &cep);
	polyendpoint_close(&sep);
	/* Closing the old server must not release its successor's name. */
	polyserver_close(srv);
	ck_assert_int_eq(polyclient_connect_name(b, name), 0);
	ck_assert(polyserver_pending(next));
	polyclient_close(a);
	polyclient_close(b);
	polyserver_close(next);
}
END_TEST

START_TEST(test_polyserver_bind_released_at_close)
{
	char name[128];
	polyserver *srv = new_server(), *next;
	polyclient *cl = new_client(1);

	uniq_name(name, sizeof(name), "released-close");
	ck_assert_int_eq(polyserver_bind(srv, name), 0);
	polyserver_close(srv);
	ck_assert_fail(polyclient_connect_name(cl, name), ECONNREFUSED);
	next = new_server();
	ck_assert_int_eq(polyserver_bind(next, name), 0);
	ck_assert_int_eq(polyclient_connect_name(cl, name), 0);
	ck_assert(polyserver_pending(next));
	polyclient_close(cl);
	polyserver_close(next);
}
END_TEST

START_TEST(test_polyclient_connect_name_unbound)
{
	char name[128];
	polyclient *cl = new_client(1);
	polyserver *srv;
	polyendpoint ep;

	uniq_name(name, sizeof(name), "unbound");
	ck_assert_fail(polyclient_connect_name(cl, name), ECONNREFUSED);
	/* Failed at once: not refused for good. */
	ck_assert_fail(polyclient_endpoint(cl, &ep, 0), ENOTCONN);
	ck_assert_fail(polyclient_connect_fd(cl), ENOTCONN);
	srv = new_server();
	ck_assert_int_eq(polyserver_bind(srv, name), 0);
	ck_assert_int_eq(polyclient_connect_name(cl, name), 0);
	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	polyendpoint_close(&ep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_connect_name_einval)
{
	char name256[257], name[128];
	polyclient *cl = new_client(1);
	polyserver *srv = new_server();

	uniq_name(name, sizeof(name), "connect-einval");
	ck_assert_int_eq(polyserver_bind(srv, name), 0);
	ck_assert_fail(polyclient_connect_name(NULL, name), EINVAL);
	ck_assert_fail(polyclient_connect_name(cl, NULL), EINVAL);
	ck_assert_fail(polyclient_connect_name(cl, ""), EINVAL);
	ck_assert_fail(
	    polyclient_connect_name(cl, long_name(name256, 256, 'c')),
	    ENAMETOOLONG);
	ck_assert(!polyserver_pending(srv));
	ck_assert_int_eq(polyclient_connect_name(cl, name), 0);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_connect_name_refusing)
{
	char name[128];
	polyserver *srv = new_server();
	polyclient *a = new_client(1), *b = new_client(1);
	polyendpoint ep;

	uniq_name(name, sizeof(name), "refusing");
	ck_assert_int_eq(polyserver_bind(srv, name), 0);
	ck_assert_int_eq(polyserver_set_backlog(srv, 1), 0);
	ck_assert_int_eq(polyserver_refuse(srv), 0);
	ck_assert_fail(polyclient_connect_name(a, name), ECONNREFUSED);
	ck_assert_fail(polyserver_accept(srv, &ep, 0), EAGAIN);
	ck_assert_int_eq(polyclient_connect_name(a, name), 0);
	ck_assert_fail(polyclient_connect_name(b, name), EAGAIN);
	ck_assert_fail(polyclient_connect_fd(b), ENOTCONN);
	polyclient_close(a);
	polyclient_close(b);
	polyserver_close(srv);
}
END_TEST

/* --- client ------------------------------------------------------------- */

START_TEST(test_polyclient_create)
{
	polyclient *cl;
	polyendpoint ep;

	ck_assert_null_errno(polyclient_create(0), EINVAL);
	cl = new_client(POLYPIPE_UNBOUNDED);
	ck_assert_fail(polyclient_endpoint(cl, &ep, 0), ENOTCONN);
	polyclient_close(cl);
}
END_TEST

START_TEST(test_polyclient_connect_einval)
{
	polyserver *srv = new_server();
	polyclient *cl = new_client(1);

	ck_assert_fail(polyclient_connect(NULL, srv), EINVAL);
	ck_assert_fail(polyclient_connect(cl, NULL), EINVAL);
	ck_assert(!polyserver_pending(srv));
	ck_assert_int_eq(polyclient_connect(cl, srv), 0);
	/* Arguments first, even where the state would say EALREADY. */
	ck_assert_fail(polyclient_connect(cl, NULL), EINVAL);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_connect_ealready)
{
	polyserver *srv = new_server(), *other = new_server();
	polyclient *cl = pending_client(srv, 1);
	polyendpoint ep;

	ck_assert_fail(polyclient_connect(cl, srv), EALREADY);
	ck_assert_fail(polyclient_connect(cl, other), EALREADY);
	ck_assert(!polyserver_pending(other));
	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	ck_assert_fail(polyserver_accept(srv, &ep, 0), EAGAIN);
	polyendpoint_close(&ep);
	polyclient_close(cl);
	polyserver_close(srv);
	polyserver_close(other);
}
END_TEST

START_TEST(test_polyclient_connect_eisconn)
{
	polyserver *srv = new_server(), *other = new_server();
	polyendpoint sep, cep;
	polyclient *cl = accepted_client(srv, 1, &sep, &cep);

	ck_assert_fail(polyclient_connect(cl, srv), EISCONN);
	ck_assert_fail(polyclient_connect(cl, other), EISCONN);
	polyendpoint_close(&sep);
	ck_assert_fail(polyclient_connect(cl, srv), EISCONN);
	ck_assert_fail(polyclient_connect(cl, other), EISCONN);
	ck_assert(!polyserver_pending(other));
	polyclient_close(cl);
	polyserver_close(srv);
	polyserver_close(other);
}
END_TEST

START_TEST(test_polyclient_connect_eisconn_after_server_close)
{
	polyserver *srv = new_server(), *other = new_server();
	polyendpoint sep, cep;
	polyclient *cl = accepted_client(srv, 1, &sep, &cep);

	polyserver_close(srv);
	ck_assert_fail(polyclient_connect(cl, other), EISCONN);
	polyendpoint_close(&sep);
	ck_assert_fail(polyclient_connect(cl, other), EISCONN);
	polyclient_close(cl);
	polyserver_close(other);
}
END_TEST

START_TEST(test_polyclient_connect_shut_down)
{
	polyserver *srv = new_server(), *other = new_server();
	polyclient *cl = new_client(1);
	polyendpoint ep;

	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_fail(polyclient_connect(cl, srv), ECONNREFUSED);
	ck_assert_fail(polyserver_accept(srv, &ep, 0), ESHUTDOWN);
	/* A failed accept after shutdown does not end the refusing. */
	ck_assert_fail(polyclient_connect(cl, srv), ECONNREFUSED);
	ck_assert_fail(polyclient_endpoint(cl, &ep, 0), ENOTCONN);
	ck_assert_int_eq(polyclient_connect(cl, other), 0);
	ck_assert_int_eq(polyserver_accept(other, &ep, 0), 0);
	polyendpoint_close(&ep);
	polyclient_close(cl);
	polyserver_close(srv);
	polyserver_close(other);
}
END_TEST

START_TEST(test_polyclient_connect_eagain_leaves_free)
{
	polyserver *srv = new_server(), *other = new_server();
	polyclient *a = pending_client(srv, 1), *b = new_client(1);
	polyendpoint sep, cep;

	ck_assert_int_eq(polyserver_set_backlog(srv, 1), 0);
	ck_assert_fail(polyclient_connect(b, srv), EAGAIN);
	ck_assert_int_eq(polyclient_connect(b, other), 0);
	ck_assert_fail(polyclient_connect(b, srv), EALREADY);
	ck_assert_int_eq(polyserver_accept(other, &sep, 0), 0);
	ck_assert_int_eq(polyclient_endpoint(b, &cep, 0), 0);
	assert_connected(&sep, &cep);
	polyendpoint_close(&sep);
	polyclient_close(a);
	polyclient_close(b);
	polyserver_close(srv);
	polyserver_close(other);
}
END_TEST

START_TEST(test_polyclient_connect_refusing_leaves_free)
{
	polyserver *srv = new_server(), *other = new_server();
	polyclient *cl = new_client(1);
	polyendpoint sep, cep;

	ck_assert_int_eq(polyserver_refuse(srv), 0);
	ck_assert_fail(polyclient_connect(cl, srv), ECONNREFUSED);
	ck_assert_int_eq(polyclient_connect(cl, other), 0);
	ck_assert_int_eq(polyserver_accept(other, &sep, 0), 0);
	ck_assert_int_eq(polyclient_endpoint(cl, &cep, 0), 0);
	assert_connected(&sep, &cep);
	polyendpoint_close(&sep);
	polyclient_close(cl);
	polyserver_close(srv);
	polyserver_close(other);
}
END_TEST

START_TEST(test_polyclient_endpoint_enotconn)
{
	polyclient *cl = new_client(1);
	polyendpoint ep;

	ck_assert_fail(polyclient_endpoint(cl, &ep, 0), ENOTCONN);
	ck_assert_fail(polyclient_endpoint(cl, &ep, -1), ENOTCONN);
	ck_assert_fail(polyclient_endpoint(cl, &ep, SHORT_MS), ENOTCONN);
	ck_assert_fail(polyclient_endpoint_async(cl, &ep), ENOTCONN);
	ck_assert_fail(polyclient_connect_fd(cl), ENOTCONN);
	polyclient_close(cl);
}
END_TEST

START_TEST(test_polyclient_endpoint_einval)
{
	polyserver *srv = new_server();
	polyclient *cl = new_client(1);
	polyendpoint sep, ep;

	ck_assert_fail(polyclient_endpoint(NULL, &ep, 0), EINVAL);
	ck_assert_fail(polyclient_endpoint(cl, NULL, 0), EINVAL);
	ck_assert_fail(polyclient_endpoint(cl, &ep, -2), EINVAL);
	ck_assert_fail(polyclient_endpoint_async(NULL, &ep), EINVAL);
	ck_assert_fail(polyclient_endpoint_async(cl, NULL), EINVAL);
	ck_assert_fail(polyclient_connect_fd(NULL), EINVAL);
	ck_assert_fail(polyclient_set_connect_notify(NULL, note_fn, NULL),
	               EINVAL);
	ck_assert_int_eq(polyclient_connect(cl, srv), 0);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	/* Arguments first, even once connected. */
	ck_assert_fail(polyclient_endpoint(cl, NULL, 0), EINVAL);
	ck_assert_fail(polyclient_endpoint(cl, &ep, -2), EINVAL);
	ck_assert_fail(polyclient_endpoint_async(cl, NULL), EINVAL);
	polyendpoint_close(&sep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_endpoint_waits)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 2);
	struct acceptor a = { .srv = srv, .timeout = WAIT_MS };
	polyendpoint ep, again;
	int64_t start;
	pthread_t t;

	ck_assert_fail(polyclient_endpoint(cl, &ep, 0), EAGAIN);
	start = now_ms();
	ck_assert_fail(polyclient_endpoint(cl, &ep, SHORT_MS), ETIMEDOUT);
	assert_elapsed(start, SHORT_MS);
	ck_assert(polyserver_pending(srv));
	spawn(&t, accept_thread, &a);
	ck_assert_int_eq(polyclient_endpoint(cl, &ep, -1), 0);
	join(t);
	ck_assert_int_eq(a.rc, 0);
	start = now_ms();
	ck_assert_int_eq(polyclient_endpoint(cl, &again, 0), 0);
	ck_assert_int_eq(polyclient_endpoint(cl, &again, -1), 0);
	ck_assert_int_lt(now_ms() - start, 1000);
	ck_assert_ptr_eq(again.rd, ep.rd);
	ck_assert_ptr_eq(again.wr, ep.wr);
	assert_connected(&a.ep, &ep);
	polyendpoint_close(&a.ep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_endpoint_async_before_accept)
{
	enum { N = 5 };
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 8);
	polyendpoint cep, sep, same;
	void *m;

	ck_assert_int_eq(polyclient_endpoint_async(cl, &cep), 0);
	ck_assert_ptr_nonnull(cep.rd);
	ck_assert_ptr_nonnull(cep.wr);
	for (int i = 1; i <= N; i++)
		ck_assert_int_eq(polypipe_write(cep.wr, MSG(i), 0), 0);
	ck_assert_fail(polypipe_read(cep.rd, &m, 0), EAGAIN);
	ck_assert_int_eq(polyclient_endpoint_async(cl, &same), 0);
	ck_assert_ptr_eq(same.rd, cep.rd);
	ck_assert_ptr_eq(same.wr, cep.wr);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_uint_eq(polypipe_length(sep.rd), N);
	for (int i = 1; i <= N; i++) {
		ck_assert_int_eq(polypipe_read(sep.rd, &m, 0), 1);
		ck_assert_uint_eq(MSGVAL(m), (uintptr_t)i);
	}
	ck_assert_fail(polypipe_read(sep.rd, &m, 0), EAGAIN);
	ck_assert_int_eq(polypipe_write(sep.wr, MSG(99), 0), 0);
	ck_assert_int_eq(polypipe_read(cep.rd, &m, 0), 1);
	ck_assert_uint_eq(MSGVAL(m), 99);
	polyendpoint_close(&sep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_endpoint_same_pipes)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 1);
	polyendpoint async, async2, sync, sep;

	ck_assert_int_eq(polyclient_endpoint_async(cl, &async), 0);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_int_eq(polyclient_endpoint(cl, &sync, 0), 0);
	ck_assert_int_eq(polyclient_endpoint_async(cl, &async2), 0);
	ck_assert_ptr_eq(sync.rd, async.rd);
	ck_assert_ptr_eq(sync.wr, async.wr);
	ck_assert_ptr_eq(async2.rd, async.rd);
	ck_assert_ptr_eq(async2.wr, async.wr);
	ck_assert_ptr_ne(sync.rd, sync.wr);
	polyendpoint_close(&sep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_endpoint_crossed)
{
	polyserver *srv = new_server();
	polyendpoint sep, cep;
	polyclient *cl = accepted_client(srv, 4, &sep, &cep);
	void *m;

	/* The server's ep.rd is the pipe written through the client's
	 * ep.wr, and the other way round. */
	ck_assert_int_eq(polypipe_write(cep.wr, MSG(1), 0), 0);
	ck_assert_int_eq(polypipe_write(cep.wr, MSG(2), 0), 0);
	ck_assert_uint_eq(polypipe_length(sep.rd), 2);
	ck_assert_uint_eq(polypipe_length(sep.wr), 0);
	ck_assert_uint_eq(polypipe_length(cep.rd), 0);
	ck_assert_int_eq(polypipe_read(sep.rd, &m, 0), 1);
	ck_assert_uint_eq(MSGVAL(m), 1);
	ck_assert_int_eq(polypipe_write(sep.wr, MSG(3), 0), 0);
	ck_assert_uint_eq(polypipe_length(cep.rd), 1);
	ck_assert_int_eq(polypipe_read(cep.rd, &m, 0), 1);
	ck_assert_uint_eq(MSGVAL(m), 3);
	ck_assert_int_eq(polypipe_read(sep.rd, &m, 0), 1);
	ck_assert_uint_eq(MSGVAL(m), 2);
	/* Right ends: reading a write end or writing a read end is EBADF. */
	ck_assert_fail(polypipe_read(sep.wr, &m, 0), EBADF);
	ck_assert_fail(polypipe_read(cep.wr, &m, 0), EBADF);
	ck_assert_fail(polypipe_write(sep.rd, MSG(1), 0), EBADF);
	ck_assert_fail(polypipe_write(cep.rd, MSG(1), 0), EBADF);
	polyendpoint_close(&sep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_endpoint_capacity)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 3);
	polyendpoint sep, cep;

	ck_assert_int_eq(polyclient_endpoint_async(cl, &cep), 0);
	ck_assert_uint_eq(polypipe_capacity(cep.rd), 3);
	ck_assert_uint_eq(polypipe_capacity(cep.wr), 3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(polypipe_write(cep.wr, MSG(i), 0), 0);
	ck_assert_fail(polypipe_write(cep.wr, MSG(3), 0), EAGAIN);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_uint_eq(polypipe_capacity(sep.rd), 3);
	ck_assert_uint_eq(polypipe_capacity(sep.wr), 3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(polypipe_write(sep.wr, MSG(i), 0), 0);
	ck_assert_fail(polypipe_write(sep.wr, MSG(3), 0), EAGAIN);
	polyendpoint_close(&sep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_connect_fd)
{
	polyserver *srv = new_server();
	polyclient *cl = new_client(1);
	polyendpoint sep, cep;
	int fd;

	ck_assert_fail(polyclient_connect_fd(cl), ENOTCONN);
	ck_assert_int_eq(polyclient_connect(cl, srv), 0);
	fd = polyclient_connect_fd(cl);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(polyclient_connect_fd(cl), fd);
	ck_assert_not_readable(fd);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_readable(fd);
	ck_assert_int_eq(polyclient_endpoint(cl, &cep, 0), 0);
	ck_assert_readable(fd);
	assert_connected(&sep, &cep);
	polyendpoint_close(&sep);
	ck_assert_readable(fd);
	polyserver_close(srv);
	ck_assert_readable(fd);
	ck_assert_int_eq(polyclient_connect_fd(cl), fd);
	polyclient_close(cl);
}
END_TEST

START_TEST(test_polyclient_connect_fd_refused)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 1);
	polyendpoint ep;
	int fd = polyclient_connect_fd(cl);

	ck_assert_int_ge(fd, 0);
	ck_assert_not_readable(fd);
	ck_assert_int_eq(polyserver_refuse(srv), 1);
	ck_assert_readable(fd);
	ck_assert_fail(polyclient_endpoint(cl, &ep, 0), ECONNREFUSED);
	ck_assert_readable(fd);
	polyserver_close(srv);
	ck_assert_readable(fd);
	polyclient_close(cl);
}
END_TEST

START_TEST(test_polyclient_connect_fd_created_late)
{
	polyserver *srv = new_server();
	polyclient *a = pending_client(srv, 1), *b = pending_client(srv, 1);
	polyendpoint ep;
	int fd;

	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	ck_assert_int_eq(polyserver_refuse(srv), 1);
	fd = polyclient_connect_fd(a);
	ck_assert_int_ge(fd, 0);
	ck_assert_readable(fd);
	fd = polyclient_connect_fd(b);
	ck_assert_int_ge(fd, 0);
	ck_assert_readable(fd);
	polyendpoint_close(&ep);
	polyclient_close(a);
	polyclient_close(b);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_connect_fd_wakes_poll)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 1);
	struct acceptor a = { .srv = srv, .timeout = WAIT_MS };
	int fd = polyclient_connect_fd(cl);
	pthread_t t;

	ck_assert_int_ge(fd, 0);
	spawn(&t, accept_thread, &a);
	ck_assert(fd_readable_within(fd, WAIT_MS));
	join(t);
	ck_assert_int_eq(a.rc, 0);
	polyendpoint_close(&a.ep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_connect_notify_from_accepting_thread)
{
	polyserver *srv = new_server();
	polyclient *cl = new_client(1);
	struct acceptor a = { .srv = srv, .timeout = WAIT_MS };
	struct note n;
	pthread_t t;

	note_init(&n);
	/* Set before connect. */
	ck_assert_int_eq(polyclient_set_connect_notify(cl, note_fn, &n), 0);
	ck_assert_int_eq(polyclient_connect(cl, srv), 0);
	ck_assert_int_eq(note_calls(&n), 0);
	spawn(&t, accept_thread, &a);
	join(t);
	ck_assert_int_eq(a.rc, 0);
	ck_assert_int_eq(note_calls(&n), 1);
	ck_assert(pthread_equal(n.thread, a.self));
	ck_assert(!pthread_equal(n.thread, pthread_self()));
	polyendpoint_close(&a.ep);
	ck_assert_int_eq(note_calls(&n), 1);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_connect_notify_after_decision)
{
	polyserver *srv = new_server();
	polyclient *acc = pending_client(srv, 1), *ref;
	struct acceptor a = { .srv = srv, .timeout = WAIT_MS };
	struct note na, nr;
	pthread_t t;

	note_init(&na);
	note_init(&nr);
	spawn(&t, accept_thread, &a);
	join(t);
	ck_assert_int_eq(a.rc, 0);
	ck_assert_int_eq(polyclient_set_connect_notify(acc, note_fn, &na), 0);
	ck_assert_int_eq(note_calls(&na), 1);
	ck_assert(pthread_equal(na.thread, pthread_self()));

	ref = pending_client(srv, 1);
	ck_assert_int_eq(polyserver_refuse(srv), 1);
	ck_assert_int_eq(polyclient_set_connect_notify(ref, note_fn, &nr), 0);
	ck_assert_int_eq(note_calls(&nr), 1);
	ck_assert(pthread_equal(nr.thread, pthread_self()));
	polyendpoint_close(&a.ep);
	polyclient_close(acc);
	polyclient_close(ref);
	polyserver_close(srv);
}
END_TEST

struct inside {
	polyclient *cl;
	atomic_int calls;
	int rc;
	int err;
	polyendpoint ep;
};

static void
inside_fn(void *arg)
{
	struct inside *in = arg;

	errno = 0;
	in->rc = polyclient_endpoint(in->cl, &in->ep, 0);
	in->err = errno;
	atomic_fetch_add(&in->calls, 1);
}

START_TEST(test_polyclient_connect_notify_endpoint_inside)
{
	polyserver *srv = new_server();
	struct inside in = { .cl = new_client(2), .rc = -2 };
	polyendpoint sep, cep;

	atomic_init(&in.calls, 0);
	ck_assert_int_eq(polyclient_set_connect_notify(in.cl, inside_fn, &in),
	                 0);
	ck_assert_int_eq(polyclient_connect(in.cl, srv), 0);
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_int_eq(atomic_load(&in.calls), 1);
	ck_assert_msg(in.rc == 0,
	              "polyclient_endpoint in the notifier: "
	              "%d (%s)",
	              in.rc, strerror(in.err));
	ck_assert_int_eq(polyclient_endpoint(in.cl, &cep, 0), 0);
	ck_assert_ptr_eq(in.ep.rd, cep.rd);
	ck_assert_ptr_eq(in.ep.wr, cep.wr);
	assert_connected(&sep, &cep);
	polyendpoint_close(&sep);
	polyclient_close(in.cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_connect_notify_refused_inside)
{
	polyserver *srv = new_server();
	struct inside in = { .cl = new_client(2), .rc = -2 };

	atomic_init(&in.calls, 0);
	ck_assert_int_eq(polyclient_connect(in.cl, srv), 0);
	ck_assert_int_eq(polyclient_set_connect_notify(in.cl, inside_fn, &in),
	                 0);
	ck_assert_int_eq(polyserver_refuse(srv), 1);
	ck_assert_int_eq(atomic_load(&in.calls), 1);
	ck_assert_int_eq(in.rc, -1);
	ck_assert_int_eq(in.err, ECONNREFUSED);
	polyclient_close(in.cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_connect_notify_removed)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 1);
	polyendpoint ep;
	struct note n;

	note_init(&n);
	ck_assert_int_eq(polyclient_set_connect_notify(cl, note_fn, &n), 0);
	ck_assert_int_eq(polyclient_set_connect_notify(cl, NULL, NULL), 0);
	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	ck_assert_int_eq(note_calls(&n), 0);
	polyendpoint_close(&ep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

/* --- close -------------------------------------------------------------- */

START_TEST(test_polyclient_close_withdraws)
{
	polyserver *srv = new_server();
	polyclient *cl = new_client(1);
	int fd = polyserver_accept_fd(srv);
	struct note n;
	polyendpoint ep;

	ck_assert_int_ge(fd, 0);
	note_init(&n);
	ck_assert_int_eq(polyclient_set_connect_notify(cl, note_fn, &n), 0);
	ck_assert_int_eq(polyclient_connect(cl, srv), 0);
	ck_assert(polyserver_pending(srv));
	ck_assert_readable(fd);
	polyclient_close(cl);
	ck_assert(!polyserver_pending(srv));
	ck_assert_not_readable(fd);
	ck_assert_fail(polyserver_accept(srv, &ep, 0), EAGAIN);
	ck_assert_int_eq(polyserver_refuse(srv), 0);
	/* Closing removes the client's own notifier first. */
	ck_assert_int_eq(note_calls(&n), 0);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_close_withdraws_first_of_two)
{
	polyserver *srv = new_server();
	polyclient *a = pending_client(srv, 2), *b = pending_client(srv, 2);
	polyendpoint aep, bep, sep;
	void *m;

	ck_assert_int_eq(polyclient_endpoint_async(a, &aep), 0);
	ck_assert_int_eq(polypipe_write(aep.wr, MSG(1), 0), 0);
	ck_assert_int_eq(polyclient_endpoint_async(b, &bep), 0);
	ck_assert_int_eq(polypipe_write(bep.wr, MSG(2), 0), 0);
	polyclient_close(a);
	ck_assert(polyserver_pending(srv));
	ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
	ck_assert_int_eq(polypipe_read(sep.rd, &m, 0), 1);
	ck_assert_uint_eq(MSGVAL(m), 2);
	ck_assert(!polyserver_pending(srv));
	ck_assert_fail(polyserver_accept(srv, &sep, 0), EAGAIN);
	ck_assert_int_eq(polyclient_endpoint(b, &bep, 0), 0);
	polyendpoint_close(&sep);
	polyclient_close(b);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_close_destroys_async_messages)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 4);
	struct dtor_count d;
	polyendpoint ep;

	dtor_init(&d);
	ck_assert_int_eq(polyclient_endpoint_async(cl, &ep), 0);
	ck_assert_int_eq(polypipe_set_destructor(ep.wr, dtor_fn, &d), 0);
	for (int i = 1; i <= 3; i++)
		ck_assert_int_eq(polypipe_write(ep.wr, MSG(i * 10), 0), 0);
	ck_assert_int_eq(atomic_load(&d.calls), 0);
	polyclient_close(cl);
	ck_assert_int_eq(atomic_load(&d.calls), 3);
	ck_assert_uint_eq(atomic_load(&d.sum), 60);
	ck_assert(!polyserver_pending(srv));
	polyserver_close(srv);
	ck_assert_int_eq(atomic_load(&d.calls), 3);
}
END_TEST

START_TEST(test_polyclient_close_peer_sees_eof)
{
	polyserver *srv = new_server();
	polyendpoint sep, cep;
	polyclient *cl = accepted_client(srv, 4, &sep, &cep);
	void *m;

	ck_assert_int_eq(polypipe_write(cep.wr, MSG(1), 0), 0);
	ck_assert_int_eq(polypipe_write(cep.wr, MSG(2), 0), 0);
	polyclient_close(cl);
	ck_assert(polypipe_eof(sep.rd));
	ck_assert_int_eq(polypipe_read(sep.rd, &m, 0), 1);
	ck_assert_uint_eq(MSGVAL(m), 1);
	ck_assert_int_eq(polypipe_read(sep.rd, &m, 0), 1);
	ck_assert_uint_eq(MSGVAL(m), 2);
	ck_assert_int_eq(polypipe_read(sep.rd, &m, 0), 0);
	ck_assert_int_eq(polypipe_read(sep.rd, &m, -1), 0);
	ck_assert_fail(polypipe_write(sep.wr, MSG(3), 0), EPIPE);
	ck_assert_fail(polypipe_write(sep.wr, MSG(3), -1), EPIPE);
	polyendpoint_close(&sep);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyclient_close_destroys_unread_replies)
{
	polyserver *srv = new_server();
	polyendpoint sep, cep;
	polyclient *cl = accepted_client(srv, 4, &sep, &cep);
	struct dtor_count d;

	dtor_init(&d);
	ck_assert_int_eq(polypipe_set_destructor(sep.wr, dtor_fn, &d), 0);
	ck_assert_int_eq(polypipe_write(sep.wr, MSG(5), 0), 0);
	ck_assert_int_eq(polypipe_write(sep.wr, MSG(6), 0), 0);
	polyclient_close(cl);
	ck_assert_int_eq(atomic_load(&d.calls), 2);
	ck_assert_uint_eq(atomic_load(&d.sum), 11);
	polyendpoint_close(&sep);
	ck_assert_int_eq(atomic_load(&d.calls), 2);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyendpoint_close)
{
	polyserver *srv = new_server();
	polyendpoint sep, cep;
	polyclient *cl = accepted_client(srv, 2, &sep, &cep);
	void *m;

	ck_assert_int_eq(polypipe_write(sep.wr, MSG(8), 0), 0);
	polyendpoint_close(&sep);
	ck_assert_ptr_null(sep.rd);
	ck_assert_ptr_null(sep.wr);
	polyendpoint_close(&sep);
	ck_assert_int_eq(polypipe_read(cep.rd, &m, 0), 1);
	ck_assert_uint_eq(MSGVAL(m), 8);
	ck_assert_int_eq(polypipe_read(cep.rd, &m, 0), 0);
	ck_assert_fail(polypipe_write(cep.wr, MSG(9), 0), EPIPE);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polysocket_close_null)
{
	polyendpoint_close(NULL);
	polyserver_close(NULL);
	polyclient_close(NULL);
}
END_TEST

START_TEST(test_polyclient_close_unused)
{
	polyserver *srv = new_server();
	polyclient *cl = new_client(1), *refused = pending_client(srv, 1);

	polyclient_close(cl);
	ck_assert_int_eq(polyserver_refuse(srv), 1);
	polyclient_close(refused);
	ck_assert(!polyserver_pending(srv));
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_shutdown_idempotent)
{
	polyserver *srv = new_server();
	polyclient *cl = pending_client(srv, 1), *late = new_client(1);
	polyendpoint ep;

	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	ck_assert(!polyserver_pending(srv));
	ck_assert_fail(polyclient_endpoint(cl, &ep, 0), ECONNREFUSED);
	ck_assert_fail(polyclient_connect(late, srv), ECONNREFUSED);
	ck_assert_fail(polyserver_accept(srv, &ep, 0), ESHUTDOWN);
	polyclient_close(cl);
	polyclient_close(late);
	polyserver_close(srv);
}
END_TEST

START_TEST(test_polyserver_shutdown_keeps_accepted)
{
	polyserver *srv = new_server();
	polyendpoint sep, cep;
	polyclient *cl = accepted_client(srv, 2, &sep, &cep);

	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	assert_connected(&sep, &cep);
	ck_assert_int_eq(polypipe_get_error(sep.rd), 0);
	ck_assert(!polypipe_eof(cep.rd));
	ck_assert_int_eq(polyclient_endpoint(cl, &cep, 0), 0);
	polyserver_close(srv);
	assert_connected(&sep, &cep);
	ck_assert(!polypipe_eof(sep.rd));
	polyendpoint_close(&sep);
	polyclient_close(cl);
}
END_TEST

START_TEST(test_polyserver_close_client_outlives)
{
	polyserver *srv = new_server(), *later = new_server();
	polyendpoint sep, cep, aep, ep;
	polyclient *acc = accepted_client(srv, 2, &sep, &cep);
	polyclient *sync = pending_client(srv, 1);
	polyclient *async = pending_client(srv, 1);
	polyclient *other = new_client(1);
	struct note ns, na;
	struct dtor_count d;
	int fd = polyclient_connect_fd(sync);
	void *m;

	note_init(&ns);
	note_init(&na);
	dtor_init(&d);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(polyclient_set_connect_notify(sync, note_fn, &ns), 0);
	ck_assert_int_eq(polyclient_set_connect_notify(async, note_fn, &na),
	                 0);
	ck_assert_int_eq(polyclient_endpoint_async(async, &aep), 0);
	ck_assert_int_eq(polypipe_set_destructor(aep.wr, dtor_fn, &d), 0);
	ck_assert_int_eq(polypipe_write(aep.wr, MSG(4), 0), 0);
	ck_assert_int_eq(polyclient_connect(other, srv), 0);
	polyclient_close(other);

	polyserver_close(srv);

	assert_connected(&sep, &cep);
	ck_assert_fail(polyclient_connect(acc, later), EISCONN);
	polyserver_close(later);

	ck_assert_readable(fd);
	ck_assert_int_eq(note_calls(&ns), 1);
	ck_assert(pthread_equal(ns.thread, pthread_self()));
	ck_assert_fail(polyclient_endpoint(sync, &ep, -1), ECONNREFUSED);

	ck_assert_int_eq(note_calls(&na), 1);
	ck_assert_int_eq(atomic_load(&d.calls), 1);
	ck_assert_uint_eq(atomic_load(&d.sum), 4);
	ck_assert_fail(polyclient_endpoint(async, &ep, 0), ECONNREFUSED);
	ck_assert_fail(polypipe_read(aep.rd, &m, 0), ECONNREFUSED);
	ck_assert_fail(polypipe_write(aep.wr, MSG(5), 0), ECONNREFUSED);

	polyclient_close(acc);
	ck_assert_int_eq(polypipe_read(sep.rd, &m, 0), 0);
	ck_assert_fail(polypipe_write(sep.wr, MSG(6), 0), EPIPE);
	polyendpoint_close(&sep);
	polyclient_close(sync);
	polyclient_close(async);
}
END_TEST

START_TEST(test_polyserver_close_wakes_waiting_client)
{
	polyserver *srv = new_server();
	struct waiter w = { .cl = pending_client(srv, 1), .timeout = -1 };
	pthread_t t;

	spawn(&t, endpoint_thread, &w);
	polyserver_close(srv);
	join(t);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.err, ECONNREFUSED);
	polyclient_close(w.cl);
}
END_TEST

START_TEST(test_polysocket_version)
{
	const char *v = polysocket_version();

	ck_assert_ptr_nonnull(v);
	ck_assert_uint_gt(strlen(v), 0);
	ck_assert_str_eq(v, POLYSOCKET_VERSION_STRING);
	ck_assert_ptr_eq(polysocket_version(), v);
}
END_TEST

/* --- storm -------------------------------------------------------------- */

enum {
	STORM_THREADS = 2,
	STORM_PER_THREAD = 150,
	STORM_TOTAL = STORM_THREADS * STORM_PER_THREAD,
	STORM_REFUSE_EVERY = 4,
};

enum storm_mode { STORM_SYNC, STORM_ASYNC, STORM_NOTIFY, STORM_MODES };
enum storm_outcome { STORM_UNDECIDED, STORM_ACCEPTED, STORM_REFUSED };

struct storm_client {
	polyclient *cl;
	enum storm_mode mode;
	bool wrote;
	enum storm_outcome outcome;
	struct note note;
};

struct storm {
	polyserver *srv;
	struct storm_client clients[STORM_TOTAL];
	struct dtor_count dtor;
	atomic_int failures;
	char failure[160];
	pthread_mutex_t lock;
	pthread_barrier_t start;
};

struct storm_producer {
	struct storm *s;
	int first;
};

static void
storm_fail(struct storm *s, int id, const char *what, int err)
{
	pthread_mutex_lock(&s->lock);
	if (atomic_fetch_add(&s->failures, 1) == 0)
		snprintf(s->failure, sizeof(s->failure), "client %d: %s: %s",
		         id, what, strerror(err));
	pthread_mutex_unlock(&s->lock);
}

/* Records how the attempt ended, as the client sees it. */
static void
storm_decided(struct storm *s, int id, int rc, int err)
{
	if (rc == 0)
		s->clients[id].outcome = STORM_ACCEPTED;
	else if (err == ECONNREFUSED)
		s->clients[id].outcome = STORM_REFUSED;
	else
		storm_fail(s, id, "polyclient_endpoint", err);
}

static void
storm_start_client(struct storm *s, int id)
{
	struct storm_client *c = &s->clients[id];
	polyendpoint ep;
	int rc;

	c->mode = (enum storm_mode)(id % STORM_MODES);
	note_init(&c->note);
	c->cl = polyclient_create(2);
	if (c->cl == NULL) {
		storm_fail(s, id, "polyclient_create", errno);
		return;
	}
	if (c->mode == STORM_NOTIFY &&
	    polyclient_set_connect_notify(c->cl, note_fn, &c->note) != 0)
		storm_fail(s, id, "polyclient_set_connect_notify", errno);
	/* ECONNREFUSED here means the server is refusing: the attempt was
	 * not queued, and the server's next accept ends the refusing. */
	while ((rc = polyclient_connect(c->cl, s->srv)) == -1 &&
	       errno == ECONNREFUSED)
		sched_yield();
	if (rc != 0) {
		storm_fail(s, id, "polyclient_connect", errno);
		return;
	}
	if (c->mode == STORM_SYNC) {
		errno = 0;
		rc = polyclient_endpoint(c->cl, &ep, WAIT_MS);
		storm_decided(s, id, rc, errno);
		if (rc == 0 && polypipe_write(ep.wr, MSG(id + 1), 0) == 0)
			c->wrote = true;
		else if (rc == 0)
			storm_fail(s, id, "polypipe_write", errno);
		return;
	}
	if (polyclient_endpoint_async(c->cl, &ep) != 0) {
		/* Refused between the connect and here. */
		if (errno != ECONNREFUSED)
			storm_fail(s, id, "polyclient_endpoint_async", errno);
		return;
	}
	if (polypipe_set_destructor(ep.wr, dtor_fn, &s->dtor) != 0)
		storm_fail(s, id, "polypipe_set_destructor", errno);
	if (polypipe_write(ep.wr, MSG(id + 1), 0) == 0)
		c->wrote = true;
	else if (errno != ECONNREFUSED)
		storm_fail(s, id, "polypipe_write", errno);
}

static void *
storm_producer_thread(void *arg)
{
	struct storm_producer *p = arg;
	struct storm *s = p->s;
	polyendpoint ep;
	int rc;

	pthread_barrier_wait(&s->start);
	for (int i = 0; i < STORM_PER_THREAD; i++)
		storm_start_client(s, p->first + i);
	for (int i = 0; i < STORM_PER_THREAD; i++) {
		int id = p->first + i;

		if (s->clients[id].cl == NULL ||
		    s->clients[id].mode == STORM_SYNC)
			continue;
		errno = 0;
		rc = polyclient_endpoint(s->clients[id].cl, &ep, WAIT_MS);
		storm_decided(s, id, rc, errno);
	}
	return NULL;
}

START_TEST(test_polysocket_storm)
{
	struct storm *s = calloc(1, sizeof(*s));
	struct storm_producer prod[STORM_THREADS];
	pthread_t t[STORM_THREADS];
	bool *seen = calloc(STORM_TOTAL, sizeof(*seen));
	polyendpoint eps[4];
	int accepted = 0, refused = 0, since_refuse = 0, rounds = 0;
	int cl_accepted = 0, cl_refused = 0, destroyed = 0;

	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(seen);
	s->srv = new_server();
	dtor_init(&s->dtor);
	atomic_init(&s->failures, 0);
	ck_assert_int_eq(pthread_mutex_init(&s->lock, NULL), 0);
	ck_assert_int_eq(
	    pthread_barrier_init(&s->start, NULL, STORM_THREADS + 1), 0);
	for (int i = 0; i < STORM_THREADS; i++) {
		prod[i].s = s;
		prod[i].first = i * STORM_PER_THREAD;
		spawn(&t[i], storm_producer_thread, &prod[i]);
	}
	pthread_barrier_wait(&s->start);

	while (accepted + refused < STORM_TOTAL) {
		ssize_t n;

		if (since_refuse >= STORM_REFUSE_EVERY) {
			int r = polyserver_refuse(s->srv);

			ck_assert_int_ge(r, 0);
			refused += r;
			since_refuse = 0;
			continue;
		}
		n = polyserver_accept_many(s->srv, eps, rounds++ % 2 ? 1 : 4,
		                           WAIT_MS);
		ck_assert_msg(n >= 1,
		              "accept_many: %s (%d accepted, "
		              "%d refused)",
		              strerror(errno), accepted, refused);
		for (ssize_t i = 0; i < n; i++) {
			void *m;
			uintptr_t id;

			ck_assert_int_eq(polypipe_read(eps[i].rd, &m, WAIT_MS),
			                 1);
			id = MSGVAL(m) - 1;
			ck_assert_uint_lt(id, STORM_TOTAL);
			ck_assert(!seen[id]);
			seen[id] = true;
			polyendpoint_close(&eps[i]);
		}
		accepted += (int)n;
		since_refuse += (int)n;
	}
	ck_assert_int_eq(polyserver_shutdown(s->srv), 0);
	ck_assert(!polyserver_pending(s->srv));
	for (int i = 0; i < STORM_THREADS; i++)
		join(t[i]);
	ck_assert_msg(atomic_load(&s->failures) == 0, "%d failures, first: %s",
	              atomic_load(&s->failures), s->failure);

	for (int id = 0; id < STORM_TOTAL; id++) {
		struct storm_client *c = &s->clients[id];

		ck_assert_ptr_nonnull(c->cl);
		ck_assert_int_ne(c->outcome, STORM_UNDECIDED);
		if (c->outcome == STORM_ACCEPTED) {
			cl_accepted++;
			ck_assert(c->wrote);
			ck_assert(seen[id]);
		} else {
			cl_refused++;
			ck_assert(!seen[id]);
			if (c->wrote)
				destroyed++;
		}
		if (c->mode == STORM_NOTIFY)
			ck_assert_int_eq(note_calls(&c->note), 1);
		ck_assert_readable(polyclient_connect_fd(c->cl));
	}
	ck_assert_int_eq(cl_accepted, accepted);
	ck_assert_int_eq(cl_refused, refused);
	ck_assert_int_eq(atomic_load(&s->dtor.calls), destroyed);

	for (int id = 0; id < STORM_TOTAL; id++)
		polyclient_close(s->clients[id].cl);
	ck_assert_int_eq(atomic_load(&s->dtor.calls), destroyed);
	polyserver_close(s->srv);
	pthread_barrier_destroy(&s->start);
	pthread_mutex_destroy(&s->lock);
	free(seen);
	free(s);
}
END_TEST

/* --- the suite ---------------------------------------------------------- */

/*
 * A notifier set after accept decided an attempt, but before accept got
 * round to calling the notifiers, is called once: by its setter, which
 * finds the attempt decided, and not again by accept.  The first client's
 * notifier holds accept_many between the decision and the second call.
 */
struct held_note {
	sem_t entered;
	sem_t release;
};

static void
held_note_fn(void *arg)
{
	struct held_note *h = arg;

	sem_post(&h->entered);
	sem_wait(&h->release);
}

static void
count_note_fn(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

struct accept_two {
	polyserver *srv;
	polyendpoint eps[2];
	ssize_t n;
};

static void *
accept_two_main(void *arg)
{
	struct accept_two *a = arg;

	a->n = polyserver_accept_many(a->srv, a->eps, 2, -1);
	return NULL;
}

START_TEST(test_polyclient_connect_notify_set_during_accept)
{
	struct accept_two a = { .srv = polyserver_create() };
	polyclient *x = polyclient_create(1), *y = polyclient_create(1);
	struct held_note h;
	atomic_int calls = 0;
	polyendpoint ep;
	pthread_t t;
	int n;

	sem_init(&h.entered, 0, 0);
	sem_init(&h.release, 0, 0);
	ck_assert_int_eq(polyclient_set_connect_notify(x, held_note_fn, &h),
	                 0);
	ck_assert_int_eq(polyclient_connect(x, a.srv), 0);
	ck_assert_int_eq(polyclient_connect(y, a.srv), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, accept_two_main, &a), 0);
	sem_wait(&h.entered); /* both decided; y's notifier not called yet */
	ck_assert_int_eq(polyclient_endpoint(y, &ep, 0), 0);
	ck_assert_int_eq(
	    polyclient_set_connect_notify(y, count_note_fn, &calls), 0);
	n = atomic_load(&calls);
	ck_assert_int_eq(n, 1); /* by the setter */
	sem_post(&h.release);
	pthread_join(t, NULL);
	ck_assert_int_eq(a.n, 2);
	n = atomic_load(&calls);
	ck_assert_int_eq(n, 1); /* and not again by accept */
	polyendpoint_close(&a.eps[0]);
	polyendpoint_close(&a.eps[1]);
	polyclient_close(x);
	polyclient_close(y);
	polyserver_close(a.srv);
	sem_destroy(&h.entered);
	sem_destroy(&h.release);
}
END_TEST

/* --- waits that sleep: their wake-ups, errno, and no system call -------- */

/*
 * A thread blocked in polyserver_accept(..., -1) is woken by a new
 * attempt while another thread is inside polyserver_set_accept_notify,
 * waiting for the callback it replaced to end: accept waiters and
 * notifier setters do not share one wake-up.  The old callback blocks
 * until the test releases it; each thread is seen asleep in futex(2)
 * before the next step, in both orders (_i).
 */
struct accept_beside_setter {
	polyserver *srv;
	sem_t entered, release; /* the old callback's */
	atomic_int new_calls;   /* the new callback's */
	atomic_long setter_tid, accepter_tid;
	atomic_int setter_done, accepter_done;
	sem_t accepted;
	polyendpoint ep;
	int accept_ret, accept_err;
};

static void
abs_old_note(void *arg)
{
	struct accept_beside_setter *st = arg;

	sem_post(&st->entered);
	sem_wait(&st->release);
}

static void
abs_new_note(void *arg)
{
	struct accept_beside_setter *st = arg;

	atomic_fetch_add(&st->new_calls, 1);
}

struct abs_connector {
	struct accept_beside_setter *st;
	polyclient *cl;
	int ret;
};

/* Connects: the backlog becomes non-empty, and this thread runs the old
 * callback, which holds it until released. */
static void *
abs_connect_main(void *arg)
{
	struct abs_connector *c = arg;

	c->ret = polyclient_connect(c->cl, c->st->srv);
	return NULL;
}

static void *
abs_setter_main(void *arg)
{
	struct accept_beside_setter *st = arg;

	atomic_store(&st->setter_tid, test_tid());
	polyserver_set_accept_notify(st->srv, abs_new_note, st);
	atomic_store(&st->setter_done, 1);
	return NULL;
}

static void *
abs_accepter_main(void *arg)
{
	struct accept_beside_setter *st = arg;

	atomic_store(&st->accepter_tid, test_tid());
	st->accept_ret = polyserver_accept(st->srv, &st->ep, -1);
	st->accept_err = errno;
	atomic_store(&st->accepter_done, 1);
	sem_post(&st->accepted);
	return NULL;
}

/* Waits for sem up to ms: whether it was posted. */
static bool
sem_wait_ms(sem_t *sem, int ms)
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
		r = sem_timedwait(sem, &ts);
	while (r < 0 && errno == EINTR);
	return r == 0;
}

START_TEST(test_polyserver_accept_wakes_beside_notify_setter)
{
	struct accept_beside_setter st = { .srv = new_server() };
	struct abs_connector c = { .st = &st, .cl = new_client(1) };
	polyclient *second = new_client(1);
	pthread_t tc, ts, ta;
	polyendpoint first;

	sem_init(&st.entered, 0, 0);
	sem_init(&st.release, 0, 0);
	sem_init(&st.accepted, 0, 0);
	ck_assert_int_eq(
	    polyserver_set_accept_notify(st.srv, abs_old_note, &st), 0);
	ck_assert_int_eq(pthread_create(&tc, NULL, abs_connect_main, &c), 0);
	sem_wait(&st.entered); /* the old callback runs, and stays */
	/* The backlog is empty again while the old callback runs. */
	ck_assert_int_eq(polyserver_accept(st.srv, &first, 0), 0);
	if (_i == 0) {
		ck_assert_int_eq(
		    pthread_create(&ts, NULL, abs_setter_main, &st), 0);
		ck_assert_msg(test_wait_blocked(&st.setter_tid,
		                                &st.setter_done, WAIT_MS),
		              "the setter did not wait for the old callback");
		ck_assert_int_eq(
		    pthread_create(&ta, NULL, abs_accepter_main, &st), 0);
		ck_assert_msg(test_wait_blocked(&st.accepter_tid,
		                                &st.accepter_done, WAIT_MS),
		              "accept did not block on an empty backlog");
	} else {
		ck_assert_int_eq(
		    pthread_create(&ta, NULL, abs_accepter_main, &st), 0);
		ck_assert_msg(test_wait_blocked(&st.accepter_tid,
		                                &st.accepter_done, WAIT_MS),
		              "accept did not block on an empty backlog");
		ck_assert_int_eq(
		    pthread_create(&ts, NULL, abs_setter_main, &st), 0);
		ck_assert_msg(test_wait_blocked(&st.setter_tid,
		                                &st.setter_done, WAIT_MS),
		              "the setter did not wait for the old callback");
	}
	/* A new attempt: it must end the accept, though the setter sleeps
	 * too and the old callback still runs. */
	ck_assert_int_eq(polyclient_connect(second, st.srv), 0);
	ck_assert_msg(sem_wait_ms(&st.accepted, WAIT_MS),
	              "accept stayed blocked with an attempt pending while a "
	              "notifier setter waited");
	ck_assert_int_eq(st.accept_ret, 0);
	/* The setter still waits for the callback it replaced. */
	ck_assert_int_eq(atomic_load(&st.setter_done), 0);
	sem_post(&st.release);
	ck_assert_int_eq(pthread_join(tc, NULL), 0);
	ck_assert_int_eq(pthread_join(ts, NULL), 0);
	ck_assert_int_eq(pthread_join(ta, NULL), 0);
	ck_assert_int_eq(c.ret, 0);
	/* The second attempt's transition found the new callback set. */
	ck_assert_int_eq(atomic_load(&st.new_calls), 1);
	polyendpoint_close(&first);
	polyendpoint_close(&st.ep);
	polyclient_close(c.cl);
	polyclient_close(second);
	polyserver_close(st.srv);
	sem_destroy(&st.entered);
	sem_destroy(&st.release);
	sem_destroy(&st.accepted);
}
END_TEST

/*
 * A call that sleeps and then succeeds leaves errno as it was: accept
 * and the synchronous endpoint wait, with no limit and with one (_i),
 * even when a signal made a system call of theirs fail meanwhile.
 */
#define ERRNO_SENTINEL 4242

struct errno_call {
	polyserver *srv;
	polyclient *cl;
	bool endpoint; /* else accept */
	int timeout_ms;
	polyendpoint ep;
	int ret, err;
	atomic_long tid;
	atomic_int done;
};

static void *
errno_call_main(void *arg)
{
	struct errno_call *c = arg;

	atomic_store(&c->tid, test_tid());
	errno = ERRNO_SENTINEL;
	if (c->endpoint)
		c->ret = polyclient_endpoint(c->cl, &c->ep, c->timeout_ms);
	else
		c->ret = polyserver_accept(c->srv, &c->ep, c->timeout_ms);
	c->err = errno;
	atomic_store(&c->done, 1);
	return NULL;
}

START_TEST(test_polyserver_accept_keeps_errno)
{
	struct errno_call c = { .srv = new_server(),
		                .timeout_ms = _i == 0 ? -1 : WAIT_MS };
	polyclient *cl = new_client(1);
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, errno_call_main, &c), 0);
	ck_assert_msg(test_wait_blocked(&c.tid, &c.done, WAIT_MS),
	              "accept did not block on an empty backlog");
	/* A system call that fails (EINTR) inside the wait: not the
	 * caller's business. */
	test_interrupt(t);
	ck_assert_msg(test_wait_blocked(&c.tid, &c.done, WAIT_MS),
	              "accept did not block again after a signal");
	ck_assert_int_eq(polyclient_connect(cl, c.srv), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(c.ret, 0);
	ck_assert_int_eq(c.err, ERRNO_SENTINEL);
	polyendpoint_close(&c.ep);
	polyclient_close(cl);
	polyserver_close(c.srv);
}
END_TEST

START_TEST(test_polyclient_endpoint_keeps_errno)
{
	struct errno_call c = { .srv = new_server(),
		                .endpoint = true,
		                .timeout_ms = _i == 0 ? -1 : WAIT_MS };
	polyendpoint ep;
	pthread_t t;

	c.cl = pending_client(c.srv, 1);
	ck_assert_int_eq(pthread_create(&t, NULL, errno_call_main, &c), 0);
	ck_assert_msg(test_wait_blocked(&c.tid, &c.done, WAIT_MS),
	              "the endpoint wait did not block while pending");
	test_interrupt(t);
	ck_assert_msg(test_wait_blocked(&c.tid, &c.done, WAIT_MS),
	              "the endpoint wait did not block again after a signal");
	ck_assert_int_eq(polyserver_accept(c.srv, &ep, 0), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(c.ret, 0);
	ck_assert_int_eq(c.err, ERRNO_SENTINEL);
	polyendpoint_close(&ep);
	polyclient_close(c.cl);
	polyserver_close(c.srv);
}
END_TEST

/* --- a connect handed to an accept that waits ----------------------- */

/* An accept_many call in a thread of its own, whose sleep the test can
 * see (test_wait_blocked). */
struct waiting_accept {
	polyserver *srv;
	polyendpoint eps[4];
	size_t max;
	int timeout_ms;
	ssize_t n;
	int err;
	atomic_long tid;
	atomic_int done;
};

static void *
waiting_accept_main(void *arg)
{
	struct waiting_accept *w = arg;

	atomic_store(&w->tid, test_tid());
	errno = 0;
	w->n = polyserver_accept_many(w->srv, w->eps, w->max, w->timeout_ms);
	w->err = errno;
	atomic_store(&w->done, 1);
	return NULL;
}

static void
waiting_accept_start(struct waiting_accept *w, pthread_t *t)
{
	spawn(t, waiting_accept_main, w);
	ck_assert_msg(test_wait_blocked(&w->tid, &w->done, WAIT_MS),
	              "accept did not block on an empty backlog");
}

/*
 * A connect to a server whose accept waits is accepted by the connect
 * itself, by handle (_i 0) or by name (_i 1): when polyclient_connect
 * returns, the decision is complete on the connecting thread (its
 * notifier ran there, the endpoint and the descriptor are there), the
 * backlog never held the attempt, the accept notifier still saw its
 * edge, and the accept that waited returns the connection.
 */
START_TEST(test_polyserver_accept_waiting_takes_connect)
{
	struct waiting_accept w = { .srv = new_server(),
		                    .max = 1,
		                    .timeout_ms = _i == 0 ? -1 : WAIT_MS };
	polyclient *cl = new_client(1);
	struct note cn, sn;
	polyendpoint ep;
	pthread_t t;
	void *m;

	note_init(&cn);
	note_init(&sn);
	if (_i == 1)
		ck_assert_int_eq(polyserver_bind(w.srv, "handed"), 0);
	ck_assert_int_eq(polyserver_set_accept_notify(w.srv, note_fn, &sn), 0);
	ck_assert_int_eq(polyclient_set_connect_notify(cl, note_fn, &cn), 0);
	waiting_accept_start(&w, &t);
	ck_assert_int_eq(_i == 1 ? polyclient_connect_name(cl, "handed")
	                         : polyclient_connect(cl, w.srv),
	                 0);
	ck_assert_int_eq(note_calls(&cn), 1);
	ck_assert(pthread_equal(cn.thread, pthread_self()));
	ck_assert_int_eq(polyclient_endpoint(cl, &ep, 0), 0);
	ck_assert(fd_readable(polyclient_connect_fd(cl)));
	ck_assert(!polyserver_pending(w.srv));
	ck_assert(!fd_readable(polyserver_accept_fd(w.srv)));
	ck_assert_int_eq(note_calls(&sn), 1);
	ck_assert_int_eq(polypipe_write(ep.wr, (void *)(uintptr_t)7, 0), 0);
	join(t);
	ck_assert_int_eq(w.n, 1);
	ck_assert_int_eq(polypipe_read(w.eps[0].rd, &m, WAIT_MS), 1);
	ck_assert_ptr_eq(m, (void *)(uintptr_t)7);
	assert_passes(w.eps[0].wr, ep.rd, 8);
	/* Taken once: nothing is left to accept. */
	ck_assert_int_eq(polyserver_accept(w.srv, &ep, 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	polyendpoint_close(&w.eps[0]);
	polyclient_close(cl);
	polyserver_close(w.srv);
}
END_TEST

static void
close_client_note(void *arg)
{
	polyclient_close(arg);
}

/* A connect notifier that closes its client, run inside the connect
 * that a waiting accept took: the connect returns 0 and the accept
 * returns the connection, whose peer has closed. */
START_TEST(test_polyserver_accept_waiting_notifier_closes)
{
	struct waiting_accept w = { .srv = new_server(),
		                    .max = 1,
		                    .timeout_ms = WAIT_MS };
	polyclient *cl = new_client(1);
	pthread_t t;
	void *m;

	ck_assert_int_eq(
	    polyclient_set_connect_notify(cl, close_client_note, cl), 0);
	waiting_accept_start(&w, &t);
	ck_assert_int_eq(polyclient_connect(cl, w.srv), 0);
	join(t);
	ck_assert_int_eq(w.n, 1);
	ck_assert_int_eq(polypipe_read(w.eps[0].rd, &m, WAIT_MS), 0);
	ck_assert_int_eq(polypipe_write(w.eps[0].wr, &m, 0), -1);
	ck_assert_int_eq(errno, EPIPE);
	polyendpoint_close(&w.eps[0]);
	polyserver_close(w.srv);
}
END_TEST

/*
 * An accept_many that waits takes the first attempt from its connect,
 * and those queued behind it in the same call, if they came before it
 * ran; whatever it leaves stays in the backlog.  Either way the
 * connections come out in the order of the connects.
 */
START_TEST(test_polyserver_accept_many_handed_keeps_order)
{
	struct waiting_accept w = { .srv = new_server(),
		                    .max = 4,
		                    .timeout_ms = WAIT_MS };
	polyclient *cl[3];
	polyendpoint ep;
	size_t n, i;
	pthread_t t;
	void *m;

	waiting_accept_start(&w, &t);
	for (i = 0; i < 3; i++) {
		cl[i] = new_client(1);
		ck_assert_int_eq(polyclient_connect(cl[i], w.srv), 0);
		ck_assert_int_eq(polyclient_endpoint_async(cl[i], &ep), 0);
		ck_assert_int_eq(
		    polypipe_write(ep.wr, (void *)(uintptr_t)(i + 1), 0), 0);
	}
	/* The first is accepted already. */
	ck_assert_int_eq(polyclient_endpoint(cl[0], &ep, 0), 0);
	join(t);
	ck_assert_int_ge(w.n, 1);
	ck_assert_int_le(w.n, 3);
	n = (size_t)w.n;
	if (n < 3)
		ck_assert_int_eq(
		    polyserver_accept_many(w.srv, w.eps + n, 4 - n, 0),
		    (ssize_t)(3 - n));
	ck_assert(!polyserver_pending(w.srv));
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(polyclient_endpoint(cl[i], &ep, 0), 0);
		ck_assert_int_eq(polypipe_read(w.eps[i].rd, &m, 0), 1);
		ck_assert_ptr_eq(m, (void *)(uintptr_t)(i + 1));
		polyendpoint_close(&w.eps[i]);
		polyclient_close(cl[i]);
	}
	polyserver_close(w.srv);
}
END_TEST

/* An accept that timed out, or never waited, takes nothing later: the
 * next attempt waits in the backlog. */
START_TEST(test_polyserver_accept_timed_out_takes_nothing)
{
	polyserver *srv = new_server();
	polyclient *cl = new_client(1);
	polyendpoint ep;

	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(polyserver_accept(srv, &ep, 1), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_int_eq(polyclient_connect(cl, srv), 0);
	ck_assert(polyserver_pending(srv));
	ck_assert_int_eq(polyclient_endpoint(cl, &ep, 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(polyserver_accept(srv, &ep, 0), 0);
	polyendpoint_close(&ep);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

/* Whether *done is set within timeout_ms, looked at every 200 us. */
static bool
wait_done(atomic_int *done, int timeout_ms)
{
	struct timespec pause = { .tv_nsec = 200000 };
	int64_t t0 = now_ms();

	while (!atomic_load(done)) {
		if (now_ms() - t0 >= timeout_ms)
			return false;
		nanosleep(&pause, NULL);
	}
	return true;
}

/* Three accepts asleep without a time limit: a shutdown wakes each
 * (first, middle and last on the server's list) with ESHUTDOWN, and the
 * connects after it are refused rather than handed to them. */
START_TEST(test_polyserver_shutdown_wakes_waiting_accepts)
{
	polyserver *srv = new_server();
	struct waiting_accept w[3] = {
		{ .srv = srv, .max = 1, .timeout_ms = -1 },
		{ .srv = srv, .max = 4, .timeout_ms = -1 },
		{ .srv = srv, .max = 1, .timeout_ms = -1 },
	};
	polyclient *cl = new_client(1);
	pthread_t t[3];
	int i;

	for (i = 0; i < 3; i++)
		waiting_accept_start(&w[i], &t[i]);
	ck_assert_int_eq(polyserver_shutdown(srv), 0);
	for (i = 0; i < 3; i++) {
		ck_assert_msg(wait_done(&w[i].done, WAIT_MS),
		              "accept %d still asleep after shutdown", i);
		join(t[i]);
		ck_assert_int_eq(w[i].n, -1);
		ck_assert_int_eq(w[i].err, ESHUTDOWN);
	}
	ck_assert_int_eq(polyclient_connect(cl, srv), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);
	polyclient_close(cl);
	polyserver_close(srv);
}
END_TEST

/*
 * Accepts with 1 ms timeouts in two threads against a stream of
 * connects: an accept that times out as a connect hands it an attempt
 * must still return it.  Every attempt is accepted exactly once, and in
 * each accepting thread in the order of the connects.
 */
#define RACE_CONNS 4000

struct race_accept {
	polyserver *srv;
	atomic_int *stop;
	unsigned char *seen;
	uintptr_t last; /* the last request this thread saw */
	int order_errors;
	int timeouts;
};

static void *
race_accept_main(void *arg)
{
	struct race_accept *r = arg;
	polyendpoint ep;
	void *m;
	bool stop;

	for (;;) {
		stop = atomic_load(r->stop) != 0;
		if (polyserver_accept(r->srv, &ep, stop ? 0 : 1) < 0) {
			if (errno == ETIMEDOUT) {
				r->timeouts++;
				continue;
			}
			ck_assert_int_eq(errno, EAGAIN);
			if (stop)
				return NULL;
			continue;
		}
		ck_assert_int_eq(polypipe_read(ep.rd, &m, WAIT_MS), 1);
		ck_assert_uint_lt((uintptr_t)m, RACE_CONNS);
		r->seen[(uintptr_t)m]++;
		if ((uintptr_t)m + 1 <= r->last)
			r->order_errors++;
		r->last = (uintptr_t)m + 1;
		polyendpoint_close(&ep);
	}
}

START_TEST(test_polyserver_accept_timeouts_race_connects)
{
	static unsigned char seen[2][RACE_CONNS];
	polyserver *srv = new_server();
	polyclient **cl = calloc(RACE_CONNS, sizeof *cl);
	atomic_int stop = 0;
	struct race_accept r[2];
	polyendpoint ep;
	pthread_t t[2];
	uintptr_t i;
	int k;

	ck_assert_ptr_nonnull(cl);
	memset(seen, 0, sizeof seen);
	for (k = 0; k < 2; k++) {
		r[k] = (struct race_accept){ .srv = srv,
			                     .stop = &stop,
			                     .seen = seen[k] };
		spawn(&t[k], race_accept_main, &r[k]);
	}
	for (i = 0; i < RACE_CONNS; i++) {
		cl[i] = new_client(1);
		ck_assert_int_eq(polyclient_connect(cl[i], srv), 0);
		ck_assert_int_eq(polyclient_endpoint_async(cl[i], &ep), 0);
		ck_assert_int_eq(polypipe_write(ep.wr, (void *)i, 0), 0);
		/* Now and then a pause of a few timeouts' length, so that
		 * accepts time out, some as this connects. */
		if (i % 256 == 255) {
			struct timespec pause = { .tv_nsec = 1000000 };

			nanosleep(&pause, NULL);
		}
	}
	atomic_store(&stop, 1);
	for (k = 0; k < 2; k++) {
		join(t[k]);
		ck_assert_int_eq(r[k].order_errors, 0);
	}
	for (i = 0; i < RACE_CONNS; i++) {
		ck_assert_msg(seen[0][i] + seen[1][i] == 1,
		              "attempt %lu accepted %d times",
		              (unsigned long)i, seen[0][i] + seen[1][i]);
		ck_assert_int_eq(polyclient_endpoint(cl[i], &ep, 0), 0);
		polyclient_close(cl[i]);
	}
	ck_assert(!polyserver_pending(srv));
	free(cl);
	polyserver_close(srv);
}
END_TEST

/*
 * Runs in a child that any system call but exit_group kills: with no
 * descriptor asked for and nobody asleep, a connection costs none,
 * connected by handle or by name, with one request and reply or none
 * (_i: 0 by handle, 1 by name, 2 by handle with messages).
 */
static void
connect_child(polyserver *srv, const char *name, bool messages)
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
	polyendpoint ep, sep;
	polyclient *cl;
	void *m = NULL;
	int bad = 0;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		_exit(77);
	for (int k = 0; k < 3; k++) {
		cl = polyclient_create(2);
		bad += cl == NULL;
		if (cl == NULL)
			break;
		bad += (name != NULL ? polyclient_connect_name(cl, name)
		                     : polyclient_connect(cl, srv)) != 0;
		bad += polyserver_accept(srv, &sep, 0) != 0;
		bad += polyclient_endpoint(cl, &ep, 0) != 0;
		if (messages) {
			bad += polypipe_write(ep.wr, MSG(1), 0) != 0;
			bad += polypipe_read(sep.rd, &m, 0) != 1;
			bad += polypipe_write(sep.wr, MSG(2), 0) != 0;
			bad += polypipe_read(ep.rd, &m, 0) != 1;
			bad += MSGVAL(m) != 2;
		}
		polyendpoint_close(&sep);
		polyclient_close(cl);
	}
	syscall(SYS_exit_group, bad == 0 ? 0 : 1);
}

START_TEST(test_polysocket_connect_no_syscall)
{
	const char *preload = getenv("LD_PRELOAD");
	const char *name = _i == 1 ? "no-syscall" : NULL;
	polyserver *srv = new_server();
	polyendpoint ep, sep;
	polyclient *cl;
	int status;
	pid_t pid;

	if (preload != NULL && strstr(preload, "vgpreload") != NULL) {
		fprintf(stderr, "test_polysocket_connect_no_syscall: skipped "
		                "under valgrind\n");
		polyserver_close(srv);
		return;
	}
	/* check_main.c puts the seed there in a chaos build, whose points
	 * yield and sleep. */
	if (getenv("POLYSOCKET_CHAOS_SEED") != NULL) {
		fprintf(stderr, "test_polysocket_connect_no_syscall: skipped "
		                "in a chaos build\n");
		polyserver_close(srv);
		return;
	}
	if (name != NULL)
		ck_assert_int_eq(polyserver_bind(srv, name), 0);
	/* Warm up: the memory the calls need exists, freed, and the
	 * process-wide set-up (membarrier) is done. */
	for (int k = 0; k < 3; k++) {
		cl = pending_client(srv, 2);
		ck_assert_int_eq(polyserver_accept(srv, &sep, 0), 0);
		ck_assert_int_eq(polyclient_endpoint(cl, &ep, 0), 0);
		ck_assert_int_eq(polypipe_write(ep.wr, MSG(1), 0), 0);
		ck_assert_int_eq(polypipe_write(sep.wr, MSG(2), 0), 0);
		polyendpoint_close(&sep);
		polyclient_close(cl);
	}
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		connect_child(srv, name, _i == 2);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(!WIFSIGNALED(status),
	              "a connection made a system call (killed by %s): %s",
	              strsignal(WTERMSIG(status)),
	              _i == 0   ? "by handle"
	              : _i == 1 ? "by name"
	                        : "by handle, with a request and a reply");
	ck_assert(WIFEXITED(status));
	ck_assert_msg(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 77,
	              "the calls failed in the child");
	if (WEXITSTATUS(status) == 77)
		fprintf(stderr, "test_polysocket_connect_no_syscall: skipped, "
		                "seccomp not available\n");
	polyserver_close(srv);
}
END_TEST

/*
 * 2,000 live connections between two threads, each used once, then all
 * closed: valgrind (make check-valgrind) sees nothing left.
 */
#define MANY_CONNS 2000

struct many_conns {
	polyserver *srv;
	polyendpoint eps[MANY_CONNS];
	long accepted, served;
	int err;
};

static void *
many_conns_server(void *arg)
{
	struct many_conns *m = arg;
	ssize_t n;
	void *msg;

	while (m->accepted < MANY_CONNS) {
		n = polyserver_accept_many(m->srv, m->eps + m->accepted,
		                           MANY_CONNS - (size_t)m->accepted,
		                           WAIT_MS);
		if (n < 0) {
			m->err = errno;
			return NULL;
		}
		m->accepted += n;
	}
	/* Every connection carries its number, answered doubled. */
	for (long i = 0; i < MANY_CONNS; i++) {
		if (polypipe_read(m->eps[i].rd, &msg, WAIT_MS) != 1 ||
		    polypipe_write(m->eps[i].wr, MSG(2 * MSGVAL(msg)),
		                   WAIT_MS) != 0) {
			m->err = errno;
			return NULL;
		}
		m->served++;
	}
	return NULL;
}

START_TEST(test_polysocket_many_connections)
{
	struct many_conns *m = calloc(1, sizeof *m);
	polyclient **cls = calloc(MANY_CONNS, sizeof *cls);
	polyendpoint ep;
	pthread_t t;
	void *msg;

	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(cls);
	m->srv = new_server();
	ck_assert_int_eq(pthread_create(&t, NULL, many_conns_server, m), 0);
	for (long i = 0; i < MANY_CONNS; i++) {
		cls[i] = pending_client(m->srv, 1);
		/* Written before the accept: buffered until then. */
		ck_assert_int_eq(polyclient_endpoint_async(cls[i], &ep), 0);
		ck_assert_int_eq(polypipe_write(ep.wr, MSG(i), 0), 0);
	}
	for (long i = 0; i < MANY_CONNS; i++) {
		ck_assert_int_eq(polyclient_endpoint(cls[i], &ep, WAIT_MS), 0);
		ck_assert_int_eq(polypipe_read(ep.rd, &msg, WAIT_MS), 1);
		ck_assert_uint_eq(MSGVAL(msg), 2 * (uintptr_t)i);
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(m->err, 0);
	ck_assert_int_eq(m->accepted, MANY_CONNS);
	ck_assert_int_eq(m->served, MANY_CONNS);
	/* Half the clients close first, half after their server side. */
	for (long i = 0; i < MANY_CONNS; i += 2)
		polyclient_close(cls[i]);
	for (long i = 0; i < MANY_CONNS; i++)
		polyendpoint_close(&m->eps[i]);
	for (long i = 1; i < MANY_CONNS; i += 2)
		polyclient_close(cls[i]);
	polyserver_close(m->srv);
	free(cls);
	free(m);
}
END_TEST

Suite *
polysocket_suite(void)
{
	Suite *s = suite_create("polysocket");
	TCase *tc;

	tc = new_tcase(s, "server", 20);
	tcase_add_test(tc, test_polyserver_create);
	tcase_add_test(tc, test_polyserver_create_unbounded_backlog);
	tcase_add_test(tc, test_polyserver_set_backlog_einval);
	tcase_add_test(tc, test_polyserver_set_backlog_limits);
	tcase_add_test(tc, test_polyserver_set_backlog_lower_keeps_pending);
	tcase_add_test(tc, test_polyserver_set_backlog_after_shutdown);
	tcase_add_test(tc, test_polyserver_accept_blocking);
	tcase_add_test(tc, test_polyserver_accept_oldest_first);
	tcase_add_test(tc, test_polyserver_accept_timeout_zero);
	tcase_add_test(tc, test_polyserver_accept_timed);
	tcase_add_test(tc, test_polyserver_accept_timed_succeeds);
	tcase_add_test(tc, test_polyserver_accept_eshutdown);
	tcase_add_test(tc, test_polyserver_accept_woken_by_shutdown);
	tcase_add_test(tc, test_polyserver_accept_einval);
	tcase_add_test(tc, test_polyserver_accept_many);
	tcase_add_test(tc, test_polyserver_accept_many_completes_clients);
	tcase_add_test(tc, test_polyserver_accept_many_waits);
	tcase_add_test(tc, test_polyserver_accept_many_einval);
	tcase_add_test(tc, test_polyserver_null_handle);

	tc = new_tcase(s, "refuse", 20);
	tcase_add_test(tc, test_polyserver_refuse_every_form);
	tcase_add_test(tc, test_polyserver_refuse_wakes_waiting_client);
	tcase_add_test(tc,
	               test_polyserver_refuse_notifier_from_refusing_thread);
	tcase_add_test(tc, test_polyserver_refuse_blocks_new_connects);
	tcase_add_test(tc, test_polyserver_refuse_ended_by_failed_accept);
	tcase_add_test(tc, test_polyserver_refuse_ended_by_timed_out_accept);
	tcase_add_test(tc, test_polyserver_refuse_ended_by_accept_many);
	tcase_add_test(tc, test_polyserver_refuse_then_accept);
	tcase_add_test(tc, test_polyserver_refuse_destroys_async_messages);
	tcase_add_test(tc, test_polyserver_refuse_after_shutdown);
	tcase_add_test(tc, test_polyclient_refused_for_good);

	tc = new_tcase(s, "readiness", 20);
	tcase_add_test(tc, test_polyserver_pending);
	tcase_add_test(tc, test_polyserver_accept_fd_level);
	tcase_add_test(tc, test_polyserver_accept_fd_created_late);
	tcase_add_test(tc, test_polyserver_accept_fd_refuse);
	tcase_add_test(tc, test_polyserver_accept_fd_wakes_poll);
	tcase_add_test(tc, test_polyserver_accept_notify_edge);
	tcase_add_test(tc, test_polyserver_accept_notify_after_refuse);
	tcase_add_test(tc,
	               test_polyserver_accept_notify_from_connecting_thread);
	tcase_add_test(tc, test_polyserver_accept_notify_shutdown_once);
	tcase_add_test(tc, test_polyserver_accept_notify_removed);
	tcase_add_test(tc, test_polyserver_close_skips_accept_notify);

	tc = new_tcase(s, "backlog", 20);
	tcase_add_test(tc, test_polyserver_backlog_full);
	tcase_add_test(tc, test_polyserver_backlog_freed_by_refuse);
	tcase_add_test(tc, test_polyserver_backlog_freed_by_close);
	tcase_add_test(tc, test_polyserver_backlog_accept_notify);

	tc = new_tcase(s, "names", 20);
	tcase_add_test(tc, test_polyserver_bind_connect_name);
	tcase_add_test(tc, test_polyserver_bind_eaddrinuse);
	tcase_add_test(tc, test_polyserver_bind_einval);
	tcase_add_test(tc, test_polyserver_bind_name_length);
	tcase_add_test(tc, test_polyserver_bind_after_shutdown);
	tcase_add_test(tc, test_polyserver_bind_released_at_shutdown);
	tcase_add_test(tc, test_polyserver_bind_released_at_close);
	tcase_add_test(tc, test_polyclient_connect_name_unbound);
	tcase_add_test(tc, test_polyclient_connect_name_einval);
	tcase_add_test(tc, test_polyclient_connect_name_refusing);

	tc = new_tcase(s, "client", 20);
	tcase_add_test(tc, test_polyclient_create);
	tcase_add_test(tc, test_polyclient_connect_einval);
	tcase_add_test(tc, test_polyclient_connect_ealready);
	tcase_add_test(tc, test_polyclient_connect_eisconn);
	tcase_add_test(tc, test_polyclient_connect_eisconn_after_server_close);
	tcase_add_test(tc, test_polyclient_connect_shut_down);
	tcase_add_test(tc, test_polyclient_connect_eagain_leaves_free);
	tcase_add_test(tc, test_polyclient_connect_refusing_leaves_free);
	tcase_add_test(tc, test_polyclient_endpoint_enotconn);
	tcase_add_test(tc, test_polyclient_endpoint_einval);
	tcase_add_test(tc, test_polyclient_endpoint_waits);
	tcase_add_test(tc, test_polyclient_endpoint_async_before_accept);
	tcase_add_test(tc, test_polyclient_endpoint_same_pipes);
	tcase_add_test(tc, test_polyclient_endpoint_crossed);
	tcase_add_test(tc, test_polyclient_endpoint_capacity);
	tcase_add_test(tc, test_polyclient_connect_fd);
	tcase_add_test(tc, test_polyclient_connect_fd_refused);
	tcase_add_test(tc, test_polyclient_connect_fd_created_late);
	tcase_add_test(tc, test_polyclient_connect_fd_wakes_poll);
	tcase_add_test(tc,
	               test_polyclient_connect_notify_from_accepting_thread);
	tcase_add_test(tc, test_polyclient_connect_notify_after_decision);
	tcase_add_test(tc, test_polyclient_connect_notify_endpoint_inside);
	tcase_add_test(tc, test_polyclient_connect_notify_refused_inside);
	tcase_add_test(tc, test_polyclient_connect_notify_removed);
	tcase_add_test(tc, test_polyclient_connect_notify_set_during_accept);

	tc = new_tcase(s, "close", 20);
	tcase_add_test(tc, test_polyclient_close_withdraws);
	tcase_add_test(tc, test_polyclient_close_withdraws_first_of_two);
	tcase_add_test(tc, test_polyclient_close_destroys_async_messages);
	tcase_add_test(tc, test_polyclient_close_peer_sees_eof);
	tcase_add_test(tc, test_polyclient_close_destroys_unread_replies);
	tcase_add_test(tc, test_polyendpoint_close);
	tcase_add_test(tc, test_polysocket_close_null);
	tcase_add_test(tc, test_polyclient_close_unused);
	tcase_add_test(tc, test_polyserver_shutdown_idempotent);
	tcase_add_test(tc, test_polyserver_shutdown_keeps_accepted);
	tcase_add_test(tc, test_polyserver_close_client_outlives);
	tcase_add_test(tc, test_polyserver_close_wakes_waiting_client);
	tcase_add_test(tc, test_polysocket_version);

	tc = new_tcase(s, "storm", 20);
	tcase_add_test(tc, test_polysocket_storm);

	tc = new_tcase(s, "waits", 30);
	tcase_add_loop_test(
	    tc, test_polyserver_accept_wakes_beside_notify_setter, 0, 2);
	tcase_add_loop_test(tc, test_polyserver_accept_keeps_errno, 0, 2);
	tcase_add_loop_test(tc, test_polyclient_endpoint_keeps_errno, 0, 2);

	tc = new_tcase(s, "handed", 30);
	tcase_add_loop_test(tc, test_polyserver_accept_waiting_takes_connect,
	                    0, 2);
	tcase_add_test(tc, test_polyserver_accept_waiting_notifier_closes);
	tcase_add_test(tc, test_polyserver_accept_many_handed_keeps_order);
	tcase_add_test(tc, test_polyserver_accept_timed_out_takes_nothing);
	tcase_add_test(tc, test_polyserver_shutdown_wakes_waiting_accepts);
	tcase_add_test(tc, test_polyserver_accept_timeouts_race_connects);

	tc = new_tcase(s, "cost", 30);
	tcase_add_loop_test(tc, test_polysocket_connect_no_syscall, 0, 3);
	tcase_add_test(tc, test_polysocket_many_connections);
	return s;
}
