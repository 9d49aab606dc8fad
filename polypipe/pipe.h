/*
 * pipe.h - what the polysocket half needs of polypipe beyond the public
 * API.
 */
#ifndef POLYSOCKET_PIPE_H
#define POLYSOCKET_PIPE_H

#include <polysocket/polypipe.h>

/*
 * pipe_discard: hands every message buffered in wr's pipe to the
 * destructor now, as closing the read end would, without closing
 * anything.  For a connection whose messages must be destroyed by a
 * thread that does not hold the read end.
 */
void pipe_discard(polypipe *wr);

/*
 * pipe_create_pair: two pipes of the given capacity, as two calls of
 * polypipe_create would make them, in one allocation: a connection's.
 * Each pipe lives until both its ends are closed, as any other; the
 * allocation goes with the last of the two.  -1 with ENOMEM.
 */
int pipe_create_pair(size_t capacity, polypipe **a_rd, polypipe **a_wr,
                     polypipe **b_rd, polypipe **b_wr);

struct pready;

/*
 * For polyset: the readiness of p's side.  pipe_ready_lock allocates it
 * if it is the first time it is asked for, and returns it with both of
 * the pipe's locks held (its owner lock, as ready.h calls it), or NULL
 * with ENOMEM.  pipe_ready_trylock takes both locks if it can at once.
 * pipe_ready_of: the readiness if it was ever asked for, else NULL.
 */
struct pready *pipe_ready_lock(polypipe *p);
bool pipe_ready_trylock(polypipe *p);
struct pready *pipe_ready_of(polypipe *p);
void pipe_ready_unlock(polypipe *p);

#endif /* POLYSOCKET_PIPE_H */
