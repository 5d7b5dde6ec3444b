// consumer.c: a program outside the tapegrad tree, built against an installed tapegrad.
// y = tanh(x * w) for scalars x = 0.5, w = 2; backward gives
//   dy/dw = x * (1 - tanh(x*w)^2) = 0.2099871708...
//   dy/dx = w * (1 - tanh(x*w)^2) = 0.8399486832...
// check.sh compares the printed line with those values.
#include <stdio.h>

#include <tapegrad.h>

int main(void) {
    tg_graph *g = tg_graph_new();
    tg_tensor *x = tg_tensor_create(TG_F64, tg_shape1(1), true);
    tg_tensor *w = tg_tensor_create(TG_F64, tg_shape1(1), true);
    if (!g || !x || !w) {
        fprintf(stderr, "consumer: out of memory\n");
        return 1;
    }
    tg_tensor_set(x, 0, 0.5);
    tg_tensor_set(w, 0, 2.0);

    tg_tensor *y = tg_tanh(g, tg_mul(g, x, w)); // [1]
    if (!y || !tg_backward(g, y)) return 1;
    printf("tapegrad %s: y=%.6f dy/dw=%.6f dy/dx=%.6f\n", TAPEGRAD_VERSION, tg_tensor_get(y, 0),
           ((const double *)w->grad)[0], ((const double *)x->grad)[0]);

    tg_graph_free(g);
    tg_tensor_free(x);
    tg_tensor_free(w);
    return 0;
}
