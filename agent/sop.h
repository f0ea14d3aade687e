/*
 * sop.h - the SOP language: parsing and linting (docs/sop.md is the guide).
 *
 * An SOP is plain text, one step per line, blocks closed by `end`. This
 * module turns a file into a tree of steps and reports every problem it can
 * find, each as FILE:LINE:COL: message, without touching a browser. It never
 * runs anything; the interpreter does.
 */
#ifndef PORTIER_SOP_H
#define PORTIER_SOP_H

#include <stddef.h>

/* ---- Diagnostics --------------------------------------------------------- */

typedef struct sop_diag {
    char *file;
    int line, col;
    int warning; /* 0: an error */
    char *message;
} sop_diag;

typedef struct sop_diags {
    sop_diag *items;
    size_t n;
} sop_diags;

/* Writes each as "FILE:LINE:COL: error|warning: message\n" to out. */
void sop_diags_print(const sop_diags *d, void *out_file);
/* Writes all of them as one JSON array to out: objects with file, line,
 * column, severity ("error"|"warning"), message and suggestion (the
 * did-you-mean or the line to write, else null); [] when there are none. */
void sop_diags_print_json(const sop_diags *d, void *out_file);
/* Appends one (file and the formatted message are copied). */
void sop_diags_add(sop_diags *d, const char *file, int line, int col, int warning, const char *fmt,
                   ...) __attribute__((format(printf, 6, 7)));
size_t sop_diags_errors(const sop_diags *d);
void sop_diags_free(sop_diags *d);

/* ---- The tree ------------------------------------------------------------ */

typedef enum sop_loc_kind {
    SOP_LOC_CSS,   /* "#member-id" or css "..." */
    SOP_LOC_XPATH, /* xpath "//input[@name='x']" */
    SOP_LOC_TEXT,  /* text "Submit" */
    SOP_LOC_LABEL, /* label "Member ID": the form field that label names */
    SOP_LOC_ROLE,  /* button "Submit claim", link "Claims", role tab "Files" */
} sop_loc_kind;

typedef struct sop_locator {
    sop_loc_kind kind;
    char *role;  /* SOP_LOC_ROLE: button, link, checkbox, ... */
    char *value; /* selector, text, label or accessible name (a template) */
    int nth;     /* 0: exactly one must match; n > 0: the nth; -1: the last */
    int line, col;
    int value_col;              /* where its "value" begins on the line */
    struct sop_locator *within; /* ... in LOCATOR: only matches inside one of its matches */
    int field; /* set by the steps that type or pick: a custom element's host stands for
                  the focusable control inside it (not parsed) */
    int file;  /* set by upload: file inputs first, then one inside, then drop zones */
} sop_locator;

/* Where a value comes from: a variable, or a string with {{...}} in it. */
typedef struct sop_value {
    int is_var;
    char *text;
    int line, col;
} sop_value;

typedef enum sop_cond_kind {
    SOP_COND_VISIBLE,   /* visible LOC (a bare LOC means the same) */
    SOP_COND_HIDDEN,    /* hidden LOC */
    SOP_COND_TEXT,      /* LOC contains|is "x", LOC matches /re/: the element's text */
    SOP_COND_PAGE_TEXT, /* page contains "x": anywhere in the frame */
    SOP_COND_URL,       /* url /regex/ or url "substring" */
    SOP_COND_VAR,       /* NAME: set and not empty */
    SOP_COND_VAR_IS,    /* NAME is "x" */
    SOP_COND_NOT,
    SOP_COND_OR,
    SOP_COND_AND,    /* a and b (binds tighter than or) */
    SOP_COND_PATH,   /* path contains "x": the URL's path, not its query or fragment */
    SOP_COND_DIALOG, /* dialog contains "x": the last native dialog's message */
} sop_cond_kind;

/* How a text condition compares: LOC contains / is / matches, page contains. */
typedef enum sop_text_op {
    SOP_TEXT_CONTAINS, /* a substring */
    SOP_TEXT_IS,       /* the whole text, spaces trimmed and collapsed */
    SOP_TEXT_MATCHES,  /* the pattern in regex */
} sop_text_op;

typedef struct sop_cond {
    sop_cond_kind kind;
    sop_text_op op; /* TEXT, PAGE_TEXT */
    int exact;      /* `exactly`: case counts (by default it does not) */
    sop_locator loc;
    char *text;             /* contains text, url substring, or the variable's name */
    char *value;            /* VAR_IS: the value compared with */
    char *regex;            /* url matches /regex/, LOC matches /regex/ */
    struct sop_cond *a, *b; /* NOT: a; OR: a or b; AND: a and b */
    sop_locator *frame;     /* COND in frame LOC: looked at inside that frame */
    int line, col;
} sop_cond;

typedef enum sop_step_kind {
    SOP_GOTO,
    SOP_CLICK,
    SOP_FILL,
    SOP_TYPE,
    SOP_PRESS,
    SOP_SELECT,
    SOP_CHOOSE,
    SOP_CHECK,
    SOP_UNCHECK,
    SOP_UPLOAD,
    SOP_WAIT,
    SOP_EXTRACT,
    SOP_EXPECT,
    SOP_IF,
    SOP_WHENEVER,
    SOP_IN_FRAME,
    SOP_SCREENSHOT,
    SOP_ASK,
    SOP_REVIEW,
    SOP_COMMIT,
    SOP_FINISH,
    SOP_USE,       /* a used file that declares `session`: its steps are the body */
    SOP_REPEAT,    /* repeat until COND max N: the body, until COND holds */
    SOP_ON_DIALOG, /* on dialog accept|dismiss: how native dialogs are answered */
} sop_step_kind;

typedef struct sop_step sop_step;

typedef struct sop_block {
    sop_step *steps;
    size_t n;
} sop_block;

struct sop_step {
    sop_step_kind kind;
    char *file; /* the file it was written in (a `use`d one, perhaps) */
    int line, col;
    char *source; /* the line as written, for messages and trajectories */
    int has_loc;
    sop_locator loc;     /* the element it acts on, or the frame */
    sop_value value;     /* what it types, picks, visits, or the notes; use:
                            the session URL (a template) */
    char *name;          /* extract/ask: the variable; finish: the status */
    char *regex;         /* extract: the pattern */
    int from_page;       /* extract NAME from page /re/: the frame's text, no element */
    char *attribute;     /* extract: an attribute, "value" for a field's value */
    char *file_name;     /* upload: one task file by name; NULL: all of them */
    sop_cond *cond;      /* if / whenever / wait / expect; use: signed in if */
    sop_block body;      /* if / whenever / in frame; use: the used file's steps */
    sop_block otherwise; /* if ... else */
    int timeout_ms;      /* 0: the SOP's default */
    int sensitive;       /* fill/type ... sensitive: masked in screenshots */
    int max_rounds;      /* repeat: how many times the body may run */
    int dismiss;         /* on dialog: 1 dismiss, 0 accept */
};

typedef enum sop_input_type { SOP_IN_TEXT, SOP_IN_DATE } sop_input_type;

typedef struct sop_map_entry {
    char *from, *to;
} sop_map_entry;

typedef struct sop_input {
    char *name;
    int required;
    sop_input_type type;
    char *pattern; /* pcre2, as written between slashes */
    char *default_value;
    sop_map_entry *map; /* value map: home=12 office=11 */
    size_t nmap;
    char **aliases; /* alias icd10 icd: other task data keys for it (normalised) */
    size_t naliases;
    int line, col;
} sop_input;

typedef struct sop {
    char *file;
    char *name; /* sop NAME "title" */
    char *title;
    char *summary;  /* the instructions a task shows */
    int timeout_ms; /* per-step default; 15000 unless `timeout` says */
    sop_input *inputs;
    size_t ninputs;
    char **ignored; /* ignore K...: task data keys the SOP does not use (normalised) */
    size_t nignored;
    sop_block steps; /* `use`d files' steps are spliced in where used */
    char **files;    /* every file read: this one and those it `use`s */
    size_t nfiles;
    /* files required N TYPE...: a task brings at least files_min files, each
     * of one of these types (extensions, lower case; none: any type) */
    int files_min;
    char **file_types;
    size_t nfile_types;
} sop;

/* ---- Parsing and linting ------------------------------------------------- */

/* Parses the SOP at path, following `use NAME` to NAME.sop in the same
 * folder. Every problem goes to diags (errors and warnings). Returns a new
 * tree (sop_free) when there were no errors, else NULL. */
sop *sop_parse_file(const char *path, sop_diags *diags);
/* The same for text in memory; `use` is resolved relative to dir (NULL:
 * `use` is an error). */
sop *sop_parse_text(const char *file_name, const char *text, const char *dir, sop_diags *diags);
void sop_free(sop *s);

/* A task data key as the SOP compares it: trimmed, lower case, spaces,
 * dashes and dots as one underscore ("Member ID" -> member_id). */
void sop_key_normalize(const char *in, size_t len, char *out, size_t outsz);
/* The closest of words to w when it is close enough to be a likely typo,
 * else NULL (borrowed from words). */
const char *sop_suggest(const char *w, const char *const *words, size_t n);
/* The input that task data key `key` (normalised) names, by its name or an
 * alias, or NULL; 1 in *ignored when an `ignore` line lists it. */
const sop_input *sop_input_for_key(const sop *s, const char *key, int *ignored);

/* Names of steps, for suggestions and the docs. */
const char *sop_step_name(sop_step_kind k);
/* Non-zero when a file s uses declares `session` (a kept session can skip
 * its sign-in). */
int sop_keeps_session(const sop *s);

#endif
