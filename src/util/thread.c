/* SPDX-License-Identifier: Apache-2.0 */
/* thread — see include/kiln/thread.h. */
#include "kiln/thread.h"

int kiln_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	int ret = pthread_attr_init(&attr);

	if (ret)
		return ret;
	ret = pthread_attr_setstacksize(&attr, KILN_THREAD_STACK);
	if (!ret)
		ret = pthread_create(t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return ret;
}
