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
	atomic_init(&r->fdn, NULL);
	r->member = (struct pset_member){ .set = NULL };
}

void
pready_destroy(struct pready *r)
{
	struct pready_fd *fdn =
	    atomic_load_explicit(&r->fdn, memory_order_relaxed);

	if (fdn == NULL)
		return;
	psync_efd_close(fdn->efd.fd);
	pthread_mutex_destroy(&fdn->lock);
	free(fdn);
}

void
pready_flip(struct pready *r, bool up)
{
	/* Release: pready_after reads it under fdn->lock, after this
	 * thread or another took that lock; the lock orders it already,
	 * and the release says so where it is written. */
	atomic_store_explicit(&r->up, up, memory_order_release);
	CHAOS_POINT();
	if (r->member.set == NULL)
		return;
	if (up)
		pset_rise(&r->member);
	else
		pset_fall(&r->member);
}

void
pready_after(struct pready *r, bool fire)
{
	/* Acquire: pairs with the release in pready_fd_get. */
	struct pready_fd *fdn =
	    atomic_load_explicit(&r->fdn, memory_order_acquire);

	if (fdn == NULL)
		return;
	CHAOS_POINT();
	pthread_mutex_lock(&fdn->lock);
	/* Whoever updates last reads the last flip: each flip is followed
	 * by its flipper's update, and each update reads the bit under
	 * this lock. */
	psync_efd_update(&fdn->efd,
	                 atomic_load_explicit(&r->up, memory_order_acquire));
	if (fire)
		psync_notify_fire(&fdn->notify, &fdn->lock, &fdn->settle);
	pthread_mutex_unlock(&fdn->lock);
}

struct pready_fd *
pready_fd_get(struct pready *r)
{
	struct pready_fd *fdn =
	    atomic_load_explicit(&r->fdn, memory_order_relaxed);
	int err;

	if (fdn != NULL)
		return fdn;
	fdn = psync_calloc(1, sizeof *fdn);
	if (fdn == NULL)
		return NULL;
	err = pthread_mutex_init(&fdn->lock, NULL);
	if (err != 0) {
		free(fdn);
		errno = err;
		return NULL;
	}
	fdn->efd = psync_efd_none();
	/* Release: pairs with the acquire in pready_after, which may run
	 * in a thread that does not hold the owner lock. */
	atomic_store_explicit(&r->fdn, fdn, memory_order_release);
	return fdn;
}

int
pready_efd(struct pready *r)
{
	struct pready_fd *fdn = pready_fd_get(r);
	int fd = -1;

	if (fdn == NULL)
		return -1;
	pthread_mutex_lock(&fdn->lock);
	if (fdn->efd.fd >= 0 ||
	    psync_efd_open(&fdn->efd, atomic_load_explicit(
	                                  &r->up, memory_order_relaxed)) == 0)
		fd = fdn->efd.fd;
	pthread_mutex_unlock(&fdn->lock);
	return fd;
}

void
pready_set_notify(struct pready *r, polypipe_notify_fn *fn, void *arg)
{
	struct pready_fd *fdn =
	    atomic_load_explicit(&r->fdn, memory_order_acquire);

	if (fdn == NULL)
		return;
	pthread_mutex_lock(&fdn->lock);
	psync_notify_set(&fdn->notify, fn, arg, &fdn->lock, &fdn->settle);
	pthread_mutex_unlock(&fdn->lock);
}

int
pready_release(struct pready *r)
{
	struct pready_fd *fdn =
	    atomic_load_explicit(&r->fdn, memory_order_acquire);
	int fd;

	if (fdn == NULL)
		return -1;
	pthread_mutex_lock(&fdn->lock);
	psync_notify_set(&fdn->notify, NULL, NULL, &fdn->lock, &fdn->settle);
	fd = psync_efd_release(&fdn->efd);
	pthread_mutex_unlock(&fdn->lock);
	return fd;
}
