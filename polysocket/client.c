/*
 * client.c - polyclient: the handle of one connection attempt.
 *
 * The attempt (attempt.h) is the connection between this client and a
 * server: its state, both endpoints, the decision and its completion.
 * The client is its handle: it checks the arguments of the API, sets
 * errno, and owns the memory, which the attempt frees with its last
 * reference (a server deciding may hold one after the client closed).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "common/ready.h"
#include "common/sync.h"
#include "polysocket/attempt.h"
#include "polysocket/client.h"
#include "polysocket/registry.h"

struct polyclient {
	uint32_t tag; /* PTAG_CLIENT */
	struct attempt at;
};

polyclient *
polyclient_create(size_t capacity)
{
	polyclient *cl;

	if (capacity == 0) {
		errno = EINVAL;
		return NULL;
	}
	cl = psync_calloc(1, sizeof *cl);
	if (cl == NULL)
		return NULL;
	if (attempt_init(&cl->at, cl, capacity) < 0) {
		free(cl);
		return NULL;
	}
	cl->tag = PTAG_CLIENT;
	return cl;
}

struct pready *
client_ready_lock(polyclient *cl)
{
	return attempt_ready_lock(&cl->at);
}

bool
client_ready_trylock(polyclient *cl)
{
	return attempt_ready_trylock(&cl->at);
}

void
client_ready_unlock(polyclient *cl)
{
	attempt_ready_unlock(&cl->at);
}

/* -1 with errno err, or 0. */
static int
client_result(int err)
{
	if (err == 0)
		return 0;
	errno = err;
	return -1;
}

int
polyclient_connect(polyclient *cl, polyserver *srv)
{
	if (cl == NULL || srv == NULL)
		return client_result(EINVAL);
	return client_result(attempt_connect(&cl->at, srv, NULL));
}

int
polyclient_connect_name(polyclient *cl, const char *name)
{
	int err = cl == NULL ? EINVAL : registry_check_name(name);

	if (err != 0)
		return client_result(err);
	return client_result(attempt_connect(&cl->at, NULL, name));
}

int
polyclient_endpoint(polyclient *cl, polyendpoint *ep, int timeout_ms)
{
	if (cl == NULL || ep == NULL || !psync_timeout_valid(timeout_ms))
		return client_result(EINVAL);
	return client_result(attempt_endpoint(&cl->at, ep, timeout_ms));
}

int
polyclient_endpoint_async(polyclient *cl, polyendpoint *ep)
{
	if (cl == NULL || ep == NULL)
		return client_result(EINVAL);
	return client_result(attempt_endpoint_async(&cl->at, ep));
}

int
polyclient_connect_fd(polyclient *cl)
{
	if (cl == NULL) {
		errno = EINVAL;
		return -1;
	}
	return attempt_fd(&cl->at);
}

int
polyclient_set_connect_notify(polyclient *cl, polypipe_notify_fn *fn,
                              void *arg)
{
	if (cl == NULL)
		return client_result(EINVAL);
	attempt_set_notify(&cl->at, fn, arg);
	return 0;
}

void
polyclient_close(polyclient *cl)
{
	if (cl == NULL)
		return;
	attempt_close(&cl->at); /* may free cl */
}
