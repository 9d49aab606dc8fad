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
	CAP_FANIN = 8,  /* 1 producer -> FANIN_PIPES channels -> 1 consumer */
};

/* Messages per batched call. */
#define BATCH 64

/* Capacity of every channel that has one we can set. */
#define CAPACITY 1024

/* Fan-in: the producer writes round-robin into FANIN_PIPES channels of
 * FANIN_CAPACITY each; the consumer waits for any of them, FANIN_EVENTS
 * ready channels per wait at most, and drains each it is told of with
 * one batched read of up to BATCH (= FANIN_CAPACITY) messages. */
#define FANIN_PIPES 1000
#define FANIN_CAPACITY 64
#define FANIN_EVENTS 64
#define FANIN_BUF (FANIN_EVENTS * FANIN_CAPACITY)

/* One direction of one transport. */
struct chan {
	const struct transport *t;
	void *a, *b; /* the transport's objects (ends, sockets, ring) */
	int fd[2];   /* read and write descriptors, where there are some */
	int pfd;     /* polypipe_read_fd, for the poll path */
	void *set;   /* the reader's polyset, for the set rows */
};

struct transport {
	const char *name;   /* the row's label */
	const char *detail; /* how the row uses the transport */
	unsigned caps;
	int fds; /* descriptors one channel opens, if it opens many */
	void (*open)(struct chan *c, size_t capacity);
	void (*close)(struct chan *c);
	void (*send)(struct chan *c, void *m);
	void *(*recv)(struct chan *c);
	/* Send at least one of n and return how many; receive 1 to max.
	 * A CAP_FANIN transport's recv_many is given FANIN_BUF slots. */
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

/* fanin.c: the fan-in rows (listed in transports[] too), and how many
 * descriptors the one that needs the most opens. */
extern const struct transport t_fanin_set, t_fanin_setfd, t_fanin_readfd,
    t_fanin_efq, t_fanin_socketpair, t_fanin_one;
#define FANIN_MAX_FDS (2 * FANIN_PIPES + 1)

/* workloads.c: one trial of a workload on one transport. */
enum workload {
	WL_PINGPONG,
	WL_STREAM,
	WL_BATCH,
	WL_MPMC,
	WL_FANIN,
	WL_COUNT
};
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

/* What a set of many idle pipes costs (memory.c). */
struct scale_report {
	bool counted;     /* false in sanitizer builds: not measured */
	size_t pipes;     /* how many, each with its read end in the set */
	double per_pipe;  /* bytes per pipe, set and membership included */
	double pipe_only; /* bytes per pipe before the set existed */
	int fds_before;   /* descriptors open before the pipes were made */
	int fds_after;    /* ... with all of them in the set */
	long leaked;      /* live after closing the set and the pipes */
	double add_ns;    /* polyset_add, per member */
};
void scale_measure(struct scale_report *r, size_t pipes, bool print);

/* bench.c */
extern _Atomic uint64_t bench_errors;
void bench_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void bench_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t now_ns(void);
void pin_to_cpu(int cpu);
/* Descriptors this process has open (/proc/self/fd), or -1. */
int count_fds(void);

/* memory.c, for connect.c: counting allocations of the calling thread
 * (false, and nothing counted, in sanitizer builds). */
bool bench_count_available(void);
void bench_count_begin(void); /* from zero */
long bench_count_live(void);  /* usable bytes held since */
unsigned long bench_count_allocs(void);
void bench_count_end(void);

/* connect.c: the short-connection rows of issue 14, their table and
 * targets; 0 targets failed or skipped is not required for a valid run.
 * cpu_b < 0: one CPU. */
void connect_bench(bool quick, int cpu_a, int cpu_b);

#endif /* BENCH_BENCH_H */
