/*
 * A small strict JSON reader for the tests of the command line's --json
 * outputs (RFC 8259: objects, arrays, strings with every escape, numbers,
 * true, false, null; nothing may follow the value but whitespace). Objects
 * keep their keys in order, so a test can check the order too.
 *
 *   jv v;
 *   if (!jv_parse(text, &v)) ...;           // 0: not JSON
 *   const jv *x = jv_get(&v, "grad");       // NULL when absent
 *   jv_free(&v);
 */
#ifndef TG_TEST_JSON_READER_H
#define TG_TEST_JSON_READER_H

#include <stdlib.h>
#include <string.h>

typedef enum { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ } jv_type;

typedef struct jv {
    jv_type type;
    double num;      /* JV_NUM; JV_BOOL: 0 or 1 */
    char *text;      /* JV_STR: the decoded string (UTF-8); JV_NUM: its source text */
    int n;           /* JV_ARR, JV_OBJ: number of items */
    char **keys;     /* JV_OBJ: item i's key */
    struct jv *item; /* JV_ARR, JV_OBJ */
} jv;

typedef struct jv_in {
    const char *s;
    size_t i;
    int depth;
} jv_in;

static void jv_free(jv *v) {
    for (int k = 0; k < v->n; k++) {
        if (v->keys) free(v->keys[k]);
        jv_free(&v->item[k]);
    }
    free(v->keys);
    free(v->item);
    free(v->text);
    memset(v, 0, sizeof *v);
}

static void jv_space(jv_in *in) {
    while (strchr(" \t\n\r", in->s[in->i]) && in->s[in->i]) in->i++;
}

static int jv_hex4(const char *s, unsigned *u) {
    *u = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return 0;
        *u = *u * 16 + (unsigned)d;
    }
    return 1;
}

static size_t jv_utf8(unsigned u, char *out) {
    if (u < 0x80) return out[0] = (char)u, 1;
    if (u < 0x800) return out[0] = (char)(0xC0 | u >> 6), out[1] = (char)(0x80 | (u & 63)), 2;
    if (u < 0x10000)
        return out[0] = (char)(0xE0 | u >> 12), out[1] = (char)(0x80 | (u >> 6 & 63)),
               out[2] = (char)(0x80 | (u & 63)), 3;
    return out[0] = (char)(0xF0 | u >> 18), out[1] = (char)(0x80 | (u >> 12 & 63)),
           out[2] = (char)(0x80 | (u >> 6 & 63)), out[3] = (char)(0x80 | (u & 63)), 4;
}

static char *jv_string(jv_in *in) {
    if (in->s[in->i] != '"') return NULL;
    in->i++;
    size_t cap = strlen(in->s + in->i) + 1, k = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    for (;;) {
        unsigned char c = (unsigned char)in->s[in->i++];
        if (c == '"') break;
        if (!c || c < 0x20) goto bad;
        if (c != '\\') {
            out[k++] = (char)c;
            continue;
        }
        char e = in->s[in->i++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *at = e ? strchr(from, e) : NULL;
        if (at) {
            out[k++] = to[at - from];
        } else if (e == 'u') {
            unsigned u, lo;
            if (!jv_hex4(in->s + in->i, &u)) goto bad;
            in->i += 4;
            if (u >= 0xD800 && u < 0xDC00) { /* a surrogate pair */
                if (in->s[in->i] != '\\' || in->s[in->i + 1] != 'u' ||
                    !jv_hex4(in->s + in->i + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    goto bad;
                in->i += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            } else if (u >= 0xDC00 && u < 0xE000) {
                goto bad;
            }
            k += jv_utf8(u, out + k);
        } else {
            goto bad;
        }
    }
    out[k] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

static int jv_value(jv_in *in, jv *v);

static int jv_push(jv *v, jv *item, char *key) {
    jv *items = realloc(v->item, (size_t)(v->n + 1) * sizeof *items);
    if (!items) return 0;
    v->item = items;
    if (v->type == JV_OBJ) {
        char **keys = realloc(v->keys, (size_t)(v->n + 1) * sizeof *keys);
        if (!keys) return 0;
        v->keys = keys;
        keys[v->n] = key;
    }
    v->item[v->n++] = *item;
    return 1;
}

static int jv_number(jv_in *in, jv *v) {
    const char *s = in->s + in->i;
    size_t k = s[0] == '-';
    if (s[k] == '0')
        k++;
    else if (s[k] >= '1' && s[k] <= '9')
        while (s[k] >= '0' && s[k] <= '9') k++;
    else
        return 0;
    if (s[k] == '.') {
        if (!(s[++k] >= '0' && s[k] <= '9')) return 0;
        while (s[k] >= '0' && s[k] <= '9') k++;
    }
    if (s[k] == 'e' || s[k] == 'E') {
        k += s[k + 1] == '+' || s[k + 1] == '-';
        if (!(s[++k] >= '0' && s[k] <= '9')) return 0;
        while (s[k] >= '0' && s[k] <= '9') k++;
    }
    v->type = JV_NUM;
    if (!(v->text = malloc(k + 1))) return 0;
    memcpy(v->text, s, k);
    v->text[k] = '\0';
    v->num = strtod(v->text, NULL);
    in->i += k;
    return 1;
}

static int jv_value(jv_in *in, jv *v) {
    memset(v, 0, sizeof *v);
    if (++in->depth > 64) return 0;
    jv_space(in);
    const char *s = in->s + in->i;
    int ok = 1;
    if (*s == '{' || *s == '[') {
        int obj = *s == '{';
        v->type = obj ? JV_OBJ : JV_ARR;
        in->i++;
        jv_space(in);
        if (in->s[in->i] == (obj ? '}' : ']')) {
            in->i++;
        } else {
            for (;;) {
                char *key = NULL;
                jv item;
                jv_space(in);
                if (obj) {
                    if (!(key = jv_string(in))) return jv_free(v), 0;
                    jv_space(in);
                    if (in->s[in->i++] != ':') return free(key), jv_free(v), 0;
                }
                if (!jv_value(in, &item)) return free(key), jv_free(v), 0;
                if (!jv_push(v, &item, key)) return free(key), jv_free(&item), jv_free(v), 0;
                jv_space(in);
                char c = in->s[in->i++];
                if (c == (obj ? '}' : ']')) break;
                if (c != ',') return jv_free(v), 0;
            }
        }
    } else if (*s == '"') {
        v->type = JV_STR;
        ok = (v->text = jv_string(in)) != NULL;
    } else if (!strncmp(s, "true", 4) || !strncmp(s, "false", 5)) {
        v->type = JV_BOOL;
        v->num = *s == 't';
        in->i += *s == 't' ? 4 : 5;
    } else if (!strncmp(s, "null", 4)) {
        in->i += 4;
    } else {
        ok = jv_number(in, v);
    }
    in->depth--;
    return ok;
}

/* Parses the whole of s. Returns 1, or 0 (v then holds nothing). */
static int jv_parse(const char *s, jv *v) {
    jv_in in = {s, 0, 0};
    memset(v, 0, sizeof *v);
    if (!jv_value(&in, v)) return 0;
    jv_space(&in);
    if (in.s[in.i]) {
        jv_free(v);
        return 0;
    }
    return 1;
}

/* The member of an object called key, or NULL. */
static const jv *jv_get(const jv *v, const char *key) {
    for (int k = 0; v && v->type == JV_OBJ && k < v->n; k++)
        if (!strcmp(v->keys[k], key)) return &v->item[k];
    return NULL;
}

#endif
