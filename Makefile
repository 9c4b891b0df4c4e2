# moetrace: one non-recursive Makefile.  `make` builds the CLI and libmoetrace,
# `make check` builds a sanitizer copy under build/check and runs every test.
# New sources need no edit here: every .c in a module folder goes into the
# library, except cmd_*.c (subcommands, linked into the CLI only).

include config.mk

-include config.local.mk

PKGS     = sqlite3 json-c
UI_PKGS  = ncursesw
# libmicrohttpd, libcurl and cairo are loaded with dlopen() when an
# endpoint, a ClickHouse client or a chart is asked for (tui/server.c,
# fleet/client.c, render/cairo_dl.c): their headers only, never linked.
# Linked, every process would load them and what they pull in (GnuTLS
# initialises itself at load time; cairo brings 18 libraries): a sanitizer
# build spent most of its start-up there, and make check starts thousands.
DL_PKGS  = libmicrohttpd libcurl cairo
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) $(UI_PKGS) $(DL_PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lpthread -lm
UI_LIBS    := $(shell $(PKG_CONFIG) --libs $(UI_PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)
# the unit tests read back what render/ drew with cairo's own calls
CAIRO_LIBS  := $(shell $(PKG_CONFIG) --libs cairo 2>/dev/null)

ifeq ($(V),1)
Q =
else
Q = @
endif

# Library modules (embeddable) and UI modules (CLI only).
LIB_MODS = util store collector analyze
UI_MODS  = render tui fleet

src_of  = $(filter-out $(1)/cmd_%.c,$(wildcard $(1)/*.c))
cmds_of = $(wildcard $(1)/cmd_*.c)

# tui's model and /metrics endpoint (no ncurses) are also in the library,
# so that a recorder can serve metrics in-process (docs/architecture.md).
LIB_TUI = tui/view.c tui/metrics.c tui/rebalance.c tui/server.c
# fleet's client, push and sink are in the library too, so that a recorder can
# ship to ClickHouse; the client loads libcurl with dlopen() when a sink (or
# push) asks for it, so libmoetrace.so does not depend on it.
LIB_FLEET = fleet/client.c fleet/push.c fleet/schema.c fleet/sink.c
# libmoetrace.c is the library's front: the calls of moetrace.h that join the
# recorder to tui's endpoint (docs/architecture.md).
LIB_SRC = $(foreach m,$(LIB_MODS),$(call src_of,$(m))) $(LIB_TUI) $(LIB_FLEET) libmoetrace.c
UI_SRC  = $(filter-out $(LIB_TUI) $(LIB_FLEET),$(foreach m,$(UI_MODS),$(call src_of,$(m))))
CMD_SRC = moetrace.c $(foreach m,$(LIB_MODS) $(UI_MODS),$(call cmds_of,$(m)))
EXT_SRC = $(wildcard sqlext/*.c)

UNIT_SRC = $(wildcard tests/unit/test_*.c)
FUZZ_SRC = $(wildcard tests/fuzz/fuzz_*.c)

CPPFLAGS_ALL = -I. -D_GNU_SOURCE -DMOETRACE_VERSION='"$(VERSION)"' $(PKG_CFLAGS)

# Two build flavours: build/rel (default) and build/check (sanitizers, -Werror).
REL = build/rel
CHK = build/check

REL_CFLAGS = $(WARN) $(OPT) -fPIC $(CFLAGS)
# UTIL_ALLOC_HOOK: the tests' hook failing the nth library allocation (util.h).
CHK_CFLAGS = $(WARN) -Werror $(SAN) -DUTIL_ALLOC_HOOK -fPIC $(CFLAGS)

obj = $(patsubst %.c,$(1)/%.o,$(2))

EXT_TARGET = $(if $(EXT_SRC),moetrace_sqlite.so)

all: moetrace libmoetrace.a libmoetrace.so $(EXT_TARGET)

# ---- release flavour ------------------------------------------------------
$(REL)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS_ALL) $(REL_CFLAGS) -MMD -MP -c -o $@ $<

libmoetrace.a: $(call obj,$(REL),$(LIB_SRC))
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

libmoetrace.so: $(call obj,$(REL),$(LIB_SRC)) collector/libmoetrace.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,libmoetrace.so.0 -Wl,--version-script=collector/libmoetrace.map \
		-o $@ $(filter %.o,$^) $(PKG_LIBS) $(LDFLAGS)

moetrace: $(call obj,$(REL),$(CMD_SRC) $(UI_SRC)) libmoetrace.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(call obj,$(REL),$(CMD_SRC) $(UI_SRC)) libmoetrace.a $(PKG_LIBS) $(UI_LIBS) $(LDFLAGS)

moetrace_sqlite.so: $(call obj,$(REL),$(EXT_SRC)) libmoetrace.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -o $@ $(call obj,$(REL),$(EXT_SRC)) libmoetrace.a $(PKG_LIBS) $(LDFLAGS)

# ---- check flavour (ASan + UBSan) -----------------------------------------
$(CHK)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (check)")
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CHK_CFLAGS) -MMD -MP -c -o $@ $<

$(CHK)/libmoetrace.a: $(call obj,$(CHK),$(LIB_SRC))
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# Every sanitizer-built program links tests/lsan_roots.c: LeakSanitizer's
# roots without libasan's own 5.6 MB of globals, which it otherwise scans at
# every exit (14 of the 32 ms an empty such program takes; that file says why).
LSAN_ROOTS = $(CHK)/tests/lsan_roots.o

$(CHK)/moetrace: $(call obj,$(CHK),$(CMD_SRC) $(UI_SRC)) $(CHK)/libmoetrace.a $(LSAN_ROOTS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SAN) -o $@ $(call obj,$(CHK),$(CMD_SRC) $(UI_SRC)) $(LSAN_ROOTS) $(CHK)/libmoetrace.a $(PKG_LIBS) $(UI_LIBS) $(LDFLAGS)

# The program and library of tests/cli/0007-leak-check-roots.sh.
LSAN_PROBE = $(CHK)/tests/lsan_probe $(CHK)/tests/lsan_probe_dl.so
$(CHK)/tests/lsan_probe: $(CHK)/tests/lsan_probe.o $(LSAN_ROOTS)
	$(Q)$(CC) $(SAN) -o $@ $^ $(LDFLAGS)
$(CHK)/tests/lsan_probe_dl.so: $(CHK)/tests/lsan_probe_dl.o
	$(Q)$(CC) $(SAN) -shared -o $@ $^ $(LDFLAGS)

UNIT_BIN = $(patsubst tests/unit/%.c,$(CHK)/tests/%,$(UNIT_SRC))

$(CHK)/tests/%: $(CHK)/tests/unit/%.o $(CHK)/libmoetrace.a $(call obj,$(CHK),$(UI_SRC)) $(LSAN_ROOTS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SAN) -o $@ $< $(LSAN_ROOTS) $(call obj,$(CHK),$(UI_SRC)) $(CHK)/libmoetrace.a $(CMOCKA_LIBS) $(PKG_LIBS) $(UI_LIBS) $(CAIRO_LIBS)

# Fuzz targets' seed corpora replayed as regression tests (gcc, no libFuzzer).
FUZZ_REPLAY = $(patsubst tests/fuzz/%.c,$(CHK)/fuzz/%,$(FUZZ_SRC))
$(CHK)/fuzz/%: $(CHK)/tests/fuzz/%.o $(CHK)/tests/fuzz/replay.o $(LSAN_ROOTS) $(CHK)/libmoetrace.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(SAN) -o $@ $^ $(PKG_LIBS)

$(CHK)/tests/fuzz/replay.o: tests/fuzz/replay.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CHK_CFLAGS) -c -o $@ $<

# The SQLite extension and the shared library the tests load into programs
# not built with ASan (the stock sqlite3 shell, Python) are the release
# flavour's, the very files a user installs: make check copies them beside
# the sanitizer-built binary, where the tests look for them.  (They were a
# third build of the library, at -O1, a third of make check's build time;
# CI has built the release flavour by then.)
EXT_CHK = $(if $(EXT_SRC),$(CHK)/moetrace_sqlite.so)
$(CHK)/moetrace_sqlite.so: moetrace_sqlite.so
	@mkdir -p $(dir $@)
	$(Q)cp $< $@

$(CHK)/libmoetrace.so: libmoetrace.so
	@mkdir -p $(dir $@)
	$(Q)cp $< $@

check-build: $(CHK)/moetrace $(UNIT_BIN) $(FUZZ_REPLAY) $(EXT_CHK) $(CHK)/libmoetrace.so $(LSAN_PROBE)
	@true

# ---- tests: one make target each, so that `make check -j2` runs two at once
# Every test is a file found by its name (tests/run.sh says which); each
# target depends on what its test runs.  `make check` builds first and then
# runs the tests, so that make starts them in this order, the longest first
# (while something still builds, make would start whatever is ready).  A
# test target always succeeds: it records the result in $(RES), and
# tests/run.sh --summary counts them at the end.
RES = $(CHK)/results
TEST_CLI  = $(patsubst tests/cli/%.sh,test-cli/%,$(wildcard tests/cli/[0-9]*.sh))
TEST_PY   = $(patsubst tests/py/%.py,test-py/%,$(wildcard tests/py/test_*.py))
TEST_UNIT = $(patsubst tests/unit/%.c,test-unit/%,$(UNIT_SRC))
TEST_FUZZ = $(patsubst tests/fuzz/%.c,test-fuzz/%,$(FUZZ_SRC))
# Longest first (tests/slow.txt, measured), so that two jobs end together;
# a test not listed there comes after them.
TEST_SLOW = $(filter $(TEST_CLI) $(TEST_PY) $(TEST_UNIT) $(TEST_FUZZ),$(shell cat tests/slow.txt 2>/dev/null))
TEST_ALL  = $(TEST_SLOW) $(filter-out $(TEST_SLOW),$(TEST_CLI) $(TEST_UNIT) $(TEST_PY) $(TEST_FUZZ))
CLI_DEPS  = $(CHK)/moetrace $(CHK)/libmoetrace.a $(EXT_CHK) $(CHK)/libmoetrace.so $(LSAN_PROBE)
RUN_ONE   = MOETRACE_BUILD=$(CHK) MOETRACE_RESULTS=$(RES) sh tests/run.sh --one

$(TEST_CLI): test-cli/%: $(CLI_DEPS)
	@$(RUN_ONE) cli $*
$(TEST_PY): test-py/%: $(CLI_DEPS)
	@$(RUN_ONE) py $*
$(TEST_UNIT): test-unit/%: $(CHK)/tests/%
	@$(RUN_ONE) unit $*
$(TEST_FUZZ): test-fuzz/%: $(CHK)/fuzz/%
	@$(RUN_ONE) fuzz $*

# The tests that mostly wait (tests/wait.txt: a live recording a terminal
# follows) run beside make's jobs, not in one of its -j slots: a slot they
# held would leave its core idle for most of their time.
TEST_WAIT = $(filter $(TEST_ALL),$(shell cat tests/wait.txt 2>/dev/null))
check-tests: $(CLI_DEPS)
	@for t in $(TEST_WAIT); do k=$${t%%/*}; MOETRACE_BUILD=$(CHK) MOETRACE_RESULTS=$(RES) \
		sh tests/run.sh --one $${k#test-} $${t#*/} & done; \
	$(MAKE) --no-print-directory check-slots; rc=$$?; wait; exit $$rc
check-slots: $(filter-out $(TEST_WAIT),$(TEST_ALL))
	@true

# `make check` does its own set-up, as `make demo` does: missing Debian packages
# are installed as root, or the apt-get line is printed (scripts/deps.sh).
# Then it builds what each test needs and runs the tests (make -j N: N at a
# time; without -j, as many as the machine has cores), and prints the
# summary: it fails if any test failed.
CHECK_J = $$(case " $(MAKEFLAGS) " in *" -j"*) ;; *) echo -j$$(nproc 2>/dev/null || echo 2) ;; esac)
check:
	@sh scripts/deps.sh $(DEB_PKGS) $(DEB_TEST_PKGS) -- $(DEB_TEST_OPT_PKGS)
	@rm -rf $(RES)
	@$(MAKE) --no-print-directory $(CHECK_J) check-build
	@$(MAKE) --no-print-directory $(CHECK_J) check-tests
	@MOETRACE_RESULTS=$(RES) sh tests/run.sh --summary

# Golden files (tests/golden, compared by tests/cli/*-golden-*.sh): rewrites
# them from this build's output after an intended change; review with
# `git diff tests/golden` before committing.
golden: $(CLI_DEPS)
	@MOETRACE_BUILD=$(CHK) MOETRACE_GOLDEN_UPDATE=1 sh tests/run.sh cli golden
	@git status --short -- tests/golden 2>/dev/null || true

# Tests without the sanitizer rebuild, against the release binaries.
check-fast: all
	@MOETRACE_BUILD=. MOETRACE_FAST=1 sh tests/run.sh

check-valgrind: all
	@MOETRACE_BUILD=. MOETRACE_VALGRIND=1 sh tests/run.sh cli

# ---- fuzzing (clang libFuzzer) ---------------------------------------------
# `make fuzz` builds every tests/fuzz/fuzz_*.c with libFuzzer, ASan and UBSan
# and runs each for FUZZ_SECONDS on a copy of its seed corpus; crashers go to
# build/fuzz/crashes (tests/fuzz/run.sh, docs/robustness.md).
FUZZ_CC      = clang
FUZZ         = build/fuzz
FUZZ_SECONDS = 60
FUZZ_SAN     = -fsanitize=address,undefined -fno-sanitize-recover=all -g -O1 -fno-omit-frame-pointer
FUZZ_BIN     = $(patsubst tests/fuzz/%.c,$(FUZZ)/%,$(FUZZ_SRC))

$(FUZZ)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (fuzz)")
	$(Q)$(FUZZ_CC) $(CPPFLAGS_ALL) $(WARN) $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ)/fuzz_%: $(FUZZ)/obj/tests/fuzz/fuzz_%.o $(call obj,$(FUZZ)/obj,$(LIB_SRC))
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	@sh tests/fuzz/run.sh $(FUZZ) $(FUZZ_SECONDS)

# Static analysis: clang-tidy (.clang-tidy) and cppcheck, scripts/lint.sh.
lint:
	@sh scripts/deps.sh -- $(DEB_LINT_PKGS)
	@sh scripts/lint.sh

# ---- convenience targets --------------------------------------------------
deps:
	@sh scripts/deps.sh $(DEB_PKGS)

deps-test:
	@sh scripts/deps.sh $(DEB_PKGS) $(DEB_TEST_PKGS) $(DEB_LINT_PKGS) -- $(DEB_TEST_OPT_PKGS)

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh

# Benchmarks: tests/bench/bench_*.c are built against the release library.
BENCH_SRC = $(wildcard tests/bench/bench_*.c)
BENCH_BIN = $(patsubst tests/bench/%.c,$(REL)/bench/%,$(BENCH_SRC))
$(REL)/bench/%: $(REL)/tests/bench/%.o libmoetrace.a $(call obj,$(REL),$(UI_SRC))
	@mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $< $(call obj,$(REL),$(UI_SRC)) libmoetrace.a $(PKG_LIBS) $(UI_LIBS)

bench-build: all $(BENCH_BIN)

bench: bench-build
	@MOETRACE_REL=$(REL) sh tests/bench/run.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR)
	install -m 755 moetrace $(DESTDIR)$(BINDIR)/moetrace
	install -m 644 libmoetrace.a $(DESTDIR)$(LIBDIR)/libmoetrace.a
	install -m 755 libmoetrace.so $(DESTDIR)$(LIBDIR)/libmoetrace.so.0
	ln -sf libmoetrace.so.0 $(DESTDIR)$(LIBDIR)/libmoetrace.so
	$(if $(EXT_TARGET),install -m 755 moetrace_sqlite.so $(DESTDIR)$(LIBDIR)/moetrace_sqlite.so)
	install -m 644 collector/moetrace.h $(DESTDIR)$(INCDIR)/moetrace.h
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' collector/moetrace.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/moetrace.pc
	@# the Python package as pip would install it: the wheel of its own
	@# standard-library backend unpacked, dist-info (vLLM's plugin entry point) included
	install -d $(DESTDIR)$(PYDIR) build/wheel
	rm -f build/wheel/moetrace-*.whl
	python3 -c 'import sys; sys.path.insert(0, "collector/python/build_backend"); \
		import moetrace_build as b; b.build_wheel(sys.argv[1])' build/wheel
	python3 -m zipfile -e build/wheel/moetrace-*.whl $(DESTDIR)$(PYDIR)

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/moetrace $(DESTDIR)$(LIBDIR)/libmoetrace.a \
	      $(DESTDIR)$(LIBDIR)/libmoetrace.so $(DESTDIR)$(LIBDIR)/libmoetrace.so.0 \
	      $(DESTDIR)$(LIBDIR)/moetrace_sqlite.so $(DESTDIR)$(INCDIR)/moetrace.h \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/moetrace.pc
	rm -rf $(DESTDIR)$(PYDIR)/moetrace $(DESTDIR)$(PYDIR)/moetrace-*.dist-info

clean:
	rm -rf build moetrace libmoetrace.a libmoetrace.so moetrace_sqlite.so

.PHONY: check-tests golden $(TEST_ALL)
.PHONY: lint fuzz fuzz-build deps-test bench-build all check check-build check-fast check-valgrind deps demo bench install uninstall clean
.SECONDARY:

-include $(shell find build -name '*.d' 2>/dev/null)
