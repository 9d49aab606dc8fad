/*
 * registry.h - the process-wide state of the polysocket half: the lock
 * that guards connection set-up, and the table of named servers.
 */
#ifndef POLYSOCKET_REGISTRY_H
#define POLYSOCKET_REGISTRY_H

#include <pthread.h>

#include <polysocket/polysocket.h>

/*
 * psock_lock guards every server's backlog and state, every client's
 * state, and the name table, so that a hand-off between a client and a
 * server is one critical section.  Connections are set up far less often
 * than messages move, and messages never take this lock.  It is taken
 * before any pipe's lock, and never held across a user callback or a
 * polypipe call.
 */
extern pthread_mutex_t psock_lock;

/* registry_check_name: 0, or EINVAL (NULL, "") or ENAMETOOLONG. */
int registry_check_name(const char *name);

/* All below with psock_lock held. */

/* registry_add: binds name to srv; 0, EADDRINUSE or ENOMEM. */
int registry_add(polyserver *srv, const char *name);

/* registry_find: the server bound to name, or NULL. */
polyserver *registry_find(const char *name);

/* registry_remove: releases srv's name, if it has one. */
void registry_remove(const polyserver *srv);

#endif /* POLYSOCKET_REGISTRY_H */
