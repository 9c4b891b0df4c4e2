/*
 * lsan_probe.c - a program for tests/cli/0007-leak-check-roots.sh.  Built
 * and linked as make check's sanitizer-built programs are (with
 * tests/lsan_roots.c), it keeps or loses a heap block as asked, so that the
 * test can see LeakSanitizer still tell the two apart:
 *
 *   lsan_probe keep       a block reachable only from a global: no report
 *   lsan_probe dl LIB     a block reachable only from a global of LIB
 *                         (tests/lsan_probe_dl.c), loaded with dlopen()
 *                         after the program started: no report
 *   lsan_probe leak       a block nothing points to: a leak report
 *   lsan_probe dtor-keep  a block a destructor stores in a global, as the
 *                         program exits: no report
 *   lsan_probe dtor-lose  a block held by a global until a destructor
 *                         clears it, as the program exits: a leak report
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile kept; /* volatile: the store must stay */
static const char *volatile at_exit; /* what the destructor does */

__attribute__((destructor)) static void probe_fini(void)
{
	if (!at_exit)
		return;
	if (!strcmp(at_exit, "dtor-keep"))
		kept = malloc(48);
	else if (!strcmp(at_exit, "dtor-lose"))
		kept = NULL;
}

static int keep_in_library(const char *lib)
{
	void *h = dlopen(lib, RTLD_NOW);
	void (*keep)(void *);
	void *p = malloc(64);

	if (!h || !p) {
		fprintf(stderr, "lsan_probe: %s\n", h ? "out of memory" : dlerror());
		free(p);
		return 1;
	}
	*(void **)(&keep) = dlsym(h, "lsan_probe_keep");
	if (!keep) {
		fprintf(stderr, "lsan_probe: %s\n", dlerror());
		free(p);
		return 1;
	}
	keep(p); /* the library's global is now its only owner */
	return 0;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";

	if (!strcmp(what, "keep")) {
		kept = malloc(64);
		return kept ? 0 : 1;
	}
	if (!strcmp(what, "dtor-keep") || !strcmp(what, "dtor-lose")) {
		at_exit = what;
		if (!strcmp(what, "dtor-lose"))
			kept = malloc(64);
		return 0;
	}
	if (!strcmp(what, "dl") && argc > 2)
		return keep_in_library(argv[2]);
	if (!strcmp(what, "leak")) {
		char *p = malloc(64);

		if (!p)
			return 1;
		snprintf(p, 64, "%s", what);
		puts(p);
		return 0; /* p is lost here */
	}
	fprintf(stderr, "usage: lsan_probe keep | dl LIB | leak | dtor-keep | dtor-lose\n");
	return 2;
}
