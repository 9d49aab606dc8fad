/*
 * registry.h - the process-wide table of named servers.
 *
 * The table is read on every connect by name and written only by bind
 * and by the shutdown of a named server, so it is split into buckets by
 * a hash of the name, each with a read-write lock of its own on a cache
 * line of its own: lookups of different names touch different lines, and
 * lookups of one name share their bucket's lock for reading.  Nothing
 * else in the library is process-wide.
 *
 * Lock order: a bucket's lock, then a server's lock (server.h); a thread
 * holds one bucket's lock at most.  An attempt's lock (attempt.h) comes
 * before both.
 */
#ifndef POLYSOCKET_REGISTRY_H
#define POLYSOCKET_REGISTRY_H

#include <stdbool.h>

#include <polysocket/polysocket.h>

struct rbucket;
struct binding; /* one name bound to one server */

/* registry_check_name: 0, or EINVAL (NULL, "") or ENAMETOOLONG. */
int registry_check_name(const char *name);

/* registry_lock: locks the bucket of name (for writing if write) and
 * returns it.  registry_unlock releases it. */
struct rbucket *registry_lock(const char *name, bool write);
void registry_unlock(struct rbucket *b);

/* registry_find (b locked, name's bucket): the server bound to name, or
 * NULL.  It stays bound, and so alive, while b is locked. */
polyserver *registry_find(struct rbucket *b, const char *name);

/* registry_add (b write-locked, name's bucket): binds name to srv and
 * sets *bd to the binding, which registry_remove takes back; 0,
 * EADDRINUSE or ENOMEM. */
int registry_add(struct rbucket *b, polyserver *srv, const char *name,
                 struct binding **bd);

/* registry_remove: unbinds and frees bd (takes its bucket's lock: no
 * bucket or server lock held). */
void registry_remove(struct binding *bd);

#endif /* POLYSOCKET_REGISTRY_H */
