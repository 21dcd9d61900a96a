/*
 * Elementwise ops of one input: neg exp log sqrt abs sin cos tanh sigmoid relu,
 * the rest of math.h (tan asin acos atan sinh cosh asinh acosh atanh erf erfc
 * log1p expm1 log2 log10 exp2 cbrt), square reciprocal, the activations
 * softplus gelu silu, and the step functions sign floor ceil round.
 *
 * Each op is one line of UNARY(name, y, dy/dx) written over a type T; the
 * file includes itself once per dtype to compile the kernels (see binary.c).
 * Inside the expressions: x is the input, y the stored output. Derivatives
 * use y where that is cheaper and exact (exp, tanh, sigmoid, sqrt, tan, exp2,
 * cbrt, reciprocal), so the backward pass never recomputes the function.
 * Each op's element functions (name_y, name_dx, and the helpers of the longer
 * ones) are small separate functions. Those of exp log sin cos tan tanh
 * sigmoid erf log1p expm1 softplus gelu silu serve the float64 scalars only:
 * tensors go through loops that call the vector math of src/kernels/vmath.h (SLEEF)
 * on blocks and finish the formula with the same helpers (VUNARY, VFWD,
 * VBWD). A step function is one line of
 * STEP(name, y): its derivative is 0 everywhere and its backward rule adds
 * nothing, as PyTorch's gives zeros.
 */
#ifndef T
#include "rules.h"
#include "vmath.h"

#include <string.h>
#include <tgmath.h>

/* The constants, to more digits than a double holds; (T)C rounds them once. */
#define LN2 0.693147180559945309417232121458176568
#define LOG2E 1.44269504088896340735992468100189214     /* 1 / ln 2 */
#define LOG10E 0.434294481903251827651128918916605082   /* 1 / ln 10 */
#define SQRT1_2 0.707106781186547524400844362104849039  /* 1 / sqrt 2 */
/* 1 / sqrt 2 - (T)SQRT1_2: the part of the constant that T does not hold */
#define SQRT1_2_LO (TG_PASS_F32 ? 1.2101617104478970e-08 : -4.8336466567264567e-17)
#define TWO_SQRTPI 1.12837916709551257389615890312154517 /* 2 / sqrt pi */
#define INV_SQRT2PI 0.398942280401432677939946059934381868 /* 1 / sqrt(2 pi) */

/* The element functions: y = f(x), and dy/dx from x and y. */
#define ELEMENTS(name, Y, DX)                                                              \
    static inline T S(name##_y)(T x) { return (Y); }                                       \
    static inline T S(name##_dx)(T x, T y) { return (void)x, (void)y, (DX); }
#define FWD_LOOP(name)                                                                     \
    static void S(name##_fwd)(size_t n, const void *vx, void *vy) {                         \
        const T *px = vx;                                                                  \
        T *py = vy;                                                                        \
        for (size_t i = 0; i < n; i++) py[i] = S(name##_y)(px[i]);                         \
    }
/* Each derivative loop is compiled three times from one body: as the fused
 * backward kernel name_bwd, which adds g * dy/dx into the input's gradient
 * (ACC), as name_bwdw, which writes it there (WRITE: the input's first
 * contribution, see tg__ready_grad), and as name_dxl, which stores dy/dx
 * itself (SET) for the op's derivative node name_dx. All take g; name_dxl
 * ignores it. So tg_backward, tg_grad and tg_jvp multiply g or a tangent by
 * the same bits. */
#define ACC(i, E) gx[i] += pg[i] * (E)
#define WRITE(i, E) gx[i] = pg[i] * (E)
#define SET(i, E) gx[i] = (E)
#define DX_LOOP_AS(fn, name, STORE)                                                        \
    static void S(fn)(size_t n, const void *vx, const void *vy, const void *vg, void *vgx) { \
        const T *px = vx, *py = vy, *pg = vg;                                              \
        T *gx = vgx;                                                                       \
        (void)pg;                                                                          \
        for (size_t i = 0; i < n; i++) STORE(i, S(name##_dx)(px[i], py[i]));               \
    }
#define BWD_LOOP(name)                                                                     \
    DX_LOOP_AS(name##_bwd, name, ACC)                                                      \
    DX_LOOP_AS(name##_bwdw, name, WRITE) DX_LOOP_AS(name##_dxl, name, SET)
#define UNARY(name, Y, DX) ELEMENTS(name, Y, DX) FWD_LOOP(name) BWD_LOOP(name)
#define STEP(name, Y)                                                                      \
    static inline T S(name##_y)(T x) { return (Y); }                                       \
    FWD_LOOP(name)

/* The vectorised ops (src/kernels/vmath.h) keep their element functions for the
 * float64 scalars, and run tensors through loops over blocks of VBLOCK
 * elements: a vector math call over the block, then a plain loop that
 * finishes the formula (it vectorises, having no calls; for the widest
 * vector unit, through TG_VMATH_CLONES). VUNARY: the
 * forward value is the vector function itself. */
#define VBLOCK 256
#define BLOCKS(n, i0, m)                                                                   \
    for (size_t i0 = 0, m = (n) < VBLOCK ? (n) : VBLOCK; i0 < (n);                          \
         i0 += m, m = (n) - i0 < VBLOCK ? (n) - i0 : VBLOCK)
#define VUNARY(name, DX)                                                                   \
    ELEMENTS(name, name(x), DX)                                                            \
    static void S(name##_fwd)(size_t n, const void *vx, void *vy) { S(tg__v##name)(n, vx, vy); }
/* A forward or backward loop whose formula needs v[i] = fn(ARG) (one vector
 * function of an elementwise argument): EXPR is y, or dy/dx, from x and v[i]. */
#define VLOOP(ARG, fn, STORE)                                                              \
    BLOCKS(n, i0, m) {                                                                     \
        for (size_t i = 0; i < m; i++) {                                                   \
            T x = px[i0 + i];                                                              \
            v[i] = (ARG);                                                                  \
        }                                                                                  \
        S(tg__v##fn)(m, v, v);                                                             \
        for (size_t i = 0; i < m; i++) {                                                   \
            T x = px[i0 + i];                                                              \
            (void)x;                                                                       \
            STORE;                                                                         \
        }                                                                                  \
    }
#define VFWD(name, ARG, fn, EXPR)                                                          \
    TG_VMATH_CLONES static void S(name##_fwd)(size_t n, const void *vx, void *vy) {                         \
        const T *px = vx;                                                                  \
        T *py = vy, v[VBLOCK];                                                             \
        VLOOP(ARG, fn, py[i0 + i] = (EXPR))                                                \
    }
#define VBWD_AS(name, ARG, fn, EXPR, STORE)                                                \
    TG_VMATH_CLONES static void S(name)(size_t n, const void *vx, const void *vy,           \
                                        const void *vg, void *vgx) {                       \
        const T *px = vx, *pg = vg;                                                        \
        T *gx = vgx, v[VBLOCK];                                                            \
        (void)vy, (void)pg;                                                                \
        VLOOP(ARG, fn, STORE(i0 + i, EXPR))                                                \
    }
#define VBWD(name, ARG, fn, EXPR)                                                          \
    VBWD_AS(name##_bwd, ARG, fn, EXPR, ACC)                                                \
    VBWD_AS(name##_bwdw, ARG, fn, EXPR, WRITE) VBWD_AS(name##_dxl, ARG, fn, EXPR, SET)

#include "dtypes.h"

/* The ops, in registry order: L for the linear one (neg, its own tangent
 * rule, its gradient rule the same), E for the one whose derivative is its
 * output (exp: its rules use y itself, where a derivative node would copy
 * it), X for the other differentiable ones, Z for the step functions. The
 * enums, the op tables and the constructors are made from it. */
#define UNARY_OPS(L, E, X, Z)                                                              \
    L(neg) E(exp) X(log) X(sqrt) X(abs) X(sin) X(cos) X(tanh) X(sigmoid) X(relu)           \
    X(tan) X(asin) X(acos) X(atan) X(sinh) X(cosh) X(asinh) X(acosh) X(atanh)              \
    X(erf) X(erfc) X(log1p) X(expm1) X(log2) X(log10) X(exp2) X(cbrt)                      \
    X(square) X(reciprocal) X(softplus) X(gelu) X(silu)                                    \
    Z(sign) Z(floor) Z(ceil) Z(round)

/* An op's one derivative statement is its DX expression in the kernel pass
 * below. From it come the fused backward kernel (name_bwd) and the op's
 * derivative node name_dx(x, y) = dy/dx, whose kernel (name_dxl) runs the
 * same loop storing DX; tg_grad records g * name_dx(x, y) and tg_jvp
 * name_dx(x, y) * t. float64 scalars call the element functions directly,
 * in all three. */
#define NOTHING(name)
#define ENUM_ROW(name) U_##name,
enum { UNARY_OPS(ENUM_ROW, ENUM_ROW, ENUM_ROW, ENUM_ROW) U_COUNT };
#define DX_ENUM_ROW(name) U_##name##_dx,
/* after them, the fused tangent of any of them (U_TANGENT) */
enum {
    U_DX_BEFORE = U_COUNT - 1,
    UNARY_OPS(NOTHING, NOTHING, DX_ENUM_ROW, NOTHING) U_TANGENT,
    U_END
};

#define UNARY_FORWARD(name)                                                                \
    static void name##_forward(tg_args *a) {                                               \
        if (tg__arg_scalar64(&a->out)) {                                                   \
            *(double *)a->out.value = name##_y_f64(*(const double *)a->in[0].value);       \
            return;                                                                        \
        }                                                                                  \
        TG_ARG_KERNEL(&a->out, name##_fwd)(a->out.numel, a->in[0].value, a->out.value);    \
    }
/* The backward kernel for input x: writing its first contribution, or
 * adding; and the same for one float64 value (the derivative d). */
#define BWD_KERNEL(x, name)                                                                \
    ((x)->fresh ? TG_ARG_KERNEL(x, name##_bwdw) : TG_ARG_KERNEL(x, name##_bwd))
#define UNARY_BACKWARD(name, d)                                                            \
    static void name##_backward(tg_args *a) {                                              \
        tg_arg *x = &a->in[0];                                                             \
        if (tg__arg_scalar64(&a->out)) {                                                   \
            tg__grad_put(x->grad, x->fresh, *(const double *)a->out.grad * (d));          \
            return;                                                                        \
        }                                                                                  \
        BWD_KERNEL(x, name)(a->out.numel, x->value, a->out.value, a->out.grad, x->grad);   \
    }
/* A unary op's tangent dy/dx t is one pass (the op U_TANGENT, running the
 * op's backward kernel with t for g: the same bits as name_dx(x, y) * t)
 * where fusing is worth it, unless the k directions of a vector sweep share
 * the derivative node name_dx(x, y). */
static bool fused_tangent(tg_node *y, tg_node *t) {
    return tg__fusable(y, t, NULL) && !tg__sharing(y);
}
/* The float64 derivative at a 0-d call's x (in[0]) and y (out). */
#define DX64(name) name##_dx_f64(*(const double *)x->value, *(const double *)a->out.value)
/* The rules: g times the derivative node, and it times t (or fused). */
#define UNARY_OP(name)                                                                     \
    UNARY_FORWARD(name)                                                                    \
    UNARY_BACKWARD(name, DX64(name))                                                       \
    static void name##_dx_forward(tg_args *a) {                                            \
        const tg_arg *x = &a->in[0], *y = &a->in[1];                                       \
        if (tg__arg_scalar64(&a->out)) {                                                   \
            *(double *)a->out.value =                                                      \
                name##_dx_f64(*(const double *)x->value, *(const double *)y->value);       \
            return;                                                                        \
        }                                                                                  \
        TG_ARG_KERNEL(&a->out, name##_dxl)(a->out.numel, x->value, y->value, NULL,          \
                                           a->out.value);                                  \
    }                                                                                      \
    static tg_node *name##_dx_node(tg_node *y) {                                           \
        return tg__apply(&tg_unary_ops[U_##name##_dx], tg_node_input(y, 0), y, 0);         \
    }                                                                                      \
    static void name##_vjp(tg_node *y, tg_node *g, tg_node **gin) {                        \
        gin[0] = tg_mul(g, name##_dx_node(y));                                             \
    }                                                                                      \
    static tg_node *name##_jvp(tg_node *y, tg_node *const *tin) {                          \
        if (fused_tangent(y, tin[0]))                                                      \
            return tg__apply3(&tg_unary_ops[U_TANGENT], tg_node_input(y, 0), y, tin[0],     \
                              U_##name);                                                   \
        return tg_mul(name##_dx_node(y), tin[0]);                                          \
    }                                                                                      \
    /* the fused tangent's kernel: t dy/dx, as the backward kernel writes g dy/dx */       \
    static void name##_tangent_forward(tg_args *a) {                                       \
        const tg_arg *x = &a->in[0], *y = &a->in[1], *t = &a->in[2];                       \
        if (tg__arg_scalar64(&a->out)) {                                                   \
            *(double *)a->out.value = *(const double *)t->value *                          \
                                      name##_dx_f64(*(const double *)x->value,             \
                                                    *(const double *)y->value);            \
            return;                                                                        \
        }                                                                                  \
        TG_ARG_KERNEL(&a->out, name##_bwdw)(a->out.numel, x->value, y->value, t->value,    \
                                            a->out.value);                                 \
    }
/* exp: its derivative is y, bit for bit (its DX is y), which its rules use */
#define SELF_OP(name)                                                                      \
    UNARY_FORWARD(name)                                                                    \
    UNARY_BACKWARD(name, DX64(name))                                                       \
    static void name##_vjp(tg_node *y, tg_node *g, tg_node **gin) { gin[0] = tg_mul(g, y); } \
    static tg_node *name##_jvp(tg_node *y, tg_node *const *tin) { return tg_mul(y, tin[0]); }
extern const tg_op tg_unary_ops[];
/* neg: the backward kernel g * -1 is -g, as its rules record */
#define LINEAR_OP(name)                                                                    \
    UNARY_FORWARD(name)                                                                    \
    UNARY_BACKWARD(name, -1.0)                                                             \
    static void name##_vjp(tg_node *y, tg_node *g, tg_node **gin) {                        \
        (void)y;                                                                           \
        gin[0] = tg_##name(g);                                                             \
    }                                                                                      \
    static tg_node *name##_jvp(tg_node *y, tg_node *const *tin) {                          \
        (void)y;                                                                           \
        return tg_##name(tin[0]);                                                          \
    }
UNARY_OPS(LINEAR_OP, SELF_OP, UNARY_OP, UNARY_FORWARD)

/* The second derivatives: the vjp rule of each derivative node p = name_dx(x,
 * y), recorded with public ops of x, y = name(x) and p itself, so that they
 * are differentiable again. The whole derivative goes to x (y is x's
 * function, not another variable). A zero one (abs, relu) records nothing. */
#define K(v) tg__const_like(x, v)
#define D2(dname, EXPR)                                                                    \
    static tg_node *dname##_d2(tg_node *p) {                                               \
        tg_node *x = tg_node_input(p, 0), *y = tg_node_input(p, 1);                        \
        (void)x, (void)y;                                                                  \
        return (EXPR);                                                                     \
    }
#define D2_ZERO(dname)                                                                     \
    static tg_node *dname##_d2(tg_node *p) { return (void)p, NULL; }
/* Both rules of a derivative node from its one D2: g times it, and it
 * times the tangent of x. */
#define D2_RULES(name)                                                                     \
    static void name##_dx_vjp(tg_node *p, tg_node *g, tg_node **gin) {                     \
        tg_node *d = name##_dx_d2(p);                                                      \
        if (d) gin[0] = tg_mul(g, d);                                                      \
    }                                                                                      \
    static tg_node *name##_dx_jvp(tg_node *p, tg_node *const *tin) {                       \
        tg_node *d = tin[0] ? name##_dx_d2(p) : NULL;                                      \
        return d ? tg_mul(d, tin[0]) : NULL;                                               \
    }
D2(log_dx, tg_neg(tg_square(p)))
D2(sqrt_dx, tg_scale(tg_mul(p, tg_square(p)), -2))
D2_ZERO(abs_dx)
D2(sin_dx, tg_neg(y))
D2(cos_dx, tg_neg(y))
D2(tanh_dx, tg_mul(tg_scale(y, -2), p))
D2(sigmoid_dx, tg_mul(p, tg_sub(K(1), tg_scale(y, 2))))
D2_ZERO(relu_dx)
D2(tan_dx, tg_mul(tg_scale(y, 2), p))
D2(asin_dx, tg_mul(x, tg_mul(p, tg_square(p))))
D2(acos_dx, tg_mul(x, tg_mul(p, tg_square(p))))
D2(atan_dx, tg_mul(tg_scale(x, -2), tg_square(p)))
D2(sinh_dx, y)
D2(cosh_dx, y)
D2(asinh_dx, tg_neg(tg_mul(x, tg_mul(p, tg_square(p)))))
D2(acosh_dx, tg_neg(tg_mul(x, tg_mul(p, tg_square(p)))))
D2(atanh_dx, tg_mul(tg_scale(x, 2), tg_square(p)))
D2(erf_dx, tg_mul(tg_scale(x, -2), p))
D2(erfc_dx, tg_mul(tg_scale(x, -2), p))
D2(log1p_dx, tg_neg(tg_square(p)))
D2(expm1_dx, p)
D2(log2_dx, tg_neg(tg_div(p, x)))
D2(log10_dx, tg_neg(tg_div(p, x)))
D2(exp2_dx, tg_scale(p, LN2))
D2(cbrt_dx, tg_div(tg_scale(tg_square(p), -2), y))
D2(square_dx, K(2))
D2(reciprocal_dx, tg_mul(tg_scale(y, -2), p))
/* softplus' = s = sigmoid(x): s (1 - s) */
D2(softplus_dx, tg_mul(p, tg_sub(K(1), p)))
/* gelu'' = phi(x) (2 - x^2), phi the standard normal density */
D2(gelu_dx, tg_mul(tg_scale(tg_exp(tg_scale(tg_square(x), -0.5)), INV_SQRT2PI),
                tg_sub(K(2), tg_square(x))))
/* silu_dx: silu'' = s (1 - s) (2 + x (1 - 2 s)), s = sigmoid(x) */
static tg_node *silu_dx_d2(tg_node *p) {
    tg_node *x = tg_node_input(p, 0), *s = tg_sigmoid(x);
    tg_node *ds = tg_mul(s, tg_sub(K(1), s));
    return tg_mul(ds, tg_add(K(2), tg_mul(x, tg_sub(K(1), tg_scale(s, 2)))));
}
UNARY_OPS(NOTHING, NOTHING, D2_RULES, NOTHING)

/* The fused tangent q = dx(x, y) t of the op aux (U_TANGENT): its kernel,
 * and its derivative op, by the op. */
#define TANGENT_ROW(name) [U_##name] = {name##_tangent_forward, U_##name##_dx},
static const struct {
    void (*forward)(tg_args *a);
    int dx;
} tangent_of[U_COUNT] = {UNARY_OPS(NOTHING, NOTHING, TANGENT_ROW, NOTHING)};
static void tangent_forward(tg_args *a) { tangent_of[a->param].forward(a); }
/* Its rules, as those of mul(p, t) with p = dx(x, y) the derivative node:
 * g p (fused again) to t, and p's own rule (the second derivative) along
 * g t, or times t's tangent, to x; y is x's function, as for p. */
static tg_node *tangent_dx_node(tg_node *q) {
    return tg__apply(&tg_unary_ops[tangent_of[q->aux].dx], tg_node_input(q, 0),
                     tg_node_input(q, 1), 0);
}
static void tangent_vjp(tg_node *q, tg_node *g, tg_node **gin) {
    tg_node *x = tg_node_input(q, 0), *y = tg_node_input(q, 1), *t = tg_node_input(q, 2);
    if (tg_requires_grad(t)) gin[2] = tg__apply3(&tg_unary_ops[U_TANGENT], x, y, g, q->aux);
    if (tg_requires_grad(x)) {
        tg_node *p = tangent_dx_node(q), *gp[3] = {NULL, NULL, NULL};
        tg_unary_ops[tangent_of[q->aux].dx].vjp(p, tg_mul(g, t), gp);
        gin[0] = gp[0];
    }
}
static tg_node *tangent_jvp(tg_node *q, tg_node *const *tin) {
    tg_node *x = tg_node_input(q, 0), *y = tg_node_input(q, 1), *t = tg_node_input(q, 2);
    tg_node *r = tin[2] ? tg__apply3(&tg_unary_ops[U_TANGENT], x, y, tin[2], q->aux) : NULL;
    tg_node *dp = NULL;
    if (tin[0]) {
        tg_node *p = tangent_dx_node(q);
        dp = tg_unary_ops[tangent_of[q->aux].dx].jvp(p, (tg_node *[]){tin[0], NULL, NULL});
    }
    if (!dp) return r;
    return r ? tg_addcmul(r, dp, t) : tg_mul(dp, t);
}


/* A derivative node's inputs, x and y = name(x), have one shape, its own. */
static int dx_shape(tg_node *out, char *why, size_t len) {
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *x = &r.in[0], *y = &r.in[1];
    if (tg__arg_same_shape(x, y)) return TG_OK;
    char sx[64], sy[64];
    snprintf(why, len, "x %s and y %s: y is the op's output, of x's shape", tg__arg_shape_str(x, sx),
             tg__arg_shape_str(y, sy));
    return TG_ERR_SHAPE;
}
/* The fused tangent's inputs x, y and t have one shape, and its op one
 * (differentiable, not a step) unary op. */
static int tangent_shape(tg_node *out, char *why, size_t len) {
    int rc = dx_shape(out, why, len);
    tg_args r;
    tg__args_of(out, &r);
    const tg_arg *x = &r.in[0], *t = &r.in[2];
    if (rc) return rc;
    if (out->aux < 0 || out->aux >= U_COUNT || !tangent_of[out->aux].forward) {
        snprintf(why, len,
                 "its parameter %d names no unary op with a derivative op (called by name, "
                 "it has none): make it with tg_unary_tangent(y, t)",
                 out->aux);
        return TG_ERR_ARG;
    }
    if (tg__arg_same_shape(x, t)) return TG_OK;
    char sx[64], st[64];
    snprintf(why, len, "x %s and tangent %s: the tangent is of x's shape", tg__arg_shape_str(x, sx),
             tg__arg_shape_str(t, st));
    return TG_ERR_SHAPE;
}
#define OP_ROW(name)                                                                       \
    [U_##name] = {#name, 1, NULL, name##_forward, name##_backward, name##_vjp,        \
                  name##_jvp},
/* The step functions' derivative is 0 (tg__zero_backward). */
#define STEP_ROW(name)                                                                     \
    [U_##name] = {#name, 1, NULL, name##_forward, tg__zero_backward, tg__zero_vjp, NULL},
#define DX_ROW(name)                                                                       \
    [U_##name##_dx] = {#name "_dx", 2, dx_shape, name##_dx_forward, NULL, name##_dx_vjp,    \
                       name##_dx_jvp},
const tg_op tg_unary_ops[U_END] = {
    UNARY_OPS(OP_ROW, OP_ROW, OP_ROW, STEP_ROW) UNARY_OPS(NOTHING, NOTHING, DX_ROW, NOTHING)
    [U_TANGENT] = {"unary_tangent", 3, tangent_shape, tangent_forward, NULL, tangent_vjp,
                   tangent_jvp}};
const int tg_unary_count = U_END;

#define CONSTRUCTOR(name)                                                                  \
    tg_node *tg_##name(tg_node *x) { return tg__apply(&tg_unary_ops[U_##name], x, NULL, 0); }
UNARY_OPS(CONSTRUCTOR, CONSTRUCTOR, CONSTRUCTOR, CONSTRUCTOR)

tg_node *tg_unary_tangent(tg_node *y, tg_node *t) {
    if (!y || !t || tg__tape_of(y)->status)
        return tg__apply3(&tg_unary_ops[U_TANGENT], y, y, t, 0); /* names the error */
    const tg_op *op = tg_op_find(tg_node_op_name(y));
    bool unary = op >= tg_unary_ops && op < tg_unary_ops + U_COUNT;
    int u = unary ? (int)(op - tg_unary_ops) : 0;
    if (!unary || !tangent_of[u].forward) {
        tg_tape *tape = tg__tape_of(y);
        tg_fail(tape, TG_ERR_ARG,
                "unary_tangent: y is an output of '%s', not of a differentiable unary op "
                "other than neg and exp (tg_jvp gives the tangent of any op)",
                tg_node_op_name(y));
        return &tape->poison;
    }
    return tg__apply3(&tg_unary_ops[U_TANGENT], tg_node_input(y, 0), y, t, u);
}

/* The rules of compact scalars (src/engine/scalar.c): the value and the stored
 * derivative, from the element functions the 0-d kernels call. The
 * derivative nodes have none: they are recorded as 64-byte nodes. */
#define SCALAR_EVAL(name)                                                                  \
    static double name##_scalar(const double *x, double *p) {                              \
        double y = name##_y_f64(x[0]);                                                     \
        p[0] = name##_dx_f64(x[0], y);                                                     \
        return y;                                                                          \
    }
#define STEP_EVAL(name)                                                                    \
    static double name##_scalar(const double *x, double *p) {                              \
        (void)p;                                                                           \
        return name##_y_f64(x[0]);                                                         \
    }
UNARY_OPS(SCALAR_EVAL, SCALAR_EVAL, SCALAR_EVAL, STEP_EVAL)
#define SCALAR_ROW(name) [U_##name] = {U_##name == U_neg ? TG_CLS_NEG : TG_CLS_P1, name##_scalar},
#define STEP_SCALAR_ROW(name) [U_##name] = {TG_CLS_NONE, name##_scalar},
const tg_scalar_rule tg_unary_scalar[U_END] = {
    UNARY_OPS(SCALAR_ROW, SCALAR_ROW, SCALAR_ROW, STEP_SCALAR_ROW)};

#else /* kernel pass, once per dtype */

/* neg: a backward loop only; it is its own derivative op */
ELEMENTS(neg, -x, -1)
FWD_LOOP(neg)
DX_LOOP_AS(neg_bwd, neg, ACC)
DX_LOOP_AS(neg_bwdw, neg, WRITE)
VUNARY(exp, y)
DX_LOOP_AS(exp_bwd, exp, ACC)
DX_LOOP_AS(exp_bwdw, exp, WRITE)
VUNARY(log, 1 / x)
BWD_LOOP(log)
UNARY(sqrt, sqrt(x), (T)0.5 / y)
UNARY(abs, fabs(x), (x > 0) - (x < 0))
VUNARY(sin, cos(x))
VBWD(sin, x, cos, v[i])
VUNARY(cos, -sin(x))
VBWD(cos, x, sin, -v[i])
VUNARY(tanh, 1 - y * y)
BWD_LOOP(tanh)

/* (num + lo) / (1 + e) for 0 <= e <= 1, lo a rounding error of num, with
 * the rounding of 1 + e put back: 1 + e = s + t exactly (Fast2Sum), and
 * (num + lo) / (s + t) = q + (lo - q t) / s to first order, q = num / s.
 * Where the correction is NaN (q is inf or NaN) or 0, q is the result. Saves
 * up to an ulp, which sigmoid, silu and softplus' need to stay within 2. */
static inline T S(over_1pe)(T num, T lo, T e) {
    T s = 1 + e, t = (1 - s) + e, q = num / s;
    T fix = (lo - q * t) / s;
    return fix == fix && fix != 0 ? q + fix : q; /* q + 0 would turn -0 into +0 */
}
/* sigmoid from e = e^-|x|, which never overflows whatever |x|: 1 / (1 + e)
 * for x >= 0, e / (1 + e) below; no branch. */
static inline T S(sigmoid_from)(T x, T e) { return S(over_1pe)(x >= 0 ? 1 : e, 0, e); }
ELEMENTS(sigmoid, S(sigmoid_from)(x, exp(-fabs(x))), y * (1 - y))
VFWD(sigmoid, -fabs(x), exp, S(sigmoid_from)(x, v[i]))
BWD_LOOP(sigmoid)
/* NaN fails x < 0 and passes through, as in PyTorch (relu(-0) = -0 too);
 * relu'(0) = 0, and relu'(NaN) = 1 as PyTorch's rule (y <= 0 ? 0 : 1). */
UNARY(relu, x < 0 ? 0 : x, !(x <= 0))

/* Trigonometric and hyperbolic functions. The inverse ones take (1 - x)(1 + x)
 * rather than 1 - x^2, exact near |x| = 1 where the derivative is largest;
 * sqrt(x - 1) sqrt(x + 1) and hypot(x, 1) never overflow for huge x. At the
 * ends of the domain the derivative is infinite, as PyTorch gives:
 * asin'(+-1) = +inf, acos'(+-1) = -inf, acosh'(1) = +inf, atanh'(+-1) = +inf. */
VUNARY(tan, 1 + y * y)
BWD_LOOP(tan)
UNARY(asin, asin(x), 1 / sqrt((1 - x) * (1 + x)))
UNARY(acos, acos(x), -1 / sqrt((1 - x) * (1 + x)))
UNARY(atan, atan(x), 1 / (1 + x * x))
UNARY(sinh, sinh(x), cosh(x))
UNARY(cosh, cosh(x), sinh(x))
UNARY(asinh, asinh(x), 1 / hypot(x, 1))
UNARY(acosh, acosh(x), 1 / (sqrt(x - 1) * sqrt(x + 1)))
UNARY(atanh, atanh(x), 1 / ((1 - x) * (1 + x)))

/* a b - p exactly, for p = a b rounded (Dekker's product: each factor split
 * into halves of T's mantissa by Veltkamp's constant 2^(m/2) + 1). Not fma:
 * on baseline x86-64 that is a library call, which stops a loop
 * vectorising. Exact unless |a| or |b| is within 2^(m/2) of overflow (where
 * the callers discard it). */
#define SPLIT (TG_PASS_F32 ? 4097.0 : 134217729.0)
static inline T S(mul_lo)(T a, T b, T p) {
    T ca = (T)SPLIT * a, ah = ca - (ca - a), al = a - ah;
    T cb = (T)SPLIT * b, bh = cb - (cb - b), bl = b - bh;
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

/* e^(-k x^2) for k = 1 or 1/2, to a few ulps where exp(-x * x) would carry the
 * rounding of x * x, amplified x^2 times (256 ulps at x = 25): x^2 = h + l
 * exactly, and e^(-k l) = 1 - k l to T's precision; e = e^(-k h) comes from
 * the caller. Where e is 0 (also at x = +-inf, where l is NaN) the result is
 * that 0. */
static inline T S(neg_sq_fix)(T x, T k, T e) {
    T h = x * x, l = S(mul_lo)(x, x, h);
    return e != 0 ? e - e * (k * l) : e;
}
static inline T S(exp_neg_sq)(T x, T k) { return S(neg_sq_fix)(x, k, exp(-k * (x * x))); }
VUNARY(erf, (T)TWO_SQRTPI * S(exp_neg_sq)(x, 1))
VBWD(erf, -(x * x), exp, (T)TWO_SQRTPI * S(neg_sq_fix)(x, 1, v[i]))
UNARY(erfc, erfc(x), -(T)TWO_SQRTPI * S(exp_neg_sq)(x, 1))
VUNARY(log1p, 1 / (1 + x))
BWD_LOOP(log1p)
/* Not y + 1: for x < 0 that cancels (at x = -30 it loses 4 digits of e^x in
 * float64, all of them in float32 below x = -17). */
VUNARY(expm1, exp(x))
VBWD(expm1, x, exp, v[i])
UNARY(log2, log2(x), (T)LOG2E / x)
UNARY(log10, log10(x), (T)LOG10E / x)
UNARY(exp2, exp2(x), y * (T)LN2)
UNARY(cbrt, cbrt(x), 1 / (3 * y * y)) /* cbrt'(0) = +inf, from either side */
UNARY(square, x * x, 2 * x)
UNARY(reciprocal, 1 / x, -y * y)

/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no exponential of a positive
 * argument, and no 1 + tiny rounded away for x << 0. The derivative is
 * sigmoid(x). The forward loop's two vector calls are chained: e, then
 * log1p(e), in place. */
ELEMENTS(softplus, (x > 0 ? x : 0) + log1p(exp(-fabs(x))), S(sigmoid_from)(x, exp(-fabs(x))))
TG_VMATH_CLONES static void S(softplus_fwd)(size_t n, const void *vx, void *vy) {
    const T *px = vx;
    T *py = vy, v[VBLOCK];
    BLOCKS(n, i0, m) {
        for (size_t i = 0; i < m; i++) v[i] = -fabs(px[i0 + i]);
        S(tg__vexp)(m, v, v);
        S(tg__vlog1p)(m, v, v);
        for (size_t i = 0; i < m; i++) py[i0 + i] = (px[i0 + i] > 0 ? px[i0 + i] : 0) + v[i];
    }
}
VBWD(softplus, -fabs(x), exp, S(sigmoid_from)(x, v[i]))

/* 2 Phi(x) = erfc(-x / sqrt 2), Phi the standard normal CDF, with no
 * cancellation where 1 + erf(x / sqrt 2) would have it (x << 0). The
 * argument is rounded: -x / sqrt 2 = z + lo (lo from Dekker's product and
 * the constant's second part), and erfc's relative slope near z is about
 * 2z, so c = erfc(z) alone would be off by some x^2 ulps (400 at x = -30).
 * First order puts it right: erfc(z + lo) = erfc(z) - (2/sqrt pi) e^(-z^2)
 * lo, where e^(-z^2) = g = e^(-x^2/2) (needed to a few digits only; 0 at
 * +-inf, where lo is NaN). */
static inline T S(gelu_z)(T x) { return x * -(T)SQRT1_2; }
static inline T S(two_cdf)(T x, T g, T c) {
    T z = S(gelu_z)(x), lo = S(mul_lo)(x, -(T)SQRT1_2, z) - x * (T)SQRT1_2_LO;
    return g != 0 ? c - (T)TWO_SQRTPI * g * lo : c;
}
/* gelu(x) = x Phi(x) = (x/2) (c + k), c = erfc(z), k the correction of
 * two_cdf; rounded once: (x/2) c = p + p_lo exactly (Dekker), and y = p +
 * (p_lo + (x/2) k). Where that is NaN (Dekker's split overflows, |x| >
 * 2^996; or p is inf) or 0 (gelu(-0) = -0), p is the result. For x << 0 Phi underflows and the
 * value is the limit -0 (x = -inf included, where x * 0 would be NaN).
 * g = e^(-x^2/2) roughly. */
static inline T S(gelu_from)(T x, T g, T c) {
    T h = x * (T)0.5; /* x / 2 first: 2x may overflow */
    T k = S(two_cdf)(x, g, 0), p = h * c, fix = S(mul_lo)(h, c, p) + h * k;
    return c != 0 ? (fix == fix && fix != 0 ? p + fix : p) : -(T)0;
}
/* gelu'(x) = Phi(x) + x phi(x), phi(x) = g / sqrt(2 pi) the normal density
 * (here g to a few ulps: from neg_sq_fix); x phi(x) -> 0 at +-inf (where
 * x * 0 would be NaN). */
static inline T S(gelu_slope_from)(T x, T g, T c) {
    return S(two_cdf)(x, g, c) * (T)0.5 + (g != 0 ? x * g * (T)INV_SQRT2PI : 0);
}
ELEMENTS(gelu, S(gelu_from)(x, exp(x * x * (T)-0.5), erfc(S(gelu_z)(x))),
         S(gelu_slope_from)(x, S(exp_neg_sq)(x, (T)0.5), erfc(S(gelu_z)(x))))
/* The forward loop: g and c from two vector calls on two buffers. */
TG_VMATH_CLONES static void S(gelu_fwd)(size_t n, const void *vx, void *vy) {
    const T *px = vx;
    T *py = vy, g[VBLOCK], c[VBLOCK];
    BLOCKS(n, i0, m) {
        for (size_t i = 0; i < m; i++) {
            T x = px[i0 + i];
            g[i] = x * x * (T)-0.5;
            c[i] = S(gelu_z)(x);
        }
        S(tg__vexp)(m, g, g);
        S(tg__verfc)(m, c, c);
        for (size_t i = 0; i < m; i++) py[i0 + i] = S(gelu_from)(px[i0 + i], g[i], c[i]);
    }
}
/* The backward loop takes Phi(x) = y / x from the stored output (erfc is
 * the costly part) wherever y holds all of T's digits (not 0, subnormal or
 * near it: x = 0, tiny x, x << 0) and x is finite; a block with another
 * element (or a NaN) computes erfc as the forward loop does. */
#define Y_FULL (TG_PASS_F32 ? 0x1p-102 : 0x1p-969) /* least normal times 2^(digits) */
static inline int S(phi_from_y)(T x, T y) { return fabs(y) >= (T)Y_FULL && x - x == 0; }
#define GELU_DERIV(fn, STORE)                                                              \
    TG_VMATH_CLONES static void S(fn)(size_t n, const void *vx, const void *vy,             \
                                      const void *vg, void *vgx) {                         \
        const T *px = vx, *py = vy, *pg = vg;                                              \
        T *gx = vgx, g[VBLOCK], c[VBLOCK];                                                 \
        (void)pg;                                                                          \
        BLOCKS(n, i0, m) {                                                                 \
            int all = 1;                                                                   \
            for (size_t i = 0; i < m; i++) {                                               \
                T x = px[i0 + i];                                                          \
                g[i] = (T)-0.5 * (x * x);                                                  \
                all &= S(phi_from_y)(x, py[i0 + i]);                                       \
            }                                                                              \
            S(tg__vexp)(m, g, g);                                                          \
            if (all) {                                                                     \
                for (size_t i = 0; i < m; i++) {                                           \
                    T x = px[i0 + i], e = S(neg_sq_fix)(x, (T)0.5, g[i]);                  \
                    STORE(i0 + i, py[i0 + i] / x + x * e * (T)INV_SQRT2PI);                \
                }                                                                          \
                continue;                                                                  \
            }                                                                              \
            for (size_t i = 0; i < m; i++) c[i] = S(gelu_z)(px[i0 + i]);                   \
            S(tg__verfc)(m, c, c);                                                         \
            for (size_t i = 0; i < m; i++) {                                               \
                T x = px[i0 + i];                                                          \
                STORE(i0 + i, S(gelu_slope_from)(x, S(neg_sq_fix)(x, (T)0.5, g[i]), c[i])); \
            }                                                                              \
        }                                                                                  \
    }
GELU_DERIV(gelu_bwd, ACC)
GELU_DERIV(gelu_bwdw, WRITE)
GELU_DERIV(gelu_dxl, SET)

/* silu(x) = x sigmoid(x) = x / (1 + e) for x >= 0, x e / (1 + e) below,
 * e = e^-|x| as for sigmoid; the limit -0 at x = -inf, where x * 0 would be
 * NaN. Where e would be subnormal (x < -SHIFT_AT), it has lost bits that x e
 * scales up (48 ulps at x = -96 in float); there the vector call gets
 * x + KH instead (exact: both multiples of x's spacing; silu_arg), giving
 * v = e^x 2^64 / C with C = e^(64 ln 2 - KH), and x e = (x v C) 2^-64
 * rounds once into the subnormals (1 + e is 1 there). */
#define SHIFT_AT (TG_PASS_F32 ? 64 : 512)
#define SHIFT_KH (TG_PASS_F32 ? 0x1.62e43p+5 : 0x1.62e42fefa39fp+5)
#define SHIFT_C (TG_PASS_F32 ? 0.999999878102132232 : 0.999999999999994378763)
static inline T S(silu_arg)(T x) { return x < -SHIFT_AT ? x + (T)SHIFT_KH : -fabs(x); }
static inline T S(silu_from)(T x, T v) {
    int shifted = x < -SHIFT_AT, neg = x < 0; /* selects only: the loop vectorises */
    T m = v * (shifted ? (T)SHIFT_C : 1), p = x * m;
    /* x e = p + lo exactly, passed on (|x| <= SHIFT_AT: no overflow) */
    T lo = S(mul_lo)(x, m, p);
    lo = (neg & !shifted) ? lo : 0;
    T num = p * (shifted ? (T)0x1p-64 : 1);
    num = neg ? (m != 0 ? num : -(T)0) : x;
    return S(over_1pe)(num, lo, shifted ? 0 : v);
}
/* silu'(x) = s + x s (1 - s) with s = sigmoid(x), and s (1 - s) = e / (1 + e)^2
 * for e = e^-|x| (either sign), which has no 1 - s cancellation; x s (1 - s)
 * -> 0 at +-inf. */
static inline T S(silu_slope_from)(T x, T e) {
    T q = 1 / (1 + e);
    T s = x >= 0 ? q : e * q, d = e * q * q;
    return s + (d != 0 ? x * d : 0);
}
ELEMENTS(silu, S(silu_from)(x, exp(S(silu_arg)(x))), S(silu_slope_from)(x, exp(-fabs(x))))
VFWD(silu, S(silu_arg)(x), exp, S(silu_from)(x, v[i]))
VBWD(silu, -fabs(x), exp, S(silu_slope_from)(x, v[i]))

/* sign(+-0) = +0 (x + 0) as PyTorch; sign(NaN) = NaN (PyTorch says 0, but NaN
 * never vanishes here). round is rint: halves to even, as PyTorch. */
STEP(sign, x > 0 ? 1 : x < 0 ? -1 : x + 0)
STEP(floor, floor(x))
STEP(ceil, ceil(x))
STEP(round, rint(x))

#endif
