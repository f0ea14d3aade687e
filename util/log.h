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
 * in every line before it is written.
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
/* Registers a value that must never appear in a log line (copied). Values
 * shorter than 3 bytes are ignored: masking them would only garble text. */
void pt_log_mask(const char *value);
/* Forgets every registered value. */
void pt_log_mask_clear(void);

#define PT_DEBUG(mod, ...) pt_log(PT_LOG_DEBUG, mod, __VA_ARGS__)
#define PT_INFO(mod, ...) pt_log(PT_LOG_INFO, mod, __VA_ARGS__)
#define PT_WARN(mod, ...) pt_log(PT_LOG_WARN, mod, __VA_ARGS__)
#define PT_ERROR(mod, ...) pt_log(PT_LOG_ERROR, mod, __VA_ARGS__)

#endif
