// A hand-unrolled Elman RNN passes gradcheck through 20 time steps: back-propagation through
// time comes from the tape alone, with nothing written for it.
#include "tg_test.h"

enum { T = 20, B = 2, I = 3, H = 4 };

typedef struct {
    tg_tensor *w_ih, *w_hh, *b_ih, *b_hh, *h0; // [H, I], [H, H], [H], [H], [B, H]
    tg_tensor *x[T];                            // each [B, I]
} elman;

// h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh); returns h_T.
static tg_tensor *elman_forward(tg_graph *g, void *ctx) {
    elman *m = ctx;
    tg_tensor *h = m->h0;
    for (int t = 0; t < T; t++)
        h = tg_tanh(g, tg_add(g, tg_linear(g, m->x[t], m->w_ih, m->b_ih), tg_linear(g, h, m->w_hh, m->b_hh)));
    return h;
}

Test(elman, gradcheck_through_20_steps) {
    elman m = {test_input(tg_shape2(H, I), 1, -0.8, 0.8), test_input(tg_shape2(H, H), 2, -0.8, 0.8),
               test_input(tg_shape1(H), 3, -0.5, 0.5),    test_input(tg_shape1(H), 4, -0.5, 0.5),
               test_input(tg_shape2(B, H), 5, -1, 1),      {0}};
    for (int t = 0; t < T; t++) m.x[t] = test_input(tg_shape2(B, I), 100 + t, -1, 1);
    tg_tensor *wrt[5 + T] = {m.w_ih, m.w_hh, m.b_ih, m.b_hh, m.h0};
    for (int t = 0; t < T; t++) wrt[5 + t] = m.x[t];
    ASSERT_GRADCHECK(elman_forward, &m, wrt, 5 + T);

    // The gradient really travels back all 20 steps: the first input's is not zero.
    double norm = 0;
    for (int i = 0; i < B * I; i++) norm += ((double *)m.x[0]->grad)[i] * ((double *)m.x[0]->grad)[i];
    cr_assert(norm > 1e-12, "no gradient reached x_0");
    for (int i = 0; i < 5 + T; i++) tg_tensor_free(wrt[i]);
}
