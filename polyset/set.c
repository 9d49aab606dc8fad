/*
 * set.c - polyset: placeholder until the readiness redesign lands.
 * Every call fails with ENOSYS.
 */
#include "config.h"

#include <errno.h>

#include <polysocket/polyset.h>

polyset *
polyset_create(void)
{
	errno = ENOSYS;
	return NULL;
}

int
polyset_add(polyset *set, void *obj, unsigned flags, void *data)
{
	(void)set, (void)obj, (void)flags, (void)data;
	errno = ENOSYS;
	return -1;
}

int
polyset_modify(polyset *set, void *obj, unsigned flags, void *data)
{
	(void)set, (void)obj, (void)flags, (void)data;
	errno = ENOSYS;
	return -1;
}

int
polyset_remove(polyset *set, void *obj)
{
	(void)set, (void)obj;
	errno = ENOSYS;
	return -1;
}

ssize_t
polyset_wait(polyset *set, struct polyset_event *evs, size_t max,
             int timeout_ms)
{
	(void)set, (void)evs, (void)max, (void)timeout_ms;
	errno = ENOSYS;
	return -1;
}

int
polyset_fd(polyset *set)
{
	(void)set;
	errno = ENOSYS;
	return -1;
}

int
polyset_wake(polyset *set)
{
	(void)set;
	errno = ENOSYS;
	return -1;
}

void
polyset_close(polyset *set)
{
	(void)set;
}
