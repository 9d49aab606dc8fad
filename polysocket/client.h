/*
 * client.h - what servers need of clients.
 */
#ifndef POLYSOCKET_CLIENT_H
#define POLYSOCKET_CLIENT_H

#include <polysocket/polysocket.h>

/*
 * client_accept (psock_lock held): the server accepted cl's attempt; fills
 * *ep with the server's side, completes the client's wait and takes a
 * reference that client_finish gives back.
 */
void client_accept(polyclient *cl, polyendpoint *ep);

/*
 * client_refuse (psock_lock held): the server refuses cl's attempt; takes
 * a reference that client_finish gives back.  The refusal shows only once
 * client_finish has set the error on the connection's pipes.
 */
void client_refuse(polyclient *cl);

/* client_finish (psock_lock not held): completes the decision and calls
 * the connect notifier. */
void client_finish(polyclient *cl);

struct pready;

/* For polyset: the readiness, whose owner lock is psock_lock. */
struct pready *client_ready(polyclient *cl);

#endif /* POLYSOCKET_CLIENT_H */
