/*
 * bench.c - polypipe against the ways threads usually pass pointers.
 *
 * Every transport of transports.c runs every workload it can (ping-pong,
 * streaming, batched streaming, 4 x 4 MPMC), with its threads on two
 * CPUs and on one.  One round runs each of those cells once, in a fixed
 * order, so the transports alternate (A B C ... A B C ...); the table
 * gives medians across rounds, and each ratio is the median of the
 * per-round ratios: two rows measured a few hundred milliseconds apart
 * see the same machine, which is what lets ratios hold while other
 * processes come and go.  The fan-in rows of fanin.c (one consumer
 * serving 1,000 channels) run in the same rounds, on two CPUs only.
 * Before the rounds: memory per pipe, and per pipe in a set of 100,000.
 * Then the targets of the performance issue and of the polyset issue,
 * PASS or FAIL, from the same numbers.
 *
 * Exit status: 0 if the run was valid (every message arrived, in order,
 * and nothing hung), whatever the targets say; 1 if not; 2 on a bad
 * option; 3 if the watchdog fired.
 */
#define _GNU_SOURCE
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

#define MAX_ROUNDS 64

/* A run stopped by its time budget still has this many rounds: enough
 * for a median and a spread. */
#define MIN_ROUNDS 5

/* The scale row: idle pipes in one set. */
#define SCALE_PIPES 100000

_Atomic uint64_t bench_errors;

/* The first few errors are printed; the rest only counted. */
#define ERRORS_SHOWN 20

void
bench_die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	/* Other threads may be blocked for ever in the transport: exit
	 * without waiting for anything. */
	_exit(1);
}

void
bench_error(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&bench_errors, 1) >= ERRORS_SHOWN)
		return;
	fprintf(stderr, "bench: ERROR: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
pin_to_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* 0: the calling thread, not the whole process. */
	if (sched_setaffinity(0, sizeof set, &set) < 0)
		bench_die("sched_setaffinity(%d): %s", cpu, strerror(errno));
}

int
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
	return n - 1; /* the one opendir holds */
}

/* --- options --------------------------------------------------------- */

struct options {
	bool quick;
	bool connect_only; /* --connect: the connection rows only */
	const char *only;  /* --only=: rows whose name has one of these */
	unsigned rounds;
	unsigned trial_ms; /* aimed-at length of one trial */
	unsigned budget_s; /* no new round after this, once 3 are done */
	unsigned watchdog_s;
	unsigned idle_ms; /* for the blocked-thread CPU measurement */
	unsigned spin_ms; /* let the spin window pass first */
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: bench [--quick] [--rounds=N] [--trial-ms=N]\n"
	        "  --quick       a few seconds: checks that every transport "
	        "runs and\n"
	        "                every message arrives; numbers are rough\n"
	        "  --connect     only the short-connection rows (issue 14)\n"
	        "  --only=A,B    only the rows whose name contains A or B\n"
	        "                (no memory, idle or connection rows)\n"
	        "  --rounds=N    rounds of every cell (default 9, quick 3)\n"
	        "  --trial-ms=N  length of one trial (default 120, quick 8)\n"
	        "exit status: 0 valid run, 1 lost/misordered message or "
	        "error,\n"
	        "             2 bad option, 3 watchdog\n");
}

static unsigned
number(const char *s, unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "bench: bad number: %s (%u to %u)\n", s, lo,
		        hi);
		usage(stderr);
		exit(2);
	}
	return (unsigned)v;
}

static void
parse_options(int argc, char **argv, struct options *o)
{
	unsigned rounds = 0, trial_ms = 0;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			o->quick = true;
		} else if (strcmp(argv[i], "--connect") == 0) {
			o->connect_only = true;
		} else if (strncmp(argv[i], "--only=", 7) == 0) {
			o->only = argv[i] + 7;
		} else if (strncmp(argv[i], "--rounds=", 9) == 0) {
			rounds = number(argv[i] + 9, 1, MAX_ROUNDS);
		} else if (strncmp(argv[i], "--trial-ms=", 11) == 0) {
			trial_ms = number(argv[i] + 11, 1, 10000);
		} else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			exit(0);
		} else {
			fprintf(stderr, "bench: unknown option %s\n", argv[i]);
			usage(stderr);
			exit(2);
		}
	}
	if (o->quick) {
		o->rounds = 3;
		o->trial_ms = 8;
		o->budget_s = 30;
		o->watchdog_s = 10;
		o->idle_ms = 250;
		o->spin_ms = 50;
	} else {
		o->rounds = 9;
		o->trial_ms = 120;
		o->budget_s = 150;
		o->watchdog_s = 60;
		o->idle_ms = 1000;
		o->spin_ms = 100;
	}
	if (rounds != 0)
		o->rounds = rounds;
	if (trial_ms != 0)
		o->trial_ms = trial_ms;
}

/* --- watchdog -------------------------------------------------------- */

static _Atomic uint64_t wd_deadline; /* now_ns() limit, 0 when idle */
static char wd_what[160];            /* set before the deadline */

static void *
watchdog(void *arg)
{
	struct timespec tick = { .tv_nsec = 100000000 };
	uint64_t d;

	(void)arg;
	for (;;) {
		nanosleep(&tick, NULL);
		d = atomic_load(&wd_deadline);
		if (d != 0 && now_ns() > d) {
			fflush(stdout);
			fprintf(stderr,
			        "bench: WATCHDOG: %s did not finish "
			        "in time: a message was lost or a thread "
			        "never woke up\n",
			        wd_what);
			_exit(3);
		}
	}
	return NULL;
}

static void wd_arm(unsigned seconds, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
wd_arm(unsigned seconds, const char *fmt, ...)
{
	va_list ap;

	atomic_store(&wd_deadline, 0);
	va_start(ap, fmt);
	vsnprintf(wd_what, sizeof wd_what, fmt, ap);
	va_end(ap);
	atomic_store(&wd_deadline, now_ns() + seconds * 1000000000ull);
}

static void
wd_disarm(void)
{
	atomic_store(&wd_deadline, 0);
}

/* --- other processes ------------------------------------------------- */

/* CPU time in seconds: the machine's busy and stolen time from
 * /proc/stat, ours from getrusage, and the wall clock. */
struct load {
	double wall, self, busy, steal;
};

static unsigned ncpus_online;

static void
load_sample(struct load *l)
{
	unsigned long long v[8] = { 0 };
	struct rusage ru;
	FILE *f;
	double hz = (double)sysconf(_SC_CLK_TCK);

	l->wall = (double)now_ns() / 1e9;
	getrusage(RUSAGE_SELF, &ru);
	l->self = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	          (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	l->busy = l->steal = -1;
	f = fopen("/proc/stat", "r");
	if (f == NULL)
		return;
	/* user nice system idle iowait irq softirq steal */
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
	           &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		l->busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
		l->steal = (double)v[7] / hz;
	}
	fclose(f);
}

/* Fractions of all the machine's CPU time between a and b used by other
 * processes, and stolen by the hypervisor; -1 if unknown. */
static void
load_other(const struct load *a, const struct load *b, double *other,
           double *steal)
{
	double avail = (b->wall - a->wall) * ncpus_online;

	*other = *steal = -1;
	if (a->busy < 0 || b->busy < 0 || avail <= 0)
		return;
	*other = ((b->busy - a->busy) - (b->self - a->self)) / avail;
	if (*other < 0)
		*other = 0; /* tick accounting is coarser than getrusage */
	*steal = (b->steal - a->steal) / avail;
}

/* --- cells: one workload x transport x placement --------------------- */

enum { DIFF_CPU, SAME_CPU, NPLACES };

struct cell {
	enum workload w;
	const struct transport *t;
	int place;
	uint64_t count;
	unsigned n;           /* rounds done */
	double v[MAX_ROUNDS]; /* ping-pong median ns, else messages/s */
	double p99[MAX_ROUNDS];
};

static struct cell *cells;
static size_t ncells;
static int cpu_a = -1, cpu_b = -1;
static uint64_t checked_total;

static const unsigned wl_caps[WL_COUNT] = {
	CAP_SINGLE, CAP_SINGLE, CAP_BATCH, CAP_MPMC, CAP_FANIN,
};

/* Descriptors a trial may open: rows that need more are left out. */
static long fd_room;

static const char *const place_name[NPLACES] = {
	"different CPUs",
	"same CPU",
};

/* Whether a row's name contains one of the comma-separated parts of
 * only (NULL: every row). */
static bool
row_chosen(const char *name, const char *only)
{
	const char *p = only, *end;
	size_t n;

	if (only == NULL)
		return true;
	for (;;) {
		end = strchr(p, ',');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n > 0 && memmem(name, strlen(name), p, n) != NULL)
			return true;
		if (end == NULL)
			return false;
		p = end + 1;
	}
}

static void
cells_build(const char *only)
{
	size_t i, k = 0, nt;
	int w, p;

	for (nt = 0; transports[nt] != NULL; nt++)
		;
	cells = calloc(WL_COUNT * NPLACES * nt, sizeof *cells);
	if (cells == NULL)
		bench_die("out of memory");
	for (w = 0; w < WL_COUNT; w++)
		for (p = 0; p < NPLACES; p++)
			for (i = 0; transports[i] != NULL; i++) {
				if (!(transports[i]->caps & wl_caps[w]) ||
				    !row_chosen(transports[i]->name, only))
					continue;
				if (p == DIFF_CPU && cpu_b < 0)
					continue; /* only one CPU */
				/* The fan-in rows: two CPUs, as the targets
				 * say, and enough descriptors. */
				if (w == WL_FANIN &&
				    (p == SAME_CPU || cpu_b < 0 ||
				     transports[i]->fds > fd_room))
					continue;
				cells[k].w = (enum workload)w;
				cells[k].t = transports[i];
				cells[k].place = p;
				k++;
			}
	ncells = k;
}

static struct cell *
cell_find(enum workload w, const char *name, int place)
{
	const struct transport *t = transport_find(name);
	size_t i;

	for (i = 0; t != NULL && i < ncells; i++)
		if (cells[i].w == w && cells[i].t == t &&
		    cells[i].place == place)
			return &cells[i];
	return NULL;
}

static void
cell_trial(struct cell *c, uint64_t count, unsigned watchdog_s,
           struct trial_result *r)
{
	int tx = cpu_a, rx = c->place == SAME_CPU ? cpu_a : cpu_b;

	wd_arm(watchdog_s, "%s, %s, %s, %llu messages", c->t->name,
	       workload_name[c->w], place_name[c->place],
	       (unsigned long long)count);
	run_trial(c->w, c->t, tx, rx, count, r);
	wd_disarm();
	checked_total += r->checked;
}

/*
 * Runs the cell with growing counts until a trial takes a good part of
 * the aimed-at length, then sets the count that should take all of it.
 * These runs are also the warm-up: code, caches, allocator, the CPU's
 * clock.
 */
static void
cell_calibrate(struct cell *c, const struct options *o)
{
	double target = o->trial_ms * 1e6;
	uint64_t count, lo, hi;
	struct trial_result r;

	switch (c->w) {
	case WL_PINGPONG:
		/* Enough samples for a p99; the samples are kept. */
		count = 64;
		lo = o->quick ? 200 : 1000;
		hi = 200000;
		break;
	default:
		count = 1024;
		lo = 1024;
		hi = 400000000;
		break;
	}
	for (;;) {
		cell_trial(c, count, o->watchdog_s, &r);
		if (r.ns >= target / 8 || count >= hi)
			break;
		count *= 8;
	}
	count = (uint64_t)((double)count * target / r.ns);
	if (count < lo)
		count = lo;
	if (count > hi)
		count = hi;
	c->count = (count + MPMC_THREADS - 1) / MPMC_THREADS * MPMC_THREADS;
}

/* --- statistics ------------------------------------------------------ */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(const double *v, unsigned n)
{
	double s[MAX_ROUNDS];

	if (n == 0)
		return NAN;
	memcpy(s, v, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Median absolute deviation, as a percentage of the median: how much
 * the rounds disagree. */
static double
spread(const double *v, unsigned n)
{
	double m = median(v, n), d[MAX_ROUNDS];
	unsigned i;

	for (i = 0; i < n; i++)
		d[i] = v[i] > m ? v[i] - m : m - v[i];
	return 100 * median(d, n) / m;
}

/* The median over rounds of a's value over b's. */
static double
ratio(const struct cell *a, const struct cell *b, bool p99)
{
	double q[MAX_ROUNDS];
	unsigned i, n;

	if (a == NULL || b == NULL)
		return NAN;
	n = a->n < b->n ? a->n : b->n;
	for (i = 0; i < n; i++)
		q[i] = p99 ? a->p99[i] / b->p99[i] : a->v[i] / b->v[i];
	return median(q, n);
}

/* The same, with the smallest and largest per-round ratio. */
static double
ratio_range(const struct cell *a, const struct cell *b, double *lo, double *hi)
{
	double q;
	unsigned i, n;

	*lo = *hi = NAN;
	if (a == NULL || b == NULL)
		return NAN;
	n = a->n < b->n ? a->n : b->n;
	for (i = 0; i < n; i++) {
		q = a->v[i] / b->v[i];
		if (i == 0 || q < *lo)
			*lo = q;
		if (i == 0 || q > *hi)
			*hi = q;
	}
	return ratio(a, b, false);
}

/* --- the table ------------------------------------------------------- */

struct section {
	enum workload w;
	bool p99;
	const char *title;
	const char *ref; /* the row the /pp column divides by */
};

static const struct section sections[] = {
	{ WL_PINGPONG, false,
	  "ping-pong round trip, median, us (ratios of times: < 1 faster)",
	  "polypipe" },
	{ WL_PINGPONG, true, "ping-pong round trip, p99, us", "polypipe" },
	{ WL_STREAM, false,
	  "streaming 1 -> 1, capacity 1024, M msg/s (ratios of rates: > 1 "
	  "faster)",
	  "polypipe" },
	{ WL_BATCH, false, "batched streaming 1 -> 1, 64 per call, M msg/s",
	  "polypipe batch" },
	{ WL_MPMC, false,
	  "MPMC, 4 producers -> 4 consumers through one channel, M msg/s",
	  "polypipe" },
};

static void
print_value(const struct section *s, const struct cell *c)
{
	const double *v = s->p99 ? c->p99 : c->v;
	double scale = s->w == WL_PINGPONG ? 1e-3 : 1e-6;
	double m = median(v, c->n) * scale;

	printf(m < 9999.5 ? "%8.2f %4.0f" : "%8.0f %4.0f", m, spread(v, c->n));
}

static void
print_ratio(double r)
{
	if (isnan(r))
		printf("      ");
	else
		printf(r < 99.5 ? "%6.2f" : "%6.0f", r);
}

/* One row: each placement's value and its ratios to the references. */
static void
print_row(const struct section *s, const struct transport *t)
{
	const struct cell *c;
	int p;

	printf("  %-19s", t->name);
	for (p = 0; p < NPLACES; p++) {
		c = cell_find(s->w, t->name, p);
		printf("   ");
		if (c == NULL || c->n == 0) {
			printf("%8s %4s %6s%6s", "-", "", "", "");
			continue;
		}
		print_value(s, c);
		print_ratio(ratio(c, cell_find(s->w, s->ref, p), s->p99));
		print_ratio(
		    ratio(c, cell_find(s->w, "condvar ring", p), s->p99));
	}
	printf("\n");
}

static void
print_table(void)
{
	const struct section *s;
	size_t i;
	int p;

	printf("\n%-21s   %-28s   %s\n", "",
	       cpu_b < 0 ? "(one CPU only)" : "different CPUs", "same CPU");
	printf("%-21s", "  transport");
	for (p = 0; p < NPLACES; p++)
		printf("   %8s %4s %5s %5s", "value", "+-%", "/pp", "/cv");
	printf("\n");
	for (s = sections; s < sections + sizeof sections / sizeof *s; s++) {
		printf("%s\n", s->title);
		for (i = 0; transports[i] != NULL; i++)
			if (transports[i]->caps & wl_caps[s->w])
				print_row(s, transports[i]);
	}
	printf("value: median across rounds; +-%%: median absolute deviation "
	       "across rounds;\n/pp, /cv: median across rounds of the "
	       "ratio to that round's polypipe row\n(polypipe batch in the "
	       "batched rows) and condvar ring row.\n");
}

/* The fan-in rows: rates, and ratios to the one pipe of the same round,
 * each as the median and the range over the rounds. */
static void
print_fanin(const char *only)
{
	const struct cell *one =
	    cell_find(WL_FANIN, "fan-in one pipe", DIFF_CPU);
	const struct cell *c;
	double m, lo, hi, r, rlo, rhi;
	unsigned i;
	size_t k;

	printf("\nfan-in: 1 producer -> %d channels of capacity %d, "
	       "round-robin -> 1 consumer,\nthreads on two CPUs, M msg/s "
	       "(one pipe: all through one of capacity %d)\n",
	       FANIN_PIPES, FANIN_CAPACITY, CAPACITY);
	printf("  %-20s %8s %17s %8s %15s\n", "row", "median", "min - max",
	       "/one", "min - max");
	for (k = 0; transports[k] != NULL; k++) {
		if (!(transports[k]->caps & CAP_FANIN))
			continue;
		printf("  %-20s", transports[k]->name);
		c = cell_find(WL_FANIN, transports[k]->name, DIFF_CPU);
		if (c == NULL || c->n == 0) {
			printf(" %8s  (not run: %s)\n", "-",
			       !row_chosen(transports[k]->name, only)
			           ? "not in --only"
			       : cpu_b < 0 ? "one CPU"
			                   : "too few descriptors");
			continue;
		}
		lo = hi = c->v[0];
		for (i = 1; i < c->n; i++) {
			lo = c->v[i] < lo ? c->v[i] : lo;
			hi = c->v[i] > hi ? c->v[i] : hi;
		}
		m = median(c->v, c->n);
		printf(" %8.2f %7.2f - %7.2f", m / 1e6, lo / 1e6, hi / 1e6);
		if (c == one) {
			printf("   (the reference)\n");
			continue;
		}
		r = ratio_range(c, one, &rlo, &rhi);
		printf(" %8.2f %6.2f - %6.2f\n", r, rlo, rhi);
	}
	printf("/one: median over the %u rounds of the ratio to that round's "
	       "one-pipe rate.\nThe cv+eventfd row swings with the "
	       "consumer's lag (full queues need no\nwake-up): a reference, "
	       "not a yardstick.\n",
	       one != NULL ? one->n : 0);
}

/* --- targets --------------------------------------------------------- */

static unsigned passed, failed, skipped;

/* One PASS/FAIL/SKIP line: measured against limit, at most (le) or at
 * least; NAN measured: not measured in this build or run.  note, if not
 * NULL, follows on the line. */
static void
target_note(const char *what, double measured, bool le, double limit,
            const char *unit, const char *note)
{
	const char *verdict;
	char m[32];

	if (isnan(measured)) {
		verdict = "SKIP";
		skipped++;
		snprintf(m, sizeof m, "n/a");
		unit = "";
	} else {
		if (le ? measured <= limit : measured >= limit) {
			verdict = "PASS";
			passed++;
		} else {
			verdict = "FAIL";
			failed++;
		}
		snprintf(m, sizeof m,
		         strcmp(unit, "B") == 0 || strcmp(unit, "fd") == 0
		             ? "%.0f"
		             : "%.2f",
		         measured);
	}
	printf("%s  %-44s %8s %-2s  (%s %g)%s%s\n", verdict, what, m, unit,
	       le ? "<=" : ">=", limit, note != NULL ? "  " : "",
	       note != NULL ? note : "");
}

static void
target(const char *what, double measured, bool le, double limit,
       const char *unit)
{
	target_note(what, measured, le, limit, unit, NULL);
}

/* A fan-in row against the one pipe, with the rounds' range. */
static void
target_fanin(const char *what, const char *row, double limit)
{
	double lo, hi, r;
	char note[64];

	r = ratio_range(cell_find(WL_FANIN, row, DIFF_CPU),
	                cell_find(WL_FANIN, "fan-in one pipe", DIFF_CPU), &lo,
	                &hi);
	snprintf(note, sizeof note, "rounds %.2f - %.2f", lo, hi);
	target_note(what, r, false, limit, "x", isnan(r) ? NULL : note);
}

/* The targets of the polyset issue, in a table of their own. */
static void
print_set_targets(const struct scale_report *sc)
{
	char what[64];

	passed = failed = skipped = 0;
	printf("\ntargets of the polyset issue, this run, threads on two "
	       "CPUs, medians of\nper-round ratios (x):\n");
	target_fanin("fan-in (a) polyset / one pipe", "fan-in polyset", 0.7);
	target_fanin("fan-in (b) polyset_fd / one pipe", "fan-in polyset_fd",
	             0.5);
	target_fanin("fan-in (c) read_fds / one pipe", "fan-in read_fds", 0.4);
	target("streaming: polypipe poll / pipe(2)",
	       ratio(cell_find(WL_STREAM, "polypipe poll", DIFF_CPU),
	             cell_find(WL_STREAM, "pipe(2)", DIFF_CPU), false),
	       false, 1.5, "x");
	target("batched: polypipe poll batch / polypipe batch",
	       ratio(cell_find(WL_BATCH, "polypipe poll batch", DIFF_CPU),
	             cell_find(WL_BATCH, "polypipe batch", DIFF_CPU), false),
	       false, 0.8, "x");
	target("streaming: polypipe watched / polypipe",
	       ratio(cell_find(WL_STREAM, "polypipe watched", DIFF_CPU),
	             cell_find(WL_STREAM, "polypipe", DIFF_CPU), false),
	       false, 0.8, "x");
	target("ping-pong median: polypipe set / polypipe",
	       ratio(cell_find(WL_PINGPONG, "polypipe set", DIFF_CPU),
	             cell_find(WL_PINGPONG, "polypipe", DIFF_CPU), false),
	       true, 1.5, "x");
	snprintf(what, sizeof what, "scale: bytes per pipe, %zu in a set",
	         sc->pipes);
	target(what, sc->counted ? sc->per_pipe : NAN, true, 320, "B");
	snprintf(what, sizeof what, "scale: descriptors opened by the set");
	target(what,
	       sc->fds_before < 0 || sc->fds_after < 0
	           ? NAN
	           : (double)(sc->fds_after - sc->fds_before),
	       true, 0, "fd");
	printf("%u passed, %u failed, %u skipped\n", passed, failed, skipped);
}

static void
print_targets(const struct options *o, double idle_ms,
              const struct mem_report *m)
{
	struct cell *pp = cell_find(WL_STREAM, "polypipe", DIFF_CPU);
	char what[64];

	printf("\ntargets: this run, threads on two CPUs unless said, "
	       "medians of per-round\nratios (x):\n");
#define STREAM_VS(name, lim)                                                  \
	target("streaming: polypipe / " name,                                 \
	       ratio(pp, cell_find(WL_STREAM, name, DIFF_CPU), false), false, \
	       lim, "x")
#ifdef HAVE_ZMQ
	STREAM_VS("zeromq inproc", 2);
#else
	target("streaming: polypipe / zeromq inproc", NAN, false, 2, "x");
#endif
	STREAM_VS("pipe(2)", 8);
	STREAM_VS("socketpair", 20);
	STREAM_VS("condvar ring", 1.2);
#undef STREAM_VS
	target("batched: polypipe batch / spsc busy-wait",
	       ratio(cell_find(WL_BATCH, "polypipe batch", DIFF_CPU),
	             cell_find(WL_BATCH, "spsc busy-wait", DIFF_CPU), false),
	       false, 0.5, "x");
	target("ping-pong median: polypipe / spsc busy-wait",
	       ratio(cell_find(WL_PINGPONG, "polypipe", DIFF_CPU),
	             cell_find(WL_PINGPONG, "spsc busy-wait", DIFF_CPU),
	             false),
	       true, 5, "x");
	snprintf(what, sizeof what, "blocked reader: CPU per idle second%s",
	         o->quick ? " (scaled)" : "");
	target(what, idle_ms, true, 10, "ms");
	target("same CPU, ping-pong: polypipe / condvar ring",
	       ratio(cell_find(WL_PINGPONG, "polypipe", SAME_CPU),
	             cell_find(WL_PINGPONG, "condvar ring", SAME_CPU), false),
	       true, 1.1, "x");
	target("ping-pong median: polypipe poll / socketpair",
	       ratio(cell_find(WL_PINGPONG, "polypipe poll", DIFF_CPU),
	             cell_find(WL_PINGPONG, "socketpair", DIFF_CPU), false),
	       true, 1, "x");
	target("MPMC 4x4 / 1x1 streaming, polypipe",
	       ratio(cell_find(WL_MPMC, "polypipe", DIFF_CPU), pp, false),
	       false, 0.5, "x");
	target("memory: idle pipe", m->counted ? (double)m->idle : NAN, true,
	       256, "B");
	snprintf(what, sizeof what, "memory: n buffered, worst n = %zu",
	         m->worst_n);
	target(what, m->counted ? (double)m->worst_held : NAN, true,
	       256 + 8 * (double)m->worst_n, "B");
	target("memory: unbounded vs capacity 1024, 1 message",
	       m->counted ? (double)m->one_unbounded : NAN, true,
	       (double)m->one_bounded, "B");
	printf("same CPU: the library before its waiting change was a "
	       "mutex + condvar pipe,\nas the condvar ring is; compare "
	       "the same-CPU rows across versions too.\n");
	printf("%u passed, %u failed, %u skipped\n", passed, failed, skipped);
}

/* --- main ------------------------------------------------------------ */

/* The fan-in rows of descriptors need some 2,000 of them: the soft limit
 * goes up to the hard one if need be.  Sets the room the rows have. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t want = FANIN_MAX_FDS + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		fd_room = 0;
		return;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rl.rlim_cur =
		    rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want
		        ? want
		        : rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	fd_room = rl.rlim_cur == RLIM_INFINITY ? FANIN_MAX_FDS
	                                       : (long)rl.rlim_cur - 64;
}

static void
choose_cpus(void)
{
	cpu_set_t set;
	int i;

	if (sched_getaffinity(0, sizeof set, &set) < 0)
		bench_die("sched_getaffinity: %s", strerror(errno));
	for (i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &set))
			continue;
		if (cpu_a < 0)
			cpu_a = i;
		else if (cpu_b < 0)
			cpu_b = i;
	}
	ncpus_online = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpus_online == 0)
		ncpus_online = 1;
}

static double
clock_cost_ns(void)
{
	uint64_t t0 = now_ns(), t1 = t0;
	unsigned i;

	for (i = 0; i < 100000; i++)
		t1 = now_ns();
	return (double)(t1 - t0) / 100000;
}

static void
print_header(const struct options *o)
{
	size_t i;

	printf("polysocket bench: %s run, %u rounds of %u ms trials; CPUs "
	       "%d and %d of %u online\n",
	       o->quick ? "quick" : "full", o->rounds, o->trial_ms, cpu_a,
	       cpu_b, ncpus_online);
	if (cpu_b < 0)
		printf("only one CPU is allowed: no different-CPU rows\n");
	printf("clock_gettime: %.0f ns per call, one in every ping-pong "
	       "sample\n",
	       clock_cost_ns());
	printf("rows:\n");
	for (i = 0; transports[i] != NULL; i++)
		printf("  %-19s %s\n", transports[i]->name,
		       transports[i]->detail);
#ifndef HAVE_ZMQ
	printf("  (no ZeroMQ row: configure did not find libzmq)\n");
#endif
#ifndef HAVE_NNG
	printf("  (no nng row: configure did not find nng)\n");
#endif
	printf("capacity: %d messages; pipe(2) holds %zu, socketpair %zu "
	       "(its kernel\nbuffer decides); nng also runs its own unpinned "
	       "threads.\n",
	       CAPACITY, transport_capacity(transport_find("pipe(2)")),
	       transport_capacity(transport_find("socketpair")));
	fflush(stdout);
}

/* CPU time of a blocked reader, and of a blocked writer for comparison;
 * returns the reader's in ms per idle second. */
static double
measure_idle(const struct options *o)
{
	int cpu = cpu_b >= 0 ? cpu_b : cpu_a;
	double rd, rd_spin, wr, wr_spin;

	fprintf(stderr, "bench: blocked-thread CPU time...\n");
	wd_arm(o->watchdog_s, "the idle measurement");
	rd = idle_cpu_ns(true, cpu, o->spin_ms, o->idle_ms, &rd_spin);
	wr = idle_cpu_ns(false, cpu, o->spin_ms, o->idle_ms, &wr_spin);
	wd_disarm();
	printf("\nidle: a reader blocked on an empty pipe used %.3f ms of CPU "
	       "in %u ms\n  (%.3f ms in the first %u ms, the spin window); "
	       "a writer blocked on a\n  full pipe used %.3f ms (%.3f ms in "
	       "the first %u ms)\n",
	       rd / 1e6, o->idle_ms, rd_spin / 1e6, o->spin_ms, wr / 1e6,
	       wr_spin / 1e6, o->spin_ms);
	return rd / 1e6 * 1000 / o->idle_ms;
}

/* Share of the machine other processes took, per round and overall. */
static double round_other[MAX_ROUNDS];
static unsigned rounds_done;

/* Every cell once per round, in the same order, until the rounds or the
 * time budget run out. */
static void
run_rounds(const struct options *o, uint64_t t_start)
{
	struct load lr0 = { 0 }, lr1 = { 0 };
	struct trial_result r;
	double other, steal;
	struct cell *c;
	size_t i;

	while (rounds_done < o->rounds) {
		/* A loaded machine stretches every trial: rather fewer
		 * rounds than a run that outlasts its budget. */
		if (rounds_done >= MIN_ROUNDS &&
		    lr1.wall - (double)t_start / 1e9 + (lr1.wall - lr0.wall) >
		        o->budget_s) {
			printf("(stopped after %u rounds: one more would pass "
			       "the %u s budget)\n",
			       rounds_done, o->budget_s);
			break;
		}
		load_sample(&lr0);
		for (i = 0; i < ncells; i++) {
			c = &cells[i];
			cell_trial(c, c->count, o->watchdog_s, &r);
			c->v[rounds_done] =
			    c->w == WL_PINGPONG ? r.median : r.rate;
			c->p99[rounds_done] = r.p99;
			c->n = rounds_done + 1;
		}
		load_sample(&lr1);
		load_other(&lr0, &lr1, &other, &steal);
		round_other[rounds_done++] = other;
		fprintf(stderr,
		        "bench: round %u/%u done, %.0f s; other "
		        "processes used %.0f%% of the CPUs\n",
		        rounds_done, o->rounds,
		        (double)(now_ns() - t_start) / 1e9, 100 * other);
	}
}

static void
print_load(const struct load *l0, const struct load *l1)
{
	unsigned i, disturbed = 0;
	double other, steal;

	for (i = 0; i < rounds_done; i++)
		if (round_other[i] > 0.05)
			disturbed++;
	load_other(l0, l1, &other, &steal);
	if (other < 0) {
		printf("\nload: unknown (no /proc/stat)\n");
		return;
	}
	printf("\nload: other processes used %.0f%% of the machine's %u "
	       "CPUs during the run\n  (median round %.0f%%; %u of %u "
	       "rounds above 5%%), the hypervisor stole %.0f%%.\n",
	       100 * other, ncpus_online,
	       100 * median(round_other, rounds_done), disturbed, rounds_done,
	       100 * steal);
	if (other > 0.05 || steal > 0.05)
		printf("  Another process used the CPU: absolute numbers are "
		       "low and noisy; ratios\n  within a round hold "
		       "better.\n");
	else
		printf("  No other process used the CPU to speak of.\n");
}

/* The rows that are not rounds: memory per pipe, per pipe in a set, and
 * a blocked reader's CPU time, which it returns (ms per idle second). */
static double
measure_fixed(const struct options *o, struct mem_report *mem,
              struct scale_report *scale)
{
	memory_measure(mem, true);
	if (mem->counted && mem->leaked != 0)
		bench_error("memory: %ld bytes left after closing a pipe",
		            mem->leaked);
	scale_measure(scale, SCALE_PIPES, true);
	if (scale->counted && scale->leaked != 0)
		bench_error("scale: %ld bytes left after closing the set and "
		            "the pipes",
		            scale->leaked);
	return measure_idle(o);
}

int
main(int argc, char **argv)
{
	struct options o = { 0 };
	struct mem_report mem;
	struct scale_report scale;
	struct load l0, l1;
	uint64_t t_start;
	pthread_t wd;
	double idle;
	size_t i;

	parse_options(argc, argv, &o);
	setvbuf(stdout, NULL, _IOLBF, 0);
	choose_cpus();
	raise_fd_limit();
	if (pthread_create(&wd, NULL, watchdog, NULL) != 0)
		bench_die("cannot start the watchdog");
	print_header(&o);
	if (o.connect_only) {
		connect_bench(o.quick, cpu_a, cpu_b);
		return atomic_load(&bench_errors) ? 1 : 0;
	}
	t_start = now_ns();
	load_sample(&l0);

	/* Memory first, while no other library has started threads. */
	printf("\n");
	mem = (struct mem_report){ .counted = false };
	scale = (struct scale_report){ .counted = false, .fds_before = -1 };
	idle = NAN;
	if (o.only == NULL)
		idle = measure_fixed(&o, &mem, &scale);
	cells_build(o.only);
	fprintf(stderr, "bench: warm-up and calibration of %zu cells...\n",
	        ncells);
	for (i = 0; i < ncells; i++)
		cell_calibrate(&cells[i], &o);
	run_rounds(&o, t_start);
	load_sample(&l1);

	print_table();
	print_fanin(o.only);
	print_load(&l0, &l1);
	printf("checked: %llu messages, each by sequence number; %llu "
	       "errors\n",
	       (unsigned long long)checked_total,
	       (unsigned long long)atomic_load(&bench_errors));
	print_targets(&o, idle, &mem);
	print_set_targets(&scale);
	if (o.only == NULL)
		connect_bench(o.quick, cpu_a, cpu_b);
	transports_fini();
	printf("run %s (%.0f s)\n",
	       atomic_load(&bench_errors) ? "INVALID" : "valid",
	       (double)(now_ns() - t_start) / 1e9);
	return atomic_load(&bench_errors) ? 1 : 0;
}
