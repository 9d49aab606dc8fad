/*
 * named-service.c - services found by name, as in a daemon with modules.
 *
 * Each module binds a server to a name of its own and serves it from a
 * thread of its own; clients know only the names.  The program starts
 * "upper" and "reverse" and calls both; shows that a second "upper"
 * cannot take the name while the first holds it and that a name nobody
 * bound is refused; then stops "upper", whose name is released at once,
 * so calls are refused until a new instance binds it again.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <polysocket/polysocket.h>
#include <polysocket/typed.h>

/* Requests and replies are strings the receiver frees. */
POLYPIPE_TYPED(text, char);

struct module {
	const char *name;
	void (*transform)(char *s);
	polyserver *srv;
	pthread_t thread;
	int calls; /* requests served; read after the join */
	int error; /* errno of a failure, or 0 */
};

static void
free_msg(void *msg, void *arg)
{
	(void)arg;
	free(msg);
}

static void
to_upper(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)toupper((unsigned char)*s);
}

static void
to_reverse(char *s)
{
	size_t i, n = strlen(s);

	for (i = 0; i < n / 2; i++) {
		char c = s[i];

		s[i] = s[n - 1 - i];
		s[n - 1 - i] = c;
	}
}

/* A module's thread: one connection at a time, until shutdown. */
static void *
module_main(void *arg)
{
	struct module *m = arg;
	polyendpoint ep;
	char *s;
	int r;

	while (polyserver_accept(m->srv, &ep, -1) == 0) {
		/* Replies a client leaves unread are freed with its pipe. */
		r = polypipe_set_destructor(ep.wr, free_msg, NULL);
		while (r == 0 && (r = text_read(ep.rd, &s, -1)) == 1) {
			m->transform(s);
			if ((r = text_write(ep.wr, s, -1)) < 0)
				free(s); /* the client has gone */
			else
				m->calls++;
		}
		if (r < 0)
			m->error = errno;
		polyendpoint_close(&ep);
	}
	/* polyserver_shutdown wakes the accept above with ESHUTDOWN. */
	if (errno != ESHUTDOWN)
		m->error = errno;
	return NULL;
}

/* Binds the module's name, then serves it: the name is there as soon as
 * this returns.  Fails with EADDRINUSE if another holds the name. */
static int
module_start(struct module *m)
{
	int err;

	m->srv = polyserver_create();
	if (m->srv == NULL)
		return -1;
	if (polyserver_bind(m->srv, m->name) < 0)
		goto fail;
	if ((errno = pthread_create(&m->thread, NULL, module_main, m)) != 0)
		goto fail;
	return 0;
fail:
	err = errno;
	polyserver_close(m->srv);
	errno = err;
	return -1;
}

/* Shutdown releases the name and wakes the module's thread; the server
 * is freed only after the join, when no thread is inside a call on it. */
static void
module_stop(struct module *m)
{
	if (polyserver_shutdown(m->srv) < 0 ||
	    (errno = pthread_join(m->thread, NULL)) != 0) {
		perror("module_stop");
		exit(1);
	}
	polyserver_close(m->srv);
	printf("  \"%s\" stopped after %d call%s\n", m->name, m->calls,
	       m->calls == 1 ? "" : "s");
}

/* Asks the service bound to name; the reply is the caller's to free. */
static char *
call(const char *name, const char *text)
{
	polyclient *cl = polyclient_create(1);
	polyendpoint ep;
	char *req, *reply = NULL;
	int err;

	if (cl == NULL)
		return NULL;
	if (polyclient_connect_name(cl, name) < 0 ||
	    polyclient_endpoint(cl, &ep, -1) < 0 ||
	    polypipe_set_destructor(ep.wr, free_msg, NULL) < 0 ||
	    (req = strdup(text)) == NULL)
		goto out;
	if (text_write(ep.wr, req, -1) < 0)
		free(req);
	else if (text_read(ep.rd, &reply, -1) == 0)
		errno = EPIPE; /* the service hung up */
out:
	err = errno;
	polyclient_close(cl);
	errno = err;
	return reply;
}

static void
expect_reply(const char *name, const char *text, const char *want)
{
	char *got = call(name, text);

	if (got == NULL || strcmp(got, want) != 0) {
		fprintf(stderr, "%s(\"%s\"): %s, expected \"%s\"\n", name,
		        text, got != NULL ? got : strerror(errno), want);
		exit(1);
	}
	printf("  %s(\"%s\") = \"%s\"\n", name, text, got);
	free(got);
}

static void
expect_refused(const char *name, const char *why)
{
	char *got = call(name, "hello");

	if (got != NULL || errno != ECONNREFUSED) {
		fprintf(stderr, "%s: answered, expected ECONNREFUSED\n", name);
		exit(1);
	}
	printf("  %s(\"hello\"): %s (%s)\n", name, strerror(errno), why);
}

int
main(void)
{
	struct module upper = { .name = "upper", .transform = to_upper };
	struct module reverse = { .name = "reverse", .transform = to_reverse };
	struct module twin = { .name = "upper", .transform = to_upper };
	struct module upper2 = { .name = "upper", .transform = to_upper };

	if (module_start(&upper) < 0 || module_start(&reverse) < 0) {
		perror("module_start");
		return 1;
	}
	printf("named-service: modules \"upper\" and \"reverse\" started\n");
	expect_reply("upper", "hello", "HELLO");
	expect_reply("reverse", "hello", "olleh");

	if (module_start(&twin) == 0 || errno != EADDRINUSE) {
		fprintf(stderr, "a second \"upper\" could bind the name\n");
		return 1;
	}
	printf("  a second \"upper\": %s\n", strerror(errno));
	expect_refused("lower", "never bound");

	module_stop(&upper);
	expect_refused("upper", "name released");
	if (module_start(&upper2) < 0) {
		perror("module_start");
		return 1;
	}
	printf("  \"upper\" started again\n");
	expect_reply("upper", "again", "AGAIN");

	module_stop(&upper2);
	module_stop(&reverse);
	if (upper.error || upper2.error || reverse.error || upper.calls != 1 ||
	    upper2.calls != 1 || reverse.calls != 1) {
		fprintf(stderr, "the modules did not serve as expected\n");
		return 1;
	}
	printf("ok: each instance served its one call\n");
	return 0;
}
