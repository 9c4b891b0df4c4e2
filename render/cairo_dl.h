/*
 * cairo_dl.h: cairo, loaded with dlopen() the first time something is
 * drawn.  cairo brings 18 libraries with it (fontconfig, freetype, X11,
 * ...): linking it made every moetrace process load them, drawing or not.
 * render/ calls cairo by its own names; below, each name is a macro for a
 * pointer render_cairo_load() fills.  render_write() loads it before it
 * creates a surface, so the charts' code never runs without it.  Private
 * to render/ (render_int.h includes it).  A function render/ starts to call
 * goes into RENDER_CAIRO_FUNCS and gets its macro below.
 */
#ifndef RENDER_CAIRO_DL_H
#define RENDER_CAIRO_DL_H

/* every cairo header render/ uses, before the macros below rename */
#include <cairo.h>
#include <cairo-pdf.h>
#include <cairo-svg.h>

#include "util/util.h"

#define RENDER_CAIRO_SONAME "libcairo.so.2"

/* clang-format off */
#define RENDER_CAIRO_FUNCS(X) \
	X(cairo_arc) \
	X(cairo_clip) \
	X(cairo_close_path) \
	X(cairo_create) \
	X(cairo_debug_reset_static_data) \
	X(cairo_destroy) \
	X(cairo_device_to_user) \
	X(cairo_device_to_user_distance) \
	X(cairo_fill) \
	X(cairo_font_extents) \
	X(cairo_format_stride_for_width) \
	X(cairo_get_source) \
	X(cairo_get_target) \
	X(cairo_image_surface_create) \
	X(cairo_image_surface_create_for_data) \
	X(cairo_image_surface_get_data) \
	X(cairo_image_surface_get_format) \
	X(cairo_image_surface_get_height) \
	X(cairo_image_surface_get_stride) \
	X(cairo_image_surface_get_width) \
	X(cairo_line_to) \
	X(cairo_move_to) \
	X(cairo_new_sub_path) \
	X(cairo_paint) \
	X(cairo_pattern_add_color_stop_rgb) \
	X(cairo_pattern_create_linear) \
	X(cairo_pattern_destroy) \
	X(cairo_pattern_set_filter) \
	X(cairo_pdf_surface_create_for_stream) \
	X(cairo_pdf_surface_set_metadata) \
	X(cairo_rectangle) \
	X(cairo_restore) \
	X(cairo_rotate) \
	X(cairo_save) \
	X(cairo_scale) \
	X(cairo_select_font_face) \
	X(cairo_set_dash) \
	X(cairo_set_font_size) \
	X(cairo_set_line_join) \
	X(cairo_set_line_width) \
	X(cairo_set_source) \
	X(cairo_set_source_rgb) \
	X(cairo_set_source_rgba) \
	X(cairo_set_source_surface) \
	X(cairo_show_page) \
	X(cairo_show_text) \
	X(cairo_status) \
	X(cairo_status_to_string) \
	X(cairo_stroke) \
	X(cairo_surface_destroy) \
	X(cairo_surface_finish) \
	X(cairo_surface_flush) \
	X(cairo_surface_get_type) \
	X(cairo_surface_mark_dirty) \
	X(cairo_surface_set_user_data) \
	X(cairo_surface_status) \
	X(cairo_surface_write_to_png_stream) \
	X(cairo_svg_surface_create_for_stream) \
	X(cairo_text_extents) \
	X(cairo_translate) \
	X(cairo_user_to_device) \
	X(cairo_user_to_device_distance)
/* clang-format on */

struct render_cairo_api {
#define RENDER_CAIRO_FIELD(f) __typeof__(f) *f;
	RENDER_CAIRO_FUNCS(RENDER_CAIRO_FIELD)
#undef RENDER_CAIRO_FIELD
};
extern struct render_cairo_api render_cairo;

/* render_cairo_load() (render.h) fills render_cairo once. */
/* cairo's dlopen() handle once render_cairo_load() succeeded, else NULL
 * (without loading it).  dlsym() on it finds its dependencies' symbols. */
void *render_cairo_handle(void);

#ifndef RENDER_CAIRO_DL_IMPL
/* clang-format off */
#define cairo_arc (render_cairo.cairo_arc)
#define cairo_clip (render_cairo.cairo_clip)
#define cairo_close_path (render_cairo.cairo_close_path)
#define cairo_create (render_cairo.cairo_create)
#define cairo_debug_reset_static_data (render_cairo.cairo_debug_reset_static_data)
#define cairo_destroy (render_cairo.cairo_destroy)
#define cairo_device_to_user (render_cairo.cairo_device_to_user)
#define cairo_device_to_user_distance (render_cairo.cairo_device_to_user_distance)
#define cairo_fill (render_cairo.cairo_fill)
#define cairo_font_extents (render_cairo.cairo_font_extents)
#define cairo_format_stride_for_width (render_cairo.cairo_format_stride_for_width)
#define cairo_get_source (render_cairo.cairo_get_source)
#define cairo_get_target (render_cairo.cairo_get_target)
#define cairo_image_surface_create (render_cairo.cairo_image_surface_create)
#define cairo_image_surface_create_for_data (render_cairo.cairo_image_surface_create_for_data)
#define cairo_image_surface_get_data (render_cairo.cairo_image_surface_get_data)
#define cairo_image_surface_get_format (render_cairo.cairo_image_surface_get_format)
#define cairo_image_surface_get_height (render_cairo.cairo_image_surface_get_height)
#define cairo_image_surface_get_stride (render_cairo.cairo_image_surface_get_stride)
#define cairo_image_surface_get_width (render_cairo.cairo_image_surface_get_width)
#define cairo_line_to (render_cairo.cairo_line_to)
#define cairo_move_to (render_cairo.cairo_move_to)
#define cairo_new_sub_path (render_cairo.cairo_new_sub_path)
#define cairo_paint (render_cairo.cairo_paint)
#define cairo_pattern_add_color_stop_rgb (render_cairo.cairo_pattern_add_color_stop_rgb)
#define cairo_pattern_create_linear (render_cairo.cairo_pattern_create_linear)
#define cairo_pattern_destroy (render_cairo.cairo_pattern_destroy)
#define cairo_pattern_set_filter (render_cairo.cairo_pattern_set_filter)
#define cairo_pdf_surface_create_for_stream (render_cairo.cairo_pdf_surface_create_for_stream)
#define cairo_pdf_surface_set_metadata (render_cairo.cairo_pdf_surface_set_metadata)
#define cairo_rectangle (render_cairo.cairo_rectangle)
#define cairo_restore (render_cairo.cairo_restore)
#define cairo_rotate (render_cairo.cairo_rotate)
#define cairo_save (render_cairo.cairo_save)
#define cairo_scale (render_cairo.cairo_scale)
#define cairo_select_font_face (render_cairo.cairo_select_font_face)
#define cairo_set_dash (render_cairo.cairo_set_dash)
#define cairo_set_font_size (render_cairo.cairo_set_font_size)
#define cairo_set_line_join (render_cairo.cairo_set_line_join)
#define cairo_set_line_width (render_cairo.cairo_set_line_width)
#define cairo_set_source (render_cairo.cairo_set_source)
#define cairo_set_source_rgb (render_cairo.cairo_set_source_rgb)
#define cairo_set_source_rgba (render_cairo.cairo_set_source_rgba)
#define cairo_set_source_surface (render_cairo.cairo_set_source_surface)
#define cairo_show_page (render_cairo.cairo_show_page)
#define cairo_show_text (render_cairo.cairo_show_text)
#define cairo_status (render_cairo.cairo_status)
#define cairo_status_to_string (render_cairo.cairo_status_to_string)
#define cairo_stroke (render_cairo.cairo_stroke)
#define cairo_surface_destroy (render_cairo.cairo_surface_destroy)
#define cairo_surface_finish (render_cairo.cairo_surface_finish)
#define cairo_surface_flush (render_cairo.cairo_surface_flush)
#define cairo_surface_get_type (render_cairo.cairo_surface_get_type)
#define cairo_surface_mark_dirty (render_cairo.cairo_surface_mark_dirty)
#define cairo_surface_set_user_data (render_cairo.cairo_surface_set_user_data)
#define cairo_surface_status (render_cairo.cairo_surface_status)
#define cairo_surface_write_to_png_stream (render_cairo.cairo_surface_write_to_png_stream)
#define cairo_svg_surface_create_for_stream (render_cairo.cairo_svg_surface_create_for_stream)
#define cairo_text_extents (render_cairo.cairo_text_extents)
#define cairo_translate (render_cairo.cairo_translate)
#define cairo_user_to_device (render_cairo.cairo_user_to_device)
#define cairo_user_to_device_distance (render_cairo.cairo_user_to_device_distance)
/* clang-format on */
#endif

#endif
