/*
 * fsutil.h - small file-system helpers.
 */
#ifndef PT_FSUTIL_H
#define PT_FSUTIL_H

#include <stddef.h>

/* Creates a fresh private directory under $TMPDIR (or /tmp) named
 * prefix-XXXXXX. Returns a new string (caller frees) or NULL. */
char *pt_mkdtemp(const char *prefix);
/* Removes a directory tree. Returns 0 or -1. Never follows symlinks. */
int pt_rmtree(const char *path);
/* Reads a whole file (up to cap bytes) into a new NUL-terminated buffer. */
int pt_read_file(const char *path, size_t cap, char **data, size_t *len);
int pt_write_file(const char *path, const void *data, size_t len, int mode);
/* Where Portier's bundled files (sops/, portals/, fixtures/) live: $PORTIER_HOME
 * if set, else the source tree the binary was built from. Borrowed string. */
const char *pt_home(void);
/* Joins pt_home() and rel into out (size outsz). Returns 0 or -1 if too long. */
int pt_home_path(const char *rel, char *out, size_t outsz);

#endif
