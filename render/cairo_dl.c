/*
 * cairo_dl.c: loads cairo the first time something is drawn (cairo_dl.h
 * says why).  Once loaded it stays loaded: surfaces and fonts live until
 * the process ends, and render_release_static() still needs it.
 */
#define RENDER_CAIRO_DL_IMPL
#include "render/cairo_dl.h"
#include "render/render.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct render_cairo_api render_cairo;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void *handle;       /* libcairo.so.2, once loaded */
static int load_code;      /* 0 once loaded */
static char load_msg[400]; /* why it did not load */

static void load(void)
{
	void *dl = dlopen(RENDER_CAIRO_SONAME, RTLD_NOW | RTLD_LOCAL);
	const char *missing = NULL;

	if (!dl) {
		const char *why = dlerror();
		snprintf(load_msg, sizeof(load_msg),
			 "cannot load " RENDER_CAIRO_SONAME " to draw: %s (Debian: apt-get install "
			 "libcairo2)",
			 why ? why : "not found");
		load_code = UTIL_EIO;
		return;
	}
	/* POSIX leaves function pointers from dlsym() to this conversion */
#define RENDER_CAIRO_SYM(f)                                                               \
	if (!missing) {                                                                   \
		void *p_ = dlsym(dl, #f);                                                 \
		if (p_)                                                                   \
			memcpy(&render_cairo.f, &p_, sizeof(p_));                         \
		else                                                                      \
			missing = #f;                                                     \
	}
	RENDER_CAIRO_FUNCS(RENDER_CAIRO_SYM)
#undef RENDER_CAIRO_SYM
	if (missing) {
		snprintf(load_msg, sizeof(load_msg),
			 RENDER_CAIRO_SONAME " has no %s: cairo 1.16 or later is needed", missing);
		memset(&render_cairo, 0, sizeof(render_cairo));
		dlclose(dl);
		load_code = UTIL_EIO;
		return;
	}
	handle = dl;
	load_code = 0;
}

int render_cairo_load(struct util_err *err)
{
	pthread_once(&once, load);
	if (load_code)
		return util_err_set(err, load_code, "%s", load_msg);
	return 0;
}

void *render_cairo_handle(void)
{
	return handle;
}
