/*
 * replay.c - runs a fuzz target without libFuzzer: every file of a corpus
 * folder, and for each a fixed set of mutations (truncations, byte flips,
 * duplications), so every test run (and the sanitizer pass) exercises the
 * parsers on malformed input. `make fuzz` runs the real fuzzer.
 *
 *   replay CORPUS_DIR
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long long seed = 0x9e3779b97f4a7c15ULL;
static unsigned rnd(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (unsigned)seed;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (!d) {
        fprintf(stderr, "%s: cannot open %s\n", argv[0], argv[1]);
        return 2;
    }
    struct dirent *e;
    int files = 0;
    long runs = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        unsigned char buf[65536];
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        files++;
        LLVMFuzzerTestOneInput(buf, n);
        runs++;
        unsigned char *m = malloc(2 * n + 16);
        for (size_t cut = 0; cut < n; cut += n / 16 + 1, runs++)
            LLVMFuzzerTestOneInput(buf, cut);
        for (int k = 0; k < 300 && n; k++, runs++) {
            memcpy(m, buf, n);
            size_t len = n;
            for (int j = 0; j < 1 + (int)(rnd() % 4); j++) {
                size_t at = rnd() % len;
                switch (rnd() % 4) {
                case 0:
                    m[at] = (unsigned char)rnd();
                    break;
                case 1:
                    m[at] = "\n\"/{}# =:\\"[rnd() % 11];
                    break;
                case 2:
                    memmove(m + at, m + at + 1, len - at - 1);
                    len--;
                    break;
                default:
                    if (len + 8 < 2 * n + 16) {
                        memmove(m + at + 8, m + at, len - at);
                        memcpy(m + at, buf + rnd() % (n > 8 ? n - 8 : 1), n >= 8 ? 8 : n);
                        len += n >= 8 ? 8 : 0;
                    }
                }
                if (!len)
                    break;
            }
            LLVMFuzzerTestOneInput(m, len);
        }
        free(m);
    }
    closedir(d);
    printf("%d files, %ld inputs, no crash\n", files, runs);
    return files ? 0 : 1;
}
