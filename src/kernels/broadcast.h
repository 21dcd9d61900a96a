/*
 * NumPy broadcasting for the elementwise ops of two or three inputs
 * (ops/binary.c, ops/compare.c, ops/select.c): the shape rule, and a walk
 * over the output that gives each input's offset (ops/shape.c walks
 * broadcast_to and permute with it too). Internal; never installed.
 */
#ifndef TG_BROADCAST_H
#define TG_BROADCAST_H

#include "record.h"

/* How an elementwise node walks its inputs. The output's dimensions padded
 * on the left to 4, and for each input (up to 3) its element strides over
 * them, 0 along a dimension where it is broadcast. flat: every input has the
 * output's shape, so the walk is one run of d[3] elements. */
typedef struct tg_bcast {
    size_t d[4];
    size_t s[3][4];
    bool flat;
} tg_bcast;

/*
 * Runs the statements given after bc for every output element o, with ia,
 * ib, ic the offsets of that element in inputs 0, 1, 2 (ic stays 0 for an
 * op of two inputs). The flat walk is a plain loop the compiler vectorises.
 */
#define TG_BCAST_FOR(bc, ...)                                                              \
    do {                                                                                   \
        const tg_bcast *bc_ = (bc);                                                        \
        if (bc_->flat) {                                                                   \
            for (size_t o = 0; o < bc_->d[3]; o++) {                                       \
                const size_t ia = o, ib = o, ic = o;                                       \
                (void)ia, (void)ib, (void)ic;                                              \
                __VA_ARGS__;                                                               \
            }                                                                              \
            break;                                                                         \
        }                                                                                  \
        const size_t *sa_ = bc_->s[0], *sb_ = bc_->s[1], *sc_ = bc_->s[2];                 \
        size_t o = 0;                                                                      \
        for (size_t j0 = 0; j0 < bc_->d[0]; j0++)                                          \
            for (size_t j1 = 0; j1 < bc_->d[1]; j1++)                                      \
                for (size_t j2 = 0; j2 < bc_->d[2]; j2++) {                                \
                    size_t ia = j0 * sa_[0] + j1 * sa_[1] + j2 * sa_[2];                   \
                    size_t ib = j0 * sb_[0] + j1 * sb_[1] + j2 * sb_[2];                   \
                    size_t ic = j0 * sc_[0] + j1 * sc_[1] + j2 * sc_[2];                   \
                    for (size_t j3 = 0; j3 < bc_->d[3];                                    \
                         j3++, o++, ia += sa_[3], ib += sb_[3], ic += sc_[3]) {            \
                        (void)ia, (void)ib, (void)ic;                                      \
                        __VA_ARGS__;                                                       \
                    }                                                                      \
                }                                                                          \
    } while (0)

/* x's dimensions padded on the left with 1s to 4. */
static inline void tg__arg_pad4(const tg_arg *x, size_t d[4]) {
    for (int i = 0; i < 4; i++) d[i] = 1;
    for (int i = 0; i < x->ndim; i++) d[4 - x->ndim + i] = (size_t)x->shape[i];
}

/* The walk of an elementwise op's output over its inputs. */
static inline void tg__bcast_args(const tg_args *a, tg_bcast *bc) {
    *bc = (tg_bcast){.flat = true};
    int nin = a->op->arity;
    for (int k = 0; k < nin && bc->flat; k++) bc->flat = tg__arg_same_shape(&a->in[k], &a->out);
    if (bc->flat) {
        bc->d[3] = a->out.numel;
        return;
    }
    tg__arg_pad4(&a->out, bc->d);
    for (int k = 0; k < nin; k++) { /* row-major strides, 0 where broadcast */
        size_t d[4], step = 1;
        tg__arg_pad4(&a->in[k], d);
        for (int i = 3; i >= 0; i--) {
            bc->s[k][i] = d[i] == 1 ? 0 : step;
            step *= d[i];
        }
    }
}

/* "last", "second-to-last"...: a dimension counted from the end, where
 * broadcasting aligns shapes. */
static inline const char *tg__from_end(int k) {
    static const char *const names[TG_MAX_DIMS] = {"last", "second-to-last", "third-to-last",
                                                   "fourth-to-last"};
    return names[k];
}

/*
 * The shape rule of an elementwise op of two or three inputs: shapes aligned
 * from the right, each dimension equal among the inputs or 1, the output
 * taking the largest. The error counts dimensions as a user does: "[2,3] and
 * [4]: the last dimension differs (3 vs 4) and neither is 1".
 */
static inline int tg__broadcast_shape(tg_node *out, char *why, size_t len) {
    int nin = tg__nin(out), nd = 0;
    tg_arg in[3]; /* the inputs' shapes */
    bool same = true;
    for (int k = 0; k < nin; k++) {
        tg__shape_view(tg__in(out, k), &in[k]);
        same = same && tg__arg_same_shape(&in[k], &in[0]);
        if (in[k].ndim > nd) nd = in[k].ndim;
    }
    if (same) return TG_OK; /* the output already has input 0's shape */
    int32_t shape[TG_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int32_t size = 1;
        for (int k = 0; k < nin; k++) {
            int at = in[k].ndim - nd + i;
            int32_t dk = at >= 0 ? in[k].shape[at] : 1;
            if (dk == 1 || dk == size) continue;
            if (size != 1) {
                char s[3][64];
                for (int j = 0; j < nin; j++) tg__arg_shape_str(&in[j], s[j]);
                int w = nin == 2 ? snprintf(why, len, "%s and %s", s[0], s[1])
                                 : snprintf(why, len, "%s, %s and %s", s[0], s[1], s[2]);
                if (w >= 0 && (size_t)w < len)
                    snprintf(why + w, len - (size_t)w,
                             ": the %s dimension differs (%d vs %d) and neither is 1",
                             tg__from_end(nd - 1 - i), (int)size, (int)dk);
                return TG_ERR_SHAPE;
            }
            size = dk;
        }
        shape[i] = size;
    }
    out->ndim = (uint8_t)nd;
    for (int i = 0; i < nd; i++) out->u.shape[i] = shape[i];
    return TG_OK;
}

/* The leading (stack) dimensions of two stacks of matrices a [..., r, c] and
 * b [..., r', c'] broadcast against each other, into shape[0..nd-2); returns
 * nd, the larger rank, or -1 after writing why ("a <join> b: <word>
 * dimension -3 differs (2 vs 4) and neither is 1"). matmul and the linear
 * algebra ops. */
static inline int tg__stack_shape(const tg_arg *a, const tg_arg *b, int64_t *shape,
                                  const char *join, const char *word, char *why, size_t len) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < nd - 2; i++) {
        int ka = a->ndim - nd + i, kb = b->ndim - nd + i;
        int32_t da = ka >= 0 ? a->shape[ka] : 1, db = kb >= 0 ? b->shape[kb] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[64], sb[64];
            snprintf(why, len, "%s %s %s: %s dimension %d differs (%d vs %d) and neither is 1",
                     tg__arg_shape_str(a, sa), join, tg__arg_shape_str(b, sb), word, i - nd, (int)da,
                     (int)db);
            return -1;
        }
        shape[i] = da > db ? da : db;
    }
    return nd;
}

#endif
