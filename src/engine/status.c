/* The sticky error status of a tape: first error wins. */
#include "record.h"

#include <stdarg.h>
#include <stdio.h>

int tg_fail(tg_tape *t, int code, const char *fmt, ...) {
    if (!t || t->status) return code;
    t->status = code ? code : TG_ERR_STATE;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->message, sizeof t->message, fmt, ap);
    va_end(ap);
    return code;
}

int tg_status(const tg_tape *t) { return t ? t->status : TG_ERR_NULL; }

const char *tg_status_message(const tg_tape *t) {
    return t ? t->message : "tape is NULL";
}

const char *tg_status_name(int code) {
    static const char *const names[] = {
        "TG_OK",         "TG_ERR_NULL",   "TG_ERR_SHAPE", "TG_ERR_DTYPE",
        "TG_ERR_TAPE",   "TG_ERR_NOMEM",  "TG_ERR_IO",    "TG_ERR_FORMAT",
        "TG_ERR_UNKNOWN_OP", "TG_ERR_STATE", "TG_ERR_ARG", "TG_ERR_NUMERIC",
        "TG_ERR_BRANCH", "TG_ERR_SINGULAR"};
    if (code < 0 || code >= (int)(sizeof names / sizeof *names)) return "TG_ERR_UNKNOWN";
    return names[code];
}

char *tg__shape_str(const tg_node *n, char *buf) {
    return tg__is_compact(n) ? strcpy(buf, "[]") : tg__dims_str(n->ndim, n->u.shape, buf);
}

char *tg__dims_str(int ndim, const int32_t *shape, char *buf) {
    int k = sprintf(buf, "[");
    for (int i = 0; i < ndim; i++) k += sprintf(buf + k, i ? ",%d" : "%d", (int)shape[i]);
    sprintf(buf + k, "]");
    return buf;
}
