/*
 * client.h - what sets (polyset) need of clients.
 */
#ifndef POLYSOCKET_CLIENT_H
#define POLYSOCKET_CLIENT_H

#include <stdbool.h>

#include <polysocket/polysocket.h>

struct pready;

/* For polyset: the readiness (decided) and its owner lock, the client's
 * own (its attempt's: attempt.h). */
struct pready *client_ready_lock(polyclient *cl);
bool client_ready_trylock(polyclient *cl);
void client_ready_unlock(polyclient *cl);

#endif /* POLYSOCKET_CLIENT_H */
