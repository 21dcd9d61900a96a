/* The op registry: every op, built-in or user-defined, by name (uthash) and
 * by the small index a node stores. Index 0 means "leaf". */
#include "internal.h"

#include <pthread.h>
#include <string.h>

#define uthash_malloc(sz) tg__malloc(sz)
#define uthash_free(ptr, sz) tg__free(ptr)
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

/* The op families of ops/, each a static table. */
#define TG_FAMILY(name) extern const tg_op name##_ops[]; extern const int name##_count;
#include "families.h"
#undef TG_FAMILY

typedef struct entry {
    const tg_op *op;
    int index;
    UT_hash_handle hh;
} entry;

#define MAX_OPS 256
static entry entries[MAX_OPS]; /* entries[0] unused: leaves */
static entry *by_name;
static int nops = 1;
/* POSIX rather than C11 <threads.h>: glibc's mtx_* are invisible to
 * ThreadSanitizer (and helgrind), which then reports false races in every
 * program that uses tapegrad from several threads. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool builtins_ready; /* under the lock: every built-in op is indexed */

/* Called with the lock held. */
static int add(const tg_op *op) {
    if (!op || !op->name || !*op->name || op->arity < 1 || op->arity > 3 || !op->forward ||
        !op->backward)
        return TG_ERR_ARG;
    entry *e;
    HASH_FIND_STR(by_name, op->name, e);
    if (e) return TG_ERR_ARG;
    if (nops == MAX_OPS) return TG_ERR_NOMEM;
    e = &entries[nops];
    e->op = op;
    e->index = nops;
    tg__ops[nops] = op;
    int oom = 0;
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (oom = 1)
    HASH_ADD_KEYPTR(hh, by_name, op->name, strlen(op->name), e);
    if (oom) return TG_ERR_NOMEM;
    nops++;
    return TG_OK;
}

/* Indexes the built-in ops, called with the lock held. An allocation failure
 * (the hash table's first allocation) undoes the partial work, so that the
 * next call retries rather than leave the library unusable for good. */
static int add_builtins(void) {
    int rc = TG_OK;
#define TG_FAMILY(name)                                                         \
    for (int i = 0; i < name##_count && !rc; i++) rc = add(&name##_ops[i]);
#include "families.h"
#undef TG_FAMILY
    if (rc) {
        HASH_CLEAR(hh, by_name);
        nops = 1;
        return rc;
    }
    builtins_ready = true;
    return TG_OK;
}

int tg__registry_init(void) {
    pthread_mutex_lock(&lock);
    int rc = builtins_ready ? TG_OK : add_builtins();
    pthread_mutex_unlock(&lock);
    return rc;
}

int tg_op_register(const tg_op *op) {
    /* The built-ins come first: a user op added while they could not be
     * indexed would take a built-in's name and index. */
    int rc = tg__registry_init();
    if (rc) return rc;
    pthread_mutex_lock(&lock);
    rc = add(op);
    pthread_mutex_unlock(&lock);
    return rc;
}

const tg_op *tg_op_find(const char *name) {
    if (!name) return NULL;
    tg__registry_init();
    pthread_mutex_lock(&lock);
    entry *e;
    HASH_FIND_STR(by_name, name, e);
    pthread_mutex_unlock(&lock);
    return e ? e->op : NULL;
}

int tg__op_index(const tg_op *op) {
    if (!op || !op->name) return -1;
    tg__registry_init();
    pthread_mutex_lock(&lock);
    entry *e;
    HASH_FIND_STR(by_name, op->name, e);
    pthread_mutex_unlock(&lock);
    return e && e->op == op ? e->index : -1;
}

/* Indices are handed out once and entries never move, so reading one needs
 * no lock once the node that holds it exists (internal.h's tg__op). */
const tg_op *tg__ops[MAX_OPS];

int tg_op_count(void) {
    tg__registry_init();
    pthread_mutex_lock(&lock);
    int n = nops - 1;
    pthread_mutex_unlock(&lock);
    return n;
}

const tg_op *tg_op_at(int i) {
    return i >= 0 && i < tg_op_count() ? entries[i + 1].op : NULL;
}
