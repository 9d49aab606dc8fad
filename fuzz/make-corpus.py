#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/api_fuzz.c into fuzz/corpus/.

Each input is a sequence of calls, five bytes each: an opcode and four
argument bytes a, b, c, d (see the comment at the top of api_fuzz.c).  The
opcodes below must match enum op there.  b % 8 is the mode: 0 a valid call,
5 a NULL handle, 6 a NULL pointer argument, 7 a bad timeout or other bad
argument (the set calls give 3 and 4 a meaning of their own: see swait
and NOT_A_HANDLE below).  The files are committed, so the build never
needs Python; run this again after changing it:  python3 fuzz/make-corpus.py
"""
import os

(PIPE_CREATE, PIPE_CLOSE, READ, WRITE, READ_MANY, WRITE_MANY, WRITE_EOF,
 SET_ERROR, QUERY, PIPE_FD, PIPE_NOTIFY, DESTRUCTOR,
 SRV_CREATE, SRV_CLOSE, BACKLOG, ACCEPT, ACCEPT_MANY, REFUSE, PENDING,
 ACCEPT_FD, ACCEPT_NOTIFY, BIND, SHUTDOWN,
 CLI_CREATE, CLI_CLOSE, CONNECT, CONNECT_NAME, ENDPOINT, ENDPOINT_ASYNC,
 CONNECT_FD, CONNECT_NOTIFY, EP_CLOSE,
 SET_CREATE, SET_CLOSE, SET_ADD, SET_MODIFY, SET_REMOVE, SET_WAIT, SET_FD,
 SET_WAKE) = range(40)

NULL_HANDLE, NULL_ARG, BAD_ARG = 5, 6, 7

# Names by index (c % 6): "a", "b", 255 bytes, "", NULL, 256 bytes.
NAME_A, NAME_B, NAME_255, NAME_EMPTY, NAME_NULL, NAME_256 = range(6)


# Pipe end handles: free-standing pipe s, client j's own ends, accepted
# endpoint k.
def prd(s): return 2 * s
def pwr(s): return 2 * s + 1
def crd(j): return 6 + 2 * j
def cwr(j): return 7 + 2 * j
def erd(k): return 12 + 2 * k
def ewr(k): return 13 + 2 * k


# Set members (a[2] of the set calls): a pipe end handle above, server s,
# client j.
NHANDLE = 20
def srv(s): return NHANDLE + s
def cli(j): return NHANDLE + 2 + j


def call(op, a=0, b=0, c=0, d=0):
    return bytes([op, a & 0xff, b & 0xff, c & 0xff, d & 0xff])


def err(e):
    """The a[2] of SET_ERROR for errno value e (the harness subtracts 2)."""
    return e + 2


# Frequent combinations.
def pipe(s=0, cap=2):          # cap 0: unbounded
    return call(PIPE_CREATE, s, 0, cap)


def write(h, msg):
    return call(WRITE, h, 0, msg)


def read(h):
    return call(READ, h)


def write_many(h, n, first):
    return call(WRITE_MANY, h, 0, n, first)


def read_many(h, n):
    return call(READ_MANY, h, 0, n)


def fds(h):                   # both descriptor calls on an end
    return call(PIPE_FD, h, 0, 0) + call(PIPE_FD, h, 0, 1)


def notify_both(s):           # counting notifiers on both ends of pipe s
    return (call(PIPE_NOTIFY, prd(s), 0, 2) +
            call(PIPE_NOTIFY, pwr(s), 0, 3))


def dtor(h, ident):           # destructor with argument id 0..3
    return call(DESTRUCTOR, h, 0, 4 | ident)


def queries(h):
    return b"".join(call(QUERY, h, 0, w) for w in range(4))


def client(j, cap=2):         # cap 5: unbounded
    return call(CLI_CREATE, j, 0, cap)


def connect(j, s=0):
    return call(CONNECT, j, 0, s)


def watch_client(j):          # descriptor and notifier on client j
    return call(CONNECT_NOTIFY, j, 0, 1) + call(CONNECT_FD, j)


def watch_server(s):
    return call(ACCEPT_NOTIFY, s, 0, 1) + call(ACCEPT_FD, s)


ONESHOT = 1
NOT_A_HANDLE = 4              # mode of add, modify, remove: ENOTSOCK


# Set calls: a[3] is the data value and its bit 0 the POLYSET_ONESHOT flag.
def sadd(st, t, data=0, flags=0, mode=0):
    return call(SET_ADD, st, mode, t, (data & ~1) | flags)


def smod(st, t, data=0, flags=0, mode=0):
    return call(SET_MODIFY, st, mode, t, (data & ~1) | flags)


def srem(st, t, mode=0):
    return call(SET_REMOVE, st, mode, t)


def swait(st, max_, mode=0):   # mode 3: a 100 ms timeout where ready
    return call(SET_WAIT, st, mode, max_)


def sets(*ids):                # creates the sets, with their descriptors
    return b"".join(call(SET_CREATE, st) + call(SET_FD, st) for st in ids)


CORPUS = {
    "pipe-basic":
        pipe(0, 2) + write(pwr(0), 5) + write(pwr(0), 0) +
        write(pwr(0), 7) + read(prd(0)) + read(prd(0)) + read(prd(0)) +
        queries(prd(0)),
    "pipe-eof":
        pipe(0, 3) + write(pwr(0), 1) + call(WRITE_EOF, pwr(0)) +
        read(prd(0)) + read(prd(0)) + write(pwr(0), 2) +
        call(WRITE_EOF, pwr(0)) + queries(pwr(0)),
    "pipe-error":
        pipe(1, 3) + write(pwr(1), 9) + call(SET_ERROR, prd(1), 0, err(5)) +
        read(prd(1)) + read(prd(1)) + write(pwr(1), 3) +
        call(SET_ERROR, pwr(1), 0, err(7)) +
        call(SET_ERROR, pwr(1), 0, err(0)) +
        call(SET_ERROR, pwr(1), 0, err(-1)) + queries(prd(1)),
    "pipe-many":
        pipe(0, 4) + write_many(pwr(0), 6, 10) + read_many(prd(0), 3) +
        write_many(pwr(0), 8, 20) + read_many(prd(0), 8) +
        write_many(pwr(0), 0, 1) + read_many(prd(0), 0) +
        read_many(prd(0), 8),
    "pipe-unbounded":
        pipe(2, 0) + b"".join(write_many(pwr(2), 8, i * 8)
                              for i in range(12)) +
        b"".join(read_many(prd(2), 8) for i in range(6)) +
        call(PIPE_CLOSE, pwr(2)) +
        b"".join(read_many(prd(2), 7) for i in range(8)),
    "pipe-wrong-end":
        pipe(0, 1) + read(pwr(0)) + write(prd(0), 1) +
        read_many(pwr(0), 2) + write_many(prd(0), 2, 1) +
        call(WRITE_EOF, prd(0)) + call(PIPE_FD, pwr(0), 0, 0) +
        call(PIPE_FD, prd(0), 0, 1) + call(PIPE_NOTIFY, pwr(0), 0, 2) +
        call(PIPE_NOTIFY, prd(0), 0, 3) + read_many(pwr(0), 0),
    "pipe-einval":
        pipe(0, 1) +
        b"".join(call(op, 0, NULL_HANDLE, 1) for op in
                 (READ, WRITE, READ_MANY, WRITE_MANY, WRITE_EOF, SET_ERROR,
                  QUERY, PIPE_FD, PIPE_NOTIFY, DESTRUCTOR)) +
        call(QUERY, 0, NULL_HANDLE, 2) + call(QUERY, 0, NULL_HANDLE, 3) +
        call(QUERY, 0, NULL_HANDLE, 0) + call(PIPE_FD, 0, NULL_HANDLE, 0) +
        call(READ, prd(0), NULL_ARG) + call(READ, prd(0), BAD_ARG) +
        call(READ_MANY, prd(0), NULL_ARG, 2) +
        call(READ_MANY, prd(0), BAD_ARG, 2) +
        call(WRITE, pwr(0), BAD_ARG, 1) +
        call(WRITE_MANY, pwr(0), NULL_ARG, 2) +
        call(WRITE_MANY, pwr(0), BAD_ARG, 2) +
        call(READ, pwr(0), BAD_ARG) +
        call(PIPE_CREATE, 1, NULL_HANDLE, 3) +
        call(PIPE_CREATE, 1, NULL_ARG, 3) +
        call(PIPE_CREATE, 1, BAD_ARG, 3) + call(PIPE_CLOSE, 0, BAD_ARG) +
        call(SRV_CLOSE, 0, BAD_ARG) + call(CLI_CLOSE, 0, BAD_ARG) +
        call(EP_CLOSE, 0, BAD_ARG),
    "pipe-fds":
        pipe(0, 1) + fds(prd(0)) + fds(pwr(0)) + write(pwr(0), 1) +
        write(pwr(0), 2) + read(prd(0)) + read(prd(0)) +
        call(WRITE_EOF, pwr(0)) + fds(prd(0)) + call(PIPE_CLOSE, pwr(0)) +
        read(prd(0)),
    "pipe-fd-rd-closed":
        pipe(1, 1) + fds(pwr(1)) + write(pwr(1), 4) +
        call(PIPE_CLOSE, prd(1)) +
        write(pwr(1), 5) + queries(pwr(1)),
    "pipe-notify":
        pipe(0, 2) + notify_both(0) + write(pwr(0), 1) + write(pwr(0), 2) +
        write(pwr(0), 3) + read(prd(0)) + read(prd(0)) + write(pwr(0), 4) +
        write(pwr(0), 5) + call(WRITE_EOF, pwr(0)) + read_many(prd(0), 8) +
        call(PIPE_NOTIFY, prd(0), 0, 0) + call(PIPE_NOTIFY, pwr(0), 0, 1),
    "pipe-notify-error":
        pipe(0, 1) + notify_both(0) + write(pwr(0), 1) +
        call(SET_ERROR, pwr(0), 0, err(3)) + read(prd(0)) + read(prd(0)),
    "pipe-notify-close":
        pipe(0, 1) + pipe(1, 1) + notify_both(0) + notify_both(1) +
        write(pwr(0), 1) + call(PIPE_CLOSE, prd(0)) +
        call(PIPE_CLOSE, pwr(1)) + read(prd(1)),
    "pipe-notify-once":
        pipe(0, 1) + call(PIPE_NOTIFY, prd(0), 0, 2 | 4) +
        call(PIPE_NOTIFY, pwr(0), 0, 3 | 4) + write(pwr(0), 1) +
        read(prd(0)) + write(pwr(0), 2) + read(prd(0)),
    "notify-once-sockets":
        call(SRV_CREATE, 0) + call(ACCEPT_NOTIFY, 0, 0, 3) + client(0) +
        client(1) + call(CONNECT_NOTIFY, 0, 0, 3) + connect(0) +
        call(ACCEPT, 0) + connect(1) + call(CONNECT_NOTIFY, 1, 0, 3) +
        call(REFUSE, 0) + call(CONNECT_NOTIFY, 1, 0, 3) +
        call(ACCEPT_NOTIFY, 0, 0, 3) + call(SHUTDOWN, 0),
    "pipe-dtor":
        pipe(0, 4) + dtor(prd(0), 1) + write_many(pwr(0), 3, 0) +
        read(prd(0)) + call(PIPE_CLOSE, prd(0)) + write(pwr(0), 9),
    "pipe-dtor-last-wins":
        pipe(0, 4) + dtor(prd(0), 1) + dtor(pwr(0), 2) +
        write_many(pwr(0), 2, 40) + pipe(1, 4) + dtor(pwr(1), 3) +
        call(DESTRUCTOR, prd(1), 0, 0) + write(pwr(1), 1) +
        call(PIPE_CLOSE, pwr(0)) + call(PIPE_CLOSE, prd(0)) +
        call(PIPE_CLOSE, prd(1)),
    "pipe-close-wr":
        pipe(0, 2) + write(pwr(0), 6) + call(PIPE_CLOSE, pwr(0)) +
        queries(prd(0)) + read(prd(0)) + read(prd(0)),
    "server-basic":
        call(SRV_CREATE, 0) + client(0, 2) + connect(0) +
        call(PENDING, 0) + call(ACCEPT, 0) + call(ENDPOINT, 0) +
        write(cwr(0), 1) + write(ewr(0), 2) + read(erd(0)) + read(crd(0)) +
        call(PENDING, 0) + call(PENDING, 0, NULL_HANDLE),
    "server-accept-many":
        call(SRV_CREATE, 1) + client(0) + client(1) + client(2) +
        connect(0, 1) + connect(1, 1) + connect(2, 1) +
        call(ACCEPT_MANY, 1, 0, 2) + call(ACCEPT_MANY, 1, 0, 3) +
        call(ACCEPT_MANY, 1, 0, 1) + call(ACCEPT_MANY, 1, 0, 0) +
        call(ENDPOINT, 2) + write(cwr(2), 3) + read(erd(2)),
    "server-refuse":
        call(SRV_CREATE, 0) + client(0) + client(1) + connect(0) +
        connect(1) + call(REFUSE, 0) + client(2) + connect(2) +
        call(ACCEPT, 0) + connect(2) + call(ACCEPT, 0) + connect(0) +
        call(ENDPOINT, 0) + call(ENDPOINT_ASYNC, 0) + call(REFUSE, 0),
    "server-backlog":
        call(SRV_CREATE, 0) + call(BACKLOG, 0, 0, 1) + client(0) +
        client(1) + connect(0) + connect(1) + call(BACKLOG, 0, 0, 0) +
        call(BACKLOG, 0, 0, 5) + connect(1) + call(BACKLOG, 0, 0, 1) +
        client(2) + connect(2) + call(ACCEPT, 0) + connect(2) +
        call(BACKLOG, 0, NULL_HANDLE, 2),
    "server-shutdown":
        call(SRV_CREATE, 0) + watch_server(0) + client(0) + connect(0) +
        watch_client(0) + call(SHUTDOWN, 0) + call(ACCEPT, 0) +
        call(SHUTDOWN, 0) + client(1) + connect(1) + call(REFUSE, 0) +
        call(BACKLOG, 0, 0, 2) + call(BIND, 0, 0, NAME_A) +
        call(ENDPOINT, 0) + call(CONNECT_FD, 0) + call(ACCEPT_FD, 0),
    "server-bind":
        call(SRV_CREATE, 0) + call(SRV_CREATE, 1) + call(BIND, 0, 0, NAME_A) +
        call(BIND, 1, 0, NAME_A) + call(BIND, 0, 0, NAME_B) +
        b"".join(call(BIND, 1, 0, n) for n in
                 (NAME_EMPTY, NAME_NULL, NAME_256, NAME_255)) +
        call(BIND, 0, NULL_HANDLE, NAME_B) + client(0) + client(1) +
        client(2) + call(CONNECT_NAME, 0, 0, NAME_A) +
        call(CONNECT_NAME, 1, 0, NAME_B) +
        call(CONNECT_NAME, 1, 0, NAME_255) +
        call(CONNECT_NAME, 2, 0, NAME_EMPTY) +
        call(CONNECT_NAME, 2, 0, NAME_NULL) +
        call(CONNECT_NAME, 2, 0, NAME_256) +
        call(CONNECT_NAME, 2, NULL_HANDLE, NAME_A) +
        call(ACCEPT, 0) + call(ACCEPT, 1) + call(SRV_CLOSE, 0) +
        call(BIND, 1, 0, NAME_A),
    "server-rebind-after-close":
        call(SRV_CREATE, 0) + call(BIND, 0, 0, NAME_B) + call(SRV_CLOSE, 0) +
        call(SRV_CREATE, 1) + call(BIND, 1, 0, NAME_B) + client(0) +
        call(CONNECT_NAME, 0, 0, NAME_B) + call(SHUTDOWN, 1) +
        client(1) + call(CONNECT_NAME, 1, 0, NAME_B),
    "server-notify":
        call(SRV_CREATE, 0) + watch_server(0) + client(0) + client(1) +
        connect(0) + connect(1) + call(ACCEPT_MANY, 0, 0, 3) +
        client(2) + connect(2) + call(ACCEPT_NOTIFY, 0, 0, 0) +
        call(CLI_CLOSE, 2) + call(ACCEPT_NOTIFY, 0, 0, 1) + client(2) +
        connect(2) + call(SHUTDOWN, 0) + call(SHUTDOWN, 0) +
        call(ACCEPT_NOTIFY, 0, NULL_HANDLE),
    "server-close-notify":
        call(SRV_CREATE, 1) + watch_server(1) + client(0) + connect(0, 1) +
        watch_client(0) + call(SRV_CLOSE, 1),
    "client-async":
        call(SRV_CREATE, 0) + client(0, 3) + connect(0) +
        call(ENDPOINT_ASYNC, 0) + write_many(cwr(0), 5, 30) +
        call(ENDPOINT, 0) + call(ACCEPT, 0) + read_many(erd(0), 8) +
        call(ENDPOINT, 0) + call(ENDPOINT_ASYNC, 0) + fds(crd(0)) +
        fds(cwr(0)) + write(ewr(0), 8) + read(crd(0)),
    "client-refused-async":
        call(SRV_CREATE, 0) + client(0, 2) + connect(0) +
        call(ENDPOINT_ASYNC, 0) + dtor(cwr(0), 2) +
        call(PIPE_NOTIFY, crd(0), 0, 2) +
        call(PIPE_NOTIFY, cwr(0), 0, 3) + write_many(cwr(0), 2, 77) +
        fds(crd(0)) + fds(cwr(0)) + watch_client(0) + call(REFUSE, 0) +
        read(crd(0)) + write(cwr(0), 1) + call(ENDPOINT, 0) +
        call(ENDPOINT_ASYNC, 0) + connect(0) + call(CONNECT_FD, 0),
    "client-notify":
        call(SRV_CREATE, 0) + client(0) + call(CONNECT_NOTIFY, 0, 0, 1) +
        connect(0) + call(ACCEPT, 0) + call(CONNECT_NOTIFY, 0, 0, 1) +
        call(CONNECT_NOTIFY, 0, 0, 0) + call(CONNECT_NOTIFY, 0, 0, 1) +
        call(CONNECT_NOTIFY, 0, NULL_HANDLE),
    "client-fd":
        call(SRV_CREATE, 0) + client(0) + call(CONNECT_FD, 0) + connect(0) +
        call(CONNECT_FD, 0) + call(ACCEPT_FD, 0) + call(ACCEPT, 0) +
        call(CONNECT_FD, 0) + call(CONNECT_FD, 0, NULL_HANDLE) +
        call(ACCEPT_FD, 0, NULL_HANDLE),
    "client-close-pending":
        call(SRV_CREATE, 0) + watch_server(0) + client(0) + client(1) +
        connect(0) + connect(1) + call(ENDPOINT_ASYNC, 0) + dtor(cwr(0), 3) +
        write_many(cwr(0), 2, 50) + call(CLI_CLOSE, 0) + call(PENDING, 0) +
        call(ACCEPT, 0) + call(CLI_CLOSE, 1) + call(PENDING, 0) +
        call(ACCEPT, 0),
    "client-close-accepted":
        call(SRV_CREATE, 0) + client(0, 1) + connect(0) + call(ACCEPT, 0) +
        call(ENDPOINT, 0) + fds(erd(0)) + fds(ewr(0)) +
        call(PIPE_NOTIFY, erd(0), 0, 2) + call(PIPE_NOTIFY, ewr(0), 0, 3) +
        dtor(ewr(0), 1) + write(ewr(0), 11) + write(cwr(0), 12) +
        call(CLI_CLOSE, 0) + read(erd(0)) + read(erd(0)) + write(ewr(0), 1),
    "ep-close":
        call(SRV_CREATE, 0) + client(0) + connect(0) + call(ACCEPT, 0) +
        call(ENDPOINT, 0) + fds(crd(0)) + fds(cwr(0)) +
        call(PIPE_NOTIFY, crd(0), 0, 2) + call(PIPE_NOTIFY, cwr(0), 0, 3) +
        write(ewr(0), 1) + write(cwr(0), 2) + write(cwr(0), 3) +
        dtor(cwr(0), 0) + call(EP_CLOSE, 0) + read(crd(0)) + read(crd(0)) +
        write(cwr(0), 4),
    "ep-close-halves":
        call(SRV_CREATE, 0) + client(0) + connect(0) + call(ACCEPT, 0) +
        call(PIPE_CLOSE, erd(0)) + call(ENDPOINT, 0) + write(cwr(0), 1) +
        call(PIPE_CLOSE, ewr(0)) + read(crd(0)) + client(1) + connect(1) +
        call(ACCEPT, 0) + call(PIPE_CLOSE, ewr(0)) + call(EP_CLOSE, 0),
    "server-close-pending":
        call(SRV_CREATE, 0) + client(0) + client(1) + connect(0) +
        connect(1) + call(ENDPOINT_ASYNC, 1) + watch_client(0) +
        call(SRV_CLOSE, 0) + call(ENDPOINT, 0) + call(ENDPOINT, 1) +
        queries(crd(1)) + call(CONNECT, 0),
    "client-errors":
        call(SRV_CREATE, 0) + call(SRV_CREATE, 1) + client(0) +
        call(ENDPOINT, 0) + call(ENDPOINT_ASYNC, 0) + connect(0) +
        connect(0) + connect(0, 1) + call(ENDPOINT, 0) + call(ACCEPT, 0) +
        connect(0, 1) + call(CONNECT_NAME, 0, 0, NAME_A) +
        call(CONNECT, 0, NULL_HANDLE) + call(CONNECT, 0, NULL_ARG) +
        call(ENDPOINT, 0, NULL_HANDLE) + call(ENDPOINT, 0, NULL_ARG) +
        call(ENDPOINT, 0, BAD_ARG) + call(ENDPOINT_ASYNC, 0, NULL_ARG) +
        call(ENDPOINT_ASYNC, 0, NULL_HANDLE) + call(CLI_CREATE, 1, 0, 0) +
        call(ACCEPT, 0, NULL_HANDLE) + call(ACCEPT, 0, NULL_ARG) +
        call(ACCEPT, 0, BAD_ARG) + call(ACCEPT_MANY, 0, NULL_ARG, 2) +
        call(REFUSE, 0, NULL_HANDLE) + call(SHUTDOWN, 0, NULL_HANDLE),
    "client-unbounded":
        call(SRV_CREATE, 0) + client(1, 5) + connect(1) +
        call(ENDPOINT_ASYNC, 1) +
        b"".join(write_many(cwr(1), 8, i) for i in range(20)) +
        call(ACCEPT, 0) + b"".join(read_many(erd(0), 8) for i in range(21)),
    "refused-then-close":
        call(SRV_CREATE, 0) + client(0) + connect(0) +
        call(ENDPOINT_ASYNC, 0) +
        call(REFUSE, 0) + call(CLI_CLOSE, 0) + client(0) + connect(0) +
        call(ACCEPT, 0, 0) + connect(0) + call(ACCEPT, 0),
    "endpoints-full":
        call(SRV_CREATE, 0) +
        b"".join(client(j) + connect(j) + call(ACCEPT, 0) + call(CLI_CLOSE, j)
                 for j in (0, 1, 2, 0, 1)) +
        call(EP_CLOSE, 1) + call(EP_CLOSE, 3),
    # Sets: the order in which members became ready, each at most once a
    # wait, up to max; a member reported and still ready goes behind.
    "set-basic":
        sets(0) + pipe(0, 2) + pipe(1, 2) + sadd(0, prd(0), 10) +
        sadd(0, prd(1), 20) + swait(0, 8) + write(pwr(1), 1) +
        write(pwr(0), 2) + swait(0, 8) + swait(0, 1) + swait(0, 1) +
        write(pwr(1), 3) + read(prd(1)) + swait(0, 8) + read(prd(1)) +
        swait(0, 8) + read(prd(0)) + swait(0, 8),
    "set-fair":
        sets(0) + pipe(0, 4) + pipe(1, 4) + pipe(2, 4) +
        write_many(pwr(2), 4, 1) + write_many(pwr(0), 4, 1) +
        write_many(pwr(1), 4, 1) + sadd(0, prd(0), 2) + sadd(0, prd(1), 4) +
        sadd(0, prd(2), 6) + b"".join(swait(0, 1) for i in range(4)) +
        swait(0, 2) + swait(0, 2) + read(prd(1)) + swait(0, 3) +
        read_many(prd(0), 8) + swait(0, 3) + swait(0, 1) +
        call(WRITE_EOF, pwr(0)) + swait(0, 3),
    "set-oneshot":
        sets(0) + pipe(0, 2) + pipe(1, 2) + write(pwr(0), 1) +
        write(pwr(1), 1) + sadd(0, prd(0), 8, ONESHOT) +
        sadd(0, prd(1), 12, ONESHOT) + swait(0, 1) + swait(0, 8) +
        swait(0, 8) + smod(0, prd(0), 8, ONESHOT) +
        smod(0, prd(1), 14, 0) + swait(0, 8) + swait(0, 8) +
        smod(0, prd(0), 16, ONESHOT) + smod(0, prd(1), 18, ONESHOT) +
        swait(0, 1) + smod(0, prd(1), 20, ONESHOT) + swait(0, 8) +
        read(prd(0)) + read(prd(1)) + smod(0, prd(0), 2, ONESHOT) +
        swait(0, 8) + write(pwr(0), 3) + swait(0, 8) + swait(0, 8),
    "set-wake":
        sets(0) + call(SET_WAKE, 0) + call(SET_WAKE, 0) + swait(0, 4) +
        swait(0, 4) + pipe(0, 2) + sadd(0, prd(0), 4) + call(SET_WAKE, 0) +
        write(pwr(0), 1) + swait(0, 4) + swait(0, 4, 3) + read(prd(0)) +
        swait(0, 4, 3) + swait(0, 4, 3) + call(SET_WAKE, 0) +
        call(SET_CLOSE, 0) + sets(0) + swait(0, 4),
    "set-errors":
        sets(0, 1) + pipe(0, 1) + call(SRV_CREATE, 0) + client(0) +
        b"".join(call(op, 0, NULL_HANDLE, prd(0))
                 for op in (SET_ADD, SET_MODIFY, SET_REMOVE, SET_WAIT,
                            SET_FD, SET_WAKE)) +
        sadd(0, prd(0), mode=NULL_ARG) + sadd(0, prd(0), 6, mode=BAD_ARG) +
        smod(0, prd(0)) + srem(0, prd(0)) + sadd(0, prd(0), 6) +
        sadd(0, prd(0)) + sadd(1, prd(0)) + smod(1, prd(0)) +
        srem(1, prd(0)) + smod(0, prd(0), 3, mode=BAD_ARG) +
        smod(0, prd(0), mode=NULL_ARG) + srem(0, prd(0), mode=NULL_ARG) +
        swait(0, 0) + swait(0, 2, NULL_ARG) + swait(0, 2, BAD_ARG) +
        sadd(1, srv(0)) + sadd(0, srv(0)) + sadd(1, cli(0)) +
        sadd(1, cli(0)) + srem(0, cli(0)) + srem(1, cli(0)) +
        srem(1, cli(0)) + sadd(0, cli(0)) + call(SET_CLOSE, 0, BAD_ARG) +
        sadd(0, prd(0), mode=NOT_A_HANDLE) +
        smod(0, prd(0), mode=NOT_A_HANDLE) +
        srem(0, prd(0), mode=NOT_A_HANDLE),
    "set-close-members":
        sets(0, 1) + pipe(0, 2) + pipe(1, 1) + sadd(0, prd(0), 2) +
        sadd(0, pwr(1), 4) + sadd(0, prd(1), 6) + swait(0, 8) +
        write(pwr(1), 1) + swait(0, 8) + call(PIPE_CLOSE, pwr(0)) +
        swait(0, 8) + call(PIPE_CLOSE, prd(0)) + swait(0, 8) +
        call(PIPE_CLOSE, prd(1)) + swait(0, 8) + sadd(1, pwr(1), 8) +
        call(SET_CLOSE, 0) + sadd(1, pwr(1), 8) + swait(1, 2) +
        write(pwr(1), 1) + call(SET_CLOSE, 1) + sets(1) +
        sadd(1, pwr(1), 10) + swait(1, 2),
    "set-write-ends":
        sets(0) + pipe(0, 1) + pipe(1, 2) + sadd(0, pwr(0), 2) +
        sadd(0, pwr(1), 4) + swait(0, 8) + write(pwr(0), 1) + swait(0, 8) +
        write_many(pwr(1), 4, 1) + swait(0, 8) + read(prd(0)) +
        read(prd(1)) + swait(0, 8) + call(SET_ERROR, prd(1), 0, err(5)) +
        swait(0, 8) + call(PIPE_CLOSE, prd(0)) + swait(0, 8),
    "set-sockets":
        sets(0) + call(SRV_CREATE, 0) + client(0) + client(1) + client(2) +
        sadd(0, srv(0), 2) + sadd(0, cli(0), 4) + sadd(0, cli(1), 6) +
        swait(0, 8) + connect(0) + swait(0, 8) + connect(1) +
        call(ACCEPT, 0) + swait(0, 8) + call(ENDPOINT, 0) +
        sadd(0, crd(0), 8) + sadd(0, cwr(0), 10) + sadd(0, erd(0), 12) +
        swait(0, 8) + write(ewr(0), 1) + swait(0, 8) + call(REFUSE, 0) +
        swait(0, 8) + call(CLI_CLOSE, 0) + swait(0, 8) + connect(2) +
        sadd(0, cli(2), 14, ONESHOT) + call(SHUTDOWN, 0) + swait(0, 8) +
        swait(0, 8) + call(SRV_CLOSE, 0) + swait(0, 8) +
        call(EP_CLOSE, 0) + swait(0, 8),
    "set-refuse-async":
        sets(0) + call(SRV_CREATE, 0) + client(0, 1) + client(1, 1) +
        connect(0) + connect(1) + call(ENDPOINT_ASYNC, 0) +
        call(ENDPOINT_ASYNC, 1) + write(cwr(0), 1) + write(cwr(1), 2) +
        sadd(0, cli(0), 2) + sadd(0, crd(0), 4) + sadd(0, cwr(0), 6) +
        sadd(0, cli(1), 8) + sadd(0, cwr(1), 10) + sadd(0, srv(0), 12) +
        swait(0, 2) + call(REFUSE, 0) + swait(0, 8) + swait(0, 3) +
        swait(0, 3) + call(CLI_CLOSE, 1) + swait(0, 8),
    "set-notify-wake":
        sets(0) + pipe(0, 1) + call(PIPE_NOTIFY, prd(0), 0, 2 | 8) +
        call(PIPE_NOTIFY, pwr(0), 0, 3 | 8) + sadd(0, prd(0), 2) +
        write(pwr(0), 1) + swait(0, 4) + read(prd(0)) + swait(0, 4) +
        swait(0, 4) + write(pwr(0), 2) + read(prd(0)) + swait(0, 4) +
        swait(0, 4),
    "set-remove-readd":
        sets(0, 1) + pipe(0, 2) + pipe(1, 2) + pipe(2, 2) +
        write(pwr(0), 1) + write(pwr(1), 1) + write(pwr(2), 1) +
        sadd(0, prd(0), 2) + sadd(0, prd(1), 4) + sadd(0, prd(2), 6) +
        srem(0, prd(0)) + sadd(0, prd(0), 8) + swait(0, 8) +
        srem(0, prd(1)) + sadd(1, prd(1), 10, ONESHOT) + swait(0, 8) +
        swait(1, 8) + swait(1, 8) + srem(1, prd(1)) + sadd(0, prd(1), 12) +
        smod(0, prd(2), 14) + swait(0, 1) + swait(0, 8),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        os.remove(os.path.join(out, name))
    for name, data in sorted(CORPUS.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("%d inputs in %s" % (len(CORPUS), out))


if __name__ == "__main__":
    main()
