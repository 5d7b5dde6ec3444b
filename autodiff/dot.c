// dot.c: the tape as a Graphviz digraph, for looking at what a model records.
#include "tg_autodiff.h"
#include "tg_internal.h"

static void write_leaf(const tg_tensor *t, FILE *out) {
    char s[64];
    tg_shape_str(t->shape, s, sizeof s);
    if (t->name) // a parameter
        fprintf(out, "  t%p [shape=ellipse, style=filled, fillcolor=lightblue, label=\"%s\\n%s\"];\n",
                (const void *)t, t->name, s);
    else
        fprintf(out, "  t%p [shape=ellipse, label=\"%s\\n%s\"];\n", (const void *)t,
                t->requires_grad ? "input" : "constant", s);
}

void tg_graph_write_dot(const tg_graph *g, FILE *out) {
    fprintf(out, "digraph tapegrad {\n  rankdir=BT;\n  node [fontname=\"monospace\"];\n");
    size_t n_nodes = tg_graph_node_count(g);
    for (size_t i = 0; i < n_nodes; i++) {
        const tg_node *n = tg_graph_node(g, i);
        char s[64];
        fprintf(out, "  n%p [shape=box, label=\"%s\\n%s %s\"];\n", (const void *)n, n->op->name,
                tg_shape_str(n->out->shape, s, sizeof s), tg_dtype_name(n->out->dtype));
        for (int k = 0; k < n->n_in; k++) {
            const tg_tensor *x = n->in[k];
            if (!x) continue;
            if (x->node) {
                fprintf(out, "  n%p -> n%p;\n", (const void *)x->node, (const void *)n);
            } else {
                write_leaf(x, out);
                fprintf(out, "  t%p -> n%p;\n", (const void *)x, (const void *)n);
            }
        }
    }
    fprintf(out, "}\n");
}
