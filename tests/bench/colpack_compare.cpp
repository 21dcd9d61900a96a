/*
 * C1: the colourings of src/coloring.c against ColPack's (Debian's
 * libcolpack-dev, a C++ library without a C interface), on the patterns
 * the sparse drivers meet: the number of colours (= compressed passes) and
 * the time to colour, for each ColPack ordering.
 *   star colouring (Hessians):  the chained Rosenbrock Hessian (tridiagonal,
 *     n = 10^5), a band of half-width 4 (n = 10^5), a random symmetric
 *     pattern (n = 10^4, about 10 per row), an arrowhead (n = 10^4);
 *   column colouring (Jacobians): the optimal-control constraints of
 *     examples/optim/ipopt_control.c (N = 5 x 10^4), GradBench's ba shape
 *     (21 cameras, 11,315 points, 36,455 observations: 109,365 x 70,631),
 *     a random 10^4 x 10^4 pattern of 8 per row.
 * Each ColPack colouring is given the pattern in ADOL-C's compressed-row
 * format, as ADOL-C gives it; every colouring is checked (no two columns of
 * a row share a colour; no two neighbours, and no path on four vertices in
 * two colours, for the star colourings).
 *   usage: colpack_compare
 */
#include <ColPack/ColPackHeaders.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

extern "C" {
typedef struct tg_csr {
    int64_t rows, cols;
    int64_t *start;
    int32_t *col;
} tg_csr;
int tg__color_columns(const tg_csr *jac, int32_t *color);
int tg__color_star(const tg_csr *sym, int32_t *color);
}

using rows_t = std::vector<std::vector<int32_t>>;

static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

static tg_csr to_csr(const rows_t &r, int64_t cols, std::vector<int64_t> &start,
                     std::vector<int32_t> &col) {
    start.assign(1, 0);
    col.clear();
    for (auto &row : r) {
        col.insert(col.end(), row.begin(), row.end());
        start.push_back((int64_t)col.size());
    }
    return tg_csr{(int64_t)r.size(), cols, start.data(), col.data()};
}

/* ADOL-C's format: row i is {count, col...}. */
static std::vector<unsigned *> to_adolc(const rows_t &r, std::vector<std::vector<unsigned>> &keep) {
    keep.clear();
    std::vector<unsigned *> p;
    for (auto &row : r) {
        std::vector<unsigned> v{(unsigned)row.size()};
        for (int32_t c : row) v.push_back((unsigned)c);
        keep.push_back(v);
    }
    for (auto &v : keep) p.push_back(v.data());
    return p;
}

static bool columns_ok(const rows_t &r, const std::vector<int32_t> &color) {
    for (auto &row : r) {
        std::set<int32_t> seen;
        for (int32_t c : row)
            if (!seen.insert(color[c]).second) return false;
    }
    return true;
}

static bool star_ok(const rows_t &g, const std::vector<int32_t> &color) {
    for (int32_t b = 0; b < (int32_t)g.size(); b++)
        for (int32_t c : g[b]) {
            if (c == b) continue;
            if (color[b] == color[c]) return false;
            for (int32_t a : g[b])
                for (int32_t d : g[c])
                    if (a != b && a != c && d != b && d != c && a != d && color[a] == color[c] &&
                        color[b] == color[d])
                        return false;
        }
    return true;
}

static void star(const char *name, const rows_t &g) {
    std::vector<int64_t> start;
    std::vector<int32_t> col, color(g.size());
    tg_csr m = to_csr(g, (int64_t)g.size(), start, col);
    size_t most = 0;
    for (auto &row : g) most = std::max(most, row.size());
    double t0 = now();
    int k = tg__color_star(&m, color.data());
    double t1 = now();
    printf("bench=C1 kind=star pattern=%s n=%zu max_row=%zu tool=tapegrad colors=%d ms=%.1f ok=%d\n",
           name, g.size(), most, k, 1e3 * (t1 - t0), star_ok(g, color) ? 1 : 0);
    std::vector<std::vector<unsigned>> keep;
    for (const char *order : {"NATURAL", "LARGEST_FIRST", "SMALLEST_LAST", "INCIDENCE_DEGREE"}) {
        auto rows = to_adolc(g, keep);
        ColPack::GraphColoringInterface cp(SRC_MEM_ADOLC, rows.data(), (int)g.size());
        double c0 = now();
        cp.Coloring(order, "STAR");
        double c1 = now();
        std::vector<int> vc;
        cp.GetVertexColors(vc);
        std::vector<int32_t> c32(vc.begin(), vc.end());
        printf("bench=C1 kind=star pattern=%s n=%zu max_row=%zu tool=colpack_%s colors=%d ms=%.1f "
               "ok=%d\n", name, g.size(), most, order, cp.GetVertexColorCount(), 1e3 * (c1 - c0),
               star_ok(g, c32) ? 1 : 0);
    }
}

static void columns(const char *name, const rows_t &r, int64_t cols) {
    std::vector<int64_t> start;
    std::vector<int32_t> col, color((size_t)cols);
    tg_csr m = to_csr(r, cols, start, col);
    size_t most = 0;
    for (auto &row : r) most = std::max(most, row.size());
    double t0 = now();
    int k = tg__color_columns(&m, color.data());
    double t1 = now();
    printf("bench=C1 kind=columns pattern=%s rows=%zu cols=%lld max_row=%zu tool=tapegrad "
           "colors=%d ms=%.1f ok=%d\n", name, r.size(), (long long)cols, most, k, 1e3 * (t1 - t0),
           columns_ok(r, color) ? 1 : 0);
    std::vector<std::vector<unsigned>> keep;
    for (const char *order : {"NATURAL", "LARGEST_FIRST", "SMALLEST_LAST", "INCIDENCE_DEGREE"}) {
        auto rows = to_adolc(r, keep);
        ColPack::BipartiteGraphPartialColoringInterface cp(SRC_MEM_ADOLC, rows.data(),
                                                           (int)r.size(), (int)cols);
        double c0 = now();
        cp.PartialDistanceTwoColoring(order, "COLUMN_PARTIAL_DISTANCE_TWO");
        double c1 = now();
        std::vector<int> vc;
        cp.GetRightVertexColors(vc);
        std::vector<int32_t> c32(vc.begin(), vc.end());
        printf("bench=C1 kind=columns pattern=%s rows=%zu cols=%lld max_row=%zu "
               "tool=colpack_%s colors=%d ms=%.1f ok=%d\n", name, r.size(), (long long)cols,
               most, order, cp.GetVertexColorCount(), 1e3 * (c1 - c0),
               columns_ok(r, c32) ? 1 : 0);
    }
}

int main() {
    std::mt19937_64 rng(7);
    { /* tridiagonal */
        int n = 100000;
        rows_t g(n);
        for (int i = 0; i < n; i++)
            for (int j = std::max(0, i - 1); j <= std::min(n - 1, i + 1); j++) g[i].push_back(j);
        star("tridiagonal", g);
    }
    { /* band of half-width 4 */
        int n = 100000;
        rows_t g(n);
        for (int i = 0; i < n; i++)
            for (int j = std::max(0, i - 4); j <= std::min(n - 1, i + 4); j++) g[i].push_back(j);
        star("band4", g);
    }
    { /* random symmetric */
        int n = 10000;
        std::vector<std::set<int32_t>> s(n);
        for (int i = 0; i < n; i++) {
            s[i].insert(i);
            for (int k = 0; k < 5; k++) {
                int j = (int)(rng() % (uint64_t)n);
                s[i].insert(j);
                s[j].insert(i);
            }
        }
        rows_t g(n);
        for (int i = 0; i < n; i++) g[i].assign(s[i].begin(), s[i].end());
        star("random10", g);
    }
    { /* arrowhead: row 0 full */
        int n = 10000;
        rows_t g(n);
        for (int j = 0; j < n; j++) g[0].push_back(j);
        for (int i = 1; i < n; i++) g[i] = {0, i};
        star("arrowhead", g);
    }
    { /* optimal control: y_0..y_N, u_0..u_{N-1}; row 0 is y_0, row k+1 is y_k, y_{k+1}, u_k */
        int N = 50000;
        rows_t r(N + 1);
        r[0] = {0};
        for (int k = 0; k < N; k++) r[k + 1] = {k, k + 1, N + 1 + k};
        columns("control", r, 2 * N + 1);
    }
    { /* ba: cameras 11 columns each, points 3, weights 1 */
        int C = 21, P = 11315, O = 36455;
        int64_t cols = 11 * C + 3 * P + O;
        rows_t r;
        for (int o = 0; o < O; o++) {
            int c = o % C, p = (int)(rng() % (uint64_t)P);
            std::vector<int32_t> row;
            for (int k = 0; k < 11; k++) row.push_back(11 * c + k);
            for (int k = 0; k < 3; k++) row.push_back(11 * C + 3 * p + k);
            row.push_back(11 * C + 3 * P + o);
            r.push_back(row);
            r.push_back(row);
        }
        for (int o = 0; o < O; o++) r.push_back({(int32_t)(11 * C + 3 * P + o)});
        columns("ba", r, cols);
    }
    { /* random 10^4 x 10^4, 8 a row */
        int n = 10000;
        rows_t r(n);
        for (int i = 0; i < n; i++) {
            std::set<int32_t> s;
            while (s.size() < 8) s.insert((int32_t)(rng() % (uint64_t)n));
            r[i].assign(s.begin(), s.end());
        }
        columns("random8", r, n);
    }
    return 0;
}
