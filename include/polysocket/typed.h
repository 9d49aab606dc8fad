/*
 * typed.h - type-checked wrappers around polypipe calls.
 *
 *   struct job { int id; };
 *   POLYPIPE_TYPED(job, struct job);
 *
 * declares static inline job_read, job_write, job_read_many and
 * job_write_many, which take struct job pointers where polypipe takes
 * void pointers, so the compiler rejects a message of the wrong type.
 * Use it at file scope, with the trailing semicolon.  The batch wrappers
 * pass the caller's array to polypipe as an array of void pointers, which
 * relies on all object pointers sharing one representation, as on every
 * platform glibc supports.
 */
#ifndef POLYSOCKET_TYPED_H
#define POLYSOCKET_TYPED_H

#include <polysocket/polypipe.h>

#if defined(__GNUC__)
#define POLYPIPE_TYPED_UNUSED_ __attribute__((unused))
#else
#define POLYPIPE_TYPED_UNUSED_
#endif

#define POLYPIPE_TYPED(name, type)                                            \
	POLYPIPE_TYPED_UNUSED_ static inline int name##_read(                 \
	    polypipe *rd, type **msg, int timeout_ms)                         \
	{                                                                     \
		void *m_ = 0;                                                 \
		int r_ = polypipe_read(rd, msg ? &m_ : 0, timeout_ms);        \
		if (r_ == 1)                                                  \
			*msg = (type *)m_;                                    \
		return r_;                                                    \
	}                                                                     \
	POLYPIPE_TYPED_UNUSED_ static inline int name##_write(                \
	    polypipe *wr, type *msg, int timeout_ms)                          \
	{                                                                     \
		return polypipe_write(wr, (void *)msg, timeout_ms);           \
	}                                                                     \
	POLYPIPE_TYPED_UNUSED_ static inline ssize_t name##_read_many(        \
	    polypipe *rd, type **msgs, size_t max, int timeout_ms)            \
	{                                                                     \
		return polypipe_read_many(rd, (void **)msgs, max,             \
		                          timeout_ms);                        \
	}                                                                     \
	POLYPIPE_TYPED_UNUSED_ static inline ssize_t name##_write_many(       \
	    polypipe *wr, type *const *msgs, size_t n, int timeout_ms)        \
	{                                                                     \
		return polypipe_write_many(wr, (void *const *)msgs, n,        \
		                           timeout_ms);                       \
	}                                                                     \
	struct polypipe_typed_##name##_

#endif /* POLYSOCKET_TYPED_H */
