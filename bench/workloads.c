/*
 * workloads.c - one trial of one workload on one transport, and the
 * idle-CPU measurement of a blocked polypipe call.
 *
 * Every message carries its producer and sequence number, and every
 * receiver checks them: a transport that loses, duplicates or reorders
 * a message is reported and fails the run, however fast it was.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <polysocket/polypipe.h>

#include "bench/bench.h"

/* A message: the producer in the top 4 bits, the sequence number below.
 * Producer 15 is never used, so STOP cannot be a real message. */
#define SEQ_BITS (sizeof(uintptr_t) * 8 - 4)
#define SEQ_MASK (((uintptr_t)1 << SEQ_BITS) - 1)
#define STOP ((void *)UINTPTR_MAX)

static inline void *
msg_make(unsigned producer, uint64_t seq)
{
	return (void *)(((uintptr_t)producer << SEQ_BITS) | (uintptr_t)seq);
}

const char *const workload_name[WL_COUNT] = {
	"ping-pong", "streaming", "batched streaming", "MPMC 4x4", "fan-in",
};

struct trial {
	enum workload w;
	const struct transport *t;
	struct chan fwd;  /* producers to consumers */
	struct chan back; /* ping-pong: the answer */
	uint64_t count;   /* per producer */
	unsigned nprod, ncons;
	pthread_barrier_t start;
	atomic_uint producers_left;
	uint64_t *samples; /* ping-pong round trips, ns */
};

/* What one MPMC consumer saw of one producer. */
struct seen {
	uint64_t n, sum, hash;
	uint64_t last;
};

struct worker {
	struct trial *tr;
	pthread_t tid;
	unsigned id;
	int cpu;
	uint64_t t_start, t_end;
	uint64_t checked;
	struct seen seen[MPMC_THREADS];
};

/* Mixes a sequence number (splitmix64), so the XOR of all of them tells
 * a lost message from a duplicated one where a sum might not. */
static uint64_t
mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

static void
bad_message(const struct trial *tr, const char *what, uint64_t want, void *got)
{
	bench_error("%s, %s: %s: expected %#llx, got %#llx", tr->t->name,
	            workload_name[tr->w], what,
	            (unsigned long long)(uintptr_t)msg_make(0, want),
	            (unsigned long long)(uintptr_t)got);
}

static void
start_line(struct worker *wk)
{
	pin_to_cpu(wk->cpu);
	pthread_barrier_wait(&wk->tr->start);
}

static void *
pinger(void *arg)
{
	struct worker *wk = arg;
	struct trial *tr = wk->tr;
	const struct transport *t = tr->t;
	uint64_t i, t0, t1;
	void *m;

	start_line(wk);
	wk->t_start = now_ns();
	t0 = wk->t_start;
	for (i = 0; i < tr->count; i++) {
		t->send(&tr->fwd, msg_make(0, i));
		m = t->recv(&tr->back);
		/* The end of one sample is the start of the next: one clock
		 * read per round trip. */
		t1 = now_ns();
		tr->samples[i] = t1 - t0;
		t0 = t1;
		if (m != msg_make(0, i))
			bad_message(tr, "answer", i, m);
	}
	wk->t_end = t0;
	wk->checked = tr->count;
	return NULL;
}

static void *
ponger(void *arg)
{
	struct worker *wk = arg;
	struct trial *tr = wk->tr;
	const struct transport *t = tr->t;
	uint64_t i;
	void *m;

	start_line(wk);
	for (i = 0; i < tr->count; i++) {
		m = t->recv(&tr->fwd);
		if (m != msg_make(0, i)) {
			bad_message(tr, "ping", i, m);
			i = (uintptr_t)m & SEQ_MASK; /* report each once */
		}
		t->send(&tr->back, m);
	}
	wk->checked = tr->count;
	return NULL;
}

static void *
producer(void *arg)
{
	struct worker *wk = arg;
	struct trial *tr = wk->tr;
	const struct transport *t = tr->t;
	void *buf[BATCH];
	uint64_t i, j, k;
	unsigned c;

	start_line(wk);
	wk->t_start = now_ns();
	if (tr->w == WL_BATCH) {
		/* What did not fit is rebuilt from i next time round. */
		i = 0;
		while (i < tr->count) {
			k = tr->count - i < BATCH ? tr->count - i : BATCH;
			for (j = 0; j < k; j++)
				buf[j] = msg_make(wk->id, i + j);
			i += t->send_many(&tr->fwd, buf, k);
		}
	} else {
		for (i = 0; i < tr->count; i++)
			t->send(&tr->fwd, msg_make(wk->id, i));
	}
	/* The last producer to finish tells every consumer to stop: FIFO
	 * order puts the STOPs after every message. */
	if (tr->w == WL_MPMC && atomic_fetch_sub(&tr->producers_left, 1) == 1)
		for (c = 0; c < tr->ncons; c++)
			t->send(&tr->fwd, STOP);
	return NULL;
}

static void *
consumer(void *arg)
{
	struct worker *wk = arg;
	struct trial *tr = wk->tr;
	const struct transport *t = tr->t;
	void *buf[BATCH];
	uint64_t i, j, n;
	void *m;

	start_line(wk);
	if (tr->w == WL_BATCH) {
		for (i = 0; i < tr->count; i += n) {
			n = t->recv_many(&tr->fwd, buf, BATCH);
			for (j = 0; j < n; j++) {
				if (buf[j] == msg_make(0, i + j))
					continue;
				bad_message(tr, "message", i + j, buf[j]);
				/* Carry on from what came: one report per
				 * loss, and no wait for what never will. */
				i = ((uintptr_t)buf[j] & SEQ_MASK) - j;
			}
		}
		if (i != tr->count)
			bench_error("%s, %s: %llu messages instead of %llu",
			            t->name, workload_name[tr->w],
			            (unsigned long long)i,
			            (unsigned long long)tr->count);
	} else {
		for (i = 0; i < tr->count; i++) {
			m = t->recv(&tr->fwd);
			if (m != msg_make(0, i)) {
				bad_message(tr, "message", i, m);
				i = (uintptr_t)m & SEQ_MASK;
			}
		}
	}
	wk->t_end = now_ns();
	wk->checked = i;
	return NULL;
}

/* Fan-in: message i went into channel i % FANIN_PIPES, so each channel's
 * messages must come in order, i, i + FANIN_PIPES, ...; the count, with
 * every message in range and in its channel's order, rules out losses
 * and duplicates. */
static void *
fanin_consumer(void *arg)
{
	struct worker *wk = arg;
	struct trial *tr = wk->tr;
	const struct transport *t = tr->t;
	uint64_t *next = calloc(FANIN_PIPES, sizeof *next);
	void **buf = malloc(FANIN_BUF * sizeof *buf);
	uint64_t got = 0, seq;
	size_t j, n, p;

	if (next == NULL || buf == NULL)
		bench_die("out of memory");
	for (p = 0; p < FANIN_PIPES; p++)
		next[p] = p;
	start_line(wk);
	while (got < tr->count) {
		n = t->recv_many(&tr->fwd, buf, FANIN_BUF);
		if (n == 0 || n > FANIN_BUF)
			bench_die("%s: recv_many returned %zu", t->name, n);
		for (j = 0; j < n; j++) {
			seq = (uintptr_t)buf[j] & SEQ_MASK;
			p = (size_t)(seq % FANIN_PIPES);
			if (buf[j] != msg_make(0, next[p]) || seq >= tr->count)
				bad_message(tr, "message", next[p], buf[j]);
			/* Carry on from what came: one report per loss. */
			next[p] = seq + FANIN_PIPES;
		}
		got += n;
	}
	wk->t_end = now_ns();
	if (got != tr->count)
		bench_error("%s, %s: %llu messages instead of %llu", t->name,
		            workload_name[tr->w], (unsigned long long)got,
		            (unsigned long long)tr->count);
	wk->checked = got;
	free(buf);
	free(next);
	return NULL;
}

/* Each producer's messages must come to each consumer in order; all of
 * them together must be each sequence number exactly once, which
 * mpmc_verify checks from the counts, sums and hashes. */
static void *
mpmc_consumer(void *arg)
{
	struct worker *wk = arg;
	struct trial *tr = wk->tr;
	const struct transport *t = tr->t;
	struct seen *s;
	uintptr_t v;
	uint64_t seq;
	unsigned p;
	void *m;

	start_line(wk);
	for (;;) {
		m = t->recv(&tr->fwd);
		if (m == STOP)
			break;
		v = (uintptr_t)m;
		p = (unsigned)(v >> SEQ_BITS);
		seq = v & SEQ_MASK;
		if (p >= tr->nprod) {
			bad_message(tr, "producer", 0, m);
			continue;
		}
		s = &wk->seen[p];
		/* last holds seq + 1, so 0 means nothing seen yet. */
		if (seq + 1 <= s->last)
			bad_message(tr, "order", s->last, m);
		s->last = seq + 1;
		s->n++;
		s->sum += seq;
		s->hash ^= mix(seq);
		wk->checked++;
	}
	wk->t_end = now_ns();
	return NULL;
}

static void
mpmc_verify(const struct trial *tr, const struct worker *cons)
{
	uint64_t want_sum = 0, want_hash = 0, i;
	struct seen all;
	unsigned p, c;

	for (i = 0; i < tr->count; i++) {
		want_sum += i;
		want_hash ^= mix(i);
	}
	for (p = 0; p < tr->nprod; p++) {
		memset(&all, 0, sizeof all);
		for (c = 0; c < tr->ncons; c++) {
			all.n += cons[c].seen[p].n;
			all.sum += cons[c].seen[p].sum;
			all.hash ^= cons[c].seen[p].hash;
		}
		if (all.n != tr->count || all.sum != want_sum ||
		    all.hash != want_hash)
			bench_error("%s, %s: producer %u: %llu messages of "
			            "%llu arrived, or some twice",
			            tr->t->name, workload_name[tr->w], p,
			            (unsigned long long)all.n,
			            (unsigned long long)tr->count);
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void
spawn(struct worker *wk, void *(*fn)(void *))
{
	int err = pthread_create(&wk->tid, NULL, fn, wk);

	if (err != 0)
		bench_die("pthread_create: %s", strerror(err));
}

void
run_trial(enum workload w, const struct transport *t, int cpu_tx, int cpu_rx,
          uint64_t count, struct trial_result *res)
{
	struct worker wk[2 * MPMC_THREADS];
	struct trial tr = {
		.w = w, .t = t, .count = count, .nprod = 1, .ncons = 1
	};
	uint64_t start = UINT64_MAX, end = 0;
	unsigned i, n;

	memset(wk, 0, sizeof wk);
	memset(res, 0, sizeof *res);
	if (w == WL_MPMC) {
		tr.nprod = tr.ncons = MPMC_THREADS;
		tr.count = count / MPMC_THREADS;
	}
	n = tr.nprod + tr.ncons;
	atomic_init(&tr.producers_left, tr.nprod);
	tr.fwd = (struct chan){ .t = t, .pfd = -1 };
	tr.back = (struct chan){ .t = t, .pfd = -1 };
	t->open(&tr.fwd, CAPACITY);
	if (w == WL_PINGPONG) {
		t->open(&tr.back, CAPACITY);
		tr.samples = malloc(count * sizeof *tr.samples);
		if (tr.samples == NULL)
			bench_die("out of memory");
	}
	pthread_barrier_init(&tr.start, NULL, n);
	/* Producers first, consumers after them in wk[]. */
	for (i = 0; i < n; i++) {
		wk[i].tr = &tr;
		wk[i].id = i < tr.nprod ? i : i - tr.nprod;
		wk[i].cpu = i < tr.nprod ? cpu_tx : cpu_rx;
	}
	switch (w) {
	case WL_PINGPONG:
		spawn(&wk[0], pinger);
		spawn(&wk[1], ponger);
		break;
	case WL_STREAM:
	case WL_BATCH:
		spawn(&wk[0], producer);
		spawn(&wk[1], consumer);
		break;
	case WL_FANIN:
		spawn(&wk[0], producer);
		spawn(&wk[1], fanin_consumer);
		break;
	case WL_MPMC:
	default:
		for (i = 0; i < n; i++)
			spawn(&wk[i], i < tr.nprod ? producer : mpmc_consumer);
		break;
	}
	for (i = 0; i < n; i++)
		pthread_join(wk[i].tid, NULL);
	for (i = 0; i < n; i++) {
		if (i < tr.nprod && wk[i].t_start < start)
			start = wk[i].t_start;
		if (wk[i].t_end > end)
			end = wk[i].t_end;
	}
	if (w == WL_MPMC)
		mpmc_verify(&tr, &wk[tr.nprod]);
	res->ns = (double)(end - start);
	res->rate = (double)tr.count * tr.nprod / (res->ns / 1e9);
	for (i = 0; i < n; i++)
		res->checked += wk[i].checked;
	if (w == WL_PINGPONG) {
		qsort(tr.samples, count, sizeof *tr.samples, cmp_u64);
		res->median = (double)tr.samples[count / 2];
		res->p99 = (double)tr.samples[count * 99 / 100];
		free(tr.samples);
		t->close(&tr.back);
	}
	t->close(&tr.fwd);
	pthread_barrier_destroy(&tr.start);
}

/* --- a blocked call's CPU time --------------------------------------- */

struct idle_arg {
	polypipe *end;
	bool reader;
	int cpu;
};

static void *
idle_thread(void *arg)
{
	struct idle_arg *a = arg;
	void *m = NULL;

	pin_to_cpu(a->cpu);
	if (a->reader) {
		if (polypipe_read(a->end, &m, -1) != 1 || m != msg_make(0, 1))
			bench_error("idle reader: wrong message or error");
	} else if (polypipe_write(a->end, msg_make(0, 1), -1) < 0) {
		bench_error("idle writer: %s", strerror(errno));
	}
	return NULL;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
		               .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static double
thread_cpu_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) < 0)
		bench_die("clock_gettime(thread): %s", strerror(errno));
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

double
idle_cpu_ns(bool reader, int cpu, unsigned spin_ms, unsigned idle_ms,
            double *spin_ns)
{
	struct idle_arg a = { .reader = reader, .cpu = cpu };
	polypipe *rd, *wr;
	pthread_t tid;
	clockid_t id;
	double c0, c1;
	void *m = NULL;
	int err;

	/* Capacity 1, full for the writer, so both ends block at once. */
	if (polypipe_create(1, &rd, &wr) < 0)
		bench_die("polypipe_create: %s", strerror(errno));
	if (!reader && polypipe_write(wr, msg_make(0, 0), 0) < 0)
		bench_die("polypipe_write: %s", strerror(errno));
	a.end = reader ? rd : wr;
	err = pthread_create(&tid, NULL, idle_thread, &a);
	if (err == 0)
		err = pthread_getcpuclockid(tid, &id);
	if (err != 0)
		bench_die("idle thread: %s", strerror(err));
	sleep_ms(spin_ms);
	c0 = thread_cpu_ns(id);
	sleep_ms(idle_ms);
	c1 = thread_cpu_ns(id);
	/* Wake it the way a peer would, and check it got what it should. */
	if (reader) {
		if (polypipe_write(wr, msg_make(0, 1), -1) < 0)
			bench_die("polypipe_write: %s", strerror(errno));
	} else if (polypipe_read(rd, &m, -1) != 1 || m != msg_make(0, 0)) {
		bench_error("idle writer: the first message is wrong");
	}
	pthread_join(tid, NULL);
	if (!reader && (polypipe_read(rd, &m, 0) != 1 || m != msg_make(0, 1)))
		bench_error("idle writer: its message is missing");
	polypipe_close(wr);
	polypipe_close(rd);
	*spin_ns = c0;
	return c1 - c0;
}
