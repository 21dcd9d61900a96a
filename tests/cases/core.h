/*
 * The rows of the ops that predate the op families, for the registry walks
 * of test_nonfinite.c and test_agreement.c (included with TG_TEST_NONFINITE
 * defined, after the includer's ref_row, build_row, filled() and shape_3x4):
 * REFS_CORE lists {name, arity, ref} rows for the elementwise ops, each op's
 * definition in double from libm; BUILDS_CORE {name, build, expect} rows for
 * the others.
 */
#ifdef TG_TEST_NONFINITE

static double ref_neg(const double *x) { return -x[0]; }
static double ref_exp(const double *x) { return exp(x[0]); }
static double ref_log(const double *x) { return log(x[0]); }
static double ref_sqrt(const double *x) { return sqrt(x[0]); }
static double ref_abs(const double *x) { return fabs(x[0]); }
static double ref_sin(const double *x) { return sin(x[0]); }
static double ref_cos(const double *x) { return cos(x[0]); }
static double ref_tanh(const double *x) { return tanh(x[0]); }
static double ref_sigmoid(const double *x) { return 1 / (1 + exp(-x[0])); }
/* PyTorch: relu(NaN) = NaN. */
static double ref_relu(const double *x) { return isnan(x[0]) ? x[0] : x[0] > 0 ? x[0] : 0; }
static double ref_add(const double *x) { return x[0] + x[1]; }
static double ref_sub(const double *x) { return x[0] - x[1]; }
static double ref_mul(const double *x) { return x[0] * x[1]; }
static double ref_addcmul(const double *x) { return x[0] + x[1] * x[2]; }
static double ref_div(const double *x) { return x[0] / x[1]; }
static double ref_pow(const double *x) { return pow(x[0], x[1]); }

static tg_node *build_matmul(tg_tape *t, tg_dtype dt, double fill) {
    const int64_t s2[2] = {4, 2};
    return tg_matmul(filled(t, dt, 2, shape_3x4, fill), filled(t, dt, 2, s2, fill));
}
static tg_node *build_transpose(tg_tape *t, tg_dtype dt, double fill) {
    return tg_transpose(filled(t, dt, 2, shape_3x4, fill));
}
static tg_node *build_reshape(tg_tape *t, tg_dtype dt, double fill) {
    const int64_t s[1] = {12};
    return tg_reshape(filled(t, dt, 2, shape_3x4, fill), 1, s);
}
static tg_node *build_sum(tg_tape *t, tg_dtype dt, double fill) {
    return tg_sum_axis(filled(t, dt, 2, shape_3x4, fill), 1);
}
static tg_node *build_mean(tg_tape *t, tg_dtype dt, double fill) {
    return tg_mean(filled(t, dt, 2, shape_3x4, fill));
}
static tg_node *build_softmax(tg_tape *t, tg_dtype dt, double fill) {
    return tg_softmax(filled(t, dt, 2, shape_3x4, fill), 1);
}
static tg_node *build_log_softmax(tg_tape *t, tg_dtype dt, double fill) {
    return tg_log_softmax(filled(t, dt, 2, shape_3x4, fill), 0);
}
static tg_node *build_mse(tg_tape *t, tg_dtype dt, double fill) {
    return tg_mse(filled(t, dt, 2, shape_3x4, fill), filled(t, dt, 2, shape_3x4, 0.5));
}
static tg_node *build_softmax_xent(tg_tape *t, tg_dtype dt, double fill) {
    return tg_softmax_xent(filled(t, dt, 2, shape_3x4, fill), filled(t, dt, 2, shape_3x4, 0.25));
}

#define REFS_CORE                                                                          \
    {"neg", 1, ref_neg},   {"exp", 1, ref_exp},   {"log", 1, ref_log},                     \
    {"sqrt", 1, ref_sqrt}, {"abs", 1, ref_abs},   {"sin", 1, ref_sin},                     \
    {"cos", 1, ref_cos},   {"tanh", 1, ref_tanh}, {"sigmoid", 1, ref_sigmoid},             \
    {"relu", 1, ref_relu}, {"add", 2, ref_add},   {"sub", 2, ref_sub},                     \
    {"mul", 2, ref_mul},   {"div", 2, ref_div},   {"pow", 2, ref_pow},                     \
    {"addcmul", 3, ref_addcmul},
#define BUILDS_CORE                                                                        \
    {"matmul", build_matmul, NF_ALL}, {"transpose", build_transpose, NF_ALL},              \
    {"reshape", build_reshape, NF_ALL}, {"sum", build_sum, NF_ALL},                        \
    {"mean", build_mean, NF_ALL}, {"softmax", build_softmax, NF_ALL},                      \
    {"log_softmax", build_log_softmax, NF_ALL}, {"mse", build_mse, NF_ALL},                \
    {"softmax_xent", build_softmax_xent, NF_ALL},

#endif
