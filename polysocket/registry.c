/*
 * registry.c - the table of named servers (registry.h).
 *
 * Named services number in the tens in a daemon: a fixed number of
 * buckets, each a list, keeps lookups short without ever resizing.
 *
 * Lock order: a bucket's lock, then a server's lock (taken by the
 * callers, never here).
 */
#include "config.h"

#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/sync.h"
#include "polysocket/registry.h"

#define NAME_MAX_LEN 255

/* A power of two. */
#define NBUCKETS 64

struct binding {
	struct binding *next; /* bucket lock */
	polyserver *srv;      /* immutable */
	unsigned bucket;      /* immutable */
	char name[];
};

/* One cache line each, so that lookups in two buckets do not share
 * one. */
struct rbucket {
	alignas(64) pthread_rwlock_t lock;
	struct binding *list; /* lock */
};

#define BUCKET_INIT                                                           \
	{                                                                     \
		.lock = PTHREAD_RWLOCK_INITIALIZER                            \
	}
#define BUCKETS_8                                                             \
	BUCKET_INIT, BUCKET_INIT, BUCKET_INIT, BUCKET_INIT, BUCKET_INIT,      \
	    BUCKET_INIT, BUCKET_INIT, BUCKET_INIT

static struct rbucket buckets[NBUCKETS] = { BUCKETS_8, BUCKETS_8, BUCKETS_8,
	                                    BUCKETS_8, BUCKETS_8, BUCKETS_8,
	                                    BUCKETS_8, BUCKETS_8 };

/* FNV-1a. */
static unsigned
registry_hash(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return (unsigned)(h ^ h >> 16) & (NBUCKETS - 1);
}

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

struct rbucket *
registry_lock(const char *name, bool write)
{
	struct rbucket *b = &buckets[registry_hash(name)];

	if (write)
		pthread_rwlock_wrlock(&b->lock);
	else
		pthread_rwlock_rdlock(&b->lock);
	return b;
}

void
registry_unlock(struct rbucket *b)
{
	pthread_rwlock_unlock(&b->lock);
	CHAOS_POINT();
}

polyserver *
registry_find(struct rbucket *b, const char *name)
{
	const struct binding *bd;

	for (bd = b->list; bd != NULL; bd = bd->next)
		if (strcmp(bd->name, name) == 0)
			return bd->srv;
	return NULL;
}

int
registry_add(struct rbucket *b, polyserver *srv, const char *name,
             struct binding **bdp)
{
	size_t size = strlen(name) + 1;
	struct binding *bd;

	if (registry_find(b, name) != NULL)
		return EADDRINUSE;
	bd = psync_malloc(sizeof *bd + size);
	if (bd == NULL)
		return ENOMEM;
	memcpy(bd->name, name, size);
	bd->srv = srv;
	bd->bucket = (unsigned)(b - buckets);
	bd->next = b->list;
	b->list = bd;
	*bdp = bd;
	return 0;
}

void
registry_remove(struct binding *bd)
{
	struct rbucket *b = &buckets[bd->bucket];
	struct binding **p;

	pthread_rwlock_wrlock(&b->lock);
	for (p = &b->list; *p != bd; p = &(*p)->next)
		;
	*p = bd->next;
	pthread_rwlock_unlock(&b->lock);
	CHAOS_POINT();
	free(bd);
}

const char *
polysocket_version(void)
{
	return POLYSOCKET_VERSION_STRING;
}
