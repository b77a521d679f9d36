/*
 * call.c -- the asynchronous call a request sleeps on: the object
 * alone, below the backends (aredis.c, offload.c) that do the work;
 * await.c starts calls for handlers.
 *
 * A call has two holders: the request (until call_release) and a backend
 * (while busy: a DB thread, or Redis until its reply callback has run).
 * The last one to let go frees it.  A backend reports completion with
 * call_finish() on the event loop, which wakes the request if it is
 * still there.  A Redis call that times out is marked done early and
 * stays busy until hiredis hands it back.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "runtime.h"

static void
call_free(struct call *c)
{
	json_decref(c->in);
	json_decref(c->out);
	free(c);
}

/* A new call for req, stealing in (which may be NULL); never fails. */
struct call *
call_new(struct http_request *req, json_t *in)
{
	struct call	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("call_new: out of memory");
	c->req = req;
	c->in = in;
	return (c);
}

/* The backend is done with c: wake its request, or free c if none. */
void
call_finish(struct call *c)
{
	c->busy = 0;
	if (c->on_done != NULL)
		c->on_done(c);
	if (!c->done) {
		c->done = 1;
		if (c->req != NULL)
			http_request_wakeup(c->req);
	}
	if (c->req == NULL)
		call_free(c);
}

/*
 * The request is done with c (or gone): free it unless a backend has it.
 * A backend that can let go at once (a waiter) does so in on_release.
 */
void
call_release(struct call *c)
{
	c->req = NULL;
	if (c->busy && c->on_release != NULL)
		c->on_release(c);
	if (!c->busy)
		call_free(c);
}
