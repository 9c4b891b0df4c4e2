/*
 * cmd_top.c: `moetrace top DB` — a live view of how unbalanced each MoE
 * layer is now and would be after rebalancing, in the manner of htop.
 *
 * The main loop keeps data and keys apart: every --delay-ms a tick reads
 * what is new (tui_view_poll, bounded in time, never waiting on a lock),
 * refits stale layers for a few milliseconds (tui_view_work) and draws one
 * frame; between ticks getch() waits for keys with a timeout, and a key
 * only changes the user's choices (struct tui_ui) or the view's settings.
 * Signals set a flag the loop sees at once (getch returns on EINTR), so
 * the terminal is restored on q, SIGINT, SIGTERM and SIGHUP alike.
 */
#include "tui/tui_int.h"
#include "cmds.h"

#include <curses.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "top"

static const char usage[] =
	"usage: moetrace top [--run NAME] [--algo NAME] [--ranks R --slots S | --redundant N]\n"
	"                    [--window W] [--phase prefill|decode] [--delay-ms MS] [--layer L]\n"
	"                    [--iterations N] [--snapshot] [--ascii] [--mono] DB\n";

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void restore_terminal(void)
{
	tui_screen_end();
}

/* ---- key actions ------------------------------------------------------------ */

/* Table position of the selected layer under the current sort. */
static int sel_move(struct tui_view *v, struct tui_ui *ui, int delta)
{
	int L = tui_view_layers(v), pos = 0;
	struct tui_layer_row *rows = tui_ui_rows(v, ui);

	for (int i = 0; i < L; i++)
		if (rows[i].layer == ui->sel)
			pos = i;
	pos += delta;
	pos = pos < 0 ? 0 : pos >= L ? L - 1 : pos;
	ui->sel = rows[pos].layer;
	free(rows);
	return TUI_ACT_REDRAW;
}

static struct tui_screen *screen; /* for paging: rows the table shows */

static unsigned act_quit(struct tui_view *v, struct tui_ui *ui, int key)
{
	(void)v, (void)ui, (void)key;
	return TUI_ACT_QUIT;
}

static unsigned act_help(struct tui_view *v, struct tui_ui *ui, int key)
{
	(void)v, (void)key;
	ui->help = !ui->help;
	return TUI_ACT_REDRAW;
}

static unsigned act_up(struct tui_view *v, struct tui_ui *ui, int key)
{
	(void)key;
	return sel_move(v, ui, -1);
}

static unsigned act_down(struct tui_view *v, struct tui_ui *ui, int key)
{
	(void)key;
	return sel_move(v, ui, 1);
}

static unsigned act_page(struct tui_view *v, struct tui_ui *ui, int key)
{
	int page = screen ? tui_screen_table_rows(screen) : 10;
	int L = tui_view_layers(v);

	switch (key) {
	case KEY_PPAGE: return sel_move(v, ui, -page);
	case KEY_NPAGE: return sel_move(v, ui, page);
	case KEY_HOME: case 'g': return sel_move(v, ui, -L);
	default: return sel_move(v, ui, L);
	}
}

static unsigned act_sort(struct tui_view *v, struct tui_ui *ui, int key)
{
	(void)v, (void)key;
	ui->sort = (ui->sort + 1) % TUI_SORT_COUNT;
	ui->reverse = 0;
	return TUI_ACT_REDRAW;
}

static unsigned act_reverse(struct tui_view *v, struct tui_ui *ui, int key)
{
	(void)v, (void)key;
	ui->reverse = !ui->reverse;
	return TUI_ACT_REDRAW;
}

static unsigned act_find(struct tui_view *v, struct tui_ui *ui, int key)
{
	(void)v, (void)key;
	ui->prompt = 1;
	ui->input[0] = 0;
	return TUI_ACT_REDRAW;
}

/* A key while the `/` prompt is open: digits, Backspace, Enter, Esc. */
static unsigned prompt_key(struct tui_view *v, struct tui_ui *ui, int key)
{
	size_t len = strlen(ui->input);
	int L = tui_view_layers(v);

	if (key >= '0' && key <= '9') {
		if (len + 1 < sizeof(ui->input) && len < 6) {
			ui->input[len] = (char)key;
			ui->input[len + 1] = 0;
		}
	} else if (key == KEY_BACKSPACE || key == 127 || key == 8) {
		if (len)
			ui->input[len - 1] = 0;
	} else if (key == '\n' || key == '\r' || key == KEY_ENTER) {
		ui->prompt = 0;
		if (len) {
			int l = (int)strtol(ui->input, NULL, 10); /* at most 6 digits */
			if (l < L) {
				ui->sel = l;
			} else {
				snprintf(ui->msg, sizeof(ui->msg), "no layer %d: the run has %d layers",
					 l, L);
				ui->msg_until = util_now() + 3.0;
			}
		}
	} else if (key == 27 || key == 7) { /* Esc, Ctrl-G */
		ui->prompt = 0;
	}
	return TUI_ACT_REDRAW;
}

/* Algorithms the live view cycles through: all but exponential ones,
 * which would stall the screen on real shapes. */
static unsigned act_algo(struct tui_view *v, struct tui_ui *ui, int key)
{
	const struct analyze_algo *cur = tui_view_algo(v), *a;
	size_t i = 0, n = 0;

	(void)key;
	while (analyze_algo_at(n))
		n++;
	for (i = 0; i < n && analyze_algo_at(i) != cur; i++)
		;
	for (size_t k = 1; k <= n; k++) {
		a = analyze_algo_at((i + k) % n);
		/* "static" is no rebalancing: "after" would only repeat the
		 * static layout */
		if (!(a->flags & ANALYZE_ALGO_SMALL_ONLY) && strcmp(a->name, "static")) {
			tui_view_set_algo(v, a);
			snprintf(ui->msg, sizeof(ui->msg), "algorithm %s: %s", a->name, a->desc);
			ui->msg_until = util_now() + 2.0;
			break;
		}
	}
	return TUI_ACT_REDRAW | TUI_ACT_POLL;
}

static unsigned act_window(struct tui_view *v, struct tui_ui *ui, int key)
{
	int w = tui_view_window(v);

	if (key == '-' || key == '_' || key == KEY_F(7))
		w = w / 2 < TUI_WINDOW_MIN ? TUI_WINDOW_MIN : w / 2;
	else
		w = w > (1 << 29) ? w : w * 2;
	tui_view_set_window(v, w);
	ui->moved = 1;
	if (tui_view_window(v) < w) {
		snprintf(ui->msg, sizeof(ui->msg),
			 "window capped at %d steps: the window's steps are kept in at most %u MiB",
			 tui_view_window(v), TUI_WINDOW_BYTES >> 20);
		ui->msg_until = util_now() + 3.0;
	}
	return TUI_ACT_REDRAW | TUI_ACT_POLL;
}

static unsigned act_pause(struct tui_view *v, struct tui_ui *ui, int key)
{
	(void)v, (void)key;
	ui->paused = !ui->paused;
	return TUI_ACT_REDRAW | TUI_ACT_POLL;
}

/* Moving the window reads it even while paused: pausing stops following
 * new steps, not looking back. */
static unsigned act_scrub(struct tui_view *v, struct tui_ui *ui, int key)
{
	int64_t step = tui_view_window(v) / 4 > 0 ? tui_view_window(v) / 4 : 1;

	tui_view_scrub(v, key == '<' || key == ',' ? -step : step);
	ui->moved = 1;
	return TUI_ACT_REDRAW | TUI_ACT_POLL;
}

static unsigned act_follow(struct tui_view *v, struct tui_ui *ui, int key)
{
	(void)key;
	tui_view_follow(v);
	ui->moved = 1;
	return TUI_ACT_REDRAW | TUI_ACT_POLL;
}

/* clang-format off */
static const struct tui_key keys[] = {
	{ { 'q', 'Q', KEY_F(10), 0 },      "q quit",      "quit (also Ctrl-C)",                         act_quit },
	{ { '?', 'h', KEY_F(1), 0 },       "? help",      "show or hide this help",                     act_help },
	{ { KEY_UP, 'k', 0 },              "jk select",   "select the layer above (or click a row)",    act_up },
	{ { KEY_DOWN, 'j', 0 },            NULL,          "select the layer below",                     act_down },
	{ { KEY_PPAGE, KEY_NPAGE, KEY_HOME, KEY_END, 'g', 'G' }, NULL,
	                                                  "page up / down, first / last layer",         act_page },
	{ { '/', KEY_F(3), 0 },            "/ find",      "jump to a layer by its number",              act_find },
	{ { 's', KEY_F(6), 0 },            "s sort",      "sort: layer, now, after, gain, moves",       act_sort },
	{ { 'r', 'I', KEY_F(4), 0 },       "r reverse",   "reverse the sort (or click a column name)",  act_reverse },
	{ { 'a', KEY_F(2), 0 },            "a algo",      "next placement algorithm for \"after\"",     act_algo },
	{ { '-', '_', KEY_F(7), '+', '=', KEY_F(8) }, "+- window",
	                                                  "halve / double the window (steps)",          act_window },
	{ { ' ', 'p', KEY_F(9), 0 },       "space pause", "pause / resume reading new steps",           act_pause },
	{ { '<', ',', '>', '.', 0 },       "<> scrub",    "move the window back / forward in time",     act_scrub },
	{ { 'f', 'F', KEY_F(5), 0 },       "f follow",    "follow the newest step again",               act_follow },
};
/* clang-format on */

static unsigned dispatch(struct tui_view *v, struct tui_ui *ui, int key)
{
	if (ui->prompt)
		return prompt_key(v, ui, key);
	if (key == KEY_MOUSE) {
		MEVENT ev;
		if (getmouse(&ev) != OK)
			return 0;
		if (ui->help) {
			ui->help = 0;
			return TUI_ACT_REDRAW;
		}
		if (ev.bstate & BUTTON4_PRESSED) /* the wheel */
			return sel_move(v, ui, -1);
		if (ev.bstate & BUTTON5_PRESSED)
			return sel_move(v, ui, 1);
		return screen ? tui_screen_click(screen, v, ui, ev.y, ev.x) : 0;
	}
	if (ui->help && key != '?' && key != 'h' && key != 'q' && key != 'Q') {
		ui->help = 0; /* any key closes the help */
		return TUI_ACT_REDRAW;
	}
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(keys); i++)
		for (int k = 0; k < 6 && keys[i].keys[k]; k++)
			if (keys[i].keys[k] == key)
				return keys[i].fn(v, ui, key);
	return 0;
}

/* ---- the loop --------------------------------------------------------------------- */

struct top_opts {
	int delay_ms;
	long iterations;
	int ascii, mono;
};

/* A corrupt trace (a malformed counts blob, a corrupt deployed placement)
 * ends the view: it will not heal, and the screen would show numbers that
 * do not hold.  Other read failures may pass and go to the status line. */
static int poll_fatal(int rc)
{
	return rc == UTIL_EPARSE;
}

static int run_screen(struct tui_view *v, struct tui_ui *ui, const struct top_opts *o)
{
	struct sigaction sa;
	double delay = o->delay_ms / 1000.0, next = util_now();
	long frames = 0;
	int dirty = 1, quit = 0, stale = 0, loading = 0, fatal = 0, rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask); /* no SA_RESTART: getch() returns at once */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	util_die_hook = restore_terminal;
	screen = tui_screen_new(o->ascii, o->mono);
	if (!screen) {
		util_die_hook = NULL;
		util_cli_error(CMD, "cannot use the terminal (TERM='%s')",
			       getenv("TERM") ? getenv("TERM") : "");
		return 1;
	}
	while (!quit && !got_signal) {
		double now = util_now();
		if (now >= next) {
			int read = !ui->paused || ui->moved;
			if (read && (rc = tui_view_poll(v, 0.05)) < 0) {
				if (poll_fatal(rc)) {
					fatal = rc;
					break;
				}
				snprintf(ui->msg, sizeof(ui->msg), "%s", tui_view_errmsg(v));
				ui->msg_until = now + 5;
			}
			stale = tui_view_work(v, ui->sel, 0.02);
			loading = read && tui_view_loading(v);
			if (!loading)
				ui->moved = 0;
			tui_screen_draw(screen, v, ui, keys, (int)UTIL_ARRAY_SIZE(keys));
			dirty = 0;
			frames++;
			if (o->iterations > 0 && frames >= o->iterations)
				break;
			next += delay;
			if (next < now)
				next = now + delay;
		} else if (loading) {
			/* reading a (re)moved window: small slices between looks
			 * at the keyboard, and one frame when it is done */
			if ((rc = tui_view_poll(v, 0.015)) < 0) {
				if (poll_fatal(rc)) {
					fatal = rc;
					break;
				}
				loading = 0;
			} else {
				loading = tui_view_loading(v);
			}
			dirty |= !loading;
		} else if (stale > 0) {
			/* refitting after a change, likewise */
			stale = tui_view_work(v, ui->sel, 0.015);
			dirty |= stale == 0;
		}
		if (dirty) {
			tui_screen_draw(screen, v, ui, keys, (int)UTIL_ARRAY_SIZE(keys));
			dirty = 0;
		}
		int ms = stale > 0 || loading ? 0 : (int)((next - util_now()) * 1000 + 0.5);
		timeout(ms < 0 ? 0 : ms);
		int ch = getch();
		if (ch == ERR)
			continue;
		if (ch == KEY_RESIZE) {
			tui_screen_resize(screen);
			dirty = 1;
			continue;
		}
		unsigned bits = dispatch(v, ui, ch);
		if (bits & TUI_ACT_QUIT)
			quit = 1;
		if (bits & TUI_ACT_REDRAW)
			dirty = 1;
		if (bits & TUI_ACT_POLL)
			next = util_now();
	}
	tui_screen_free(screen);
	screen = NULL;
	util_die_hook = NULL;
	if (fatal) { /* after the terminal is restored, where it stays readable */
		util_cli_error(CMD, "%s", tui_view_errmsg(v));
		return util_exit_status(fatal);
	}
	return got_signal ? 128 + got_signal : 0;
}

static int snapshot(struct store *s, struct tui_view *v, int layer)
{
	struct util_buf b = UTIL_BUF_INIT;
	int rc;

	/* a script would rather wait a little for a lock than get no data */
	store_busy_timeout(s, 5000);
	if ((rc = tui_view_poll(v, 0)) < 0) {
		util_cli_error(CMD, "%s", tui_view_errmsg(v));
		return util_exit_status(rc);
	}
	tui_view_work(v, layer, 0);
	tui_view_json(v, layer, &b);
	fwrite(b.data, 1, b.len, stdout);
	util_buf_release(&b);
	return 0;
}

static int use_ascii(int forced)
{
	const char *cs = nl_langinfo(CODESET);

	if (forced)
		return 1;
	if (!cs || strcmp(cs, "UTF-8"))
		return 1;
	return tui_term_is_ascii(getenv("TERM"));
}

int cmd_top(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "run", required_argument, NULL, 'r' },
		{ "algo", required_argument, NULL, 'a' },
		{ "ranks", required_argument, NULL, 'R' },
		{ "slots", required_argument, NULL, 'S' },
		{ "redundant", required_argument, NULL, 'N' },
		{ "window", required_argument, NULL, 'w' },
		{ "phase", required_argument, NULL, 'p' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "layer", required_argument, NULL, 'l' },
		{ "iterations", required_argument, NULL, 'i' },
		{ "snapshot", no_argument, NULL, 'j' },
		{ "ascii", no_argument, NULL, 'A' },
		{ "mono", no_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct util_err err = UTIL_ERR_INIT;
	struct top_opts o = { .delay_ms = 500 };
	struct tui_view_cfg cfg = { 0 };
	struct tui_ui ui = { 0 };
	struct store *s = NULL;
	struct tui_view *v = NULL;
	struct store_run run;
	const char *runname = NULL, *algo = ANALYZE_FLAGSHIP;
	int ranks = 0, slots = 0, redundant = 0, layer = 0, snap = 0, c, status = 1;
	int64_t i64;

	while ((c = getopt_long(argc, argv, "r:a:R:S:N:w:p:d:l:i:jAMh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': runname = optarg; break;
		case 'a': algo = optarg; break;
		case 'R':
			if (util_parse_int(optarg, 1, STORE_MAX_SLOTS, &ranks, "--ranks", &err))
				return util_cli_fail(CMD, &err);
			break;
		case 'S':
			if (util_parse_int(optarg, 1, STORE_MAX_SLOTS, &slots, "--slots", &err))
				return util_cli_fail(CMD, &err);
			break;
		case 'N':
			if (analyze_parse_redundant(optarg, &redundant, &err))
				return util_cli_fail(CMD, &err);
			break;
		case 'w':
			if (util_parse_int(optarg, TUI_WINDOW_MIN, 1 << 30, &cfg.window, "--window",
					   &err))
				return util_cli_fail(CMD, &err);
			break;
		case 'p':
			if (analyze_opt_phase(optarg, &cfg.phase_mask, &err))
				return util_cli_fail(CMD, &err);
			break;
		case 'd':
			if (util_parse_int(optarg, 10, 60000, &o.delay_ms, "--delay-ms", &err))
				return util_cli_fail(CMD, &err);
			break;
		case 'l':
			if (util_parse_int(optarg, 0, STORE_MAX_LAYERS - 1, &layer, "--layer", &err))
				return util_cli_fail(CMD, &err);
			break;
		case 'i':
			if (util_parse_i64(optarg, 1, INT64_MAX, &i64, "--iterations", &err))
				return util_cli_fail(CMD, &err);
			o.iterations = i64 > 0x7fffffff ? 0x7fffffff : (long)i64;
			break;
		case 'j': snap = 1; break;
		case 'A': o.ascii = 1; break;
		case 'M': o.mono = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default: return util_opt_unknown(argv, opts);
		}
	}
	if (optind != argc - 1) {
		fputs(usage, stderr);
		return 2;
	}
	if (!(cfg.algo = analyze_algo_find(algo))) {
		struct util_buf b = UTIL_BUF_INIT;
		for (size_t i = 0; analyze_algo_at(i); i++)
			util_buf_addf(&b, "%s%s", i ? ", " : "", analyze_algo_at(i)->name);
		util_cli_error(CMD, "--algo: no algorithm named '%s' (known: %s)", algo, b.data);
		util_buf_release(&b);
		return 2;
	}
	if (!snap && (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO))) {
		util_cli_error(CMD, "standard input and output must be a terminal "
				    "(use --snapshot for JSON)");
		return 2;
	}
	if (getenv("NO_COLOR") && *getenv("NO_COLOR"))
		o.mono = 1;
	setlocale(LC_ALL, "");
	o.ascii = use_ascii(o.ascii);
	if (store_open_run(argv[optind], runname, STORE_READONLY, &s, &run, &err))
		return util_cli_fail(CMD, &err);
	if (analyze_layout_resolve(&run, ranks, slots, redundant, &cfg.ranks, &cfg.slots, &err)) {
		status = util_cli_fail(CMD, &err);
		goto out;
	}
	if (layer >= run.layers) {
		util_cli_error(CMD, "--layer %d: run '%s' has %d layers", layer, run.name,
			       run.layers);
		status = 2;
		goto out;
	}
	if (tui_view_new(s, &run, &cfg, &v, &err)) {
		status = util_cli_fail(CMD, &err);
		goto out;
	}
	ui.sel = layer;
	if (snap)
		tui_view_set_once(v);
	status = snap ? snapshot(s, v, layer) : run_screen(v, &ui, &o);
out:
	tui_view_free(v);
	store_free(s);
	return status;
}
