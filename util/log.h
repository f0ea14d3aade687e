/*
 * log.h - diagnostics on stderr.
 *
 * One line per event: time, level, module, message. Portier's stdout belongs
 * to command results (JSON), so logging never writes there.
 *
 * What must never be logged: protected health information (member IDs,
 * names, dates of birth, notes) and secrets (passwords, TOTP seeds, API
 * keys). Callers log identifiers (task 12, step 7), never values. As a second
 * line of defence, strings registered with pt_log_mask() are replaced by ***
 * in every line before it is written, whichever thread writes it.
 *
 * Masks live in a scope: a run (one task) opens one in its thread with
 * pt_log_scope_open(), every pt_log_mask() of that thread adds to it, and
 * pt_log_scope_close() forgets its values. Lines are masked with every open
 * scope's values, so the CDP thread's lines are masked too. A thread with no
 * open scope adds to the process scope (a one-task command such as `portier
 * run`). Each scope holds at most PT_LOG_MASK_MAX values (the oldest give way),
 * so a long-lived server neither keeps a task's secrets after it ends nor
 * scans lines against an unbounded list.
 */
#ifndef PT_LOG_H
#define PT_LOG_H

enum pt_log_level { PT_LOG_DEBUG = 0, PT_LOG_INFO, PT_LOG_WARN, PT_LOG_ERROR, PT_LOG_OFF };

/* Reads PORTIER_LOG (debug|info|warn|error|off); default info. */
void pt_log_init(void);
void pt_log_set_level(enum pt_log_level level);
int pt_log_enabled(enum pt_log_level level);
void pt_log(enum pt_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define PT_LOG_MASK_MAX 64

/* Registers a value that must never appear in a log line (copied) in this
 * thread's scope. Values shorter than 3 bytes are ignored: masking them would
 * only garble text. */
void pt_log_mask(const char *value);
/* Opens a mask scope for this thread (a task's run). Scopes do not nest: an
 * open scope is closed first. */
void pt_log_scope_open(void);
/* Closes this thread's scope and forgets its values (no-op if none). */
void pt_log_scope_close(void);
/* Forgets every registered value of every scope. */
void pt_log_mask_clear(void);

/* A line from a library's own log (libwebsockets): at debug only, in
 * Portier's format, its trailing line break dropped. */
void pt_log_foreign(const char *module, const char *line);

#define PT_DEBUG(mod, ...) pt_log(PT_LOG_DEBUG, mod, __VA_ARGS__)
#define PT_INFO(mod, ...) pt_log(PT_LOG_INFO, mod, __VA_ARGS__)
#define PT_WARN(mod, ...) pt_log(PT_LOG_WARN, mod, __VA_ARGS__)
#define PT_ERROR(mod, ...) pt_log(PT_LOG_ERROR, mod, __VA_ARGS__)

#endif
