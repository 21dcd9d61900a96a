/* The closest known name to a misspelt one (suggest.h). */
#include "suggest.h"

#include <tapegrad.h>

#include <string.h>

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static int min3(int a, int b, int c) { return a < b ? (a < c ? a : c) : (b < c ? b : c); }

/* Optimal string alignment distance: Levenshtein's dynamic programme over
 * three rows (the one before last is for swaps of adjacent letters). */
int tg__suggest_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > TG_SUGGEST_MAX_LEN || m > TG_SUGGEST_MAX_LEN) return -1;
    int rows[3][TG_SUGGEST_MAX_LEN + 1];
    int *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= m; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int same = lower((unsigned char)a[i - 1]) == lower((unsigned char)b[j - 1]);
            cur[j] = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + !same);
            if (i > 1 && j > 1 && lower((unsigned char)a[i - 1]) == lower((unsigned char)b[j - 2]) &&
                lower((unsigned char)a[i - 2]) == lower((unsigned char)b[j - 1]) &&
                prev2[j - 2] + 1 < cur[j])
                cur[j] = prev2[j - 2] + 1;
        }
        int *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[m];
}

void tg__suggest_init(tg__suggest *s, const char *word) {
    s->word = word;
    s->best = NULL;
    s->dist = 0;
}

void tg__suggest_consider(tg__suggest *s, const char *name) {
    if (!s->word || !name) return;
    int d = tg__suggest_distance(s->word, name);
    if (d < 0 || (s->best && d >= s->dist)) return;
    int len = (int)strlen(s->word);
    int limit = len / 3 > 1 ? len / 3 : 1;
    if (d > limit || d >= len) return;
    s->best = name;
    s->dist = d;
}

const char *tg__suggest_best(const tg__suggest *s) { return s->best; }

const char *tg__suggest_op(const char *name) {
    tg__suggest s;
    tg__suggest_init(&s, name);
    for (int i = 0; i < tg_op_count(); i++) tg__suggest_consider(&s, tg_op_at(i)->name);
    return tg__suggest_best(&s);
}
