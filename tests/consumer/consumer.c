/* A user of the installed library: one connection, one message each way. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <polysocket/polysocket.h>
#include <polysocket/typed.h>

POLYPIPE_TYPED(num, int);

int
main(void)
{
	polyserver *srv = polyserver_create();
	polyclient *cl = polyclient_create(4);
	polyendpoint mine, theirs;
	int one = 1, two = 2, *got = NULL;

	if (srv == NULL || cl == NULL ||
	    polyserver_bind(srv, "consumer") < 0 ||
	    polyclient_connect_name(cl, "consumer") < 0 ||
	    polyserver_accept(srv, &theirs, 0) < 0 ||
	    polyclient_endpoint(cl, &mine, 0) < 0) {
		perror("consumer");
		return 1;
	}
	if (num_write(mine.wr, &one, 0) < 0 ||
	    num_read(theirs.rd, &got, 0) != 1 || got != &one ||
	    num_write(theirs.wr, &two, 0) < 0 ||
	    num_read(mine.rd, &got, 0) != 1 || got != &two) {
		fprintf(stderr, "consumer: messages went astray\n");
		return 1;
	}
	polyendpoint_close(&theirs);
	polyclient_close(cl);
	polyserver_close(srv);
	if (strcmp(polysocket_version(), POLYSOCKET_VERSION_STRING) != 0) {
		fprintf(stderr, "consumer: header %s, library %s\n",
		        POLYSOCKET_VERSION_STRING, polysocket_version());
		return 1;
	}
	printf("consumer: polysocket %s works\n", polysocket_version());
	return 0;
}
