/*
 * api_fuzz.c - a libFuzzer harness that runs polysocket against a small
 * model of SPEC.md.
 *
 * The input is a sequence of calls, five bytes each: an opcode (enum op,
 * modulo NOPS) and four argument bytes a[0..3].  a[0] picks the object;
 * a[1] % 8 picks a mode: 0-4 a valid call, 5 a NULL handle, 6 a NULL
 * pointer argument, 7 a bad timeout (-2) or, where there is no timeout,
 * another argument error; a[2] and a[3] are values (capacity, message,
 * count, name, ...).  A few set calls give modes 3 and 4 a meaning of
 * their own (op_set_wait, do_member).  fuzz/make-corpus.py writes inputs
 * in this format.
 *
 * Objects: 3 free-standing pipes, 2 servers, 3 clients, up to 4
 * endpoints accepted by the servers, and 2 polysets whose members are any
 * of the pipe ends, servers and clients.  Each call goes to the library
 * and to the model; any difference in the return value, errno, a message
 * read, the events a set reports and their order, the readiness of a
 * descriptor handed out, the number of notifier or destructor calls (and
 * the destructor's values), or what the getters report aborts with the
 * call and both answers.  One thread, timeouts 0 (or long enough only
 * where the model says the call returns at once): notifiers run in the
 * calling thread and nothing races, so the model's answers are exact.
 * The notifiers also check from inside their call that what they
 * announce shows (SPEC.md: polyclient_endpoint succeeds inside a connect
 * notifier), some remove themselves from inside, and some call
 * polyset_wake.
 *
 * Calling anything on a closed handle is undefined, so the harness
 * tracks what is open and skips calls on anything else.  At the end of
 * each input everything is closed, so LeakSanitizer sees any leak, no
 * descriptor may remain open and the process-wide name table is empty
 * for the next input.
 *
 * Set API_FUZZ_TRACE in the environment to print each call.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <polysocket/polyset.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CALLS 200 /* per input: bounds run time and the model's rings */
#define MAX_BATCH 8   /* messages per read_many / write_many */
#define NSPIPE 3      /* free-standing pipes */
#define NSRV 2
#define NCLI 3
#define NEP 4 /* endpoints accepted and held by the harness */
#define NSET 2
/* Model pipes alive at once: each client has two, and the accepted
 * endpoints keep theirs after the client is closed. */
#define NPOOL (NSPIPE + 2 * (NCLI + NEP))
#define NHANDLE (2 * (NSPIPE + NCLI + NEP))
/* What a set op's a[2] names: a pipe end handle, a server or a client. */
#define NTARGET (NHANDLE + NSRV + NCLI)
#define QMAX 2048 /* model ring size: more than can ever be written */
#define NNAMES 6
#define NO_ERRNO 12345 /* errno before each call: failures must set it */

_Static_assert(MAX_CALLS *MAX_BATCH < QMAX, "a model ring never fills");

enum op {
	OP_PIPE_CREATE,
	OP_PIPE_CLOSE,
	OP_READ,
	OP_WRITE,
	OP_READ_MANY,
	OP_WRITE_MANY,
	OP_WRITE_EOF,
	OP_SET_ERROR,
	OP_QUERY,
	OP_PIPE_FD,
	OP_PIPE_NOTIFY,
	OP_DESTRUCTOR,
	OP_SRV_CREATE,
	OP_SRV_CLOSE,
	OP_BACKLOG,
	OP_ACCEPT,
	OP_ACCEPT_MANY,
	OP_REFUSE,
	OP_PENDING,
	OP_ACCEPT_FD,
	OP_ACCEPT_NOTIFY,
	OP_BIND,
	OP_SHUTDOWN,
	OP_CLI_CREATE,
	OP_CLI_CLOSE,
	OP_CONNECT,
	OP_CONNECT_NAME,
	OP_ENDPOINT,
	OP_ENDPOINT_ASYNC,
	OP_CONNECT_FD,
	OP_CONNECT_NOTIFY,
	OP_EP_CLOSE,
	OP_SET_CREATE,
	OP_SET_CLOSE,
	OP_SET_ADD,
	OP_SET_MODIFY,
	OP_SET_REMOVE,
	OP_SET_WAIT,
	OP_SET_FD,
	OP_SET_WAKE,
	NOPS
};

/* Modes, a[1] % 8. */
enum { M_NULL_HANDLE = 5, M_NULL_ARG = 6, M_BAD_ARG = 7 };

enum { RD, WR };

/* --- the model ----------------------------------------------------------- */

/* A pipe: a ring of message values and the flags SPEC.md talks about. */
struct mpipe {
	bool used;
	size_t cap;
	int q[QMAX]; /* buffered messages, q[head] oldest */
	size_t head, len;
	bool eof;          /* EOF sent or write end closed */
	int error;         /* first error set, or 0 */
	bool closed[2];    /* by end */
	int dtor;          /* destructor argument id, or -1: none */
	bool notify[2];    /* a counting notifier is set on the end */
	bool once[2];      /* it removes itself from inside its call */
	bool wake[2];      /* it calls polyset_wake(set0) from inside */
	polypipe *endp[2]; /* the end it was set on */
	unsigned calls[2]; /* notifier calls made by the library */
	unsigned want[2];  /* notifier calls the model expects */
	int fd[2];         /* descriptor handed out, or -1 */
};

enum cstate { IDLE, PENDING, ACCEPTED, REFUSED };

struct msrv {
	polyserver *h; /* NULL: slot free */
	bool shut;
	bool refusing; /* until the next accept call */
	size_t backlog;
	int q[NCLI]; /* pending clients, oldest first */
	int nq;
	int name; /* index into the names, or -1 */
	bool notify, once;
	unsigned calls, want;
	int fd;
};

struct mcli {
	polyclient *h; /* NULL: slot free */
	enum cstate state;
	int srv;           /* while PENDING */
	int c2s, s2c;      /* model pipes: to and from the server */
	polyendpoint mine; /* once have_mine: the client's ends */
	bool have_mine;
	bool notify, once;
	unsigned calls, want;
	int fd;
};

static struct mpipe pool[NPOOL];
static struct {
	polypipe *end[2]; /* NULL once closed */
	int pipe;         /* in pool, or -1: slot free */
} spipes[NSPIPE];
static struct msrv servers[NSRV];
static struct mcli clients[NCLI];
static struct {
	polyendpoint ep; /* rd: c2s's read end; wr: s2c's write end */
	int c2s, s2c;
} eps[NEP];               /* slot free while both ends are NULL */
static int name_owner[3]; /* server bound to each valid name, or -1 */

/* A membership, kept on the object's side: every pipe end, server and
 * client may belong to one set.  The set's ready order is that of the
 * due members by tick; members that became due in the same call share a
 * tick, and SPEC.md leaves their order to the library. */
struct mmember {
	int set;            /* in sets[], or -1: none */
	void *obj;          /* as given to polyset_add */
	int target;         /* a[2] that named it, for messages */
	int data;           /* the data pointer's value */
	bool oneshot;       /* POLYSET_ONESHOT */
	bool armed;         /* false: reported as oneshot, not re-armed */
	bool due;           /* armed and ready: in the ready order */
	unsigned long tick; /* when it joined the ready order */
};
static struct mmember mem_pipe[NPOOL][2], mem_srv[NSRV], mem_cli[NCLI];
static struct {
	polyset *h; /* NULL: slot free */
	bool wake;  /* a polyset_wake is pending */
	int fd;     /* descriptor handed out, or -1 */
} sets[NSET];
/* Advances once per call, and once per member a wait sends to the back
 * of the ready order. */
static unsigned long tick_now;

/* Destructor calls, each arg id * 256 + message, compared as multisets
 * after every call: SPEC.md fixes which messages, not their order. */
struct dlog {
	size_t n;
	int e[QMAX];
};
static struct dlog dtor_got, dtor_want;
static int dtor_ids[4] = { 0, 1, 2, 3 };

/* Every descriptor handed out during this input: all must be closed at
 * its end.  At most one new descriptor per call. */
static int fds_seen[MAX_CALLS + 1];
static size_t nfds_seen;

/* Readiness of every pipe side before the current call. */
static bool snap[NPOOL][2];

/* Stands for "not written by the library" in out-arguments. */
static int sentinel_obj;
#define SENTINEL ((void *)&sentinel_obj)

static char name255[256], name256[257];

/* --- reporting ----------------------------------------------------------- */

static char call_desc[200];
static unsigned call_no;
static bool trace;

static void fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
static void describe(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "api_fuzz: call %u: %s\n  ", call_no, call_desc);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* Records the call about to be made, for fail() and API_FUZZ_TRACE. */
static void
describe(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(call_desc, sizeof call_desc, fmt, ap);
	va_end(ap);
	if (trace)
		fprintf(stderr, "api_fuzz: %3u %s\n", call_no, call_desc);
}

/* Compares a result with the model's, and errno when both failed. */
static void
expect(long got, int got_err, long want, int want_err)
{
	if (got == want && (want >= 0 || got_err == want_err))
		return;
	fail("library returned %ld, errno %d (%s); model %ld, errno %d (%s)",
	     got, got_err, strerror(got_err), want, want >= 0 ? 0 : want_err,
	     want >= 0 ? "-" : strerror(want_err));
}

static void *
msg_ptr(int v)
{
	return (void *)(uintptr_t)v;
}

static void
expect_msg(const void *got, int want, size_t i)
{
	if (got != msg_ptr(want))
		fail("message %zu: library %p, model %d", i, got, want);
}

/* --- callbacks ----------------------------------------------------------- */

/* Notifiers count their calls, and check from inside that what they
 * announce has happened: nothing else runs meanwhile, so it must show. */

static bool
fd_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, 0) < 0 || (pfd.revents & POLLNVAL))
		fail("poll descriptor %d: %s", fd, strerror(errno));
	return (pfd.revents & POLLIN) != 0;
}

/* SPEC.md: a pipe notifier is called on a transition of its side to
 * "would not wait". */
static void
pipe_notified(struct mpipe *m, int side)
{
	polypipe *p = m->endp[side];

	m->calls[side]++;
	/* SPEC.md: a set from inside the callback returns at once. */
	if (m->once[side] &&
	    (side == RD ? polypipe_set_read_notify(p, NULL, NULL)
	                : polypipe_set_write_notify(p, NULL, NULL)) != 0)
		fail("removing a notifier from inside it failed");
	if (side == RD && polypipe_length(p) == 0 && !polypipe_eof(p))
		fail("read notifier called while a read would wait");
	/* SPEC.md: polyset_wake is callable from a notifier callback. */
	if (m->wake[side] && sets[0].h != NULL && polyset_wake(sets[0].h) != 0)
		fail("polyset_wake from inside a notifier failed: %s",
		     strerror(errno));
	if (m->fd[side] >= 0 && !fd_readable(m->fd[side]))
		fail("%s notifier called while its descriptor is not "
		     "readable",
		     side == RD ? "read" : "write");
}

static void
on_read_ready(void *arg)
{
	pipe_notified(arg, RD);
}

static void
on_write_ready(void *arg)
{
	pipe_notified(arg, WR);
}

/* An accept notifier: an attempt is pending or the server is shut. */
static void
on_accept_ready(void *arg)
{
	struct msrv *v = arg;

	v->calls++;
	if (v->once && polyserver_set_accept_notify(v->h, NULL, NULL) != 0)
		fail("removing a notifier from inside it failed");
	if (v->fd >= 0 && !fd_readable(v->fd))
		fail("accept notifier called while its descriptor is not "
		     "readable");
}

/* SPEC.md: "By the time the connect notifier runs, acceptance is
 * complete: polyclient_endpoint(cl, &ep, 0) called from inside it
 * succeeds"; polysocket.h: a refused client's pipes carry ECONNREFUSED
 * before the notifier reports the refusal. */
static void
on_decided(void *arg)
{
	struct mcli *c = arg;
	polyendpoint ep;
	int r, e;

	c->calls++;
	if (c->once && polyclient_set_connect_notify(c->h, NULL, NULL) != 0)
		fail("removing a notifier from inside it failed");
	errno = NO_ERRNO;
	r = polyclient_endpoint(c->h, &ep, 0);
	e = errno;
	if (r == 0 && c->have_mine &&
	    (ep.rd != c->mine.rd || ep.wr != c->mine.wr))
		fail("connect notifier: endpoint changed");
	if (r != 0 && e != ECONNREFUSED)
		fail("connect notifier: polyclient_endpoint(cl, &ep, 0) "
		     "failed with errno %d (%s)",
		     e, strerror(e));
	if (r != 0 && c->have_mine &&
	    (polypipe_get_error(c->mine.rd) == 0 ||
	     polypipe_get_error(c->mine.wr) == 0))
		fail("connect notifier: refused, but no error on the pipes");
	if (c->fd >= 0 && !fd_readable(c->fd))
		fail("connect notifier called while its descriptor is not "
		     "readable");
}

static void
log_add(struct dlog *l, int id, int msg)
{
	if (l->n == QMAX)
		fail("more destructor calls than messages ever written");
	l->e[l->n++] = id * 256 + msg;
}

static void
on_dtor(void *msg, void *arg)
{
	const int *id = arg;

	if (id < dtor_ids || id >= dtor_ids + 4)
		fail("destructor called with argument %p", arg);
	if ((uintptr_t)msg > 255)
		fail("destructor called with message %p", msg);
	log_add(&dtor_got, *id, (int)(uintptr_t)msg);
}

/* --- model pipes --------------------------------------------------------- */

static int
pool_new(size_t cap)
{
	struct mpipe *m;
	int i;

	for (i = 0; i < NPOOL; i++) {
		m = &pool[i];
		if (m->used)
			continue;
		m->used = true;
		m->cap = cap;
		m->head = m->len = 0;
		m->eof = false;
		m->error = 0;
		m->dtor = -1;
		m->closed[RD] = m->closed[WR] = false;
		m->notify[RD] = m->notify[WR] = false;
		m->once[RD] = m->once[WR] = false;
		m->wake[RD] = m->wake[WR] = false;
		m->calls[RD] = m->calls[WR] = 0;
		m->want[RD] = m->want[WR] = 0;
		m->fd[RD] = m->fd[WR] = -1;
		return i;
	}
	return -1;
}

static bool
mp_ended(const struct mpipe *m)
{
	return m->eof || m->error != 0;
}

/* SPEC.md: the read side would not wait while a message is buffered or
 * the stream has ended; the write side while a slot is free or a write
 * would fail at once. */
static bool
mp_ready(const struct mpipe *m, int side)
{
	if (side == RD)
		return m->len > 0 || mp_ended(m);
	return m->len < m->cap || mp_ended(m) || m->closed[RD];
}

/* polypipe_read_many with timeout 0: count, 0 at the end, or -1. */
static long
mp_read(struct mpipe *m, int *out, size_t max, int *err)
{
	size_t n;

	if (m->len == 0) {
		if (m->error != 0) {
			*err = m->error;
			return -1;
		}
		if (m->eof)
			return 0;
		*err = EAGAIN;
		return -1;
	}
	for (n = 0; n < max && m->len > 0; n++) {
		out[n] = m->q[m->head];
		m->head = (m->head + 1) % QMAX;
		m->len--;
	}
	return (long)n;
}

/* polypipe_write_many with timeout 0: the stored error, then EPIPE, then
 * EAGAIN; else as many as fit. */
static long
mp_write(struct mpipe *m, const int *msgs, size_t n, int *err)
{
	size_t i;

	if (m->error != 0) {
		*err = m->error;
		return -1;
	}
	if (m->eof || m->closed[RD]) {
		*err = EPIPE;
		return -1;
	}
	if (m->len >= m->cap) {
		*err = EAGAIN;
		return -1;
	}
	for (i = 0; i < n && m->len < m->cap; i++)
		m->q[(m->head + m->len++) % QMAX] = msgs[i];
	return (long)i;
}

static void
mp_set_error(struct mpipe *m, int err)
{
	if (m->error == 0)
		m->error = err; /* the first error wins */
}

static void
member_clear(struct mmember *mb)
{
	mb->set = -1;
	mb->obj = NULL;
	mb->due = false;
}

/* Closes an end: its own notifier and its set membership go first; the
 * read end hands the buffer to the destructor, the write end ends the
 * stream. */
static void
mp_close(int i, int side)
{
	struct mpipe *m = &pool[i];
	size_t k;

	if (!m->used || m->closed[side])
		fail("model: pipe %d end %d closed twice", i, side);
	member_clear(&mem_pipe[i][side]);
	m->notify[side] = false;
	m->fd[side] = -1;
	m->closed[side] = true;
	if (side == RD) {
		for (k = 0; m->dtor >= 0 && k < m->len; k++)
			log_add(&dtor_want, m->dtor,
			        m->q[(m->head + k) % QMAX]);
		m->len = 0;
	} else {
		m->eof = true;
	}
	if (m->closed[RD] && m->closed[WR])
		m->used = false;
}

/* A notifier the model expects to be called: counted, and gone after
 * its call if it removes itself. */
static void
model_fire(unsigned *want, bool *notify, bool once)
{
	if (!*notify)
		return;
	(*want)++;
	if (once)
		*notify = false;
}

static void
model_snapshot(void)
{
	int i, side;

	for (i = 0; i < NPOOL; i++)
		for (side = RD; side <= WR; side++)
			snap[i][side] =
			    pool[i].used && mp_ready(&pool[i], side);
}

/* Pipe notifiers fire on each transition of their side to "would not
 * wait"; one call changes a side at most once, so comparing the
 * readiness before and after it counts them. */
static void
model_edges(void)
{
	struct mpipe *m;
	int i, side;

	for (i = 0; i < NPOOL; i++) {
		m = &pool[i];
		for (side = RD; m->used && side <= WR; side++) {
			if (snap[i][side] || !mp_ready(m, side))
				continue;
			if (m->notify[side] && m->wake[side] &&
			    sets[0].h != NULL)
				sets[0].wake = true;
			model_fire(&m->want[side], &m->notify[side],
			           m->once[side]);
		}
	}
}

/* --- model servers and clients ------------------------------------------- */

/* A queued attempt is refused: the connection's pipes carry the error,
 * the server's side is closed (destroying what the client wrote), and
 * the connect notifier fires. */
static void
model_refuse(int j)
{
	struct mcli *c = &clients[j];

	c->state = REFUSED;
	c->srv = -1;
	mp_set_error(&pool[c->c2s], ECONNREFUSED);
	mp_set_error(&pool[c->s2c], ECONNREFUSED);
	mp_close(c->c2s, RD);
	mp_close(c->s2c, WR);
	model_fire(&c->want, &c->notify, c->once);
}

static int
model_refuse_all(struct msrv *v)
{
	int k, n = v->nq;

	for (k = 0; k < n; k++)
		model_refuse(v->q[k]);
	v->nq = 0;
	return n;
}

static void
model_shutdown(struct msrv *v)
{
	if (v->shut)
		return;
	v->shut = true;
	model_refuse_all(v);
	if (v->name >= 0)
		name_owner[v->name] = -1;
	v->name = -1;
	model_fire(&v->want, &v->notify, v->once); /* the first shutdown */
}

/* Queues client j on server s (-1: none by that name): 0 or an errno. */
static int
model_connect(int j, int s)
{
	struct mcli *c = &clients[j];
	struct msrv *v;

	switch (c->state) {
	case PENDING:
		return EALREADY;
	case ACCEPTED:
		return EISCONN;
	case REFUSED:
		return ECONNREFUSED;
	case IDLE:
		break;
	}
	if (s < 0 || servers[s].shut || servers[s].refusing)
		return ECONNREFUSED;
	v = &servers[s];
	if ((size_t)v->nq >= v->backlog)
		return EAGAIN;
	if (v->nq == 0) /* the backlog goes from empty to non-empty */
		model_fire(&v->want, &v->notify, v->once);
	v->q[v->nq++] = j;
	c->state = PENDING;
	c->srv = s;
	return 0;
}

/* The oldest attempt of v is accepted into endpoint slot k. */
static void
model_accept(struct msrv *v, int k, polyendpoint ep)
{
	struct mcli *c = &clients[v->q[0]];

	memmove(v->q, v->q + 1, (size_t)(--v->nq) * sizeof v->q[0]);
	c->state = ACCEPTED;
	c->srv = -1;
	model_fire(&c->want, &c->notify, c->once);
	eps[k].ep = ep;
	eps[k].c2s = c->c2s;
	eps[k].s2c = c->s2c;
}

/* --- handles ------------------------------------------------------------- */

/* A pipe end the harness may call: handle h is 2 * object + end, the
 * objects being the free-standing pipes, the clients' own endpoints and
 * the accepted endpoints, in that order. */
struct hnd {
	polypipe *p;
	int pipe; /* in pool */
	int side;
	polypipe **owner; /* the harness's copy; NULL: the client's */
};

static bool
handle_get(int h, struct hnd *o)
{
	int k = h / 2;
	struct mcli *c;

	o->side = h % 2;
	if (k < NSPIPE) {
		o->owner = &spipes[k].end[o->side];
		o->pipe = spipes[k].pipe;
	} else if ((k -= NSPIPE) < NCLI) {
		c = &clients[k];
		if (c->h == NULL || !c->have_mine)
			return false;
		o->owner = NULL;
		o->p = o->side == RD ? c->mine.rd : c->mine.wr;
		o->pipe = o->side == RD ? c->s2c : c->c2s;
		return true;
	} else {
		k -= NCLI;
		o->owner = o->side == RD ? &eps[k].ep.rd : &eps[k].ep.wr;
		o->pipe = o->side == RD ? eps[k].c2s : eps[k].s2c;
	}
	o->p = *o->owner;
	return o->p != NULL;
}

static const char *
hname(int h)
{
	static char buf[32];
	int k = h / 2;

	if (k < NSPIPE)
		snprintf(buf, sizeof buf, "pipe%d", k);
	else if (k < NSPIPE + NCLI)
		snprintf(buf, sizeof buf, "client%d", k - NSPIPE);
	else
		snprintf(buf, sizeof buf, "ep%d", k - NSPIPE - NCLI);
	strcat(buf, h % 2 == RD ? ".rd" : ".wr");
	return buf;
}

/* Whether p is a pipe end the harness holds already. */
static bool
known_pipe(const polypipe *p)
{
	struct hnd hd;
	int h;

	for (h = 0; h < NHANDLE; h++)
		if (handle_get(h, &hd) && hd.p == p)
			return true;
	return false;
}

static bool
known_fd(int fd)
{
	int i;

	for (i = 0; i < NPOOL; i++)
		if (pool[i].fd[RD] == fd || pool[i].fd[WR] == fd)
			return true;
	for (i = 0; i < NSRV; i++)
		if (servers[i].fd == fd)
			return true;
	for (i = 0; i < NCLI; i++)
		if (clients[i].fd == fd)
			return true;
	for (i = 0; i < NSET; i++)
		if (sets[i].fd == fd)
			return true;
	return false;
}

/* Checks a descriptor call's answer: the same descriptor every time,
 * and a new one distinct from all others the first time. */
static void
expect_fd(int got, int got_err, int *fd)
{
	if (*fd >= 0) {
		expect(got, got_err, *fd, 0);
		return;
	}
	expect(got < 0 ? -1 : 0, got_err, 0, 0);
	if (known_fd(got))
		fail("new descriptor %d is already in use", got);
	*fd = got;
	fds_seen[nfds_seen++] = got;
}

static const char *
name_of(int i)
{
	switch (i) {
	case 0:
		return "a";
	case 1:
		return "b";
	case 2:
		return name255;
	case 3:
		return "";
	case 4:
		return NULL;
	default:
		return name256;
	}
}

static const char *
name_desc(int i)
{
	static const char *const d[NNAMES] = {
		"\"a\"", "\"b\"", "<255 bytes>", "\"\"", "NULL", "<256 bytes>",
	};

	return d[i];
}

/* The argument check of a name: 0 or the errno. */
static int
name_err(int i)
{
	return i <= 2 ? 0 : i == 5 ? ENAMETOOLONG : EINVAL;
}

/* --- pipe calls ---------------------------------------------------------- */

static void
op_pipe_create(const uint8_t *a)
{
	int s = a[0] % NSPIPE, mode = a[1] % 8, i, r, e;
	size_t cap = a[2] % 9 == 0 ? POLYPIPE_UNBOUNDED : a[2] % 9;
	polypipe *rd = NULL, *wr = NULL;

	if (mode >= M_NULL_HANDLE) {
		/* capacity 0, or a NULL out-pointer for either end */
		if (mode == M_NULL_HANDLE)
			cap = 0;
		describe("polypipe_create(%zu, %s, %s)", cap,
		         mode == M_NULL_ARG ? "NULL" : "&rd",
		         mode == M_BAD_ARG ? "NULL" : "&wr");
		errno = NO_ERRNO;
		r = polypipe_create(cap, mode == M_NULL_ARG ? NULL : &rd,
		                    mode == M_BAD_ARG ? NULL : &wr);
		e = errno;
		expect(r, e, -1, EINVAL);
		return;
	}
	if (spipes[s].pipe >= 0 || (i = pool_new(cap)) < 0)
		return;
	describe("polypipe_create(%zu, &pipe%d.rd, &pipe%d.wr)", cap, s, s);
	errno = NO_ERRNO;
	r = polypipe_create(cap, &rd, &wr);
	e = errno;
	expect(r, e, 0, 0);
	if (rd == NULL || wr == NULL || rd == wr)
		fail("ends %p and %p", (void *)rd, (void *)wr);
	spipes[s].end[RD] = rd;
	spipes[s].end[WR] = wr;
	spipes[s].pipe = i;
}

static void
op_pipe_close(const uint8_t *a)
{
	int h = a[0] % NHANDLE;
	struct hnd hd;

	if (a[1] % 8 == M_BAD_ARG) {
		describe("polypipe_close(NULL)");
		polypipe_close(NULL);
		return;
	}
	/* The client's own ends are the library's to close. */
	if (!handle_get(h, &hd) || hd.owner == NULL)
		return;
	describe("polypipe_close(%s)", hname(h));
	polypipe_close(hd.p);
	*hd.owner = NULL;
	mp_close(hd.pipe, hd.side);
}

static void
op_read(const uint8_t *a)
{
	int h = a[0] % NHANDLE, mode = a[1] % 8, m = 0, werr = 0, r, e;
	void *msg = SENTINEL;
	struct hnd hd;
	long want;

	if (mode == M_NULL_HANDLE) {
		describe("polypipe_read(NULL, &msg, 0)");
		errno = NO_ERRNO;
		r = polypipe_read(NULL, &msg, 0);
		e = errno;
		expect(r, e, -1, EINVAL);
		return;
	}
	if (!handle_get(h, &hd))
		return;
	describe("polypipe_read(%s, %s, %d)", hname(h),
	         mode == M_NULL_ARG ? "NULL" : "&msg",
	         mode == M_BAD_ARG ? -2 : 0);
	errno = NO_ERRNO;
	r = polypipe_read(hd.p, mode == M_NULL_ARG ? NULL : &msg,
	                  mode == M_BAD_ARG ? -2 : 0);
	e = errno;
	/* Arguments first: EINVAL, then the wrong end. */
	if (mode == M_NULL_ARG || mode == M_BAD_ARG) {
		want = -1;
		werr = EINVAL;
	} else if (hd.side != RD) {
		want = -1;
		werr = EBADF;
	} else {
		want = mp_read(&pool[hd.pipe], &m, 1, &werr);
	}
	expect(r, e, want, werr);
	if (want == 1)
		expect_msg(msg, m, 0);
}

static void
op_read_many(const uint8_t *a)
{
	int h = a[0] % NHANDLE, mode = a[1] % 8, werr = 0, e;
	size_t i, max = a[2] % (MAX_BATCH + 1);
	void *msgs[MAX_BATCH + 1];
	int m[MAX_BATCH];
	struct hnd hd;
	long r, want;

	for (i = 0; i <= MAX_BATCH; i++)
		msgs[i] = SENTINEL;
	if (mode == M_NULL_HANDLE) {
		describe("polypipe_read_many(NULL, msgs, %zu, 0)", max);
		errno = NO_ERRNO;
		r = polypipe_read_many(NULL, msgs, max, 0);
		e = errno;
		expect(r, e, -1, EINVAL);
		return;
	}
	if (!handle_get(h, &hd))
		return;
	describe("polypipe_read_many(%s, %s, %zu, %d)", hname(h),
	         mode == M_NULL_ARG ? "NULL" : "msgs", max,
	         mode == M_BAD_ARG ? -2 : 0);
	errno = NO_ERRNO;
	r = polypipe_read_many(hd.p, mode == M_NULL_ARG ? NULL : msgs, max,
	                       mode == M_BAD_ARG ? -2 : 0);
	e = errno;
	if (mode == M_NULL_ARG || mode == M_BAD_ARG || max == 0) {
		want = -1;
		werr = EINVAL;
	} else if (hd.side != RD) {
		want = -1;
		werr = EBADF;
	} else {
		want = mp_read(&pool[hd.pipe], m, max, &werr);
	}
	expect(r, e, want, werr);
	for (i = 0; want > 0 && i < (size_t)want; i++)
		expect_msg(msgs[i], m[i], i);
	for (i = max; i <= MAX_BATCH; i++)
		if (msgs[i] != SENTINEL)
			fail("msgs[%zu] written, past max", i);
}

static void
op_write(const uint8_t *a)
{
	int h = a[0] % NHANDLE, mode = a[1] % 8, m = a[2], werr = 0, r, e;
	struct hnd hd;
	long want;

	if (mode == M_NULL_HANDLE) {
		describe("polypipe_write(NULL, %d, 0)", m);
		errno = NO_ERRNO;
		r = polypipe_write(NULL, msg_ptr(m), 0);
		e = errno;
		expect(r, e, -1, EINVAL);
		return;
	}
	if (!handle_get(h, &hd))
		return;
	/* A NULL message is a message: M_NULL_ARG is a valid write. */
	describe("polypipe_write(%s, %d, %d)", hname(h), m,
	         mode == M_BAD_ARG ? -2 : 0);
	errno = NO_ERRNO;
	r = polypipe_write(hd.p, msg_ptr(m), mode == M_BAD_ARG ? -2 : 0);
	e = errno;
	if (mode == M_BAD_ARG) {
		want = -1;
		werr = EINVAL;
	} else if (hd.side != WR) {
		want = -1;
		werr = EBADF;
	} else {
		want = mp_write(&pool[hd.pipe], &m, 1, &werr);
		if (want > 0)
			want = 0; /* polypipe_write returns 0 */
	}
	expect(r, e, want, werr);
}

static void
op_write_many(const uint8_t *a)
{
	int h = a[0] % NHANDLE, mode = a[1] % 8, werr = 0, e;
	size_t i, n = a[2] % (MAX_BATCH + 1);
	void *msgs[MAX_BATCH];
	int m[MAX_BATCH];
	struct hnd hd;
	long r, want;

	for (i = 0; i < MAX_BATCH; i++) {
		m[i] = (a[3] + (int)i) & 0xff;
		msgs[i] = msg_ptr(m[i]);
	}
	if (mode == M_NULL_HANDLE) {
		describe("polypipe_write_many(NULL, msgs, %zu, 0)", n);
		errno = NO_ERRNO;
		r = polypipe_write_many(NULL, msgs, n, 0);
		e = errno;
		expect(r, e, -1, EINVAL);
		return;
	}
	if (!handle_get(h, &hd))
		return;
	describe("polypipe_write_many(%s, %s [%d...], %zu, %d)", hname(h),
	         mode == M_NULL_ARG ? "NULL" : "msgs", m[0], n,
	         mode == M_BAD_ARG ? -2 : 0);
	errno = NO_ERRNO;
	r = polypipe_write_many(hd.p, mode == M_NULL_ARG ? NULL : msgs, n,
	                        mode == M_BAD_ARG ? -2 : 0);
	e = errno;
	if (mode == M_NULL_ARG || mode == M_BAD_ARG || n == 0) {
		want = -1;
		werr = EINVAL;
	} else if (hd.side != WR) {
		want = -1;
		werr = EBADF;
	} else {
		want = mp_write(&pool[hd.pipe], m, n, &werr);
	}
	expect(r, e, want, werr);
}

static void
op_write_eof(const uint8_t *a)
{
	int h = a[0] % NHANDLE, r, e;
	struct hnd hd;

	if (a[1] % 8 == M_NULL_HANDLE) {
		describe("polypipe_write_eof(NULL)");
		errno = NO_ERRNO;
		r = polypipe_write_eof(NULL);
		e = errno;
		expect(r, e, -1, EINVAL);
		return;
	}
	if (!handle_get(h, &hd))
		return;
	describe("polypipe_write_eof(%s)", hname(h));
	errno = NO_ERRNO;
	r = polypipe_write_eof(hd.p);
	e = errno;
	if (hd.side != WR) {
		expect(r, e, -1, EBADF);
		return;
	}
	expect(r, e, 0, 0); /* idempotent, needs no slot */
	pool[hd.pipe].eof = true;
}

static void
op_set_error(const uint8_t *a)
{
	int h = a[0] % NHANDLE, err = (int)a[2] - 2, r, e;
	struct hnd hd;

	if (a[1] % 8 == M_NULL_HANDLE) {
		describe("polypipe_set_error(NULL, %d)", err);
		errno = NO_ERRNO;
		r = polypipe_set_error(NULL, err);
		e = errno;
		expect(r, e, -1, EINVAL);
		return;
	}
	if (!handle_get(h, &hd))
		return;
	describe("polypipe_set_error(%s, %d)", hname(h), err);
	errno = NO_ERRNO;
	r = polypipe_set_error(hd.p, err);
	e = errno;
	if (err <= 0) {
		expect(r, e, -1, EINVAL);
		return;
	}
	expect(r, e, 0, 0);
	mp_set_error(&pool[hd.pipe], err);
}

/* polypipe_length, _capacity, _eof, _get_error: a[2] % 4 picks one. */
static void
op_query(const uint8_t *a)
{
	static const char *const fn[] = {
		"length",
		"capacity",
		"eof",
		"get_error",
	};
	int h = a[0] % NHANDLE, which = a[2] % 4;
	const struct mpipe *m = NULL;
	unsigned long long got, want = 0;
	struct hnd hd;
	polypipe *p = NULL;

	if (a[1] % 8 != M_NULL_HANDLE) {
		if (!handle_get(h, &hd))
			return;
		p = hd.p;
		m = &pool[hd.pipe];
	}
	describe("polypipe_%s(%s)", fn[which], p == NULL ? "NULL" : hname(h));
	switch (which) {
	case 0:
		got = polypipe_length(p);
		want = m == NULL ? 0 : m->len;
		break;
	case 1:
		got = polypipe_capacity(p);
		want = m == NULL ? 0 : m->cap;
		break;
	case 2:
		got = polypipe_eof(p);
		want = m != NULL && mp_ended(m);
		break;
	default:
		/* SPEC: NULL is -1 with EINVAL, as for every int function. */
		if (m == NULL) {
			int r, e;

			errno = NO_ERRNO;
			r = polypipe_get_error(p);
			e = errno;
			expect(r, e, -1, EINVAL);
			return;
		}
		got = (unsigned)polypipe_get_error(p);
		want = (unsigned)m->error;
		break;
	}
	if (got != want)
		fail("library %llu, model %llu", got, want);
}

/* polypipe_read_fd (a[2] even) or polypipe_write_fd (odd). */
static void
op_pipe_fd(const uint8_t *a)
{
	int h = a[0] % NHANDLE, side = a[2] % 2, fd, e;
	const char *fn = side == RD ? "read_fd" : "write_fd";
	struct hnd hd;

	if (a[1] % 8 == M_NULL_HANDLE) {
		describe("polypipe_%s(NULL)", fn);
		errno = NO_ERRNO;
		fd = side == RD ? polypipe_read_fd(NULL)
		                : polypipe_write_fd(NULL);
		e = errno;
		expect(fd, e, -1, EINVAL);
		return;
	}
	if (!handle_get(h, &hd))
		return;
	describe("polypipe_%s(%s)", fn, hname(h));
	errno = NO_ERRNO;
	fd = side == RD ? polypipe_read_fd(hd.p) : polypipe_write_fd(hd.p);
	e = errno;
	if (hd.side != side)
		expect(fd, e, -1, EBADF);
	else
		expect_fd(fd, e, &pool[hd.pipe].fd[side]);
}

/* polypipe_set_read_notify (a[2] even) or _write_notify (odd); a[2] & 2
 * sets the counting notifier, else removes it; a[2] & 4 makes it remove
 * itself from inside its first call; a[2] & 8 makes it call
 * polyset_wake(set0) from inside each call. */
static void
op_pipe_notify(const uint8_t *a)
{
	int h = a[0] % NHANDLE, side = a[2] % 2, r, e;
	const char *fn = side == RD ? "read" : "write";
	bool set = a[2] & 2, once = a[2] & 4, wake = a[2] & 8;
	struct mpipe *m;
	struct hnd hd;

	if (a[1] % 8 == M_NULL_HANDLE) {
		describe("polypipe_set_%s_notify(NULL, %s)", fn,
		         set ? "fn" : "NULL");
		errno = NO_ERRNO;
		r = side == RD ? polypipe_set_read_notify(NULL, NULL, NULL)
		               : polypipe_set_write_notify(NULL, NULL, NULL);
		e = errno;
		expect(r, e, -1, EINVAL);
		return;
	}
	if (!handle_get(h, &hd))
		return;
	m = &pool[hd.pipe];
	describe("polypipe_set_%s_notify(%s, %s%s)", fn, hname(h),
	         !set   ? "NULL"
	         : once ? "once"
	                : "count",
	         set && wake ? ", wakes set0" : "");
	if (hd.side == side) {
		m->endp[side] = hd.p; /* for the callback's own checks */
		m->once[side] = once;
		m->wake[side] = wake;
	}
	errno = NO_ERRNO;
	if (side == RD)
		r = polypipe_set_read_notify(hd.p, set ? on_read_ready : NULL,
		                             m);
	else
		r = polypipe_set_write_notify(hd.p,
		                              set ? on_write_ready : NULL, m);
	e = errno;
	if (hd.side != side) {
		expect(r, e, -1, EBADF);
		return;
	}
	expect(r, e, 0, 0);
	m->notify[side] = set; /* edge-triggered: setting calls nothing */
}

/* polypipe_set_destructor: a[2] & 4 sets it with argument a[2] % 4,
 * else removes it. */
static void
op_destructor(const uint8_t *a)
{
	int h = a[0] % NHANDLE, id = a[2] % 4, r, e;
	bool set = a[2] & 4;
	struct hnd hd;

	if (a[1] % 8 == M_NULL_HANDLE) {
		describe("polypipe_set_destructor(NULL, ...)");
		errno = NO_ERRNO;
		r = polypipe_set_destructor(NULL, on_dtor, &dtor_ids[id]);
		e = errno;
		expect(r, e, -1, EINVAL);
		return;
	}
	if (!handle_get(h, &hd))
		return;
	describe("polypipe_set_destructor(%s, %s, %d)", hname(h),
	         set ? "log" : "NULL", id);
	errno = NO_ERRNO;
	r = polypipe_set_destructor(hd.p, set ? on_dtor : NULL, &dtor_ids[id]);
	e = errno;
	expect(r, e, 0, 0);
	pool[hd.pipe].dtor = set ? id : -1; /* the last one set wins */
}

/* --- server calls -------------------------------------------------------- */

/* The server a[0] picks, or NULL if its slot is free. */
static struct msrv *
srv_get(const uint8_t *a)
{
	struct msrv *v = &servers[a[0] % NSRV];

	return v->h == NULL ? NULL : v;
}

static int
srv_index(const struct msrv *v)
{
	return (int)(v - servers);
}

/* For describe(): "srvN", or "NULL". */
static const char *
sname(const struct msrv *v)
{
	static const char *const names[NSRV] = { "srv0", "srv1" };

	return v == NULL ? "NULL" : names[srv_index(v)];
}

static void
op_srv_create(const uint8_t *a)
{
	struct msrv *v = &servers[a[0] % NSRV];

	if (v->h != NULL)
		return;
	describe("srv%d = polyserver_create()", srv_index(v));
	v->h = polyserver_create();
	if (v->h == NULL)
		fail("polyserver_create failed: %s", strerror(errno));
	v->shut = v->refusing = false;
	v->backlog = SIZE_MAX;
	v->nq = 0;
	v->name = -1;
	v->notify = false;
	v->calls = v->want = 0;
	v->fd = -1;
}

static void
op_srv_close(const uint8_t *a)
{
	struct msrv *v = srv_get(a);

	if (a[1] % 8 == M_BAD_ARG) {
		describe("polyserver_close(NULL)");
		polyserver_close(NULL);
		return;
	}
	if (v == NULL)
		return;
	describe("polyserver_close(srv%d)", srv_index(v));
	polyserver_close(v->h);
	v->notify = false; /* removed first: close never calls it */
	member_clear(&mem_srv[srv_index(v)]);
	model_shutdown(v);
	v->h = NULL;
	v->fd = -1;
}

static void
op_backlog(const uint8_t *a)
{
	struct msrv *v = srv_get(a);
	size_t max = a[2] % 6 == 5 ? SIZE_MAX : a[2] % 6;
	int r, e;

	if (a[1] % 8 == M_NULL_HANDLE)
		v = NULL;
	else if (v == NULL)
		return;
	describe("polyserver_set_backlog(%s, %zu)", sname(v), max);
	errno = NO_ERRNO;
	r = polyserver_set_backlog(v ? v->h : NULL, max);
	e = errno;
	if (v == NULL || max == 0) {
		expect(r, e, -1, EINVAL);
		return;
	}
	expect(r, e, 0, 0);
	if (!v->shut)
		v->backlog = max; /* lowering it keeps who is pending */
}

static int
free_ep_slots(int *slots)
{
	int k, n = 0;

	for (k = 0; k < NEP; k++)
		if (eps[k].ep.rd == NULL && eps[k].ep.wr == NULL)
			slots[n++] = k;
	return n;
}

/* An endpoint accepted: fresh, distinct pipes. */
static void
check_new_ep(const polyendpoint *ep)
{
	if (ep->rd == NULL || ep->wr == NULL || ep->rd == ep->wr ||
	    ep->rd == SENTINEL || ep->wr == SENTINEL || known_pipe(ep->rd) ||
	    known_pipe(ep->wr))
		fail("accepted endpoint {%p, %p} is not a new one",
		     (void *)ep->rd, (void *)ep->wr);
}

/* polyserver_accept (many == false) or polyserver_accept_many with max
 * a[2] % 4, into free endpoint slots. */
static void
do_accept(const uint8_t *a, bool many)
{
	struct msrv *v = srv_get(a);
	int mode = a[1] % 8, slots[NEP], nfree, werr = 0, e;
	size_t i, max = many ? a[2] % 4 : 1;
	polyendpoint got[NEP + 1];
	long r, want;

	for (i = 0; i <= NEP; i++)
		got[i].rd = got[i].wr = SENTINEL;
	nfree = free_ep_slots(slots);
	if (mode == M_NULL_HANDLE)
		v = NULL;
	else if (v == NULL || (size_t)nfree < max)
		return;
	describe("polyserver_accept%s(%s, %s, %zu, %d)", many ? "_many" : "",
	         sname(v), mode == M_NULL_ARG ? "NULL" : "eps", max,
	         mode == M_BAD_ARG ? -2 : 0);
	errno = NO_ERRNO;
	if (many)
		r = polyserver_accept_many(v ? v->h : NULL,
		                           mode == M_NULL_ARG ? NULL : got,
		                           max, mode == M_BAD_ARG ? -2 : 0);
	else
		r = polyserver_accept(v ? v->h : NULL,
		                      mode == M_NULL_ARG ? NULL : got,
		                      mode == M_BAD_ARG ? -2 : 0);
	e = errno;
	if (v == NULL || mode == M_NULL_ARG || mode == M_BAD_ARG || max == 0) {
		want = -1;
		werr = EINVAL;
	} else {
		v->refusing = false; /* every accept call ends refusing */
		if (v->shut) {
			want = -1;
			werr = ESHUTDOWN;
		} else if (v->nq == 0) {
			want = -1;
			werr = EAGAIN;
		} else {
			want = (size_t)v->nq < max ? v->nq : (long)max;
		}
	}
	if (!many && want > 0)
		want = 0; /* polyserver_accept returns 0 */
	expect(r, e, want, werr);
	if (!many && want == 0)
		want = 1;
	for (i = 0; want > 0 && i < (size_t)want; i++) {
		check_new_ep(&got[i]);
		model_accept(v, slots[i], got[i]);
	}
	/* SPEC.md: slots past the count are left untouched; past max
	 * whatever happens, and on a failure nothing is said. */
	for (i = want > 0 ? (size_t)want : max; i <= NEP; i++)
		if (got[i].rd != SENTINEL || got[i].wr != SENTINEL)
			fail("eps[%zu] written, past the count", i);
}

static void
op_accept(const uint8_t *a)
{
	do_accept(a, false);
}

static void
op_accept_many(const uint8_t *a)
{
	do_accept(a, true);
}

static void
op_refuse(const uint8_t *a)
{
	struct msrv *v = srv_get(a);
	int r, e;

	if (a[1] % 8 == M_NULL_HANDLE)
		v = NULL;
	else if (v == NULL)
		return;
	describe("polyserver_refuse(%s)", sname(v));
	errno = NO_ERRNO;
	r = polyserver_refuse(v ? v->h : NULL);
	e = errno;
	if (v == NULL) {
		expect(r, e, -1, EINVAL);
	} else if (v->shut) {
		expect(r, e, 0, 0);
	} else {
		v->refusing = true;
		expect(r, e, model_refuse_all(v), 0);
	}
}

static void
op_pending(const uint8_t *a)
{
	struct msrv *v = srv_get(a);
	bool got;

	if (a[1] % 8 == M_NULL_HANDLE)
		v = NULL;
	else if (v == NULL)
		return;
	describe("polyserver_pending(%s)", sname(v));
	got = polyserver_pending(v ? v->h : NULL);
	if (got != (v != NULL && v->nq > 0))
		fail("library %d, model %d", got, v != NULL && v->nq > 0);
}

static void
op_accept_fd(const uint8_t *a)
{
	struct msrv *v = srv_get(a);
	int fd, e;

	if (a[1] % 8 == M_NULL_HANDLE) {
		describe("polyserver_accept_fd(NULL)");
		errno = NO_ERRNO;
		fd = polyserver_accept_fd(NULL);
		e = errno;
		expect(fd, e, -1, EINVAL);
		return;
	}
	if (v == NULL)
		return;
	describe("polyserver_accept_fd(srv%d)", srv_index(v));
	errno = NO_ERRNO;
	fd = polyserver_accept_fd(v->h);
	e = errno;
	expect_fd(fd, e, &v->fd);
}

/* a[2] & 1 sets the counting notifier, else removes it; a[2] & 2 makes
 * it remove itself from inside its first call. */
static void
op_accept_notify(const uint8_t *a)
{
	struct msrv *v = srv_get(a);
	bool set = a[2] & 1, once = a[2] & 2;
	int r, e;

	if (a[1] % 8 == M_NULL_HANDLE) {
		describe("polyserver_set_accept_notify(NULL, ...)");
		errno = NO_ERRNO;
		r = polyserver_set_accept_notify(NULL, on_accept_ready, NULL);
		e = errno;
		expect(r, e, -1, EINVAL);
		return;
	}
	if (v == NULL)
		return;
	describe("polyserver_set_accept_notify(srv%d, %s)", srv_index(v),
	         !set   ? "NULL"
	         : once ? "once"
	                : "count");
	v->once = once;
	errno = NO_ERRNO;
	r = polyserver_set_accept_notify(v->h, set ? on_accept_ready : NULL,
	                                 v);
	e = errno;
	expect(r, e, 0, 0);
	v->notify = set; /* edge-triggered: setting calls nothing */
}

static void
op_bind(const uint8_t *a)
{
	struct msrv *v = srv_get(a);
	int n = a[2] % NNAMES, werr, r, e;

	if (a[1] % 8 == M_NULL_HANDLE)
		v = NULL;
	else if (v == NULL)
		return;
	describe("polyserver_bind(%s, %s)", sname(v), name_desc(n));
	errno = NO_ERRNO;
	r = polyserver_bind(v ? v->h : NULL, name_of(n));
	e = errno;
	if (v == NULL)
		werr = EINVAL;
	else if ((werr = name_err(n)) != 0)
		;
	else if (v->name >= 0)
		werr = EINVAL; /* already has a name */
	else if (v->shut)
		werr = ESHUTDOWN;
	else if (name_owner[n] >= 0)
		werr = EADDRINUSE;
	if (werr != 0) {
		expect(r, e, -1, werr);
		return;
	}
	expect(r, e, 0, 0);
	v->name = n;
	name_owner[n] = srv_index(v);
}

static void
op_shutdown(const uint8_t *a)
{
	struct msrv *v = srv_get(a);
	int r, e;

	if (a[1] % 8 == M_NULL_HANDLE)
		v = NULL;
	else if (v == NULL)
		return;
	describe("polyserver_shutdown(%s)", sname(v));
	errno = NO_ERRNO;
	r = polyserver_shutdown(v ? v->h : NULL);
	e = errno;
	if (v == NULL) {
		expect(r, e, -1, EINVAL);
		return;
	}
	expect(r, e, 0, 0);
	model_shutdown(v);
}

/* --- client calls -------------------------------------------------------- */

static struct mcli *
cli_get(const uint8_t *a)
{
	struct mcli *c = &clients[a[0] % NCLI];

	return c->h == NULL ? NULL : c;
}

static int
cli_index(const struct mcli *c)
{
	return (int)(c - clients);
}

static const char *
cname(const struct mcli *c)
{
	static const char *const names[NCLI] = {
		"client0",
		"client1",
		"client2",
	};

	return c == NULL ? "NULL" : names[cli_index(c)];
}

/* Capacity a[2] % 6: 0 (EINVAL), 1-4, or unbounded. */
static void
op_cli_create(const uint8_t *a)
{
	struct mcli *c = &clients[a[0] % NCLI];
	size_t cap = a[2] % 6 == 5 ? POLYPIPE_UNBOUNDED : a[2] % 6;
	polyclient *cl;
	int e;

	if (cap == 0) {
		describe("polyclient_create(0)");
		errno = NO_ERRNO;
		cl = polyclient_create(0);
		e = errno;
		expect(cl == NULL ? -1 : 0, e, -1, EINVAL);
		return;
	}
	if (c->h != NULL)
		return;
	if ((c->c2s = pool_new(cap)) < 0)
		return;
	if ((c->s2c = pool_new(cap)) < 0) {
		pool[c->c2s].used = false;
		return;
	}
	describe("client%d = polyclient_create(%zu)", cli_index(c), cap);
	c->h = polyclient_create(cap);
	if (c->h == NULL)
		fail("polyclient_create failed: %s", strerror(errno));
	c->state = IDLE;
	c->srv = -1;
	c->have_mine = false;
	c->notify = false;
	c->calls = c->want = 0;
	c->fd = -1;
}

/* Withdraws a pending attempt, closes the client's ends and, unless
 * they were handed to a server, the server's ends too. */
static void
op_cli_close(const uint8_t *a)
{
	struct mcli *c = cli_get(a);
	struct msrv *v;
	bool theirs;
	int k;

	if (a[1] % 8 == M_BAD_ARG) {
		describe("polyclient_close(NULL)");
		polyclient_close(NULL);
		return;
	}
	if (c == NULL)
		return;
	describe("polyclient_close(client%d)", cli_index(c));
	polyclient_close(c->h);
	c->notify = false;
	member_clear(&mem_cli[cli_index(c)]);
	theirs = c->state == IDLE || c->state == PENDING;
	if (c->state == PENDING) {
		v = &servers[c->srv];
		for (k = 0; v->q[k] != cli_index(c); k++)
			;
		memmove(v->q + k, v->q + k + 1,
		        (size_t)(v->nq - k - 1) * sizeof v->q[0]);
		v->nq--;
	}
	mp_close(c->c2s, WR);
	if (theirs)
		mp_close(c->c2s, RD);
	mp_close(c->s2c, RD);
	if (theirs)
		mp_close(c->s2c, WR);
	c->h = NULL;
	c->fd = -1;
}

static void
op_connect(const uint8_t *a)
{
	struct mcli *c = cli_get(a);
	struct msrv *v = &servers[a[2] % NSRV];
	int mode = a[1] % 8, werr, r, e;

	if (v->h == NULL)
		v = NULL; /* never connect to a closed server */
	if (mode == M_NULL_HANDLE)
		c = NULL;
	else if (mode == M_NULL_ARG)
		v = NULL;
	if ((c == NULL && mode != M_NULL_HANDLE) ||
	    (v == NULL && mode != M_NULL_ARG && mode != M_NULL_HANDLE))
		return;
	describe("polyclient_connect(%s, %s)", cname(c), sname(v));
	errno = NO_ERRNO;
	r = polyclient_connect(c ? c->h : NULL, v ? v->h : NULL);
	e = errno;
	werr = c == NULL || v == NULL
	           ? EINVAL
	           : model_connect(cli_index(c), srv_index(v));
	expect(r, e, werr == 0 ? 0 : -1, werr);
}

static void
op_connect_name(const uint8_t *a)
{
	struct mcli *c = cli_get(a);
	int n = a[2] % NNAMES, werr, r, e;

	if (a[1] % 8 == M_NULL_HANDLE)
		c = NULL;
	else if (c == NULL)
		return;
	describe("polyclient_connect_name(%s, %s)", cname(c), name_desc(n));
	errno = NO_ERRNO;
	r = polyclient_connect_name(c ? c->h : NULL, name_of(n));
	e = errno;
	if (c == NULL)
		werr = EINVAL;
	else if ((werr = name_err(n)) == 0)
		werr = model_connect(cli_index(c), name_owner[n]);
	expect(r, e, werr == 0 ? 0 : -1, werr);
}

/* The client's ends, from either endpoint call: the same two every
 * time. */
static void
got_mine(struct mcli *c, const polyendpoint *ep)
{
	if (c->have_mine) {
		if (ep->rd != c->mine.rd || ep->wr != c->mine.wr)
			fail("endpoint {%p, %p}, before {%p, %p}",
			     (void *)ep->rd, (void *)ep->wr,
			     (void *)c->mine.rd, (void *)c->mine.wr);
		return;
	}
	if (ep->rd == NULL || ep->wr == NULL || ep->rd == ep->wr ||
	    ep->rd == SENTINEL || ep->wr == SENTINEL || known_pipe(ep->rd) ||
	    known_pipe(ep->wr))
		fail("endpoint {%p, %p} is not a new one", (void *)ep->rd,
		     (void *)ep->wr);
	c->mine = *ep;
	c->have_mine = true;
}

/* polyclient_endpoint (sync) or polyclient_endpoint_async. */
static void
do_endpoint(const uint8_t *a, bool async)
{
	struct mcli *c = cli_get(a);
	int mode = a[1] % 8, werr = 0, r, e;
	polyendpoint ep = { SENTINEL, SENTINEL };

	if (mode == M_NULL_HANDLE)
		c = NULL;
	else if (c == NULL)
		return;
	if (async && mode == M_BAD_ARG)
		mode = 0; /* no timeout to get wrong */
	describe("polyclient_endpoint%s(%s, %s%s)", async ? "_async" : "",
	         cname(c), mode == M_NULL_ARG ? "NULL" : "&ep",
	         async               ? ""
	         : mode == M_BAD_ARG ? ", -2"
	                             : ", 0");
	errno = NO_ERRNO;
	if (async)
		r = polyclient_endpoint_async(c ? c->h : NULL,
		                              mode == M_NULL_ARG ? NULL : &ep);
	else
		r = polyclient_endpoint(c ? c->h : NULL,
		                        mode == M_NULL_ARG ? NULL : &ep,
		                        mode == M_BAD_ARG ? -2 : 0);
	e = errno;
	if (c == NULL || mode == M_NULL_ARG || mode == M_BAD_ARG)
		werr = EINVAL;
	else if (c->state == IDLE)
		werr = ENOTCONN;
	else if (c->state == REFUSED)
		werr = ECONNREFUSED;
	else if (c->state == PENDING && !async)
		werr = EAGAIN; /* polysocket.h: timeout 0, undecided */
	expect(r, e, werr == 0 ? 0 : -1, werr);
	if (werr == 0)
		got_mine(c, &ep);
}

static void
op_endpoint(const uint8_t *a)
{
	do_endpoint(a, false);
}

static void
op_endpoint_async(const uint8_t *a)
{
	do_endpoint(a, true);
}

static void
op_connect_fd(const uint8_t *a)
{
	struct mcli *c = cli_get(a);
	int fd, e;

	if (a[1] % 8 == M_NULL_HANDLE) {
		describe("polyclient_connect_fd(NULL)");
		errno = NO_ERRNO;
		fd = polyclient_connect_fd(NULL);
		e = errno;
		expect(fd, e, -1, EINVAL);
		return;
	}
	if (c == NULL)
		return;
	describe("polyclient_connect_fd(client%d)", cli_index(c));
	errno = NO_ERRNO;
	fd = polyclient_connect_fd(c->h);
	e = errno;
	if (c->state == IDLE)
		expect(fd, e, -1, ENOTCONN);
	else
		expect_fd(fd, e, &c->fd);
}

/* As op_accept_notify. */
static void
op_connect_notify(const uint8_t *a)
{
	struct mcli *c = cli_get(a);
	bool set = a[2] & 1, once = a[2] & 2;
	int r, e;

	if (a[1] % 8 == M_NULL_HANDLE) {
		describe("polyclient_set_connect_notify(NULL, ...)");
		errno = NO_ERRNO;
		r = polyclient_set_connect_notify(NULL, on_decided, NULL);
		e = errno;
		expect(r, e, -1, EINVAL);
		return;
	}
	if (c == NULL)
		return;
	describe("polyclient_set_connect_notify(client%d, %s)", cli_index(c),
	         !set   ? "NULL"
	         : once ? "once"
	                : "count");
	c->once = once;
	errno = NO_ERRNO;
	r = polyclient_set_connect_notify(c->h, set ? on_decided : NULL, c);
	e = errno;
	expect(r, e, 0, 0);
	c->notify = set;
	/* Already decided: called at once, from this call. */
	if (c->state == ACCEPTED || c->state == REFUSED)
		model_fire(&c->want, &c->notify, c->once);
}

static void
op_ep_close(const uint8_t *a)
{
	int k = a[0] % NEP;
	polyendpoint old = eps[k].ep;

	if (a[1] % 8 == M_BAD_ARG) {
		describe("polyendpoint_close(NULL)");
		polyendpoint_close(NULL);
		return;
	}
	if (old.rd == NULL && old.wr == NULL)
		return;
	describe("polyendpoint_close(ep%d)", k);
	polyendpoint_close(&eps[k].ep);
	if (eps[k].ep.rd != NULL || eps[k].ep.wr != NULL)
		fail("endpoint not set to NULL: {%p, %p}",
		     (void *)eps[k].ep.rd, (void *)eps[k].ep.wr);
	if (old.rd != NULL)
		mp_close(eps[k].c2s, RD);
	if (old.wr != NULL)
		mp_close(eps[k].s2c, WR);
}

/* --- set calls ----------------------------------------------------------- */

/* What a set op's a[2] names: a pipe end, a server or a client, with its
 * membership and its readiness as SPEC.md words it (that of its
 * descriptor).  False if that object is not open. */
struct target {
	void *obj;
	struct mmember *mb;
	bool ready;
};

static bool
target_get(int t, struct target *o)
{
	struct hnd hd;
	struct msrv *v;
	struct mcli *c;

	if (t < NHANDLE) {
		if (!handle_get(t, &hd))
			return false;
		o->obj = hd.p;
		o->mb = &mem_pipe[hd.pipe][hd.side];
		o->ready = mp_ready(&pool[hd.pipe], hd.side);
	} else if (t < NHANDLE + NSRV) {
		v = &servers[t - NHANDLE];
		if (v->h == NULL)
			return false;
		o->obj = v->h;
		o->mb = &mem_srv[t - NHANDLE];
		o->ready = v->nq > 0 || v->shut;
	} else {
		c = &clients[t - NHANDLE - NSRV];
		if (c->h == NULL)
			return false;
		o->obj = c->h;
		o->mb = &mem_cli[t - NHANDLE - NSRV];
		o->ready = c->state == ACCEPTED || c->state == REFUSED;
	}
	return true;
}

static const char *
tname(int t)
{
	static char buf[32];

	if (t < NHANDLE)
		return hname(t);
	if (t < NHANDLE + NSRV)
		snprintf(buf, sizeof buf, "srv%d", t - NHANDLE);
	else
		snprintf(buf, sizeof buf, "client%d", t - NHANDLE - NSRV);
	return buf;
}

/* Every membership, for the loops over a set's members. */
static struct mmember *
member_at(int i)
{
	if (i < 2 * NPOOL)
		return &mem_pipe[i / 2][i % 2];
	if ((i -= 2 * NPOOL) < NSRV)
		return &mem_srv[i];
	return &mem_cli[i - NSRV];
}
#define NMEMBER (2 * NPOOL + NSRV + NCLI)

/* Keeps every membership in step with its object after a call: an armed
 * member joins the ready order when it becomes ready (at this call's
 * tick), keeps its place while it stays ready, and leaves when it stops
 * being ready.  A oneshot member that was reported stays out until
 * polyset_modify re-arms it. */
static void
member_update(struct mmember *mb, bool ready)
{
	if (mb->set < 0 || !mb->armed) {
		mb->due = false;
		return;
	}
	if (ready && !mb->due)
		mb->tick = tick_now;
	mb->due = ready;
}

static void
model_sets_update(void)
{
	int i, side;

	for (i = 0; i < NPOOL; i++)
		for (side = RD; pool[i].used && side <= WR; side++)
			member_update(&mem_pipe[i][side],
			              mp_ready(&pool[i], side));
	for (i = 0; i < NSRV; i++)
		if (servers[i].h != NULL)
			member_update(&mem_srv[i],
			              servers[i].nq > 0 || servers[i].shut);
	for (i = 0; i < NCLI; i++)
		if (clients[i].h != NULL)
			member_update(&mem_cli[i],
			              clients[i].state == ACCEPTED ||
			                  clients[i].state == REFUSED);
}

static int
set_ndue(int s)
{
	int i, n = 0;

	for (i = 0; i < NMEMBER; i++)
		n += member_at(i)->set == s && member_at(i)->due;
	return n;
}

/* SPEC.md: polyset_fd is readable exactly while polyset_wait(..., 0)
 * would not fail with EAGAIN. */
static bool
set_ready(int s)
{
	return sets[s].wake || set_ndue(s) > 0;
}

/* For describe(): "setN", or "NULL" for -1. */
static const char *
setname(int s)
{
	static const char *const names[NSET] = { "set0", "set1" };

	return s < 0 ? "NULL" : names[s];
}

/* The set a[0] picks, or -1 if its slot is free. */
static int
set_get(const uint8_t *a)
{
	int s = a[0] % NSET;

	return sets[s].h == NULL ? -1 : s;
}

static void
op_set_create(const uint8_t *a)
{
	int s = a[0] % NSET;

	if (sets[s].h != NULL)
		return;
	describe("set%d = polyset_create()", s);
	sets[s].h = polyset_create();
	if (sets[s].h == NULL)
		fail("polyset_create failed: %s", strerror(errno));
	sets[s].wake = false;
	sets[s].fd = -1;
}

/* SPEC.md: closing a set ends every membership; the members stay open. */
static void
op_set_close(const uint8_t *a)
{
	int s = set_get(a), i;

	if (a[1] % 8 == M_BAD_ARG) {
		describe("polyset_close(NULL)");
		polyset_close(NULL);
		return;
	}
	if (s < 0)
		return;
	describe("polyset_close(set%d)", s);
	polyset_close(sets[s].h);
	sets[s].h = NULL;
	sets[s].fd = -1;
	for (i = 0; i < NMEMBER; i++)
		if (member_at(i)->set == s)
			member_clear(member_at(i));
}

enum set_call { SET_ADD, SET_MODIFY, SET_REMOVE };

/* Stands for an object that is none of the library's handles: polyset.h
 * promises ENOTSOCK for it from add, ENOENT from modify and remove (it is
 * no member), and the library reads its first word. */
static uint32_t not_a_handle[4];

/* polyset_add, _modify or _remove of target a[2] % NTARGET in set a[0],
 * flags POLYSET_ONESHOT if a[3] & 1, data a[3].  Modes: 4 an object that
 * is not a handle, NULL set, NULL object, unknown flags (add and
 * modify). */
static void
do_member(const uint8_t *a, enum set_call call)
{
	static const char *const fn[] = { "add", "modify", "remove" };
	int s = set_get(a), mode = a[1] % 8, t = a[2] % NTARGET, werr = 0;
	unsigned flags = a[3] & 1 ? POLYSET_ONESHOT : 0;
	struct target tg;
	struct mmember *mb;
	int r, e;

	if (mode == M_BAD_ARG && call != SET_REMOVE)
		flags |= 2u << (a[3] % 31); /* no such flag */
	if (mode == M_NULL_HANDLE)
		s = -1;
	else if (s < 0)
		return;
	if (!target_get(t, &tg))
		return;
	if (mode == M_NULL_ARG)
		tg.obj = NULL;
	else if (mode == 4)
		tg.obj = (void *)not_a_handle;
	if (call == SET_REMOVE)
		describe("polyset_remove(%s, %s)", setname(s),
		         tg.obj == NULL ? "NULL"
		         : mode == 4    ? "not_a_handle"
		                        : tname(t));
	else
		describe("polyset_%s(%s, %s, %#x, %d)", fn[call], setname(s),
		         tg.obj == NULL ? "NULL"
		         : mode == 4    ? "not_a_handle"
		                        : tname(t),
		         flags, a[3]);
	errno = NO_ERRNO;
	switch (call) {
	case SET_ADD:
		r = polyset_add(s < 0 ? NULL : sets[s].h, tg.obj, flags,
		                msg_ptr(a[3]));
		break;
	case SET_MODIFY:
		r = polyset_modify(s < 0 ? NULL : sets[s].h, tg.obj, flags,
		                   msg_ptr(a[3]));
		break;
	default:
		r = polyset_remove(s < 0 ? NULL : sets[s].h, tg.obj);
		break;
	}
	e = errno;
	mb = tg.mb;
	/* Arguments first, then membership. */
	if (s < 0 || tg.obj == NULL || (flags & ~POLYSET_ONESHOT) != 0)
		werr = EINVAL;
	else if (mode == 4)
		werr = call == SET_ADD ? ENOTSOCK : ENOENT;
	else if (call == SET_ADD && mb->set == s)
		werr = EEXIST;
	else if (call == SET_ADD && mb->set >= 0)
		werr = EBUSY;
	else if (call != SET_ADD && mb->set != s)
		werr = ENOENT;
	expect(r, e, werr == 0 ? 0 : -1, werr);
	if (werr != 0)
		return;
	switch (call) {
	case SET_ADD:
		/* Ready now: it becomes ready now, behind those due. */
		mb->set = s;
		mb->obj = tg.obj;
		mb->target = t;
		mb->armed = true;
		mb->due = false;
		break;
	case SET_MODIFY:
		/* polyset.h: re-arming a ready member makes it due again at
		 * once, behind the members already due; an armed member
		 * keeps its place. */
		mb->armed = true;
		break;
	default:
		member_clear(mb);
		return;
	}
	mb->oneshot = flags & POLYSET_ONESHOT;
	mb->data = a[3];
}

static void
op_set_add(const uint8_t *a)
{
	do_member(a, SET_ADD);
}

static void
op_set_modify(const uint8_t *a)
{
	do_member(a, SET_MODIFY);
}

static void
op_set_remove(const uint8_t *a)
{
	do_member(a, SET_REMOVE);
}

/* The ready order of set s, for messages: due members by tick. */
static const char *
set_order(int s)
{
	static char buf[400];
	struct mmember *due[NMEMBER], *mb;
	size_t len = 0;
	int n = 0, i, j;

	for (i = 0; i < NMEMBER; i++) {
		mb = member_at(i);
		if (mb->set != s || !mb->due)
			continue;
		for (j = n++; j > 0 && due[j - 1]->tick > mb->tick; j--)
			due[j] = due[j - 1];
		due[j] = mb;
	}
	buf[0] = '\0';
	for (i = 0; i < n && len < sizeof buf - 40; i++)
		len += (size_t)snprintf(buf + len, sizeof buf - len,
		                        "%s%s@%lu", i ? " " : "",
		                        tname(due[i]->target), due[i]->tick);
	return n == 0 ? "(none)" : buf;
}

/* polyset_wait on set a[0] with max a[2] % (MAX_BATCH + 1).  Timeout 0,
 * or 100 ms in mode 3 where the model says the wait returns at once, so
 * a library that would wait fails with ETIMEDOUT.  Checks each event
 * against the ready order: exactly the due members, each once, up to
 * max, in the order of their ticks (any order among equal ticks), with
 * their data. */
static void
op_set_wait(const uint8_t *a)
{
	int s = set_get(a), mode = a[1] % 8, werr = 0, timeout = 0, e;
	size_t i, max = a[2] % (MAX_BATCH + 1);
	struct polyset_event evs[MAX_BATCH + 1];
	struct mmember *mb, *got, *first;
	bool seen[NMEMBER];
	char order[400];
	long r, want;
	int k, ndue;

	for (i = 0; i <= MAX_BATCH; i++)
		evs[i].obj = evs[i].data = SENTINEL;
	if (mode == M_NULL_HANDLE) {
		describe("polyset_wait(NULL, evs, %zu, 0)", max);
		errno = NO_ERRNO;
		r = polyset_wait(NULL, evs, max, 0);
		e = errno;
		expect(r, e, -1, EINVAL);
		return;
	}
	if (s < 0)
		return;
	if (mode == M_BAD_ARG)
		timeout = -2;
	else if (mode == 3 && set_ready(s))
		timeout = 100;
	describe("polyset_wait(set%d, %s, %zu, %d)", s,
	         mode == M_NULL_ARG ? "NULL" : "evs", max, timeout);
	snprintf(order, sizeof order, "%s", set_order(s));
	errno = NO_ERRNO;
	r = polyset_wait(sets[s].h, mode == M_NULL_ARG ? NULL : evs, max,
	                 timeout);
	e = errno;
	ndue = set_ndue(s);
	if (mode == M_NULL_ARG || mode == M_BAD_ARG || max == 0) {
		want = -1;
		werr = EINVAL;
	} else if (ndue > 0) {
		want = (size_t)ndue < max ? ndue : (long)max;
	} else if (sets[s].wake) {
		want = 0; /* the wake is used up */
		sets[s].wake = false;
	} else {
		want = -1;
		werr = EAGAIN;
	}
	if (r != want || (want < 0 && e != werr))
		fail("library returned %ld, errno %d (%s); model %ld, errno "
		     "%d (%s); wake %d; ready order: %s",
		     r, e, strerror(e), want, want >= 0 ? 0 : werr,
		     want >= 0 ? "-" : strerror(werr), sets[s].wake, order);
	memset(seen, 0, sizeof seen);
	for (i = 0; want > 0 && i < (size_t)want; i++) {
		got = first = NULL;
		for (k = 0; k < NMEMBER; k++) {
			mb = member_at(k);
			if (mb->set != s || !mb->due || seen[k])
				continue;
			if (mb->obj == evs[i].obj) {
				got = mb;
				seen[k] = true;
			}
			if (first == NULL || mb->tick < first->tick)
				first = mb;
		}
		if (got == NULL)
			fail("event %zu: %p is not a ready member not yet "
			     "reported; ready order: %s",
			     i, evs[i].obj, order);
		if (got->tick != first->tick)
			fail("event %zu: %s@%lu, but %s@%lu is ahead of it; "
			     "ready order: %s",
			     i, tname(got->target), got->tick,
			     tname(first->target), first->tick, order);
		if (evs[i].data != msg_ptr(got->data))
			fail("event %zu: %s with data %p, model %d", i,
			     tname(got->target), evs[i].data, got->data);
	}
	/* Reported: a oneshot member is held until modify; any other goes
	 * behind every other ready member, in the order reported. */
	for (i = 0; want > 0 && i < (size_t)want; i++) {
		for (k = 0; k < NMEMBER; k++) {
			mb = member_at(k);
			if (mb->set != s || mb->obj != evs[i].obj)
				continue;
			if (mb->oneshot) {
				mb->armed = false;
				mb->due = false;
			} else {
				mb->tick = ++tick_now;
			}
		}
	}
	for (i = max; i <= MAX_BATCH; i++)
		if (evs[i].obj != SENTINEL || evs[i].data != SENTINEL)
			fail("evs[%zu] written, past max", i);
	if (trace && want > 0) {
		fprintf(stderr, "api_fuzz:     ->");
		for (i = 0; i < (size_t)want; i++)
			fprintf(stderr, " %d", (int)(uintptr_t)evs[i].data);
		fprintf(stderr, " (data); order was %s\n", order);
	}
}

static void
op_set_fd(const uint8_t *a)
{
	int s = set_get(a), fd, e;

	if (a[1] % 8 == M_NULL_HANDLE) {
		describe("polyset_fd(NULL)");
		errno = NO_ERRNO;
		fd = polyset_fd(NULL);
		e = errno;
		expect(fd, e, -1, EINVAL);
		return;
	}
	if (s < 0)
		return;
	describe("polyset_fd(set%d)", s);
	errno = NO_ERRNO;
	fd = polyset_fd(sets[s].h);
	e = errno;
	expect_fd(fd, e, &sets[s].fd);
}

/* SPEC.md: with no wait blocked, wakes count as one, and are pending
 * until a wait finds no member ready. */
static void
op_set_wake(const uint8_t *a)
{
	int s = set_get(a), r, e;

	if (a[1] % 8 == M_NULL_HANDLE) {
		describe("polyset_wake(NULL)");
		errno = NO_ERRNO;
		r = polyset_wake(NULL);
		e = errno;
		expect(r, e, -1, EINVAL);
		return;
	}
	if (s < 0)
		return;
	describe("polyset_wake(set%d)", s);
	errno = NO_ERRNO;
	r = polyset_wake(sets[s].h);
	e = errno;
	expect(r, e, 0, 0);
	sets[s].wake = true;
}

static void (*const ops[NOPS])(const uint8_t *) = {
	[OP_PIPE_CREATE] = op_pipe_create,
	[OP_PIPE_CLOSE] = op_pipe_close,
	[OP_READ] = op_read,
	[OP_WRITE] = op_write,
	[OP_READ_MANY] = op_read_many,
	[OP_WRITE_MANY] = op_write_many,
	[OP_WRITE_EOF] = op_write_eof,
	[OP_SET_ERROR] = op_set_error,
	[OP_QUERY] = op_query,
	[OP_PIPE_FD] = op_pipe_fd,
	[OP_PIPE_NOTIFY] = op_pipe_notify,
	[OP_DESTRUCTOR] = op_destructor,
	[OP_SRV_CREATE] = op_srv_create,
	[OP_SRV_CLOSE] = op_srv_close,
	[OP_BACKLOG] = op_backlog,
	[OP_ACCEPT] = op_accept,
	[OP_ACCEPT_MANY] = op_accept_many,
	[OP_REFUSE] = op_refuse,
	[OP_PENDING] = op_pending,
	[OP_ACCEPT_FD] = op_accept_fd,
	[OP_ACCEPT_NOTIFY] = op_accept_notify,
	[OP_BIND] = op_bind,
	[OP_SHUTDOWN] = op_shutdown,
	[OP_CLI_CREATE] = op_cli_create,
	[OP_CLI_CLOSE] = op_cli_close,
	[OP_CONNECT] = op_connect,
	[OP_CONNECT_NAME] = op_connect_name,
	[OP_ENDPOINT] = op_endpoint,
	[OP_ENDPOINT_ASYNC] = op_endpoint_async,
	[OP_CONNECT_FD] = op_connect_fd,
	[OP_CONNECT_NOTIFY] = op_connect_notify,
	[OP_EP_CLOSE] = op_ep_close,
	[OP_SET_CREATE] = op_set_create,
	[OP_SET_CLOSE] = op_set_close,
	[OP_SET_ADD] = op_set_add,
	[OP_SET_MODIFY] = op_set_modify,
	[OP_SET_REMOVE] = op_set_remove,
	[OP_SET_WAIT] = op_set_wait,
	[OP_SET_FD] = op_set_fd,
	[OP_SET_WAKE] = op_set_wake,
};

/* --- checks after every call --------------------------------------------- */

static int
cmp_int(const void *x, const void *y)
{
	int a = *(const int *)x, b = *(const int *)y;

	return (a > b) - (a < b);
}

static void
check_dtors(void)
{
	size_t i;

	qsort(dtor_got.e, dtor_got.n, sizeof dtor_got.e[0], cmp_int);
	qsort(dtor_want.e, dtor_want.n, sizeof dtor_want.e[0], cmp_int);
	for (i = 0; i < dtor_got.n || i < dtor_want.n; i++) {
		if (i < dtor_got.n && i < dtor_want.n &&
		    dtor_got.e[i] == dtor_want.e[i])
			continue;
		fail("destructor: library %zu calls, model %zu; first "
		     "difference: library (arg %d, msg %d), model "
		     "(arg %d, msg %d)",
		     dtor_got.n, dtor_want.n,
		     i < dtor_got.n ? dtor_got.e[i] / 256 : -1,
		     i < dtor_got.n ? dtor_got.e[i] % 256 : -1,
		     i < dtor_want.n ? dtor_want.e[i] / 256 : -1,
		     i < dtor_want.n ? dtor_want.e[i] % 256 : -1);
	}
	dtor_got.n = dtor_want.n = 0;
}

/* Every counter, also of closed objects: a call after close counts. */
static void
check_notifiers(void)
{
	int i, side;

	for (i = 0; i < NPOOL; i++)
		for (side = RD; side <= WR; side++)
			if (pool[i].calls[side] != pool[i].want[side])
				fail("%s notifier of model pipe %d: library "
				     "%u calls, model %u",
				     side == RD ? "read" : "write", i,
				     pool[i].calls[side], pool[i].want[side]);
	for (i = 0; i < NSRV; i++)
		if (servers[i].calls != servers[i].want)
			fail("accept notifier of srv%d: library %u calls, "
			     "model %u",
			     i, servers[i].calls, servers[i].want);
	for (i = 0; i < NCLI; i++)
		if (clients[i].calls != clients[i].want)
			fail("connect notifier of client%d: library %u calls, "
			     "model %u",
			     i, clients[i].calls, clients[i].want);
}

/* Every descriptor handed out: readable exactly while the model says
 * the matching call with timeout 0 would not fail with EAGAIN. */
static void
check_fds(void)
{
	enum { N = 2 * NPOOL + NSRV + NCLI + NSET };
	struct pollfd pfd[N];
	bool want[N];
	char what[N][32];
	nfds_t n = 0, k;
	int i, side;

	for (i = 0; i < NPOOL; i++) {
		for (side = RD; side <= WR; side++) {
			if (pool[i].fd[side] < 0)
				continue;
			pfd[n].fd = pool[i].fd[side];
			want[n] = mp_ready(&pool[i], side);
			snprintf(what[n++], sizeof what[0], "model pipe %d %s",
			         i, side == RD ? "rd" : "wr");
		}
	}
	for (i = 0; i < NSRV; i++) {
		if (servers[i].fd < 0)
			continue;
		pfd[n].fd = servers[i].fd;
		want[n] = servers[i].nq > 0 || servers[i].shut;
		snprintf(what[n++], sizeof what[0], "srv%d", i);
	}
	for (i = 0; i < NCLI; i++) {
		if (clients[i].fd < 0)
			continue;
		pfd[n].fd = clients[i].fd;
		want[n] = clients[i].state == ACCEPTED ||
		          clients[i].state == REFUSED;
		snprintf(what[n++], sizeof what[0], "client%d", i);
	}
	for (i = 0; i < NSET; i++) {
		if (sets[i].fd < 0)
			continue;
		pfd[n].fd = sets[i].fd;
		want[n] = set_ready(i);
		snprintf(what[n++], sizeof what[0], "set%d", i);
	}
	for (k = 0; k < n; k++)
		pfd[k].events = POLLIN;
	if (n > 0 && poll(pfd, n, 0) < 0)
		fail("poll: %s", strerror(errno));
	for (k = 0; k < n; k++) {
		if (pfd[k].revents & POLLNVAL)
			fail("descriptor %d of %s is closed", pfd[k].fd,
			     what[k]);
		if (((pfd[k].revents & POLLIN) != 0) != want[k])
			fail("descriptor %d of %s: readable %d, model %d",
			     pfd[k].fd, what[k], !want[k], want[k]);
	}
}

/* What the getters report on every end held, and pending on every
 * server, agrees with the model. */
static void
check_getters(void)
{
	const struct mpipe *m;
	struct hnd hd;
	int h, i;

	for (h = 0; h < NHANDLE; h++) {
		if (!handle_get(h, &hd))
			continue;
		m = &pool[hd.pipe];
		if (polypipe_length(hd.p) != m->len ||
		    polypipe_capacity(hd.p) != m->cap ||
		    polypipe_eof(hd.p) != mp_ended(m) ||
		    polypipe_get_error(hd.p) != m->error)
			fail("%s: library length %zu capacity %zu eof %d "
			     "error %d; model %zu %zu %d %d",
			     hname(h), polypipe_length(hd.p),
			     polypipe_capacity(hd.p), polypipe_eof(hd.p),
			     polypipe_get_error(hd.p), m->len, m->cap,
			     mp_ended(m), m->error);
	}
	for (i = 0; i < NSRV; i++)
		if (servers[i].h != NULL &&
		    polyserver_pending(servers[i].h) != (servers[i].nq > 0))
			fail("srv%d: pending %d, model %d", i,
			     !(servers[i].nq > 0), servers[i].nq > 0);
}

/* Makes one call (if the input's arguments name something open) and
 * checks everything the model knows afterwards. */
static void
run(int op, const uint8_t *a)
{
	int s;

	tick_now++; /* what becomes ready in this call joins at this tick */
	model_snapshot();
	call_desc[0] = '\0';
	ops[op](a);
	if (call_desc[0] == '\0')
		return; /* skipped: nothing was called */
	model_edges();
	model_sets_update();
	for (s = 0; s < NSPIPE; s++)
		if (spipes[s].end[RD] == NULL && spipes[s].end[WR] == NULL)
			spipes[s].pipe = -1;
	check_dtors();
	check_notifiers();
	check_fds();
	check_getters();
}

/* --- one input ----------------------------------------------------------- */

static void
reset(void)
{
	int i;

	for (i = 0; i < NPOOL; i++) {
		pool[i].used = false;
		pool[i].calls[RD] = pool[i].calls[WR] = 0;
		pool[i].want[RD] = pool[i].want[WR] = 0;
		pool[i].fd[RD] = pool[i].fd[WR] = -1;
	}
	for (i = 0; i < NSPIPE; i++) {
		spipes[i].end[RD] = spipes[i].end[WR] = NULL;
		spipes[i].pipe = -1;
	}
	memset(servers, 0, sizeof servers);
	memset(clients, 0, sizeof clients);
	for (i = 0; i < NSRV; i++)
		servers[i].fd = -1;
	for (i = 0; i < NCLI; i++)
		clients[i].fd = -1;
	memset(eps, 0, sizeof eps);
	for (i = 0; i < 3; i++)
		name_owner[i] = -1;
	for (i = 0; i < NMEMBER; i++)
		member_clear(member_at(i));
	for (i = 0; i < NSET; i++) {
		sets[i].h = NULL;
		sets[i].wake = false;
		sets[i].fd = -1;
	}
	tick_now = 0;
	dtor_got.n = dtor_want.n = 0;
	nfds_seen = 0;
	memset(name255, 'n', 255);
	memset(name256, 'n', 256);
	trace = getenv("API_FUZZ_TRACE") != NULL;
}

/* Closes everything still open, each close checked like any call. */
static void
close_all(void)
{
	uint8_t a[4] = { 0, 0, 0, 0 };
	size_t k;
	int i;

	for (i = 0; i < NEP; i++) {
		a[0] = (uint8_t)i;
		run(OP_EP_CLOSE, a);
	}
	for (i = 0; i < NCLI; i++) {
		a[0] = (uint8_t)i;
		run(OP_CLI_CLOSE, a);
	}
	for (i = 0; i < NSRV; i++) {
		a[0] = (uint8_t)i;
		run(OP_SRV_CLOSE, a);
	}
	for (i = 0; i < 2 * NSPIPE; i++) {
		a[0] = (uint8_t)i;
		run(OP_PIPE_CLOSE, a);
	}
	for (i = 0; i < NSET; i++) {
		a[0] = (uint8_t)i;
		run(OP_SET_CLOSE, a);
	}
	snprintf(call_desc, sizeof call_desc, "(everything closed)");
	for (i = 0; i < NPOOL; i++)
		if (pool[i].used)
			fail("model pipe %d still open", i);
	for (k = 0; k < nfds_seen; k++)
		if (fcntl(fds_seen[k], F_GETFD) != -1)
			fail("descriptor %d still open", fds_seen[k]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t a[4];
	size_t i;
	int op;

	reset();
	for (call_no = 0; size > 0 && call_no < MAX_CALLS; call_no++) {
		op = data[0] % NOPS;
		for (i = 0; i < 4; i++)
			a[i] = i + 1 < size ? data[i + 1] : 0;
		data += size < 5 ? size : 5;
		size -= size < 5 ? size : 5;
		run(op, a);
	}
	close_all();
	return 0;
}
