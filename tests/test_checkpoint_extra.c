// Checkpoints with extra tensors in the training-state file (tg_checkpoint_save_extra and
// tg_checkpoint_load_extra): they travel exactly, the model file stays the state_dict, and
// one side's names missing on the other are reported as for the optimizer's buffers.
#include <stdio.h>
#include <stdlib.h>

#include "tg_checkpoint.h"
#include "tg_safetensors.h"
#include "tg_test.h"
#include "tg_test_files.h"

static void make_scratch(void) { test_scratch_make("tg_checkpoint_extra"); }
static void remove_scratch(void) { test_scratch_remove(); }

TestSuite(checkpoint_extra, .init = make_scratch, .fini = remove_scratch);

// Two parameters and Adam after one step, everything drawn from seed; an extra tensor per
// parameter, named "online.<name>", of its shape and dtype.
typedef struct {
    tg_params *p;
    tg_optim *opt;
    tg_tensor *extra[2];
    const char *names[2];
    tg_checkpoint_extra x;
} state;

// Fills *s in place: s->x points into it.
static void state_init(state *s_, uint64_t seed) {
    state s = {.p = tg_params_new(), .names = {"online.w", "online.b"}};
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    tg_params_add(s.p, "w", TG_F32, tg_shape2(3, 2));
    tg_params_add(s.p, "b", TG_F64, tg_shape1(3));
    s.opt = tg_optim_adam(s.p, (tg_adam_opts){.lr = 0.05});
    for (int i = 0; i < 2; i++) {
        tg_tensor *t = tg_params_at(s.p, i);
        tg_tensor_fill_uniform(t, &rng, -1, 1);
        s.extra[i] = tg_tensor_create(t->dtype, t->shape, false);
        tg_tensor_fill_uniform(s.extra[i], &rng, -1, 1);
    }
    tg_optim_step(s.opt);
    *s_ = s;
    s_->x = (tg_checkpoint_extra){2, s_->names, s_->extra};
}

static void state_free(state *s) {
    for (int i = 0; i < 2; i++) tg_tensor_free(s->extra[i]);
    tg_optim_free(s->opt);
    tg_params_free(s->p);
}

static bool same_values(const tg_tensor *a, const tg_tensor *b) {
    return a->dtype == b->dtype && a->numel == b->numel &&
           memcmp(a->data, b->data, (size_t)a->numel * tg_dtype_size(a->dtype)) == 0;
}

Test(checkpoint_extra, extra_tensors_travel_exactly_and_stay_out_of_the_model_file) {
    state a, b;
    state_init(&a, 1), state_init(&b, 2);
    const char *path = scratch("m.safetensors");
    char err[1024];
    cr_assert(tg_checkpoint_save_extra(path, a.p, a.opt, &a.x, NULL, 7, NULL, err, sizeof err), "%s", err);
    int64_t step = 0;
    cr_assert(tg_checkpoint_load_extra(path, b.p, b.opt, &b.x, NULL, &step, NULL, true, err, sizeof err), "%s", err);
    cr_assert_eq(step, 7);
    for (int i = 0; i < 2; i++) {
        cr_assert(same_values(b.extra[i], a.extra[i]), "extra %s differs", a.names[i]);
        cr_assert(same_values(tg_params_at(b.p, i), tg_params_at(a.p, i)));
    }
    tg_safetensors *f = tg_safetensors_open(path, err, sizeof err); // what PyTorch would load
    cr_assert_not_null(f, "%s", err);
    cr_assert_eq(tg_safetensors_count(f), 2);
    cr_assert_null(tg_safetensors_find(f, "online.w", NULL) ? "found" : NULL);
    tg_safetensors_close(f);
    state_free(&a), state_free(&b);
}

Test(checkpoint_extra, a_side_without_the_extra_is_reported_and_nothing_changes) {
    state a, b;
    state_init(&a, 3), state_init(&b, 4);
    const char *with = scratch("with.safetensors"), *without = scratch("without.safetensors");
    char err[2048];
    cr_assert(tg_checkpoint_save_extra(with, a.p, a.opt, &a.x, NULL, 1, NULL, err, sizeof err), "%s", err);
    cr_assert(tg_checkpoint_save(without, a.p, a.opt, NULL, 1, NULL, err, sizeof err), "%s", err);
    int64_t step = -1;
    cr_assert_not(tg_checkpoint_load(with, b.p, b.opt, NULL, &step, NULL, true, err, sizeof err));
    cr_assert(strstr(err, "unexpected") && strstr(err, "\"online.w\"") && strstr(err, "\"online.b\""), "%s", err);
    cr_assert_not(tg_checkpoint_load_extra(without, b.p, b.opt, &b.x, NULL, &step, NULL, true, err, sizeof err));
    cr_assert(strstr(err, "missing") && strstr(err, "\"online.w\""), "%s", err);
    cr_assert_eq(step, -1);
    for (int i = 0; i < 2; i++) cr_assert_not(same_values(b.extra[i], a.extra[i]), "a failed load changed extra");
    state_free(&a), state_free(&b);
}

Test(checkpoint_extra, extra_of_the_wrong_shape_or_without_an_optimizer_is_refused) {
    state a, b;
    state_init(&a, 5), state_init(&b, 6);
    const char *path = scratch("m.safetensors");
    char err[2048];
    cr_assert(tg_checkpoint_save_extra(path, a.p, a.opt, &a.x, NULL, 1, NULL, err, sizeof err), "%s", err);
    tg_tensor *wrong = tg_tensor_create(TG_F32, tg_shape2(2, 3), false), *saved = b.extra[0];
    b.extra[0] = wrong;
    cr_assert_not(tg_checkpoint_load_extra(path, b.p, b.opt, &b.x, NULL, NULL, NULL, true, err, sizeof err));
    cr_assert(strstr(err, "online.w") && strstr(err, "[2, 3]"), "%s", err);
    b.extra[0] = saved;
    cr_assert_not(tg_checkpoint_load_extra(path, b.p, NULL, &b.x, NULL, NULL, NULL, true, err, sizeof err));
    cr_assert(strstr(err, "no optimizer"), "%s", err);
    const char *no_names[2] = {"online.w", NULL};
    tg_checkpoint_extra bad = {2, no_names, b.extra};
    cr_assert_not(tg_checkpoint_save_extra(scratch("bad.safetensors"), a.p, a.opt, &bad, NULL, 1, NULL, err,
                                           sizeof err));
    cr_assert(strstr(err, "NULL names or tensors"), "%s", err);
    tg_tensor_free(wrong);
    state_free(&a), state_free(&b);
}
