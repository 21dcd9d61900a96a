/*
 * Comparisons lt le gt ge eq ne, elementwise with NumPy broadcasting.
 *
 * The result is 1 where the relation holds and 0 elsewhere, in the operands'
 * dtype, so it can scale or select (tg_where) directly. A NaN operand
 * compares as in C: every relation is false except ne. The result is
 * piecewise constant, so its derivative is 0 (tg__zero_backward,
 * tg__zero_vjp); PyTorch's comparisons are not differentiable.
 * Each op is one line of COMPARISONS, its name and its relation of a and b;
 * the file includes itself once per dtype (see binary.c) for the kernels.
 */
#define COMPARISONS(X)                                                                     \
    X(lt, a < b) X(le, a <= b) X(gt, a > b) X(ge, a >= b) X(eq, a == b) X(ne, a != b)

#ifndef T
#include "broadcast.h"
#include "rules.h"

#define CMP(name, REL)                                                                     \
    static void S(name##_fwd)(const tg_bcast *bc, const void *va, const void *vb,          \
                              void *vy) {                                                  \
        const T *pa = va, *pb = vb;                                                        \
        T *py = vy;                                                                        \
        TG_BCAST_FOR(bc, {                                                                 \
            const T a = pa[ia], b = pb[ib];                                                \
            py[o] = (REL) ? 1 : 0;                                                         \
        });                                                                                \
    }

#include "dtypes.h"

#define CMP_OP(name)                                                                       \
    static void name##_forward(tg_args *r) {                                               \
        tg_bcast bc;                                                                       \
        tg__bcast_args(r, &bc);                                                            \
        TG_ARG_KERNEL(&r->out, name##_fwd)(&bc, r->in[0].value, r->in[1].value, r->out.value); \
    }
CMP_OP(lt)
CMP_OP(le)
CMP_OP(gt)
CMP_OP(ge)
CMP_OP(eq)
CMP_OP(ne)

enum { C_LT, C_LE, C_GT, C_GE, C_EQ, C_NE, C_COUNT };
const tg_op tg_compare_ops[] = {
    [C_LT] = {"lt", 2, tg__broadcast_shape, lt_forward, tg__zero_backward, tg__zero_vjp, NULL},
    [C_LE] = {"le", 2, tg__broadcast_shape, le_forward, tg__zero_backward, tg__zero_vjp, NULL},
    [C_GT] = {"gt", 2, tg__broadcast_shape, gt_forward, tg__zero_backward, tg__zero_vjp, NULL},
    [C_GE] = {"ge", 2, tg__broadcast_shape, ge_forward, tg__zero_backward, tg__zero_vjp, NULL},
    [C_EQ] = {"eq", 2, tg__broadcast_shape, eq_forward, tg__zero_backward, tg__zero_vjp, NULL},
    [C_NE] = {"ne", 2, tg__broadcast_shape, ne_forward, tg__zero_backward, tg__zero_vjp, NULL},
};
const int tg_compare_count = C_COUNT;

/* The rules of compact scalars (src/engine/scalar.c): 1 or 0, no derivative. */
#define SCALAR_EVAL(name, REL)                                                             \
    static double name##_scalar(const double *x, double *p) {                              \
        (void)p;                                                                           \
        const double a = x[0], b = x[1];                                                   \
        return (REL) ? 1 : 0;                                                              \
    }
COMPARISONS(SCALAR_EVAL)
const tg_scalar_rule tg_compare_scalar[] = {
    [C_LT] = {TG_CLS_NONE, lt_scalar}, [C_LE] = {TG_CLS_NONE, le_scalar},
    [C_GT] = {TG_CLS_NONE, gt_scalar}, [C_GE] = {TG_CLS_NONE, ge_scalar},
    [C_EQ] = {TG_CLS_NONE, eq_scalar}, [C_NE] = {TG_CLS_NONE, ne_scalar},
};

tg_node *tg_lt(tg_node *a, tg_node *b) { return tg__apply(&tg_compare_ops[C_LT], a, b, 0); }
tg_node *tg_le(tg_node *a, tg_node *b) { return tg__apply(&tg_compare_ops[C_LE], a, b, 0); }
tg_node *tg_gt(tg_node *a, tg_node *b) { return tg__apply(&tg_compare_ops[C_GT], a, b, 0); }
tg_node *tg_ge(tg_node *a, tg_node *b) { return tg__apply(&tg_compare_ops[C_GE], a, b, 0); }
tg_node *tg_eq(tg_node *a, tg_node *b) { return tg__apply(&tg_compare_ops[C_EQ], a, b, 0); }
tg_node *tg_ne(tg_node *a, tg_node *b) { return tg__apply(&tg_compare_ops[C_NE], a, b, 0); }

#else /* kernel pass, once per dtype */

COMPARISONS(CMP)

#endif
