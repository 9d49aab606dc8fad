/*
 * registry.c - the connection lock and the table of named servers.
 *
 * Named services number in the tens in a daemon, so the table is a list.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/sync.h"
#include "polysocket/registry.h"

#define NAME_MAX_LEN 255

pthread_mutex_t psock_lock = PTHREAD_MUTEX_INITIALIZER;

struct binding {
	struct binding *next;
	polyserver *srv;
	char name[];
};

static struct binding *bindings; /* psock_lock */

int
registry_check_name(const char *name)
{
	size_t len;

	if (name == NULL)
		return EINVAL;
	len = strnlen(name, NAME_MAX_LEN + 1);
	if (len == 0)
		return EINVAL;
	return len > NAME_MAX_LEN ? ENAMETOOLONG : 0;
}

int
registry_add(polyserver *srv, const char *name)
{
	size_t size = strlen(name) + 1;
	struct binding *b;

	CHAOS_POINT();
	if (registry_find(name) != NULL)
		return EADDRINUSE;
	b = psync_malloc(sizeof *b + size);
	if (b == NULL)
		return ENOMEM;
	memcpy(b->name, name, size);
	b->srv = srv;
	b->next = bindings;
	bindings = b;
	return 0;
}

polyserver *
registry_find(const char *name)
{
	const struct binding *b;

	CHAOS_POINT();
	for (b = bindings; b != NULL; b = b->next)
		if (strcmp(b->name, name) == 0)
			return b->srv;
	return NULL;
}

void
registry_remove(const polyserver *srv)
{
	struct binding **bp, *b;

	CHAOS_POINT();
	for (bp = &bindings; (b = *bp) != NULL; bp = &b->next) {
		if (b->srv == srv) {
			*bp = b->next;
			free(b);
			return;
		}
	}
}

const char *
polysocket_version(void)
{
	return POLYSOCKET_VERSION_STRING;
}
