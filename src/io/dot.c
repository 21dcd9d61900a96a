/*
 * tg_dot_write: a tape as a Graphviz digraph. Each node is an HTML-like
 * table (op, shape, value in green, gradient in red); edges follow the data,
 * from inputs to the ops that use them.
 */
#include "tape.h"

#include <math.h>
#include <string.h>

#define VALUE_COLOR "#1a7f37" /* green: forward values */
#define GRAD_COLOR "#cf222e"  /* red: gradients */

/* Writes s with the characters that are markup in HTML-like labels escaped. */
static void put_escaped(FILE *out, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\n': fputs(" ", out); break;
        default: fputc(*s, out);
        }
    }
}

/* Up to max of the node's values or gradients: "-12" for a scalar,
 * "[1, 2, 3, ...]" for a tensor. */
static void put_values(FILE *out, const tg_node *n, bool grad, int max) {
    int64_t k = tg_numel(n);
    if (tg_ndim(n) == 0) {
        fprintf(out, "%.6g", grad ? tg_grad_at(n, 0) : tg_value_at(n, 0));
        return;
    }
    fputc('[', out);
    for (int64_t i = 0; i < k && i < max; i++)
        fprintf(out, i ? ", %.4g" : "%.4g", grad ? tg_grad_at(n, i) : tg_value_at(n, i));
    fputs(k > max ? ", ...]" : "]", out);
}

static const char *kind(const tg_node *n) {
    if (tg_node_arity(n)) return tg_node_op_name(n);
    if (tg_requires_grad(n)) return "variable";
    return tg_ndim(n) ? "input" : "constant";
}

int tg_dot_write(const tg_tape *t, FILE *out) { return tg_dot_write_with(t, out, NULL); }

int tg_dot_write_with(const tg_tape *t, FILE *out, const tg_dot_opts *opts) {
    if (!t || !out) return TG_ERR_NULL;
    tg_dot_opts o;
    if (opts)
        o = *opts;
    else
        memset(&o, 0, sizeof o);
    int max = o.max_values > 0 ? o.max_values : 6;

    fprintf(out, "digraph tapegrad {\n  graph [rankdir=%s, fontname=\"Helvetica\"",
            o.top_down ? "TB" : "LR");
    if (o.title) {
        fputs(", labelloc=t, label=<<b>", out);
        put_escaped(out, o.title);
        fputs("</b>>", out);
    }
    fputs("];\n  node [shape=plaintext, fontname=\"Helvetica\", fontsize=11];\n"
          "  edge [color=\"#555555\", arrowsize=0.7, fontname=\"Helvetica\", fontsize=9, fontcolor=\"#555555\"];\n",
          out);
    for (size_t i = 0; i < t->nnodes; i++) {
        const tg_node *n = tg__node_at(t, i);
        fprintf(out,
                "  n%zu [label=<<table border=\"1\" cellborder=\"0\" cellspacing=\"0\" "
                "cellpadding=\"3\" bgcolor=\"%s\">",
                i, tg_node_arity(n) ? "white" : "#f3f3f3");
        const char *name = o.name ? o.name(n, o.ctx) : NULL;
        if (name && *name) {
            fputs("<tr><td><b>", out);
            put_escaped(out, name);
            fputs("</b></td></tr>", out);
        }
        fputs("<tr><td>", out);
        put_escaped(out, kind(n));
        fputs("</td></tr>", out);
        if (tg_ndim(n) || tg_node_dtype(n) != TG_F64) {
            char s[64];
            fprintf(out, "<tr><td>%s %s</td></tr>", tg__shape_str(n, s),
                    tg_node_dtype(n) == TG_F64 ? "float64" : "float32");
        }
        fputs("<tr><td><font color=\"" VALUE_COLOR "\">value ", out);
        put_values(out, n, false, max);
        fputs("</font></td></tr>", out);
        if (tg__grad_of(n)) {
            fputs("<tr><td><font color=\"" GRAD_COLOR "\">grad ", out);
            put_values(out, n, true, max);
            fputs("</font></td></tr>", out);
        }
        fputs("</table>>];\n", out);
    }
    for (size_t i = 0; i < t->nnodes; i++) {
        const tg_node *n = tg__node_at(t, i);
        int arity = tg_node_arity(n);
        for (int k = 0; k < arity; k++) {
            fprintf(out, "  n%zu -> n%zu", tg__id(tg_node_input(n, k)), i);
            if (arity > 1) fprintf(out, " [label=\"%c\"]", 'a' + k);
            fputs(";\n", out);
        }
    }
    fputs("}\n", out);
    return fflush(out) || ferror(out) ? TG_ERR_IO : TG_OK;
}
