# moetrace build configuration: edit here or override on the command line
# (make PREFIX=/opt/moetrace CC=clang CFLAGS=-O3).

VERSION = 0.1.0

PREFIX  ?= /usr/local
BINDIR   = $(PREFIX)/bin
LIBDIR   = $(PREFIX)/lib
INCDIR   = $(PREFIX)/include
MANDIR   = $(PREFIX)/share/man
# The Python package (collector/python/moetrace) goes where Debian's python3
# looks for locally installed modules; `pip install collector/python` is the
# other way.
PYVER   := $(shell python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo 3)
PYDIR    = $(PREFIX)/lib/python$(PYVER)/dist-packages

CC      ?= cc
AR      ?= ar
PKG_CONFIG ?= pkg-config

# Debian packages: to build and run (make deps, make demo) ...
DEB_PKGS = build-essential pkg-config libsqlite3-dev sqlite3 libcairo2-dev \
           libncurses-dev libjson-c-dev libmicrohttpd-dev libcurl4-openssl-dev \
           fonts-dejavu-core
# ... and to run every test (make deps-test; CI installs both).  Tests that
# need an optional one (torch, matplotlib) skip without it.
DEB_TEST_PKGS = libcmocka-dev tmux python3 prometheus clickhouse-server clickhouse-client curl \
                poppler-utils
# ... of which these are optional: without them the tests that need them skip,
# so a user who cannot install them (not root) still gets a test run.
DEB_TEST_OPT_PKGS = python3-numpy python3-torch
# ... and for the static checks (make lint; CI installs them with make deps-test).
DEB_LINT_PKGS = clang-tidy cppcheck

WARN = -std=c11 -Wall -Wextra -Wpedantic -Wstrict-prototypes -Wmissing-prototypes \
       -Wold-style-definition -Wvla -Wwrite-strings -Wformat-security \
       -Wpointer-arith -fno-common -Wshadow

OPT      = -O2 -g
# UndefinedBehaviorSanitizer reports by a trap, which AddressSanitizer turns
# into a report with the stack (tests/run.sh sets handle_sigill=1): no
# libubsan at run time.  Linked, its 6 MB of globals were scanned by
# LeakSanitizer at every exit, 30 of the 85 ms each of make check's ~1,700
# CLI runs took.  make check UBSAN_RUNTIME=1 links it back for its messages
# ("signed integer overflow: ..." where the trap says only where).
SAN_UB   = $(if $(filter 1,$(UBSAN_RUNTIME)),,-fsanitize-undefined-trap-on-error)
# -g1: line tables only, all a sanitizer's stack needs (file:line, inlined
# frames too); a sixth less CPU to build than -g.  SAN_G=-g for gdb.
SAN_G   ?= -g1
# Two of UBSan's checks are left to AddressSanitizer: null (a null pointer
# dereferenced faults, and AddressSanitizer reports the fault with its stack)
# and pointer-overflow (pointer arithmetic wrapping around the address space;
# an access out of its object is AddressSanitizer's).  Each instruments
# every dereference or pointer sum: together a fifth of the CPU of a replay
# of the flagship in the sanitizer build, and a tenth of FlashLB's.
# make check SAN_UB_SKIP= checks them too.
SAN_UB_SKIP ?= -fno-sanitize=null,pointer-overflow
SAN      = -fsanitize=address,undefined $(SAN_UB_SKIP) $(SAN_UB) -fno-sanitize-recover=all $(SAN_G) -O1 -fno-omit-frame-pointer
