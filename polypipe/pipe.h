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

#endif /* POLYSOCKET_PIPE_H */
