/*
 * bench.h - what the parts of the benchmark share.
 *
 * A transport moves void * messages one way through a channel; every
 * workload is written once against this interface, so each row of the
 * table runs exactly the same loop around a different transport.
 * Failures of the transports themselves are fatal (bench_die): a
 * benchmark that carries on after a lost call measures nothing.
 */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a transport can be asked to do. */
enum {
	CAP_SINGLE = 1, /* ping-pong and streaming, one message per call */
	CAP_BATCH = 2,  /* streaming, up to BATCH messages per call */
	CAP_MPMC = 4,   /* many threads on each end of one channel */
};

/* Messages per batched call. */
#define BATCH 64

/* Capacity of every channel that has one we can set. */
#define CAPACITY 1024

/* One direction of one transport. */
struct chan {
	const struct transport *t;
	void *a, *b; /* the transport's objects (ends, sockets, ring) */
	int fd[2];   /* read and write descriptors, where there are some */
	int pfd;     /* polypipe_read_fd, for the poll path */
};

struct transport {
	const char *name;   /* the row's label */
	const char *detail; /* how the row uses the transport */
	unsigned caps;
	void (*open)(struct chan *c, size_t capacity);
	void (*close)(struct chan *c);
	void (*send)(struct chan *c, void *m);
	void *(*recv)(struct chan *c);
	/* Send at least one of n and return how many; receive 1 to max. */
	size_t (*send_many)(struct chan *c, void *const *m, size_t n);
	size_t (*recv_many)(struct chan *c, void **m, size_t max);
};

/* transports.c: the rows, in table order; NULL-terminated. */
extern const struct transport *const transports[];
const struct transport *transport_find(const char *name);
void transports_fini(void);
/* How many messages a channel really holds (the kernel decides for
 * socketpair), for the notes under the table; 0 if unknown. */
size_t transport_capacity(const struct transport *t);

/* workloads.c: one trial of a workload on one transport. */
enum workload { WL_PINGPONG, WL_STREAM, WL_BATCH, WL_MPMC, WL_COUNT };
extern const char *const workload_name[WL_COUNT];

#define MPMC_THREADS 4

struct trial_result {
	double ns;        /* wall time of the trial */
	double median;    /* ping-pong: round trip, ns */
	double p99;       /* ping-pong: 99th percentile, ns */
	double rate;      /* messages per second */
	uint64_t checked; /* messages whose sequence number was checked */
};

/*
 * run_trial: count messages (round trips for ping-pong; in total for
 * MPMC) with the sending threads on cpu_tx and the receiving ones on
 * cpu_rx.  Counts lost or misordered messages into bench_errors.
 */
void run_trial(enum workload w, const struct transport *t, int cpu_tx,
               int cpu_rx, uint64_t count, struct trial_result *res);

/*
 * idle_cpu_ns: CPU time a thread blocked in polypipe (reading an empty
 * pipe, or writing a full one) burns in idle_ms after spin_ms have
 * passed; *spin_ns gets what it burnt during the first spin_ms.
 */
double idle_cpu_ns(bool reader, int cpu, unsigned spin_ms, unsigned idle_ms,
                   double *spin_ns);

/* memory.c */
struct mem_report {
	bool counted;     /* false in sanitizer builds: not measured */
	long idle;        /* capacity 1024, empty */
	long idle_req;    /* the same in bytes requested */
	long one_bounded; /* capacity 1024, 1 message */
	long one_unbounded;
	long worst_excess; /* max of mem(n) - (256 + 8 n) over the n tested */
	size_t worst_n;
	long worst_held; /* mem(worst_n) */
	long leaked;     /* live after closing both ends */
};
void memory_measure(struct mem_report *r, bool print);

/* bench.c */
extern _Atomic uint64_t bench_errors;
void bench_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void bench_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t now_ns(void);
void pin_to_cpu(int cpu);

#endif /* BENCH_BENCH_H */
