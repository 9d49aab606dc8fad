/*
 * ready.c - readiness: descriptor, notifier and set membership of one
 * transition (ready.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/ready.h"

void
pready_init(struct pready *r, bool up)
{
	atomic_init(&r->up, up);
	atomic_init(&r->costly, false);
	atomic_init(&r->linger.skip, 0);
	atomic_init(&r->linger.backoff, 0);
	r->efd = psync_efd_none();
	atomic_init(&r->ntf, NULL);
	r->member = (struct pset_member){ .set = NULL };
}

void
pready_destroy(struct pready *r)
{
	struct pready_notify *ntf =
	    atomic_load_explicit(&r->ntf, memory_order_relaxed);

	psync_efd_close(r->efd.fd);
	if (ntf == NULL)
		return;
	pthread_mutex_destroy(&ntf->lock);
	free(ntf);
}

void
pready_flip(struct pready *r, bool up)
{
	/* Release: pairs with the acquire of a set that looks at the
	 * member without the owner lock (set.c, member_up). */
	atomic_store_explicit(&r->up, up, memory_order_release);
	/* Under the owner lock, as every flip and the descriptor's
	 * creation are: the last update is the last flip's. */
	psync_efd_update(&r->efd, up);
	CHAOS_POINT();
	if (r->member.set == NULL)
		return;
	if (up)
		pset_rise(&r->member);
	else
		pset_fall(&r->member);
}

void
pready_fire(struct pready *r)
{
	/* Acquire: pairs with the release in pready_notify_get. */
	struct pready_notify *ntf =
	    atomic_load_explicit(&r->ntf, memory_order_acquire);

	if (ntf == NULL)
		return;
	CHAOS_POINT();
	pthread_mutex_lock(&ntf->lock);
	psync_notify_fire(&ntf->notify, &ntf->lock, &ntf->settle);
	pthread_mutex_unlock(&ntf->lock);
}

int
pready_efd(struct pready *r)
{
	if (r->efd.fd < 0 &&
	    psync_efd_open(&r->efd, atomic_load_explicit(
	                                &r->up, memory_order_relaxed)) < 0)
		return -1;
	atomic_store_explicit(&r->costly, true, memory_order_relaxed);
	return r->efd.fd;
}

int
pready_efd_release(struct pready *r)
{
	return psync_efd_release(&r->efd);
}

struct pready_notify *
pready_notify_get(struct pready *r)
{
	struct pready_notify *ntf =
	    atomic_load_explicit(&r->ntf, memory_order_relaxed);
	int err;

	if (ntf != NULL)
		return ntf;
	ntf = psync_calloc(1, sizeof *ntf);
	if (ntf == NULL)
		return NULL;
	err = pthread_mutex_init(&ntf->lock, NULL);
	if (err != 0) {
		free(ntf);
		errno = err;
		return NULL;
	}
	/* Release: pairs with the acquire in pready_fire, which may run
	 * in a thread that does not hold the owner lock. */
	atomic_store_explicit(&r->ntf, ntf, memory_order_release);
	atomic_store_explicit(&r->costly, true, memory_order_relaxed);
	return ntf;
}

void
pready_set_notify(struct pready *r, polypipe_notify_fn *fn, void *arg)
{
	struct pready_notify *ntf =
	    atomic_load_explicit(&r->ntf, memory_order_acquire);

	if (ntf == NULL)
		return;
	pthread_mutex_lock(&ntf->lock);
	psync_notify_set(&ntf->notify, fn, arg, &ntf->lock, &ntf->settle);
	pthread_mutex_unlock(&ntf->lock);
}
