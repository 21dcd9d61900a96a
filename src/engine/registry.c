/* The op registry: every op, built-in or user-defined, by name (uthash) and
 * by the small index a node stores. Index 0 means "leaf". */
#include "nn_internal.h"
#include "rules.h" /* tg__err */

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
    const char *family; /* "binary" for ops/binary.c; NULL for a user op */
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

static const char *arity_word(int arity) {
    return arity == 1 ? "unary" : arity == 2 ? "binary" : "ternary";
}

/* Why op cannot be registered: a tg_error filled (when err is given) with a
 * message naming the op and the fault, or TG_OK. Called with the lock held,
 * as it reads the table. */
static int refuse(const tg_op *op, tg_error *err) {
    static const char who[] = "tg_op_register";
    if (!op) return tg__err(err, TG_ERR_ARG, "%s: op is NULL", who);
    if (!op->name) return tg__err(err, TG_ERR_ARG, "%s: the op's name is NULL", who);
    if (!*op->name) return tg__err(err, TG_ERR_ARG, "%s: the op's name is empty", who);
    const char *name = op->name;
    if (op->arity < 1 || op->arity > 3)
        return tg__err(err, TG_ERR_ARG, "%s: op \"%s\": arity %d is not 1, 2 or 3", who, name,
                       op->arity);
    if (!op->forward)
        return tg__err(err, TG_ERR_ARG, "%s: op \"%s\": forward is NULL", who, name);
    if (!op->backward && !op->vjp && !op->jvp)
        return tg__err(err, TG_ERR_ARG,
                       "%s: op \"%s\": states no derivative (backward, vjp and jvp are all "
                       "NULL; give vjp or jvp, or a backward that adds nothing for an op "
                       "whose derivative is zero)",
                       who, name);
    entry *e;
    HASH_FIND_STR(by_name, name, e);
    if (e && e->op == op)
        return tg__err(err, TG_ERR_ARG, "%s: op \"%s\" is already registered (this same tg_op)",
                       who, name);
    if (e && e->family)
        return tg__err(err, TG_ERR_ARG,
                       "%s: the name \"%s\" is taken by the built-in %s op of ops/%s.c; "
                       "choose another name",
                       who, name, arity_word(e->op->arity), e->family);
    if (e)
        return tg__err(err, TG_ERR_ARG,
                       "%s: the name \"%s\" is taken by a %s user op registered earlier "
                       "(another tg_op struct); choose another name",
                       who, name, arity_word(e->op->arity));
    if (nops == MAX_OPS)
        return tg__err(err, TG_ERR_NOMEM, "%s: op \"%s\": the registry is full (%d ops)", who,
                       name, MAX_OPS - 1);
    return TG_OK;
}

/* Called with the lock held. */
static int add(const tg_op *op, const char *family, tg_error *err) {
    int rc = refuse(op, err);
    if (rc) return rc;
    entry *e = &entries[nops];
    e->op = op;
    e->index = nops;
    e->family = family;
    tg__ops[nops] = op;
    int oom = 0;
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (oom = 1)
    HASH_ADD_KEYPTR(hh, by_name, op->name, strlen(op->name), e);
    if (oom)
        return tg__err(err, TG_ERR_NOMEM, "tg_op_register: op \"%s\": out of memory", op->name);
    nops++;
    return TG_OK;
}

/* The families whose fused backward kernels write a first contribution
 * (TG_F_FRESH), and the kernel of the ops whose derivative is 0. */
bool tg__fresh_writer[MAX_OPS];
static bool writes_fresh(const tg_op *op, const char *family) {
    static const char *const writers[] = {"unary", "binary", "reduce"};
    if (op->backward == tg__zero_backward) return true;
    for (size_t i = 0; op->backward && i < sizeof writers / sizeof *writers; i++)
        if (strcmp(family, writers[i]) == 0) return true;
    return false;
}

/* Indexes the built-in ops, called with the lock held. An allocation failure
 * (the hash table's first allocation) undoes the partial work, so that the
 * next call retries rather than leave the library unusable for good. The
 * family's name without its "tg_" is its file in ops/ (families.h). */
static int add_builtins(void) {
    int rc = TG_OK;
#define TG_FAMILY(name)                                                         \
    for (int i = 0; i < name##_count && !rc; i++) {                            \
        rc = add(&name##_ops[i], &#name[3], NULL);                             \
        tg__fresh_writer[nops - 1] = writes_fresh(&name##_ops[i], &#name[3]);  \
    }
#include "families.h"
#undef TG_FAMILY
    if (!rc) rc = tg__scalar_init();
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

int tg_op_register_views(const tg_op *op, size_t op_size, tg_error *err) {
    if (op_size != sizeof(tg_op))
        return tg__err(err, TG_ERR_ARG,
                       "tg_op_register: op \"%s\" was compiled with a tg_op of %zu bytes, "
                       "this library's has %zu; recompile against this tapegrad.h",
                       op && op->name ? op->name : "?", op_size, sizeof(tg_op));
    /* The built-ins come first: a user op added while they could not be
     * indexed would take a built-in's name and index. */
    int rc = tg__registry_init();
    if (rc)
        return tg__err(err, rc, "tg_op_register: the built-in ops could not be indexed (%s)",
                       rc == TG_ERR_NOMEM ? "out of memory" : tg_status_name(rc));
    pthread_mutex_lock(&lock);
    rc = add(op, NULL, err);
    pthread_mutex_unlock(&lock);
    if (!rc) tg__err_clear(err);
    return rc;
}

/* The entry points of programs compiled against older headers: one whose
 * tg_op had no jvp field (its struct is shorter than the library reads), and
 * one whose forward and backward took the node (tg_node *) instead of its
 * argument views: the struct has the same size, but calling its functions
 * with views would crash them. Both are refused with a message naming the
 * change. */
#undef tg_op_register
#undef tg_op_register_err
TG_API int tg_op_register_err(const tg_op *op, tg_error *err);
TG_API int tg_op_register(const tg_op *op);
TG_API int tg_op_register_sized(const tg_op *op, size_t op_size, tg_error *err);
int tg_op_register_err(const tg_op *op, tg_error *err) {
    (void)op;
    return tg__err(err, TG_ERR_ARG,
                   "tg_op_register: this program was compiled against an older tapegrad.h, "
                   "whose tg_op had no tangent rule (jvp); recompile it against this one");
}
int tg_op_register(const tg_op *op) { return tg_op_register_err(op, NULL); }
int tg_op_register_sized(const tg_op *op, size_t op_size, tg_error *err) {
    (void)op_size;
    return tg__err(err, TG_ERR_ARG,
                   "tg_op_register: op \"%s\" was compiled against an older tapegrad.h, whose "
                   "forward and backward took the node (tg_node *); they now take its argument "
                   "views (tg_args *): update them and recompile",
                   op && op->name ? op->name : "?");
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

/* A built-in derivative op is named after its op and the input its partial
 * derivative is with respect to: base_dx for a unary op's x, base_da,
 * base_db and base_dc for an op's first, second and third input, base_dp
 * for an activation's parameter. */
const tg_op *tg_op_derivative_of(const tg_op *op, int *input) {
    static const char suffix[] = "xabpc"; /* the input letter */
    static const int which[] = {0, 0, 1, 1, 2};
    size_t n = op && op->name ? strlen(op->name) : 0;
    if (n < 4 || op->name[n - 3] != '_' || op->name[n - 2] != 'd') return NULL;
    const char *letter = strchr(suffix, op->name[n - 1]);
    if (!letter || !*letter) return NULL;
    char base[64];
    if (n - 3 >= sizeof base) return NULL;
    memcpy(base, op->name, n - 3);
    base[n - 3] = '\0';
    tg__registry_init();
    pthread_mutex_lock(&lock);
    entry *e, *b;
    HASH_FIND_STR(by_name, op->name, e);
    HASH_FIND_STR(by_name, base, b);
    pthread_mutex_unlock(&lock);
    /* built-ins only: a user op may have any name */
    if (!e || e->op != op || !e->family || !b || !b->family) return NULL;
    if (input) *input = which[letter - suffix];
    return b->op;
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
 * no lock once the node that holds it exists (record.h's tg__op). */
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
