/*
 * lsan_roots.c - LeakSanitizer's roots without AddressSanitizer's own globals
 *
 * Linked into every sanitizer-built program make check runs (the moetrace
 * binary, the unit tests, the fuzz replays); never into a release build.
 *
 * At exit LeakSanitizer scans the writable segments of every loaded module
 * for pointers into the heap: a block no root reaches is a leak.  Those
 * modules include libasan itself, whose 5.6 MB of .bss (mostly never
 * written) is scanned page by page at every exit: on this project's test
 * machine that was 14 of the 32 ms an empty sanitizer-built program took,
 * and make check runs close to two thousand of them.  libasan's globals hold
 * no pointer to a block the program allocated that the program does not
 * also hold, so scanning them finds nothing a leak report depends on.
 *
 * So LeakSanitizer is told not to scan globals itself (use_globals=0, as
 * this program's default options: LSAN_OPTIONS still overrides it), and,
 * just before its exit check, is given a copy of every writable segment of
 * every module but libasan as its one root region instead: a pointer value
 * in the copy keeps its block as the global it was copied from would.  The
 * copy is made from an atexit() handler registered from the program's
 * .preinit_array, after the sanitizer's own start (libasan_preinit, linked
 * first, registers its check) and before glibc registers the run of the
 * ELF destructors: at exit it runs after every destructor and every other
 * handler, right before the check, once every library a program dlopen()s
 * (cairo) is loaded.  (Registered from a constructor, it ran before the
 * destructors: a global a destructor set or cleared was seen as it was.)  A sanitizer-built `moetrace info` of a small trace went from
 * 63 to 49 ms of CPU (39 ms without the leak check), and make check's tests
 * from 406 to 336 s of CPU.  A global still keeps what it points to alive,
 * a dlopen()ed library's too, and a real leak is still reported:
 * tests/cli/0007-leak-check-roots.sh checks all three.
 *
 * The copy is taken a moment before LeakSanitizer stops the program's
 * threads for its check: a global another thread changes in between is
 * seen as it was (a block only the new value holds would be reported, one
 * only the old value held would not).  The programs join or idle their
 * threads before they exit, and no run has shown it.
 */
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <sanitizer/lsan_interface.h>

const char *__lsan_default_options(void);

struct roots {
	uintptr_t *copy; /* NULL: counting, or registering each segment */
	size_t words, cap;
};

/* Copies word by word, unseen by AddressSanitizer: a global's redzones are
 * poisoned, and this reads them as LeakSanitizer's own scan does. */
__attribute__((no_sanitize_address, noinline)) static size_t copy_words(uintptr_t *to, size_t cap,
									 uintptr_t from,
									 uintptr_t end)
{
	size_t n = 0;

	for (; from < end && n < cap; from += sizeof(uintptr_t))
		to[n++] = *(volatile const uintptr_t *)from;
	return n;
}

static int add_module(struct dl_phdr_info *info, size_t size, void *data)
{
	struct roots *r = data;
	const uintptr_t a = sizeof(uintptr_t);

	(void)size;
	if (strstr(info->dlpi_name, "/libasan.so"))
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		uintptr_t b = info->dlpi_addr + p->p_vaddr, e = b + p->p_memsz;

		if (p->p_type != PT_LOAD || !(p->p_flags & PF_W))
			continue;
		b = (b + a - 1) & ~(a - 1);
		e &= ~(a - 1);
		if (b >= e)
			continue;
		if (r->copy)
			r->words += copy_words(r->copy + r->words, r->cap - r->words, b, e);
		else if (r->cap)
			__lsan_register_root_region((void *)b, e - b);
		else
			r->words += (e - b) / a;
	}
	return 0;
}

/* One root region: a copy of every module's writable words but libasan's.
 * LeakSanitizer reads /proc/self/maps twice for each region it is given;
 * with a region a module, that cost more than the scan it saves. */
static void add_roots(void)
{
	struct roots r = { NULL, 0, 0 };

	dl_iterate_phdr(add_module, &r);
	if (r.words == 0)
		return;
	size_t len = r.words * sizeof(uintptr_t);
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		       -1, 0);
	if (m == MAP_FAILED) { /* each segment as it is: slower, as right */
		r = (struct roots){ NULL, 0, 1 };
		dl_iterate_phdr(add_module, &r);
		return;
	}
	r = (struct roots){ m, 0, r.words };
	dl_iterate_phdr(add_module, &r);
	__lsan_register_root_region(m, r.words * sizeof(uintptr_t));
}

static void lsan_roots_init(void)
{
	atexit(add_roots);
}

/* an executable's .preinit_array runs before glibc's start registers the
 * destructors' run (and only in an executable: each program links this) */
__attribute__((section(".preinit_array"), used)) static void (*const lsan_roots_preinit)(void) =
	lsan_roots_init;

const char *__lsan_default_options(void)
{
	return "use_globals=0";
}
