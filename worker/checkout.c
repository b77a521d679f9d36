/*
 * checkout.c -- one checkout job, from delivery to XACK.
 */
#include "../shared/log.h"
#include "worker.h"

void
checkout_job(struct consumer *c, const redisReply *entry, long deliveries)
{
	(void)deliveries;
	log_info("worker: job received (not processed yet)", "{s:s, s:s}",
	    "consumer", c->name, "id", entry->element[0]->str);
}
