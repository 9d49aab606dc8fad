/*
 * check_sync.c - the eventcount (common/sync.h) on its own, in orders of
 * events that the stress suite meets only by chance: a wake-up that
 * comes between a sleeper's registration and its sleep, and wake-ups
 * that find their sleepers already in the kernel.
 *
 * Built with the library's sources, as check_faults is, to reach the
 * internal functions.  A lost wake-up shows as a sleep that lasts until
 * its deadline (LONG_MS), a pass as one that returns well before it.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "common/sync.h"
#include "tests/testutil.h"

/* A sleep that reaches this deadline was not woken. */
#define LONG_MS 5000
/* A woken sleep returns well within this. */
#define SHORT_MS 2000

static uint32_t
ec_sleepers(struct psync_ec *ec)
{
	return (uint32_t)(atomic_load(&ec->word) >> 32);
}

static uint32_t
ec_seq(struct psync_ec *ec)
{
	return (uint32_t)atomic_load(&ec->word);
}

/* A wake-up between the registration and the sleep: the sleep returns
 * at once, as the waker moved the number it sleeps on. */
START_TEST(test_ec_wake_before_sleep_not_lost)
{
	struct psync_ec ec = { 0 };
	struct psync_timer t = psync_timer(LONG_MS);
	uint32_t seq = psync_ec_prepare(&ec);
	int64_t t0;
	int err;

	ck_assert_uint_eq(ec_sleepers(&ec), 1);
	psync_ec_wake(&ec, false);
	ck_assert_uint_ne(ec_seq(&ec), seq);
	ck_assert_uint_eq(ec_sleepers(&ec), 0); /* the waker took it off */
	t0 = now_ms();
	err = psync_ec_sleep(&ec, seq, &t);
	ck_assert_int_eq(err, 0);
	ck_assert_int_lt(now_ms() - t0, SHORT_MS);
	ck_assert_uint_eq(ec_sleepers(&ec), 0);
}
END_TEST

/* A registration taken back leaves nobody to wake: a later wake-up
 * leaves the word alone (no read-modify-write, no system call). */
START_TEST(test_ec_cancel_then_wake_untouched)
{
	struct psync_ec ec = { 0 };
	uint32_t seq = psync_ec_prepare(&ec);
	uint64_t w;

	psync_ec_cancel(&ec, seq);
	ck_assert_uint_eq(ec_sleepers(&ec), 0);
	w = atomic_load(&ec.word);
	psync_ec_wake(&ec, true);
	psync_ec_wake(&ec, false);
	ck_assert_uint_eq(atomic_load(&ec.word), w);
}
END_TEST

/* A sleep with nobody to wake it lasts until its deadline. */
START_TEST(test_ec_sleep_times_out)
{
	struct psync_ec ec = { 0 };
	struct psync_timer t = psync_timer(50);
	uint32_t seq = psync_ec_prepare(&ec);
	int64_t t0 = now_ms();

	ck_assert_int_eq(psync_ec_sleep(&ec, seq, &t), ETIMEDOUT);
	ck_assert_int_ge(now_ms() - t0, 50);
	ck_assert_uint_eq(ec_sleepers(&ec), 0);
}
END_TEST

/* --- sleepers already in the kernel ------------------------------------ */

struct sleeper {
	struct psync_ec *ec;
	pthread_t thread;
	atomic_long tid;
	atomic_int done;
	int err;
	int64_t ms; /* how long the sleep lasted */
};

static void *
sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	struct psync_timer t = psync_timer(LONG_MS);
	uint32_t seq = psync_ec_prepare(s->ec);
	int64_t t0 = now_ms();

	atomic_store(&s->tid, test_tid());
	s->err = psync_ec_sleep(s->ec, seq, &t);
	s->ms = now_ms() - t0;
	atomic_store(&s->done, 1);
	return NULL;
}

/* Starts n sleepers and returns once each is registered and asleep in
 * futex(2), so that only a futex wake-up can end their sleep. */
static void
start_sleepers(struct psync_ec *ec, struct sleeper *s, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		s[i].ec = ec;
		ck_assert_int_eq(
		    pthread_create(&s[i].thread, NULL, sleeper_main, &s[i]),
		    0);
	}
	for (i = 0; i < n; i++)
		ck_assert_msg(
		    test_wait_blocked(&s[i].tid, &s[i].done, SHORT_MS),
		    "sleeper %d not asleep after %d ms", i, SHORT_MS);
	ck_assert_uint_eq(ec_sleepers(ec), (uint32_t)n);
}

/* Joins the sleepers: each was woken, none reached its deadline. */
static void
join_woken(struct sleeper *s, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		ck_assert_int_eq(pthread_join(s[i].thread, NULL), 0);
		ck_assert_int_eq(s[i].err, 0);
		ck_assert_int_lt(s[i].ms, LONG_MS);
	}
}

/* A wake-all reaches every sleeper in the kernel. */
START_TEST(test_ec_wake_all_wakes_every_sleeper)
{
	struct psync_ec ec = { 0 };
	struct sleeper s[3] = { 0 };

	start_sleepers(&ec, s, 3);
	psync_ec_wake(&ec, true);
	ck_assert_uint_eq(ec_sleepers(&ec), 0);
	join_woken(s, 3);
}
END_TEST

/* A wake-one takes one sleeper off the count and wakes one; the next
 * wakes the other. */
START_TEST(test_ec_wake_one_wakes_one)
{
	struct psync_ec ec = { 0 };
	struct sleeper s[2] = { 0 };
	int64_t until;

	start_sleepers(&ec, s, 2);
	psync_ec_wake(&ec, false);
	ck_assert_uint_eq(ec_sleepers(&ec), 1);
	until = now_ms() + SHORT_MS;
	while (!atomic_load(&s[0].done) && !atomic_load(&s[1].done) &&
	       now_ms() < until)
		sched_yield();
	ck_assert_msg(atomic_load(&s[0].done) != atomic_load(&s[1].done),
	              "a wake-one woke %s",
	              atomic_load(&s[0].done) ? "both" : "nobody");
	psync_ec_wake(&ec, false);
	ck_assert_uint_eq(ec_sleepers(&ec), 0);
	join_woken(s, 2);
}
END_TEST

Suite *sync_suite(void);

Suite *
sync_suite(void)
{
	Suite *s = suite_create("sync");
	TCase *tc;

	tc = new_tcase(s, "eventcount", 20);
	tcase_add_test(tc, test_ec_wake_before_sleep_not_lost);
	tcase_add_test(tc, test_ec_cancel_then_wake_untouched);
	tcase_add_test(tc, test_ec_sleep_times_out);
	tcase_add_test(tc, test_ec_wake_all_wakes_every_sleeper);
	tcase_add_test(tc, test_ec_wake_one_wakes_one);
	return s;
}
