/*
 * "Did you mean ...?": the known name closest to a misspelt one.
 *
 *   tg__suggest s;
 *   tg__suggest_init(&s, word);
 *   for (each known name) tg__suggest_consider(&s, name);
 *   const char *best = tg__suggest_best(&s); // NULL: nothing close enough
 *
 * Closeness is the edit distance (insertions, deletions, substitutions and
 * swaps of two adjacent letters each count 1; case is ignored). A name is
 * close enough when it is at most max(1, length / 3) edits away from the
 * word and fewer edits than the word has letters ("sigmod" -> "sigmoid",
 * "trian" -> "train"; "foo" -> nothing). The first of equally close names
 * wins, so consider them in the order a user would look for them.
 */
#ifndef TG_SUGGEST_H
#define TG_SUGGEST_H

#include <stddef.h>

/* Names longer than this are never compared (no suggestion for them). */
#define TG_SUGGEST_MAX_LEN 64

typedef struct tg__suggest {
    const char *word; /* borrowed */
    const char *best; /* borrowed from the caller's candidates */
    int dist;         /* best's distance from word */
} tg__suggest;

void tg__suggest_init(tg__suggest *s, const char *word);

/* Keeps name when it is closer to the word than the best so far. name must
 * outlive the use of tg__suggest_best(). */
void tg__suggest_consider(tg__suggest *s, const char *name);

/* The closest name within the threshold, or NULL. */
const char *tg__suggest_best(const tg__suggest *s);

/* The edit distance of a and b as defined above, or -1 when either is
 * longer than TG_SUGGEST_MAX_LEN. */
int tg__suggest_distance(const char *a, const char *b);

/* The registered op closest to name (tg_call's "did you mean"), or NULL. */
const char *tg__suggest_op(const char *name);

#endif
