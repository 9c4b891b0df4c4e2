/*
 * write.c: the one place that creates cairo surfaces and writes files.
 * The format follows the extension; output goes to a temporary file in the
 * target's directory (so rename() is atomic) and is renamed over the
 * target only once every page was drawn and every byte written.  The
 * target of a path that is a symbolic link is the file the link points
 * to: the chart replaces that file and the link stays.  PDF
 * metadata dates are pinned so identical drawings give identical bytes.
 */
#include "render/render_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

enum fmt { FMT_NONE, FMT_PNG, FMT_SVG, FMT_PDF };

static enum fmt format_of(const char *path)
{
	const char *dot = strrchr(path, '.');

	if (!dot || strchr(dot, '/'))
		return FMT_NONE;
	if (!strcasecmp(dot, ".png"))
		return FMT_PNG;
	if (!strcasecmp(dot, ".svg"))
		return FMT_SVG;
	if (!strcasecmp(dot, ".pdf"))
		return FMT_PDF;
	return FMT_NONE;
}

int render_format_known(const char *path)
{
	return format_of(path) != FMT_NONE;
}

void render_release_static(void)
{
	/* fontconfig comes with cairo, not linked by us: find its FcFini in
	 * cairo's dependencies rather than adding a link dependency for one
	 * call.  Nothing to release if nothing was drawn. */
	void *dl = render_cairo_handle(), *sym;
	void (*fini)(void) = NULL;

	if (!dl)
		return;
	sym = dlsym(dl, "FcFini");
	cairo_debug_reset_static_data();
	if (sym) {
		memcpy(&fini, &sym, sizeof(fini));
		fini();
	}
}

/* mkstemp makes 0600 files; the chart gets the mode a plain open() would. */
static mode_t current_umask(void)
{
	mode_t m = umask(022);

	umask(m);
	return m;
}

/* Stream sink: remembers the first write error so it can be reported. */
struct sink {
	FILE *f;
	int err;
};

static cairo_status_t sink_write(void *closure, const unsigned char *data, unsigned int len)
{
	struct sink *k = closure;

	if (k->err)
		return CAIRO_STATUS_WRITE_ERROR;
	if (len && fwrite(data, 1, len, k->f) != len) {
		k->err = errno ? errno : EIO;
		return CAIRO_STATUS_WRITE_ERROR;
	}
	return CAIRO_STATUS_SUCCESS;
}

/* Draws every page on cr; returns 0 or the first error. */
static int draw_pages(cairo_surface_t *sf, double w, double h, double scale, int pages,
		      render_draw_fn draw, void *ctx, struct util_err *err)
{
	int rc = 0;

	for (int p = 0; p < pages && !rc; p++) {
		cairo_t *cr = cairo_create(sf);
		cairo_scale(cr, scale, scale);
		rc = draw(cr, w, h, p, ctx);
		if (!rc && cairo_status(cr) != CAIRO_STATUS_SUCCESS)
			rc = util_err_set(err, UTIL_EIO, "drawing page %d: %s", p + 1,
					  cairo_status_to_string(cairo_status(cr)));
		else if (rc)
			rc = util_err_set(err, rc, "drawing page %d failed", p + 1);
		if (!rc && pages > 1)
			cairo_show_page(cr);
		cairo_destroy(cr);
	}
	return rc;
}

int render_write(const char *path, double w, double h, double scale, int pages,
		 render_draw_fn draw, void *ctx, struct util_err *err)
{
	enum fmt fmt = format_of(path);
	struct sink k = { NULL, 0 };
	cairo_surface_t *sf = NULL;
	char *tmp = NULL, *target = NULL;
	int fd = -1, rc = 0;

	if (fmt == FMT_NONE)
		return util_err_set(err, UTIL_EUSAGE,
				    "cannot tell the format of '%s': use .png, .svg or .pdf", path);
	if (pages < 1 || (pages > 1 && fmt != FMT_PDF))
		return util_err_set(err, UTIL_EUSAGE, "'%s': %d pages need a .pdf output", path,
				    pages);
	if (!(w >= 16 && h >= 16 && w <= 20000 && h <= 20000 && scale > 0 && w * scale <= 32000 &&
	      h * scale <= 32000))
		return util_err_set(err, UTIL_EUSAGE, "size %gx%g at scale %g is out of range", w, h,
				    scale);
	if (fmt == FMT_PNG && w * scale * h * scale > 64e6)
		return util_err_set(err, UTIL_EUSAGE,
				    "%gx%g pixels is too large for a PNG (at most 64 million)",
				    w * scale, h * scale);

	if ((rc = render_cairo_load(err)) || (rc = util_out_target(path, &target, err)))
		return rc;
	{
		size_t n = strlen(target);
		tmp = xmalloc(n + 16);
		memcpy(tmp, target, n);
		memcpy(tmp + n, ".tmp-XXXXXX", 12);
	}
	if ((fd = mkstemp(tmp)) < 0 || fchmod(fd, 0666 & ~current_umask()) != 0 ||
	    !(k.f = fdopen(fd, "wb"))) {
		rc = util_err_set(err, UTIL_EIO, "cannot write '%s': %s", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		free(tmp);
		free(target);
		return rc;
	}

	switch (fmt) {
	case FMT_PNG: {
		int pw = (int)(w * scale + 0.5), ph = (int)(h * scale + 0.5);
		sf = rint_png_surface_create(pw, ph);
		break;
	}
	case FMT_SVG:
		sf = cairo_svg_surface_create_for_stream(sink_write, &k, w, h);
		break;
	case FMT_PDF:
		sf = cairo_pdf_surface_create_for_stream(sink_write, &k, w, h);
		/* cairo stamps the current time unless told otherwise */
		cairo_pdf_surface_set_metadata(sf, CAIRO_PDF_METADATA_CREATE_DATE,
					       "2000-01-01T00:00:00Z");
		cairo_pdf_surface_set_metadata(sf, CAIRO_PDF_METADATA_MOD_DATE,
					       "2000-01-01T00:00:00Z");
		cairo_pdf_surface_set_metadata(sf, CAIRO_PDF_METADATA_CREATOR, "moetrace");
		break;
	case FMT_NONE:
		break;
	}
	if (!sf || cairo_surface_status(sf) != CAIRO_STATUS_SUCCESS) {
		rc = util_err_set(err, UTIL_EIO, "cannot create a surface for '%s': %s", path,
				  sf ? cairo_status_to_string(cairo_surface_status(sf)) : "no memory");
		goto out;
	}
	if (fmt == FMT_PNG) {
		/* white background: PNG viewers show transparency as black or checks */
		cairo_t *cr = cairo_create(sf);
		cairo_set_source_rgb(cr, 1, 1, 1);
		cairo_paint(cr);
		cairo_destroy(cr);
	}
	if ((rc = draw_pages(sf, w, h, fmt == FMT_PNG ? scale : 1.0, pages, draw, ctx, err)))
		goto out;
	if (fmt == FMT_PNG) {
		cairo_status_t st = rint_png_write(sf, sink_write, &k);
		if (st != CAIRO_STATUS_SUCCESS && !k.err) {
			rc = util_err_set(err, UTIL_EIO, "cannot write '%s': %s", path,
					  cairo_status_to_string(st));
			goto out;
		}
	}
	cairo_surface_finish(sf);
	if (!k.err && cairo_surface_status(sf) != CAIRO_STATUS_SUCCESS) {
		rc = util_err_set(err, UTIL_EIO, "cannot write '%s': %s", path,
				  cairo_status_to_string(cairo_surface_status(sf)));
		goto out;
	}
	if (k.err || fflush(k.f) != 0 || ferror(k.f)) {
		rc = util_err_set(err, UTIL_EIO, "cannot write '%s': %s", path,
				  strerror(k.err ? k.err : errno));
		goto out;
	}
out:
	cairo_surface_destroy(sf);
	if (fclose(k.f) != 0 && !rc)
		rc = util_err_set(err, UTIL_EIO, "cannot write '%s': %s", path, strerror(errno));
	if (!rc && rename(tmp, target) != 0)
		rc = util_err_set(err, UTIL_EIO, "cannot write '%s': %s", path, strerror(errno));
	if (rc)
		unlink(tmp);
	free(tmp);
	free(target);
	return rc;
}
