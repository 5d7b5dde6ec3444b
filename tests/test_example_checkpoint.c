// test_example_checkpoint.c: the examples' averaged checkpoints (examples/common/checkpoint.c).
#include <stdlib.h>

#include "tg_example.h"
#include "tg_safetensors.h"
#include "tg_test.h"
#include "tg_test_files.h"

static void make_scratch(void) { test_scratch_make("tg_example_checkpoint"); }
static void remove_scratch(void) { test_scratch_remove(); }

TestSuite(averaged_checkpoint, .init = make_scratch, .fini = remove_scratch);

// A float32 [2, 3] and a float64 [4] parameter from seed, an optimizer, and an average
// whose values differ from the parameters' after three "steps".
typedef struct {
    tg_params *p;
    tg_optim *opt;
    tg_param_average *avg;
} run;

static run run_new(uint64_t seed) {
    run r = {tg_params_new(), NULL, NULL};
    tg_params_add(r.p, "w", TG_F32, tg_shape2(2, 3));
    tg_params_add(r.p, "b", TG_F64, tg_shape1(4));
    r.opt = tg_optim_adam(r.p, (tg_adam_opts){.lr = 0.1});
    r.avg = tg_param_average_new(r.p, 0.5);
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < 2; i++) tg_tensor_fill_uniform(tg_params_at(r.p, i), &rng, -1, 1);
        cr_assert(tg_param_average_update(r.avg));
    }
    return r;
}

static void run_free(run *r) {
    tg_param_average_free(r->avg);
    tg_optim_free(r->opt);
    tg_params_free(r->p);
}

static bool same(const tg_tensor *a, const tg_tensor *b) {
    return a->numel == b->numel && memcmp(a->data, b->data, (size_t)a->numel * tg_dtype_size(a->dtype)) == 0;
}

Test(averaged_checkpoint, the_model_file_holds_the_averages_and_a_load_resumes_both) {
    for (int swapped = 0; swapped < 2; swapped++) {
        run a = run_new(1), b = run_new(2);
        if (swapped) tg_param_average_swap(a.avg); // a save leaves the swap as it found it
        tg_ex_common common = tg_ex_common_defaults("data", 1);
        common.save = scratch("m.safetensors");
        tg_ex_saver saver = tg_ex_saver_make("test", &common, NULL, NULL, 0);
        cr_assert(tg_ex_saver_save_averaged(&saver, a.p, a.opt, a.avg, NULL, 3, NULL));
        cr_assert_eq(tg_param_average_swapped(a.avg), swapped);
        if (swapped) tg_param_average_swap(a.avg);
        char err[512];
        tg_safetensors *f = tg_safetensors_open(common.save, err, sizeof err);
        cr_assert_not_null(f, "%s", err);
        cr_assert_eq(tg_safetensors_count(f), 2); // the state_dict alone: the online weights are elsewhere
        tg_tensor *read = tg_tensor_create(TG_F32, tg_shape2(2, 3), false);
        cr_assert(tg_safetensors_read_into(f, "w", read, err, sizeof err), "%s", err);
        cr_assert(same(read, tg_param_average_at(a.avg, 0)), "the model file's w is not the average");
        tg_safetensors_close(f);
        int64_t step = 0;
        cr_assert(tg_ex_checkpoint_load_averaged("test", common.save, b.p, b.opt, b.avg, NULL, &step));
        cr_assert_eq(step, 3);
        cr_assert_not(tg_param_average_swapped(b.avg));
        for (int i = 0; i < 2; i++) {
            cr_assert(same(tg_params_at(b.p, i), tg_params_at(a.p, i)), "parameter %d is not the trained one", i);
            cr_assert(same(tg_param_average_at(b.avg, i), tg_param_average_at(a.avg, i)), "average %d differs", i);
        }
        tg_tensor_free(read);
        run_free(&a), run_free(&b);
    }
}

Test(averaged_checkpoint, a_checkpoint_without_online_weights_does_not_resume_an_average) {
    run a = run_new(3), b = run_new(4);
    tg_ex_common common = tg_ex_common_defaults("data", 1);
    common.save = scratch("plain.safetensors");
    tg_ex_saver saver = tg_ex_saver_make("test", &common, NULL, NULL, 0);
    cr_assert(tg_ex_saver_save(&saver, a.p, a.opt, NULL, 1, NULL));
    tg_tensor *before = tg_tensor_create(TG_F32, tg_shape2(2, 3), false);
    tg_tensor_copy_from(before, tg_params_at(b.p, 0)->data);
    cr_assert_not(tg_ex_checkpoint_load_averaged("test", common.save, b.p, b.opt, b.avg, NULL, NULL));
    cr_assert(same(before, tg_params_at(b.p, 0)), "a failed load changed the parameters");
    cr_assert_not(tg_param_average_swapped(b.avg));
    tg_tensor_free(before);
    run_free(&a), run_free(&b);
}
