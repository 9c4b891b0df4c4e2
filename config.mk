# moetrace build configuration: edit here or override on the command line
# (make PREFIX=/opt/moetrace CC=clang CFLAGS=-O3).

VERSION = 0.1.0

PREFIX  ?= /usr/local
BINDIR   = $(PREFIX)/bin
LIBDIR   = $(PREFIX)/lib
INCDIR   = $(PREFIX)/include
MANDIR   = $(PREFIX)/share/man

CC      ?= cc
AR      ?= ar
PKG_CONFIG ?= pkg-config

# Debian packages that provide the libraries below (make deps installs them).
DEB_PKGS = build-essential pkg-config libsqlite3-dev sqlite3 libcairo2-dev \
           libncurses-dev libjson-c-dev libcmocka-dev fonts-dejavu-core tmux \
           python3 python3-numpy

WARN = -std=c11 -Wall -Wextra -Wpedantic -Wstrict-prototypes -Wmissing-prototypes \
       -Wold-style-definition -Wvla -Wwrite-strings -Wformat-security \
       -Wpointer-arith -fno-common -Wshadow

OPT      = -O2 -g
SAN      = -fsanitize=address,undefined -fno-sanitize-recover=all -g -O1 -fno-omit-frame-pointer
