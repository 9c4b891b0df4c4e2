/*
 * lsan_probe_dl.c - the library tests/lsan_probe.c loads with dlopen(): its
 * one global holds the block it is given, as a library's cache would.
 */
void lsan_probe_keep(void *p);

static void *volatile probe_kept; /* volatile: the store must stay */

void lsan_probe_keep(void *p)
{
	probe_kept = p;
}
