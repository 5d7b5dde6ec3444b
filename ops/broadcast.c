// broadcast.c: NumPy broadcasting as a loop plan.
//
// Shapes are aligned on their last dimension and padded on the left to 4 dims. Along a
// dimension where an input has size 1 and the output more, the input's stride is 0, so the
// same element is read for every output position. The backward passes use the same plan:
// accumulating into a stride-0 position sums over the broadcast dimension for free.
#include "tg_internal.h"
#include "tg_ops.h"

bool tg_broadcast(tg_graph *g, const char *op, int n, const tg_shape *shapes, tg_shape *out, tg_bcast *plan) {
    *plan = (tg_bcast){{1, 1, 1, 1}, {{0}}};
    int nd = 0;
    for (int k = 0; k < n; k++) nd = shapes[k].n > nd ? shapes[k].n : nd;
    out->n = nd;
    for (int d = 0; d < nd; d++) { // d counts from the right
        int64_t size = 1;
        for (int k = 0; k < n; k++) {
            int64_t s = d < shapes[k].n ? shapes[k].d[shapes[k].n - 1 - d] : 1;
            if (s == 1 || s == size) continue;
            if (size != 1) {
                char a[64], b[64], c[64] = "";
                tg_shape_str(shapes[0], a, sizeof a);
                tg_shape_str(shapes[1], b, sizeof b);
                if (n > 2) {
                    c[0] = ' ';
                    tg_shape_str(shapes[2], c + 1, sizeof c - 1);
                }
                tg_fail(g, op, "shapes %s and %s%s%s cannot broadcast (size %lld against %lld, dimension %d "
                               "from the right)",
                        a, b, n > 2 ? " and" : "", c, (long long)size, (long long)s, d + 1);
                return false;
            }
            size = s;
        }
        out->d[nd - 1 - d] = size;
        plan->out[3 - d] = size;
    }
    for (int k = 0; k < n; k++) {
        int64_t stride = 1;
        for (int d = 0; d < 4; d++) { // from the right
            int64_t s = d < shapes[k].n ? shapes[k].d[shapes[k].n - 1 - d] : 1;
            plan->stride[k][3 - d] = (s == 1) ? 0 : stride;
            stride *= s;
        }
    }
    return true;
}
