/*
 * fsutil.c - small file-system helpers. See fsutil.h.
 */
#define _GNU_SOURCE
#include "util/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PORTIER_SOURCE_DIR
#define PORTIER_SOURCE_DIR "."
#endif

char *pt_mkdtemp(const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    size_t n = strlen(tmp) + strlen(prefix) + 16;
    char *path = malloc(n);
    if (!path)
        return NULL;
    snprintf(path, n, "%s/%s-XXXXXX", tmp, prefix);
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int pt_rmtree(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

int pt_read_file(const char *path, size_t cap, char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t size = 0, alloc = cap < 4096 ? cap : 4096;
    char *buf = malloc(alloc + 1);
    if (!buf)
        goto fail;
    for (;;) {
        if (size == alloc) {
            if (alloc >= cap) {
                /* full: one more byte means the file is over the cap */
                char extra;
                ssize_t r = read(fd, &extra, 1);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r != 0)
                    goto fail;
                break;
            }
            alloc = alloc > cap / 2 ? cap : alloc * 2;
            char *nb = realloc(buf, alloc + 1);
            if (!nb)
                goto fail;
            buf = nb;
        }
        ssize_t r = read(fd, buf + size, alloc - size);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        size += (size_t)r;
    }
    close(fd);
    buf[size] = '\0';
    *data = buf;
    if (len)
        *len = size;
    return 0;
fail:
    free(buf);
    close(fd);
    return -1;
}

int pt_write_file(const char *path, const void *data, size_t len, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            close(fd);
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return close(fd);
}

const char *pt_home(void)
{
    const char *h = getenv("PORTIER_HOME");
    return h && *h ? h : PORTIER_SOURCE_DIR;
}

int pt_home_path(const char *rel, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s/%s", pt_home(), rel);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}
