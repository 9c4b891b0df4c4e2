/* tui_int.h: declarations private to tui/ (the screen and its state). */
#ifndef TUI_TUI_INT_H
#define TUI_TUI_INT_H

#include "tui/tui.h"

/* What a frame is drawn from besides the view: the user's choices. */
struct tui_ui {
	int sel;        /* selected layer (an index, not a table position) */
	int sort;       /* enum tui_sort */
	int top;        /* first table position shown */
	int help;       /* the help panel is open */
	int reverse;    /* the sort order reversed */
	int paused;     /* no new data is read */
	int moved;      /* the window was moved while paused: read it once */
	int prompt;     /* `/`: reading a layer number into input */
	char input[16];
	char msg[160];  /* a message for the status line, shown until msg_until */
	double msg_until;
};

/* A key binding: keys (0-terminated), a short label for the status line
 * (NULL: not shown there), help text, and what it does. */
enum tui_act_bits {
	TUI_ACT_REDRAW = 1, /* the frame changed */
	TUI_ACT_POLL = 2,   /* the data to show changed: read and refit now */
	TUI_ACT_QUIT = 4,
};
struct tui_key {
	int keys[6];
	const char *label;
	const char *help;
	unsigned (*fn)(struct tui_view *v, struct tui_ui *ui, int key);
};

/* The screen: ncurses windows for the panels, colours, glyphs.  Only one
 * exists at a time (ncurses has one terminal). */
struct tui_screen;
/* NULL when the terminal cannot be used (unknown TERM). */
struct tui_screen *tui_screen_new(int ascii, int mono);
/* Restores the terminal; safe to call more than once, and from
 * util_die_hook. */
void tui_screen_end(void);
void tui_screen_free(struct tui_screen *sc);
/* Re-reads the terminal size and rebuilds the panel windows. */
void tui_screen_resize(struct tui_screen *sc);
/* Draws one frame and refreshes the terminal once.  keys: the binding
 * table (for the status line and help), nkeys entries. */
void tui_screen_draw(struct tui_screen *sc, struct tui_view *v, struct tui_ui *ui,
		     const struct tui_key *keys, int nkeys);
/* Table rows that fit: for paging keys. */
int tui_screen_table_rows(const struct tui_screen *sc);
/* A mouse press at screen (y, x): a table row selects its layer, a column
 * name sorts by it (again: reversed).  Returns TUI_ACT_* bits. */
unsigned tui_screen_click(struct tui_screen *sc, struct tui_view *v, struct tui_ui *ui, int y,
			  int x);
/* The steps a view holds decoded, for tui_metrics_poll: n of them, oldest
 * first, every step from *lo on (INT64_MAX: none) when the view reads all
 * phases, else n = 0.  tui_view_held_step gives the i-th (its counts
 * [layers * experts] belong to the view). */
int tui_view_held(const struct tui_view *v, int64_t *lo);
const uint32_t *tui_view_held_step(const struct tui_view *v, int i, int64_t *step);

/* The layer table in the user's order: a copy the caller frees. */
struct tui_layer_row *tui_ui_rows(struct tui_view *v, const struct tui_ui *ui);


#endif
