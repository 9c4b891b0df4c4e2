/* test_render.c: charts read back from the files they write, tick choice,
 * output atomicity and determinism, and the trace loaders. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analyze/analyze.h"
#include "render/render.h"
#include "render/render_int.h" /* chart jobs: the titles they write */
#include "store/store.h"

/* ---- helpers -------------------------------------------------------------- */

static char tmpdir[64];

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/moetrace-render-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[512];

	(void)state;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(tmpdir);
	return 0;
}

static const char *path_in(const char *name)
{
	static char p[4][256];
	static int k;

	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", tmpdir, name);
	return p[k];
}

static int dir_entries(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	if (d)
		closedir(d);
	return n;
}

/* Pixel (x, y) of an ARGB32/RGB24 image as r, g, b. */
static void pixel(cairo_surface_t *img, int x, int y, int rgb[3])
{
	unsigned char *d = cairo_image_surface_get_data(img);
	uint32_t v;

	memcpy(&v, d + (size_t)y * cairo_image_surface_get_stride(img) + 4 * (size_t)x, 4);
	rgb[0] = (int)(v >> 16 & 0xff);
	rgb[1] = (int)(v >> 8 & 0xff);
	rgb[2] = (int)(v & 0xff);
}

static int near(const int a[3], int r, int g, int b, int tol)
{
	return abs(a[0] - r) <= tol && abs(a[1] - g) <= tol && abs(a[2] - b) <= tol;
}

static long count_colour(cairo_surface_t *img, int r, int g, int b, int tol)
{
	int w = cairo_image_surface_get_width(img), h = cairo_image_surface_get_height(img);
	long n = 0;
	int px[3];

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			pixel(img, x, y, px);
			n += near(px, r, g, b, tol);
		}
	return n;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = 0;
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Draw callbacks for render_write. */
struct heat_job {
	struct render_heatmap_cfg cfg;
	struct render_grid g;
};

static int draw_heat(cairo_t *cr, double w, double h, int page, void *ctx)
{
	struct heat_job *j = ctx;

	(void)page;
	return render_heatmap(cr, w, h, &j->cfg, &j->g);
}

static int draw_fail(cairo_t *cr, double w, double h, int page, void *ctx)
{
	(void)cr, (void)w, (void)h, (void)ctx;
	return page == 1 ? UTIL_EIO : 0;
}

/* The heatmap's plot box as it lays out on a w x h chart at `scale`. */
static void heat_box(const struct heat_job *j, double w, double h, double scale, double box[4])
{
	cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)(w * scale),
							 (int)(h * scale));
	cairo_t *cr = cairo_create(sf);

	cairo_scale(cr, scale, scale);
	assert_int_equal(render_heatmap_box(cr, w, h, &j->cfg, &j->g, box), 0);
	cairo_destroy(cr);
	cairo_surface_destroy(sf);
}

/* Device pixel at the centre of cell (r, c). */
static void cell_centre(const struct render_grid *g, const double box[4], double scale, int r,
			int c, int *x, int *y)
{
	*x = (int)((box[0] + (c + 0.5) * box[2] / g->cols) * scale);
	*y = (int)((box[1] + (r + 0.5) * box[3] / g->rows) * scale);
}

/* ---- colours ---------------------------------------------------------------- */

static void test_render_colour_maps(void **state)
{
	double rgb[3];

	(void)state;
	/* viridis' published ends #440154 and #fde725, and its middle #21918c */
	render_viridis(0, rgb);
	assert_int_equal((int)lround(rgb[0] * 255), 0x44);
	assert_int_equal((int)lround(rgb[1] * 255), 0x01);
	assert_int_equal((int)lround(rgb[2] * 255), 0x54);
	render_viridis(1, rgb);
	assert_int_equal((int)lround(rgb[0] * 255), 0xfd);
	assert_int_equal((int)lround(rgb[1] * 255), 0xe7);
	assert_int_equal((int)lround(rgb[2] * 255), 0x25);
	render_viridis(0.5, rgb);
	assert_int_equal((int)lround(rgb[1] * 255), 0x91);
	/* out of range and NAN clamp instead of reading outside the table */
	render_viridis(-3, rgb);
	assert_int_equal((int)lround(rgb[0] * 255), 0x44);
	render_viridis(NAN, rgb);
	assert_int_equal((int)lround(rgb[2] * 255), 0x54);
	render_viridis(7, rgb);
	assert_int_equal((int)lround(rgb[0] * 255), 0xfd);
	/* lightness rises monotonically: readable in grey */
	double prev = -1;
	for (int i = 0; i <= 255; i++) {
		render_viridis(i / 255.0, rgb);
		double luma = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
		assert_true(luma > prev - 1e-3);
		prev = luma;
	}
	/* Okabe-Ito: blue #0072b2 first, orange #e69f00 second, cycling by 8 */
	render_palette(0, rgb);
	assert_int_equal((int)lround(rgb[2] * 255), 0xb2);
	render_palette(1, rgb);
	assert_int_equal((int)lround(rgb[0] * 255), 0xe6);
	render_palette(9, rgb);
	assert_int_equal((int)lround(rgb[0] * 255), 0xe6);
}

/* ---- ticks ---------------------------------------------------------------- */

static void test_render_ticks_never_overlap(void **state)
{
	static const int counts[] = { 2, 8, 58, 256, 384, 1000, 100000 };
	static const double lens[] = { 120, 300, 700, 1500, 4000 };
	cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 4, 4);
	cairo_t *cr = cairo_create(sf);
	double ticks[RENDER_MAX_TICKS], step;
	char a[64], b[64];

	(void)state;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(counts); i++)
		for (size_t j = 0; j < UTIL_ARRAY_SIZE(lens); j++) {
			double lo = -0.5, hi = counts[i] - 0.5, len = lens[j];
			int n = render_ticks(cr, lo, hi, len, 1, 1, 12, ticks, &step);
			assert_true(n >= 1 && n <= RENDER_MAX_TICKS);
			assert_true(step >= 1);
			if (len >= 300)
				assert_true(n >= 2);
			for (int k = 0; k + 1 < n; k++) {
				render_tick_label(a, sizeof(a), ticks[k], step);
				render_tick_label(b, sizeof(b), ticks[k + 1], step);
				/* distinct labels, centred labels that do not touch */
				assert_string_not_equal(a, b);
				double gap = (ticks[k + 1] - ticks[k]) / (hi - lo) * len -
					     render_text_width(cr, a, 12) / 2 -
					     render_text_width(cr, b, 12) / 2;
				assert_true(gap >= 12);
			}
			/* vertical: at least two text heights apart */
			n = render_ticks(cr, lo, hi, len, 0, 1, 12, ticks, &step);
			for (int k = 0; k + 1 < n; k++)
				assert_true((ticks[k + 1] - ticks[k]) / (hi - lo) * len >= 24);
			/* every tick inside the axis */
			for (int k = 0; k < n; k++)
				assert_true(ticks[k] >= lo && ticks[k] <= hi);
		}
	/* 8 experts on a wide axis: a label for every expert */
	assert_int_equal(render_ticks(cr, -0.5, 7.5, 800, 1, 1, 12, ticks, &step), 8);
	/* labels */
	render_tick_label(a, sizeof(a), 20000, 5000);
	assert_string_equal(a, "20k");
	render_tick_label(a, sizeof(a), 0, 5000);
	assert_string_equal(a, "0");
	render_tick_label(a, sizeof(a), 1.25, 0.05);
	assert_string_equal(a, "1.25");
	render_tick_label(a, sizeof(a), -0.0000001, 0.5);
	assert_string_equal(a, "0.0");
	cairo_destroy(cr);
	cairo_surface_destroy(sf);
}

/* ---- heatmap ---------------------------------------------------------------- */

static void test_render_heatmap_cells(void **state)
{
	/* known values against a fixed scale of 0..3: 0 is viridis' dark end,
	 * 3 its bright end, 1.5 its middle #21918c, NAN the no-data grey */
	static const double v[2 * 4] = { 0, 3, 1.5, 0, NAN, 3, 0, 1.5 };
	struct heat_job j = { render_heatmap_cfg_defaults(), { 0 } };
	static const double scales[] = { 1, 2 };

	(void)state;
	j.cfg.title = "cells";
	j.cfg.x_label = "expert";
	j.cfg.y_label = "layer";
	j.cfg.vmax = 3;
	j.g = (struct render_grid){ 2, 4, v, -0.5, 3.5, -0.5, 1.5, NULL };
	for (size_t k = 0; k < UTIL_ARRAY_SIZE(scales); k++) {
		const char *p = path_in("cells.png");
		struct util_err err = UTIL_ERR_INIT;
		double box[4], sc = scales[k];
		int x, y, px[3];

		assert_int_equal(render_write(p, 400, 300, sc, 1, draw_heat, &j, &err), 0);
		cairo_surface_t *img = cairo_image_surface_create_from_png(p);
		assert_int_equal(cairo_surface_status(img), CAIRO_STATUS_SUCCESS);
		assert_int_equal(cairo_image_surface_get_width(img), (int)(400 * sc));
		assert_int_equal(cairo_image_surface_get_height(img), (int)(300 * sc));
		heat_box(&j, 400, 300, sc, box);
		assert_true(box[2] > 100 && box[3] > 100);
		for (int r = 0; r < 2; r++)
			for (int c = 0; c < 4; c++) {
				double val = v[r * 4 + c];
				cell_centre(&j.g, box, sc, r, c, &x, &y);
				pixel(img, x, y, px);
				if (isnan(val))
					assert_true(near(px, 217, 217, 217, 1));
				else if (val == 0)
					assert_true(near(px, 0x44, 0x01, 0x54, 1));
				else if (val == 3)
					assert_true(near(px, 0xfd, 0xe7, 0x25, 1));
				else
					assert_true(near(px, 0x21, 0x91, 0x8c, 1));
			}
		/* outside the plot box: the white page */
		pixel(img, 1, (int)(150 * sc), px);
		assert_true(near(px, 255, 255, 255, 0));
		cairo_surface_destroy(img);
	}
}

static void test_render_heatmap_log_scale(void **state)
{
	/* log10(1 + v) / log10(1 + 999): v = sqrt(1000) - 1 sits at the middle */
	double v[3] = { 0, sqrt(1000.0) - 1, 999 };
	struct heat_job j = { render_heatmap_cfg_defaults(), { 0 } };
	const char *p = path_in("log.png");
	struct util_err err = UTIL_ERR_INIT;
	double box[4];
	int x, y, px[3];

	(void)state;
	j.cfg.log_scale = 1;
	j.g = (struct render_grid){ 1, 3, v, -0.5, 2.5, -0.5, 0.5, NULL };
	assert_int_equal(render_write(p, 300, 200, 1, 1, draw_heat, &j, &err), 0);
	cairo_surface_t *img = cairo_image_surface_create_from_png(p);
	heat_box(&j, 300, 200, 1, box);
	cell_centre(&j.g, box, 1, 0, 1, &x, &y);
	pixel(img, x, y, px);
	assert_true(near(px, 0x21, 0x91, 0x8c, 1));
	cell_centre(&j.g, box, 1, 0, 2, &x, &y);
	pixel(img, x, y, px);
	assert_true(near(px, 0xfd, 0xe7, 0x25, 1));
	cairo_surface_destroy(img);
}

static void test_render_heatmap_aggregates_columns(void **state)
{
	/* 100,000 steps alternating 0 and 2 on a scale of 0..2: averaged per
	 * pixel column every column is ~1, the middle colour; sampling single
	 * steps instead would show only the two ends */
	enum { N = 100000 };
	double *v = malloc(N * sizeof(double));
	struct heat_job j = { render_heatmap_cfg_defaults(), { 0 } };
	const char *p = path_in("wide.png");
	struct util_err err = UTIL_ERR_INIT;
	double box[4];
	int px[3];

	(void)state;
	for (int i = 0; i < N; i++)
		v[i] = i % 2 ? 2 : 0;
	j.cfg.vmax = 2;
	j.g = (struct render_grid){ 1, N, v, 0, N, -0.5, 0.5, NULL };
	assert_int_equal(render_write(p, 600, 200, 1, 1, draw_heat, &j, &err), 0);
	cairo_surface_t *img = cairo_image_surface_create_from_png(p);
	heat_box(&j, 600, 200, 1, box);
	int y = (int)(box[1] + box[3] / 2), mid = 0, ends = 0;
	for (int x = (int)box[0] + 1; x < (int)(box[0] + box[2]) - 1; x++) {
		pixel(img, x, y, px);
		mid += near(px, 0x21, 0x91, 0x8c, 4);
		ends += near(px, 0x44, 0x01, 0x54, 2) || near(px, 0xfd, 0xe7, 0x25, 2);
	}
	assert_int_equal(ends, 0);
	assert_true(mid >= (int)box[2] - 3);
	cairo_surface_destroy(img);
	free(v);
}

/* ---- output ------------------------------------------------------------------- */

static void test_render_identical_bytes(void **state)
{
	static const double v[6] = { 1, 2, 3, 4, 5, 6 };
	struct heat_job j = { render_heatmap_cfg_defaults(), { 0 } };
	struct util_err err = UTIL_ERR_INIT;
	static const char *const names[][2] = { { "a.png", "b.png" }, { "a.pdf", "b.pdf" } };

	(void)state;
	j.cfg.title = "same input, same bytes";
	j.g = (struct render_grid){ 2, 3, v, -0.5, 2.5, -0.5, 1.5, NULL };
	for (size_t k = 0; k < UTIL_ARRAY_SIZE(names); k++) {
		size_t la, lb;
		assert_int_equal(render_write(path_in(names[k][0]), 500, 300, 2, 1, draw_heat, &j,
					      &err),
				 0);
		sleep(k == 1); /* a PDF creation date would differ by now */
		assert_int_equal(render_write(path_in(names[k][1]), 500, 300, 2, 1, draw_heat, &j,
					      &err),
				 0);
		char *a = slurp(path_in(names[k][0]), &la), *b = slurp(path_in(names[k][1]), &lb);
		assert_true(la > 100);
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la);
		free(a);
		free(b);
	}
}

static int count_pages(const char *pdf, size_t len)
{
	int n = 0;

	for (const char *p = pdf; (p = memmem(p, len - (size_t)(p - pdf), "/Type /Page", 11));
	     p += 11)
		if (p[11] != 's')
			n++;
	return n;
}

static void test_render_pdf_pages(void **state)
{
	static const double v[4] = { 1, 2, 3, 4 };
	struct heat_job j = { render_heatmap_cfg_defaults(), { 0 } };
	struct util_err err = UTIL_ERR_INIT;
	size_t len;

	(void)state;
	j.g = (struct render_grid){ 2, 2, v, -0.5, 1.5, -0.5, 1.5, NULL };
	assert_int_equal(render_write(path_in("three.pdf"), 600, 400, 1, 3, draw_heat, &j, &err),
			 0);
	char *pdf = slurp(path_in("three.pdf"), &len);
	assert_memory_equal(pdf, "%PDF-", 5);
	assert_int_equal(count_pages(pdf, len), 3);
	free(pdf);
	assert_int_equal(render_write(path_in("one.pdf"), 600, 400, 1, 1, draw_heat, &j, &err), 0);
	pdf = slurp(path_in("one.pdf"), &len);
	assert_int_equal(count_pages(pdf, len), 1);
	free(pdf);
	assert_int_equal(render_write(path_in("one.svg"), 600, 400, 1, 1, draw_heat, &j, &err), 0);
	pdf = slurp(path_in("one.svg"), &len);
	assert_non_null(strstr(pdf, "<svg"));
	free(pdf);
}

static void test_render_write_leaves_nothing_on_error(void **state)
{
	static const double v[1] = { 1 };
	struct heat_job j = { render_heatmap_cfg_defaults(), { 0 } };
	struct util_err err = UTIL_ERR_INIT;
	int before;

	(void)state;
	j.g = (struct render_grid){ 1, 1, v, -0.5, 0.5, -0.5, 0.5, NULL };
	before = dir_entries();
	/* unknown extension */
	assert_int_equal(render_write(path_in("x.jpg"), 300, 200, 1, 1, draw_heat, &j, &err),
			 UTIL_EUSAGE);
	assert_non_null(strstr(err.msg, ".png"));
	/* a directory that does not exist: the system refuses, an I/O failure */
	assert_int_equal(render_write(path_in("nodir/x.png"), 300, 200, 1, 1, draw_heat, &j, &err),
			 UTIL_EIO);
	assert_non_null(strstr(err.msg, "nodir/x.png"));
	/* several pages need a PDF */
	assert_int_equal(render_write(path_in("x.png"), 300, 200, 1, 2, draw_heat, &j, &err),
			 UTIL_EUSAGE);
	/* a drawing that fails on its second page: no file, no temporary */
	assert_int_not_equal(render_write(path_in("x.pdf"), 300, 200, 1, 3, draw_fail, NULL, &err),
			     0);
	assert_int_equal(dir_entries(), before);
	/* and an existing chart is left as it was */
	size_t l1, l2;
	assert_int_equal(render_write(path_in("keep.png"), 300, 200, 1, 1, draw_heat, &j, &err), 0);
	char *a = slurp(path_in("keep.png"), &l1);
	j.g.rows = 0; /* an empty grid is refused by the chart */
	assert_int_not_equal(render_write(path_in("keep.png"), 300, 200, 1, 1, draw_heat, &j, &err),
			     0);
	char *b = slurp(path_in("keep.png"), &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(a, b, l1);
	assert_int_equal(dir_entries(), before + 1);
	free(a);
	free(b);
}

/* ---- PNG encoder ------------------------------------------------------------ */

static int draw_image(cairo_t *cr, double w, double h, int page, void *ctx)
{
	(void)w, (void)h, (void)page;
	cairo_set_source_surface(cr, ctx, 0, 0);
	cairo_paint(cr);
	return 0;
}

static void test_render_png_roundtrip(void **state)
{
	/* noise (nothing to match), flat colour (long matches), stripes and
	 * gradients (matches at row and pixel distances), odd sizes */
	static const int sizes[][2] = { { 16, 16 }, { 17, 16 }, { 300, 200 }, { 1001, 23 },
					{ 16, 700 } };
	struct util_rng rng;
	struct util_err err = UTIL_ERR_INIT;

	(void)state;
	util_rng_seed(&rng, 11);
	for (size_t k = 0; k < UTIL_ARRAY_SIZE(sizes); k++)
		for (int pat = 0; pat < 4; pat++) {
			int w = sizes[k][0], h = sizes[k][1];
			cairo_surface_t *src = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
			unsigned char *d = cairo_image_surface_get_data(src);
			int stride = cairo_image_surface_get_stride(src);
			for (int y = 0; y < h; y++)
				for (int x = 0; x < w; x++) {
					uint32_t v;
					switch (pat) {
					case 0: v = (uint32_t)util_rng_next(&rng); break;
					case 1: v = 0x21918c; break;
					case 2: v = (x / 5 + y / 3) % 2 ? 0xfde725 : 0x440154; break;
					default: v = (uint32_t)(x * 255 / w) << 16 | (uint32_t)(y % 256) << 8 |
						     (uint32_t)((x ^ y) & 0xff);
					}
					v &= 0xffffff;
					memcpy(d + (size_t)y * stride + 4 * (size_t)x, &v, 4);
				}
			cairo_surface_mark_dirty(src);
			assert_int_equal(render_write(path_in("rt.png"), w, h, 1, 1, draw_image, src,
						      &err),
					 0);
			cairo_surface_t *back = cairo_image_surface_create_from_png(path_in("rt.png"));
			assert_int_equal(cairo_surface_status(back), CAIRO_STATUS_SUCCESS);
			assert_int_equal(cairo_image_surface_get_width(back), w);
			assert_int_equal(cairo_image_surface_get_height(back), h);
			for (int y = 0; y < h; y++)
				for (int x = 0; x < w; x++) {
					int a[3], b[3];
					pixel(src, x, y, a);
					pixel(back, x, y, b);
					assert_memory_equal(a, b, sizeof(a));
				}
			cairo_surface_destroy(back);
			cairo_surface_destroy(src);
		}
}

static void test_render_png_compresses_charts(void **state)
{
	/* a chart page compresses to well under a tenth of its raw size */
	static const double v[4 * 8] = { 1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1,
					 0, 0, 9, 9, 0, 0, 9, 9, 3, 3, 3, 3, 3, 3, 3, 3 };
	struct heat_job j = { render_heatmap_cfg_defaults(), { 0 } };
	struct util_err err = UTIL_ERR_INIT;
	struct stat st;

	(void)state;
	j.cfg.title = "compression";
	j.g = (struct render_grid){ 4, 8, v, -0.5, 7.5, -0.5, 3.5, NULL };
	assert_int_equal(render_write(path_in("z.png"), 1000, 600, 1, 1, draw_heat, &j, &err), 0);
	assert_int_equal(stat(path_in("z.png"), &st), 0);
	assert_true(st.st_size < 1000 * 600 * 3 / 10);
}

/* ---- bars, lines -------------------------------------------------------------- */

struct bars_job {
	struct render_devices_cfg cfg;
	struct render_bars b;
};

static int draw_bars(cairo_t *cr, double w, double h, int page, void *ctx)
{
	struct bars_job *j = ctx;

	(void)page;
	return render_devices(cr, w, h, &j->cfg, &j->b);
}

/* Heights of runs of columns holding `rgb` below row y0: one per bar. */
static int bar_heights(cairo_surface_t *img, int y0, int r, int g, int b, int *hts, int max)
{
	int w = cairo_image_surface_get_width(img), h = cairo_image_surface_get_height(img);
	int n = 0, in = 0, px[3];

	for (int x = 0; x < w; x++) {
		int cnt = 0;
		for (int y = y0; y < h; y++) {
			pixel(img, x, y, px);
			cnt += near(px, r, g, b, 2);
		}
		if (cnt > 0 && !in) {
			if (n == max)
				return -1;
			hts[n++] = cnt;
		} else if (cnt > 0 && cnt > hts[n - 1]) {
			hts[n - 1] = cnt;
		}
		in = cnt > 0;
	}
	return n;
}

static void test_render_devices_bar_heights(void **state)
{
	/* loads 4, 1, 1, 2 and 2, 2, 2, 2: bars in proportion, one run each */
	static const double before[4] = { 4, 1, 1, 2 }, after[4] = { 2, 2, 2, 2 };
	static const char *const names[2] = { "static", "balanced" };
	const double *vals[2] = { before, after };
	struct bars_job j = { render_devices_cfg_defaults(), { 4, 2, names, vals } };
	struct util_err err = UTIL_ERR_INIT;
	int h1[8], h2[8];

	(void)state;
	j.cfg.title = "device load";
	assert_int_equal(render_write(path_in("bars.png"), 600, 400, 1, 1, draw_bars, &j, &err), 0);
	cairo_surface_t *img = cairo_image_surface_create_from_png(path_in("bars.png"));
	/* below the legend band (one row, ending near 3.9 font sizes = 47 px):
	 * Okabe-Ito blue (#0072b2) and orange (#e69f00) */
	assert_int_equal(bar_heights(img, 50, 0x00, 0x72, 0xb2, h1, 8), 4);
	assert_int_equal(bar_heights(img, 50, 0xe6, 0x9f, 0x00, h2, 8), 4);
	assert_true(h1[0] > 100);
	assert_true(abs(h1[0] - 4 * h1[1]) <= 4);
	assert_true(abs(h1[1] - h1[2]) <= 1);
	assert_true(abs(h1[3] - 2 * h1[1]) <= 2);
	for (int i = 0; i < 4; i++)
		assert_true(abs(h2[i] - h1[3]) <= 1);
	cairo_surface_destroy(img);
	/* nothing to draw */
	j.b.groups = 0;
	assert_int_not_equal(render_write(path_in("none.png"), 600, 400, 1, 1, draw_bars, &j, &err),
			     0);
}

struct lines_job {
	struct render_imbalance_cfg cfg;
	struct render_series s[2];
	int n;
};

static int draw_lines(cairo_t *cr, double w, double h, int page, void *ctx)
{
	struct lines_job *j = ctx;

	(void)page;
	return render_imbalance(cr, w, h, &j->cfg, j->s, j->n);
}

/* Pixels of the first series' colour in j drawn to NAME. */
static long line_pixels(struct lines_job *j, const char *name)
{
	struct util_err err = UTIL_ERR_INIT;
	cairo_surface_t *img;
	long n;

	assert_int_equal(render_write(path_in(name), 800, 400, 1, 1, draw_lines, j, &err), 0);
	img = cairo_image_surface_create_from_png(path_in(name));
	n = count_colour(img, 0x00, 0x72, 0xb2, 6);
	cairo_surface_destroy(img);
	return n;
}

static void test_render_imbalance_long_and_short(void **state)
{
	enum { N = 100000 };
	double *x = malloc(N * sizeof(double)), *y = malloc(N * sizeof(double));
	double *y2 = malloc(N * sizeof(double)), ev[3] = { 20000, 50000, 80000 };
	struct lines_job j = { render_imbalance_cfg_defaults(), { { 0 } }, 2 };
	struct util_err err = UTIL_ERR_INIT;
	int px[3];

	(void)state;
	for (int i = 0; i < N; i++) {
		x[i] = i;
		y[i] = i % 2 ? 3.0 : 1.0; /* band from 1 to 3 in every pixel column */
		y2[i] = 1.1;
	}
	j.s[0] = (struct render_series){ "baseline", N, x, y, 0, NULL };
	j.s[1] = (struct render_series){ "replay", N, x, y2, 3, ev };
	assert_int_equal(render_write(path_in("long.png"), 800, 400, 1, 1, draw_lines, &j, &err),
			 0);
	cairo_surface_t *img = cairo_image_surface_create_from_png(path_in("long.png"));
	/* the min-max band (blue at 28% over white) spans the plot; the mean
	 * line at 2.0 and the replay's orange line run across it */
	long band = count_colour(img, 189, 216, 234, 8);
	assert_true(band > 800L * 100);
	long orange = count_colour(img, 0xe6, 0x9f, 0x00, 6);
	assert_true(orange > 500);
	pixel(img, 400, 399, px);
	assert_true(near(px, 255, 255, 255, 0));
	cairo_surface_destroy(img);

	/* two steps: points and a line, same call */
	j.s[0].n = j.s[1].n = 2;
	j.s[1].n_events = 0;
	assert_int_equal(render_write(path_in("two.png"), 800, 400, 1, 1, draw_lines, &j, &err), 0);
	img = cairo_image_surface_create_from_png(path_in("two.png"));
	assert_true(count_colour(img, 0x00, 0x72, 0xb2, 6) > 50);
	cairo_surface_destroy(img);
	/* a step not scored (NAN) is a gap: the line stops and starts
	 * again, and the two ends alone keep their dots; with nothing
	 * scored, only the legend's sample is left */
	{
		double x3[3] = { 0, 1, 2 }, full[3] = { 2, 2, 2 }, gap[3] = { 2, NAN, 2 };
		double none[3] = { NAN, NAN, NAN };
		j.n = 1;
		j.s[0] = (struct render_series){ "baseline", 3, x3, full, 0, NULL };
		long px_full = line_pixels(&j, "full.png");
		j.s[0].y = gap;
		long px_gap = line_pixels(&j, "gap.png");
		assert_true(px_gap > 50 && px_gap < px_full / 2);
		j.s[0].y = none;
		assert_true(line_pixels(&j, "none.png") < px_gap);
	}
	j.n = 0;
	assert_int_not_equal(render_write(path_in("no.png"), 800, 400, 1, 1, draw_lines, &j, &err),
			     0);
	free(x);
	free(y);
	free(y2);
}

struct transfer_job {
	struct render_transfer_cfg cfg;
	struct render_transfer t;
};

static int draw_transfer(cairo_t *cr, double w, double h, int page, void *ctx)
{
	struct transfer_job *j = ctx;

	(void)page;
	return render_transfer(cr, w, h, &j->cfg, &j->t);
}

/* Marked steps (the prefill steps of a replay of both phases): a grey
 * tick each along the plot's bottom, where the lines do not go, and an
 * entry in the legend; nothing else changes. */
static void test_render_imbalance_marks(void **state)
{
	enum { N = 100 };
	double x[N], y[N], y2[N], marks[2] = { 20, 80 };
	struct lines_job j = { render_imbalance_cfg_defaults(), { { 0 } }, 2 };
	struct util_err err = UTIL_ERR_INIT;
	cairo_surface_t *a, *b;
	long lower[2] = { 0, 0 }, upper = 0;
	int pa[3], pb[3];

	(void)state;
	for (int i = 0; i < N; i++) {
		x[i] = i;
		y[i] = 3.0;
		y2[i] = 2.5;
	}
	j.s[0] = (struct render_series){ "baseline", N, x, y, 0, NULL };
	j.s[1] = (struct render_series){ "replay", N, x, y2, 0, NULL };
	assert_int_equal(render_write(path_in("nomarks.png"), 800, 400, 1, 1, draw_lines, &j, &err),
			 0);
	j.cfg.marks = marks;
	j.cfg.n_marks = 2;
	j.cfg.marks_label = "prefill step";
	assert_int_equal(render_write(path_in("marks.png"), 800, 400, 1, 1, draw_lines, &j, &err),
			 0);
	a = cairo_image_surface_create_from_png(path_in("nomarks.png"));
	b = cairo_image_surface_create_from_png(path_in("marks.png"));
	/* the pixels that differ: in the lower half only the two ticks (one
	 * left of the middle, one right, grey), in the upper half the legend */
	for (int yy = 0; yy < 400; yy++)
		for (int xx = 0; xx < 800; xx++) {
			pixel(a, xx, yy, pa);
			pixel(b, xx, yy, pb);
			if (near(pa, pb[0], pb[1], pb[2], 0))
				continue;
			if (yy < 200) {
				upper++;
				continue;
			}
			/* grey, its edges lighter (antialiased) */
			assert_true(abs(pb[0] - pb[1]) <= 2 && abs(pb[1] - pb[2]) <= 2);
			lower[xx >= 400] += pb[0] < 160;
		}
	assert_true(lower[0] >= 8 && lower[1] >= 8);
	assert_true(upper > 50); /* "prefill step" and its tick */
	cairo_surface_destroy(a);
	cairo_surface_destroy(b);
}

static void test_render_transfer_stacked_and_summed(void **state)
{
	/* 3 events x 4 layers of bytes (GB scale) */
	static const double bytes[3 * 4] = { 1e9, 2e9, 0, 1e9, 0, 0, 0, 3e9, 4e9, 1e9, 1e9, 1e9 };
	static const double step[3] = { 600, 1200, 1800 };
	struct transfer_job j = { render_transfer_cfg_defaults(), { 3, 4, step, bytes } };
	struct util_err err = UTIL_ERR_INIT;
	int h[8];

	(void)state;
	assert_int_equal(render_write(path_in("tr.png"), 600, 400, 1, 1, draw_transfer, &j, &err),
			 0);
	cairo_surface_t *img = cairo_image_surface_create_from_png(path_in("tr.png"));
	/* layer 0 is viridis' dark end, layer 3 its bright end (bands and the
	 * layer colour bar) */
	assert_true(count_colour(img, 0x44, 0x01, 0x54, 1) > 200);
	assert_true(count_colour(img, 0xfd, 0xe7, 0x25, 1) > 200);
	cairo_surface_destroy(img);

	j.cfg.stacked = 0;
	assert_int_equal(render_write(path_in("tr2.png"), 600, 400, 1, 1, draw_transfer, &j, &err),
			 0);
	img = cairo_image_surface_create_from_png(path_in("tr2.png"));
	assert_int_equal(count_colour(img, 0xfd, 0xe7, 0x25, 1), 0);
	/* summed bars 4, 3 and 7 GB in proportion */
	assert_int_equal(bar_heights(img, 50, 0x00, 0x72, 0xb2, h, 8), 3);
	assert_true(abs(3 * h[0] - 4 * h[1]) <= 8);
	assert_true(abs(4 * h[2] - 7 * h[0]) <= 8);
	cairo_surface_destroy(img);
	j.t.events = 0;
	assert_int_not_equal(render_write(path_in("tr3.png"), 600, 400, 1, 1, draw_transfer, &j,
					  &err),
			     0);
}

/* ---- loaders ------------------------------------------------------------------ */

static void make_db(const char *path, struct store **s, struct store_run *run)
{
	struct util_err err = UTIL_ERR_INIT;
	/* 2 layers x 4 experts; steps 0, 1 and 5 */
	static uint32_t c[3][8] = {
		{ 4, 0, 0, 0, 1, 1, 1, 1 },
		{ 8, 0, 0, 0, 2, 2, 2, 2 },
		{ 0, 0, 6, 2, 3, 1, 0, 0 },
	};
	struct store_step st[3] = {
		{ .step = 0, .phase = 1, .counts = c[0] },
		{ .step = 1, .phase = 2, .counts = c[1] },
		{ .step = 5, .phase = 2, .counts = c[2] },
	};

	assert_int_equal(store_open(path, STORE_CREATE, s, &err), 0);
	memset(run, 0, sizeof(*run));
	snprintf(run->name, sizeof(run->name), "t");
	run->layers = 2;
	run->experts = 4;
	assert_int_equal(store_run_add(*s, run), 0);
	assert_int_equal(store_steps_append(*s, run, st, 3), 0);
}

/* A timeline says why its layer, which phase it keeps, and what its grey
 * columns are; no title nests parentheses.  Steps 0-9 without 4 and 5,
 * prefill at 0 and 6; layer 1 holds the hottest expert. */
static void test_render_timeline_text(void **state)
{
	struct store *s;
	struct store_run run;
	struct util_err err = UTIL_ERR_INIT;
	static uint32_t c[10][8];
	struct store_step st[10];
	int n = 0, missing = 0, prefill = 0, first = -1, last = -1;
	char want[384];

	(void)state;
	assert_int_equal(store_open(path_in("tl.db"), STORE_CREATE, &s, &err), 0);
	memset(&run, 0, sizeof(run));
	snprintf(run.name, sizeof(run.name), "tl");
	run.layers = 2;
	run.experts = 4;
	assert_int_equal(store_run_add(s, &run), 0);
	for (int k = 0; k < 10; k++) {
		if (k == 4 || k == 5)
			continue;
		for (int i = 0; i < 8; i++)
			c[k][i] = (uint32_t)(1 + i + (i == 6 ? 50 : 0));
		st[n++] = (struct store_step){ .step = k, .phase = k % 6 == 0 ? 1 : 2,
					       .counts = c[k] };
	}
	assert_int_equal(store_steps_append(s, &run, st, (size_t)n), 0);
	/* what the decode-only range holds, from the steps written */
	for (int i = 0; i < n; i++)
		if (st[i].phase == 2) {
			if (first < 0)
				first = (int)st[i].step;
			last = (int)st[i].step;
		}
	for (int k = first; k <= last; k++) {
		int seen = 0;
		for (int i = 0; i < n; i++)
			if (st[i].step == k) {
				seen = 1;
				prefill += st[i].phase == 1;
			}
		missing += !seen;
	}

	for (int hot = 0; hot < 2; hot++) {
		struct render_job_opts o;
		struct render_job j;
		render_job_opts_init(&o, "render", RENDER_TIMELINE);
		o.phase_mask = 1u << STORE_PHASE_DECODE;
		o.layer = hot ? RENDER_LAYER_HOT : -1;
		memset(&j, 0, sizeof(j));
		assert_int_equal(render_job_prepare(&j, s, &run, &o), -1);
		assert_int_equal(j.layer, hot ? 1 : 0);
		snprintf(want, sizeof(want), "Layer %d heat over time, run 'tl', decode only, %d steps in %d-%d",
			 hot ? 1 : 0, last - first + 1 - missing - prefill, first, last);
		assert_string_equal(j.title, want);
		if (hot)
			snprintf(want, sizeof(want),
				 "layer 1: it holds the hottest expert of steps %d-%d; grey: %d steps "
				 "not recorded, %d prefill step left out",
				 first, last, missing, prefill);
		else
			snprintf(want, sizeof(want),
				 "layer 0, the default (--layer picks another); grey: %d steps not "
				 "recorded, %d prefill step left out",
				 missing, prefill);
		assert_string_equal(j.sub, want);
		assert_null(strstr(j.title, "(("));
		assert_null(strstr(j.title, "))"));
		render_job_release(&j);
	}
	/* every step, every phase: nothing grey, nothing to explain but the layer */
	{
		struct render_job_opts o;
		struct render_job j;
		render_job_opts_init(&o, "render", RENDER_TIMELINE);
		o.layer = 1;
		o.from = 6;
		memset(&j, 0, sizeof(j));
		assert_int_equal(render_job_prepare(&j, s, &run, &o), -1);
		assert_string_equal(j.title, "Layer 1 heat over time, run 'tl', steps 6-9");
		assert_string_equal(j.sub, "");
		render_job_release(&j);
	}
	store_free(s);
}

/* Stored replays side by side: each legend names what differs, so no two
 * read the same; a lone replay names its settings. */
static void test_render_replay_names(void **state)
{
	struct store_replay rp[4];
	int64_t ids[4] = { 1, 2, 3, 4 };
	char names[4][RENDER_REPLAY_NAME];

	(void)state;
	memset(rp, 0, sizeof(rp));
	for (int k = 0; k < 4; k++) {
		snprintf(rp[k].algo, sizeof(rp[k].algo), "eplb");
		rp[k].ranks = 4;
		rp[k].slots = 3;
		rp[k].interval = 8;
		rp[k].window = 8;
		rp[k].delay = 4;
		rp[k].episodes = 8;
		rp[k].max_moves = -1;
		snprintf(rp[k].link_intra, sizeof(rp[k].link_intra), "nvlink4");
		snprintf(rp[k].link_inter, sizeof(rp[k].link_inter), "ib-ndr-400g");
	}
	rp[1].threshold = 1.5; /* settings that the legends used to leave out */
	rp[2].max_moves = 2;
	rp[3].pay = 1;
	snprintf(rp[3].engine, sizeof(rp[3].engine), "sglang");
	render_replay_names(rp, ids, 4, names);
	for (int a = 0; a < 4; a++)
		for (int b = a + 1; b < 4; b++)
			assert_string_not_equal(names[a], names[b]);
	assert_string_equal(names[0], "replay 1: eplb, no engine preset, no threshold, moves uncapped, no pay");
	assert_non_null(strstr(names[1], ", threshold 1.5"));
	assert_non_null(strstr(names[2], ", at most 2 moves"));
	assert_non_null(strstr(names[3], "sglang preset") && strstr(names[3], ", pay"));
	/* settings all four share are not repeated in every entry */
	for (int k = 0; k < 4; k++)
		assert_null(strstr(names[k], "every 8"));
	/* one replay: its settings, without the defaults */
	render_replay_names(rp + 1, ids + 1, 1, names);
	assert_string_equal(names[0], "replay 2: eplb, every 8, window 8, delay 4, threshold 1.5, "
				      "8 episodes, nvlink4/ib-ndr-400g");
}

static void test_render_load_timeline(void **state)
{
	struct store *s;
	struct store_run run;
	struct util_err err = UTIL_ERR_INIT;
	double grid[4 * 16], x0, x1;
	int64_t n;
	int bins = 16;

	(void)state;
	make_db(path_in("t.db"), &s, &run);
	/* 6 step values (0..5) < 16 bins: one bin per step, 2-4 empty */
	assert_int_equal(render_load_timeline(s, &run, 0, INT64_MIN, INT64_MAX, 0, &bins, grid, &x0,
					      &x1, &n, &err),
			 0);
	assert_int_equal(bins, 6);
	assert_int_equal(n, 3);
	assert_true(x0 == 0 && x1 == 6);
	assert_true(grid[0 * 6 + 0] == 4 && grid[0 * 6 + 1] == 8 && grid[0 * 6 + 5] == 0);
	assert_true(grid[2 * 6 + 5] == 6 && grid[3 * 6 + 5] == 2);
	assert_true(isnan(grid[0 * 6 + 2]) && isnan(grid[3 * 6 + 4]));
	/* 2 bins: steps 0-2 and 3-5; means over each bin's steps */
	bins = 2;
	assert_int_equal(render_load_timeline(s, &run, 0, INT64_MIN, INT64_MAX, 0, &bins, grid, &x0,
					      &x1, &n, &err),
			 0);
	assert_true(grid[0] == 6 && grid[1] == 0 && grid[2 * 2 + 1] == 6);
	/* decode steps only, layer 1 */
	bins = 16;
	assert_int_equal(render_load_timeline(s, &run, 1, INT64_MIN, INT64_MAX, 1u << 2, &bins, grid,
					      &x0, &x1, &n, &err),
			 0);
	assert_int_equal(n, 2);
	assert_true(x0 == 1 && grid[0] == 2);
	/* empty range, layer out of range */
	bins = 16;
	assert_int_equal(render_load_timeline(s, &run, 0, 2, 4, 0, &bins, grid, &x0, &x1, &n, &err),
			 0);
	assert_int_equal(n, 0);
	assert_int_equal(render_load_timeline(s, &run, 2, INT64_MIN, INT64_MAX, 0, &bins, grid, &x0,
					      &x1, &n, &err),
			 UTIL_ERANGE);
	double mean[8];
	assert_int_equal(render_load_heat(s, &run, 0, 1, 0, mean, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_true(mean[0] == 6 && mean[4] == 1.5);
	store_free(s);
}

static void test_render_load_imbalance(void **state)
{
	struct store *s;
	struct store_run run;
	struct util_err err = UTIL_ERR_INIT;
	double *x, *y;
	size_t n;

	(void)state;
	make_db(path_in("i.db"), &s, &run);
	/* 2 ranks x 2 slots, static: rank 0 holds experts 0,1, rank 1 holds 2,3.
	 * layer 0: step 0 loads 4|0 -> 2.0; step 1 8|0 -> 2.0; step 5 0|8 -> 2.0
	 * layer 1: 2|2 -> 1; 4|4 -> 1; 4|0 -> 2 */
	assert_int_equal(render_load_imbalance(s, &run, 1, INT64_MIN, INT64_MAX, 0, 2, 2, NULL, &x, &y,
					       &n, &err),
			 0);
	assert_int_equal(n, 3);
	assert_true(x[2] == 5);
	assert_true(fabs(y[0] - 1) < 1e-12 && fabs(y[1] - 1) < 1e-12 && fabs(y[2] - 2) < 1e-12);
	free(x);
	free(y);
	/* all layers: sum of max / sum of mean; step 5: (8 + 4) / (4 + 2) */
	assert_int_equal(render_load_imbalance(s, &run, -1, INT64_MIN, INT64_MAX, 0, 2, 2, NULL, &x, &y,
					       &n, &err),
			 0);
	assert_true(fabs(y[2] - 2.0) < 1e-12);
	assert_true(fabs(y[0] - (4.0 + 2) / (2 + 2)) < 1e-12);
	free(x);
	free(y);
	/* a deployed placement from step 1 on: experts {0,2} | {1,3}
	 * layer 1 at step 5 (3,1,0,0): 3|1 -> 1.5 */
	int32_t p2l[2 * 4] = { 0, 2, 1, 3, 0, 2, 1, 3 };
	assert_int_equal(store_deployed_set(s, &run, 1, 2, 2, p2l), 0);
	assert_int_equal(render_load_imbalance(s, &run, 1, INT64_MIN, INT64_MAX, 0, 2, 2, NULL, &x, &y,
					       &n, &err),
			 0);
	assert_true(fabs(y[0] - 1) < 1e-12 && fabs(y[2] - 1.5) < 1e-12);
	free(x);
	free(y);
	/* a fixed placement (here the static layout) ignores it */
	int32_t stat[2 * 4] = { 0, 1, 2, 3, 0, 1, 2, 3 };
	assert_int_equal(render_load_imbalance(s, &run, 1, INT64_MIN, INT64_MAX, 0, 2, 2, stat, &x, &y,
					       &n, &err),
			 0);
	assert_true(fabs(y[2] - 2) < 1e-12);
	free(x);
	free(y);
	assert_int_equal(render_load_imbalance(s, &run, 9, INT64_MIN, INT64_MAX, 0, 2, 2, stat, &x, &y,
					       &n, &err),
			 UTIL_ERANGE);
	/* step 7: layer 1 gets no token; step 8: no layer does.  Neither
	 * has an imbalance there: a point with NAN (a gap), never 1.0 */
	static uint32_t c[2][8] = { { 1, 0, 0, 1, 0, 0, 0, 0 }, { 0 } };
	struct store_step st[2] = { { .step = 7, .phase = 2, .counts = c[0] },
				    { .step = 8, .phase = 2, .counts = c[1] } };
	assert_int_equal(store_steps_append(s, &run, st, 2), 0);
	assert_int_equal(render_load_imbalance(s, &run, 1, INT64_MIN, INT64_MAX, 0, 2, 2, stat, &x, &y,
					       &n, &err),
			 0);
	assert_int_equal(n, 5);
	assert_true(x[3] == 7 && x[4] == 8 && isnan(y[3]) && isnan(y[4]) && !isnan(y[2]));
	free(x);
	free(y);
	assert_int_equal(render_load_imbalance(s, &run, -1, INT64_MIN, INT64_MAX, 0, 2, 2, stat, &x,
					       &y, &n, &err),
			 0);
	assert_int_equal(n, 5);
	assert_true(fabs(y[3] - 1.0) < 1e-12 && isnan(y[4])); /* layer 0 alone: 1|1 */
	free(x);
	free(y);
	store_free(s);
}

static void test_render_replay_defaults(void **state)
{
	struct store *s;
	struct store_run run;
	struct util_err err = UTIL_ERR_INIT;
	struct analyze_replay_out out = { 0 };
	struct render_replay_req q = { 0 };
	char desc[200];
	int64_t n;

	(void)state;
	make_db(path_in("r.db"), &s, &run);
	q.algo = analyze_algo_find("eplb");
	assert_non_null(q.algo);
	q.ranks = q.slots = 2;
	q.layer = -1;
	q.from = INT64_MIN;
	q.to = INT64_MAX;
	q.delay = -1;
	/* 3 steps: an eighth is 0, so every step; window 1, delay 0 */
	assert_int_equal(render_replay_run(s, &run, &q, &out, &n, desc, sizeof(desc), &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(out.sum.interval, 1);
	assert_int_equal(out.sum.window, 1);
	assert_int_equal(out.sum.delay, 0);
	assert_int_equal(out.sum.id, 0); /* not stored */
	assert_int_equal(out.n_series, 3);
	assert_true(out.series_step[0] == 0 && out.series_step[2] == 5);
	/* the baseline is the static layout (no deployed placement), overall:
	 * step 0 (4 + 2) / (2 + 2), step 5 (8 + 4) / (4 + 2) as in the loader test */
	assert_true(fabs(out.series_base[0] - 1.5) < 1e-12);
	assert_true(fabs(out.series_base[2] - 2.0) < 1e-12);
	assert_non_null(strstr(desc, "every 1 steps, window 1, delay 0"));
	assert_non_null(strstr(desc, "static placement"));
	analyze_replay_release(&out);

	/* one layer's series; an explicit cadence is kept */
	q.layer = 1;
	q.interval = 2;
	assert_int_equal(render_replay_run(s, &run, &q, &out, &n, desc, sizeof(desc), &err), 0);
	assert_int_equal(out.sum.interval, 2);
	assert_int_equal(out.sum.window, 2);
	assert_int_equal(out.sum.delay, 1);
	assert_true(fabs(out.series_base[2] - 2.0) < 1e-12); /* layer 1 at step 5: 4|0 */
	analyze_replay_release(&out);

	/* nothing in the range: nothing run */
	q.from = 2;
	q.to = 4;
	assert_int_equal(render_replay_run(s, &run, &q, &out, &n, desc, sizeof(desc), &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(out.n_series, 0);
	analyze_replay_release(&out);
	store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_colour_maps),
		cmocka_unit_test(test_render_ticks_never_overlap),
		cmocka_unit_test(test_render_heatmap_cells),
		cmocka_unit_test(test_render_heatmap_log_scale),
		cmocka_unit_test(test_render_heatmap_aggregates_columns),
		cmocka_unit_test(test_render_identical_bytes),
		cmocka_unit_test(test_render_pdf_pages),
		cmocka_unit_test(test_render_png_roundtrip),
		cmocka_unit_test(test_render_png_compresses_charts),
		cmocka_unit_test(test_render_write_leaves_nothing_on_error),
		cmocka_unit_test(test_render_devices_bar_heights),
		cmocka_unit_test(test_render_imbalance_long_and_short),
		cmocka_unit_test(test_render_imbalance_marks),
		cmocka_unit_test(test_render_transfer_stacked_and_summed),
		cmocka_unit_test(test_render_load_timeline),
		cmocka_unit_test(test_render_replay_names),
		cmocka_unit_test(test_render_timeline_text),
		cmocka_unit_test(test_render_load_imbalance),
		cmocka_unit_test(test_render_replay_defaults),
	};
	int rc;

	/* some tests draw on their own surfaces, not through render_write() */
	if (render_cairo_load(NULL)) {
		fprintf(stderr, "test_render: cannot load cairo\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, setup_dir, teardown_dir);
	render_release_static();
	return rc;
}
