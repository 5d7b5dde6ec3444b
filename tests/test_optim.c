// Optimizers, schedules and clipping against PyTorch: tests/data/optim/optim.safetensors,
// written by scripts/fixtures/make_optim_fixtures.py (format: tests/data/optim/README.md).
#include <stdlib.h>

#include "tg_optim.h"
#include "tg_safetensors.h"
#include "tg_test.h"

// float64 agreement with torch: rounding differences only (never loosen).
#define F64_ATOL 1e-12
#define F64_RTOL 1e-10
// float32 runs against torch's float64 trajectory: float rounding of values, gradients and
// every intermediate, over 5 steps.
#define F32_ATOL 1e-6
#define F32_RTOL 1e-5

// The cases and schedules this file checks; the fixture must list exactly these.
static const char *const CASES[] = {
    "sgd", "sgd_momentum", "sgd_nesterov_wd", "sgd_dampening", "adam", "adam_wd", "adam_amsgrad", "adamw",
    "adamw_amsgrad", "sgd_clip", "sgd_momentum_clip", "sgd_nesterov_wd_clip", "sgd_dampening_clip", "adam_clip",
    "adam_wd_clip", "adam_amsgrad_clip", "adamw_clip", "adamw_amsgrad_clip", "sgd_momentum_clipvalue",
    "adamw_cosine"};
#define N_CASES ((int)(sizeof CASES / sizeof *CASES))
static const char *const SCHEDULES[] = {"step",   "step_default_gamma", "exponential", "cosine", "cosine_zero_min",
                                        "linear_default", "linear"};
#define N_SCHEDULES ((int)(sizeof SCHEDULES / sizeof *SCHEDULES))

// --- The fixture ---

static tg_safetensors *open_fixture(void) {
    // The data lies beside this source file, wherever the build directory is.
    char path[4096], err[512];
    const char *slash = strrchr(__FILE__, '/');
    snprintf(path, sizeof path, "%.*sdata/optim/optim.safetensors", slash ? (int)(slash - __FILE__ + 1) : 0,
             __FILE__);
    tg_safetensors *f = tg_safetensors_open(path, err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    return f;
}

static const char *meta(const tg_safetensors *f, const char *key) {
    const char *v = tg_safetensors_metadata(f, key);
    cr_assert_not_null(v, "fixture metadata has no \"%s\"", key);
    return v;
}

static void read_into(const tg_safetensors *f, const char *name, tg_tensor *t) {
    char err[512];
    cr_assert(tg_safetensors_read_into(f, name, t, err, sizeof err), "%s", err);
}

// The fixture's parameters, in its order, at their initial values, as dtype; dtype_of (when
// not NULL) picks a dtype per parameter instead.
static tg_params *load_params(const tg_safetensors *f, tg_dtype dtype, tg_dtype (*dtype_of)(int i)) {
    char names[512], *save = NULL, key[256];
    snprintf(names, sizeof names, "%s", meta(f, "params"));
    tg_params *p = tg_params_new();
    int i = 0;
    for (char *n = strtok_r(names, " ", &save); n; n = strtok_r(NULL, " ", &save), i++) {
        tg_safetensors_tensor info;
        snprintf(key, sizeof key, "init.%s", n);
        cr_assert(tg_safetensors_find(f, key, &info), "no %s", key);
        tg_shape shape = {info.ndim, {0}};
        for (int d = 0; d < info.ndim; d++) shape.d[d] = info.shape[d];
        tg_tensor *t = tg_params_add(p, n, dtype_of ? dtype_of(i) : dtype, shape);
        read_into(f, key, t);
    }
    cr_assert_eq(i, 5, "the fixture has %d parameters", i);
    return p;
}

// Sets every gradient to the fixture's gradient of backward pass k.
static void load_grads(const tg_safetensors *f, tg_params *p, int k) {
    char key[256];
    for (int i = 0; i < tg_params_count(p); i++) {
        tg_tensor view = *tg_params_at(p, i); // the same tensor with data pointing at its grad
        view.data = view.grad;
        snprintf(key, sizeof key, "grad.%d.%s", k, view.name);
        read_into(f, key, &view);
    }
}

// Asserts t equals the fixture's float64 tensor key within atol + rtol*|expected|.
static void assert_matches(const tg_safetensors *f, const char *key, const tg_tensor *t, double atol, double rtol) {
    tg_tensor *want = tg_tensor_create(TG_F64, t->shape, false);
    read_into(f, key, want);
    for (int64_t i = 0; i < t->numel; i++) {
        double a = tg_tensor_get(t, i), e = tg_tensor_get(want, i);
        cr_assert(fabs(a - e) <= atol + rtol * fabs(e), "%s[%lld] = %.17g, torch %.17g (diff %.3g)", key, (long long)i,
                  a, e, fabs(a - e));
    }
    tg_tensor_free(want);
}

// --- A case's spec: "<sgd|adam|adamw> key=value ...", the fixture's metadata ---

typedef struct {
    char kind[8];
    tg_sgd_opts sgd;
    tg_adam_opts adam;    // fields not in the spec stay 0: tapegrad's "torch default"
    double clip_norm;     // 0: no clip_grad_norm_
    double clip_value;    // 0: no clip_grad_value_
    tg_lr_schedule sched; // kind TG_LR_CONSTANT unless cosine_* is given
} case_spec;

static case_spec parse_case(const char *spec) {
    case_spec c;
    memset(&c, 0, sizeof c);
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", spec);
    char *w = strtok_r(buf, " ", &save);
    cr_assert(w && strlen(w) < sizeof c.kind, "bad spec \"%s\"", spec);
    strcpy(c.kind, w);
    while ((w = strtok_r(NULL, " ", &save))) {
        char *eq = strchr(w, '=');
        cr_assert_not_null(eq, "bad word \"%s\" in \"%s\"", w, spec);
        *eq = 0;
        double v = strtod(eq + 1, NULL);
        bool sgd = strcmp(c.kind, "sgd") == 0;
        if (!strcmp(w, "lr")) sgd ? (c.sgd.lr = v) : (c.adam.lr = v);
        else if (!strcmp(w, "momentum")) c.sgd.momentum = v;
        else if (!strcmp(w, "dampening")) c.sgd.dampening = v;
        else if (!strcmp(w, "nesterov")) c.sgd.nesterov = v != 0;
        else if (!strcmp(w, "weight_decay")) sgd ? (c.sgd.weight_decay = v) : (c.adam.weight_decay = v);
        else if (!strcmp(w, "beta1")) c.adam.beta1 = v;
        else if (!strcmp(w, "beta2")) c.adam.beta2 = v;
        else if (!strcmp(w, "eps")) c.adam.eps = v;
        else if (!strcmp(w, "amsgrad")) c.adam.amsgrad = v != 0;
        else if (!strcmp(w, "clip_norm")) c.clip_norm = v;
        else if (!strcmp(w, "clip_value")) c.clip_value = v;
        else if (!strcmp(w, "cosine_t_max")) c.sched.kind = TG_LR_COSINE, c.sched.t_max = (int64_t)v;
        else if (!strcmp(w, "cosine_eta_min")) c.sched.eta_min = v;
        else cr_assert_fail("unknown option \"%s\" in \"%s\"", w, spec);
    }
    return c;
}

static tg_optim *make_optim(tg_params *p, const case_spec *c) {
    if (!strcmp(c->kind, "sgd")) return tg_optim_sgd(p, c->sgd);
    if (!strcmp(c->kind, "adam")) return tg_optim_adam(p, c->adam);
    cr_assert_str_eq(c->kind, "adamw");
    return tg_optim_adamw(p, c->adam);
}

// One training step as the fixture script takes it: gradients, clipping, schedule, update.
static void train_step(const tg_safetensors *f, tg_params *p, tg_optim *o, const case_spec *c, double base_lr,
                       int k) {
    bool f64 = true;
    for (int i = 0; i < tg_params_count(p); i++) f64 = f64 && tg_params_at(p, i)->dtype == TG_F64;
    load_grads(f, p, k);
    if (c->clip_norm > 0) {
        // Returns the norm of the raw gradients: torch's value (at float rounding when any
        // gradient is float32).
        double norm = tg_clip_grad_norm(p, c->clip_norm);
        tg_tensor *want = tg_tensor_create(TG_F64, tg_shape1(5), false);
        read_into(f, "clip.total_norm", want);
        ASSERT_CLOSE(norm, tg_tensor_get(want, k), f64 ? F64_ATOL : F32_ATOL, f64 ? F64_RTOL : F32_RTOL);
        tg_tensor_free(want);
    }
    if (c->clip_value > 0) tg_clip_grad_value(p, c->clip_value);
    if (c->sched.kind != TG_LR_CONSTANT) tg_optim_set_lr(o, tg_lr_at(&c->sched, base_lr, k));
    tg_optim_step(o);
}

// Replays case `name` with parameters of dtype (per parameter with dtype_of) and checks
// every parameter after every step, and the final state, against torch.
static void check_case(const char *name, tg_dtype dtype, tg_dtype (*dtype_of)(int i)) {
    tg_safetensors *f = open_fixture();
    char key[256];
    snprintf(key, sizeof key, "case.%s", name);
    case_spec c = parse_case(meta(f, key));
    tg_params *p = load_params(f, dtype, dtype_of);
    tg_optim *o = make_optim(p, &c);
    cr_assert_not_null(o);
    double base_lr = tg_optim_lr(o);
    for (int k = 0; k < 5; k++) {
        train_step(f, p, o, &c, base_lr, k);
        cr_assert_eq(tg_optim_step_count(o), k + 1);
        for (int i = 0; i < tg_params_count(p); i++) {
            tg_tensor *t = tg_params_at(p, i);
            bool f64 = t->dtype == TG_F64;
            snprintf(key, sizeof key, "%s.%d.%s", name, k, t->name);
            assert_matches(f, key, t, f64 ? F64_ATOL : F32_ATOL, f64 ? F64_RTOL : F32_RTOL);
        }
    }
    // Every state tensor is torch's buffer of the same name, and torch has no others.
    int n_torch = 0;
    for (int i = 0; i < tg_safetensors_count(f); i++) {
        snprintf(key, sizeof key, "%s.state.", name);
        n_torch += strncmp(tg_safetensors_name(f, i), key, strlen(key)) == 0;
    }
    cr_assert_eq(tg_optim_state_count(o), n_torch, "%s: %d state tensors, torch has %d", name,
                 tg_optim_state_count(o), n_torch);
    for (int i = 0; i < tg_optim_state_count(o); i++) {
        const char *sname;
        tg_tensor *s = tg_optim_state_at(o, i, &sname);
        cr_assert(strncmp(sname, "optim.", 6) == 0, "%s", sname);
        tg_tensor *param = tg_params_at(p, i / (n_torch / tg_params_count(p))); // state is grouped by parameter
        cr_assert(s->dtype == param->dtype && tg_shape_equal(s->shape, param->shape), "%s", sname);
        snprintf(key, sizeof key, "%s.state.%s", name, sname + 6);
        bool f64 = s->dtype == TG_F64;
        assert_matches(f, key, s, f64 ? F64_ATOL : F32_ATOL, f64 ? F64_RTOL : F32_RTOL);
    }
    tg_optim_free(o);
    tg_params_free(p);
    tg_safetensors_close(f);
}

Test(optim_torch, fixture_lists_exactly_our_cases_and_schedules) {
    tg_safetensors *f = open_fixture();
    char want[2048] = "";
    for (int i = 0; i < N_CASES; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", i ? " " : "", CASES[i]);
    cr_assert_str_eq(meta(f, "cases"), want);
    want[0] = 0;
    for (int i = 0; i < N_SCHEDULES; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", i ? " " : "", SCHEDULES[i]);
    cr_assert_str_eq(meta(f, "schedules"), want);
    cr_assert_str_eq(meta(f, "steps"), "5");
    tg_safetensors_close(f);
}

Test(optim_torch, float64_trajectories) {
    for (int i = 0; i < N_CASES; i++) check_case(CASES[i], TG_F64, NULL);
}

Test(optim_torch, float32_follows_the_float64_trajectory) {
    for (int i = 0; i < N_CASES; i++) check_case(CASES[i], TG_F32, NULL);
}

static tg_dtype alternate(int i) { return i % 2 ? TG_F32 : TG_F64; }

Test(optim_torch, mixed_dtypes_keep_state_in_each_parameters_dtype) {
    // float64 parameters still match torch to rounding when float32 ones share the optimizer.
    check_case("adam_amsgrad", TG_F64, alternate); // no clipping: its norm would mix float32 rounding in
    check_case("sgd_nesterov_wd", TG_F64, alternate);
    tg_safetensors *f = open_fixture();
    tg_params *p = load_params(f, TG_F64, alternate);
    tg_optim *o = tg_optim_adam(p, (tg_adam_opts){.amsgrad = true});
    cr_assert_eq(tg_optim_state_count(o), 3 * tg_params_count(p));
    for (int i = 0; i < tg_optim_state_count(o); i++)
        cr_assert_eq(tg_optim_state_at(o, i, NULL)->dtype, tg_params_at(p, i / 3)->dtype);
    tg_optim_free(o);
    tg_params_free(p);
    tg_safetensors_close(f);
}

// A checkpoint in the middle: two steps, state and step count copied into a new optimizer,
// three more steps, and the trajectory is still torch's.
static void check_resume(const char *name) {
    tg_safetensors *f = open_fixture();
    char key[256];
    snprintf(key, sizeof key, "case.%s", name);
    case_spec c = parse_case(meta(f, key));
    tg_params *p = load_params(f, TG_F64, NULL);
    tg_optim *a = make_optim(p, &c);
    double base_lr = tg_optim_lr(a);
    for (int k = 0; k < 2; k++) train_step(f, p, a, &c, base_lr, k);
    tg_optim *b = make_optim(p, &c);
    cr_assert_eq(tg_optim_state_count(a), tg_optim_state_count(b));
    for (int i = 0; i < tg_optim_state_count(a); i++) {
        const char *sname;
        tg_tensor *from = tg_optim_state_at(a, i, &sname), *to = tg_optim_state_find(b, sname);
        cr_assert_not_null(to, "%s", sname);
        tg_tensor_copy_from(to, from->data);
    }
    tg_optim_set_step_count(b, tg_optim_step_count(a));
    tg_optim_free(a);
    for (int k = 2; k < 5; k++) train_step(f, p, b, &c, base_lr, k);
    for (int i = 0; i < tg_params_count(p); i++) {
        snprintf(key, sizeof key, "%s.4.%s", name, tg_params_at(p, i)->name);
        assert_matches(f, key, tg_params_at(p, i), F64_ATOL, F64_RTOL);
    }
    tg_optim_free(b);
    tg_params_free(p);
    tg_safetensors_close(f);
}

Test(optim_state, resume_from_copied_state) {
    check_resume("sgd_dampening"); // the momentum buffer must not be re-initialised
    check_resume("adam_amsgrad");  // bias corrections need the step count
    check_resume("adamw_cosine");
}

Test(optim_state, names_follow_torch_buffers) {
    tg_safetensors *f = open_fixture();
    tg_params *p = load_params(f, TG_F64, NULL);
    const char *name;
    tg_optim *o = tg_optim_sgd(p, (tg_sgd_opts){.lr = 0.1});
    cr_assert_eq(tg_optim_state_count(o), 0, "plain SGD has no state");
    cr_assert_null(tg_optim_state_at(o, 0, &name));
    tg_optim_free(o);
    o = tg_optim_sgd(p, (tg_sgd_opts){.lr = 0.1, .momentum = 0.9});
    cr_assert_eq(tg_optim_state_count(o), 5);
    tg_optim_state_at(o, 1, &name);
    cr_assert_str_eq(name, "optim.linear.bias.momentum_buffer");
    tg_optim_free(o);
    o = tg_optim_adamw(p, (tg_adam_opts){.amsgrad = true});
    cr_assert_eq(tg_optim_state_count(o), 15);
    tg_tensor *t = tg_optim_state_at(o, 0, &name);
    cr_assert_str_eq(name, "optim.linear.weight.exp_avg");
    cr_assert(tg_shape_equal(t->shape, tg_shape2(3, 4)));
    tg_optim_state_at(o, 14, &name);
    cr_assert_str_eq(name, "optim.small.bias.max_exp_avg_sq");
    cr_assert_eq(tg_optim_state_find(o, "optim.gain.exp_avg_sq"), tg_optim_state_at(o, 10, NULL));
    cr_assert_null(tg_optim_state_find(o, "optim.gain.momentum_buffer"));
    cr_assert_null(tg_optim_state_at(o, 15, NULL));
    tg_optim_free(o);
    tg_params_free(p);
    tg_safetensors_close(f);
}

// --- Options ---

Test(optim_opts, zero_means_torch_defaults_and_TG_OPTIM_ZERO_means_zero) {
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_params_add(p, "w", TG_F64, tg_shape1(3));
    tg_optim *adam = tg_optim_adam(p, (tg_adam_opts){0});
    cr_assert_eq(tg_optim_lr(adam), 1e-3);
    tg_optim_free(adam);
    // AdamW with weight_decay TG_OPTIM_ZERO is Adam, bit for bit; with 0 it is not (0.01).
    double start[] = {0.5, -1.5, 2.0}, grad[] = {0.3, -0.2, 1e-9};
    double result[3][3];
    for (int run = 0; run < 3; run++) {
        tg_tensor_copy_from(w, start);
        tg_optim *o = run == 0   ? tg_optim_adam(p, (tg_adam_opts){.lr = 0.1})
                      : run == 1 ? tg_optim_adamw(p, (tg_adam_opts){.lr = 0.1, .weight_decay = TG_OPTIM_ZERO})
                                 : tg_optim_adamw(p, (tg_adam_opts){.lr = 0.1});
        for (int k = 0; k < 3; k++) {
            memcpy(w->grad, grad, sizeof grad);
            tg_optim_step(o);
        }
        memcpy(result[run], w->data, sizeof start);
        tg_optim_free(o);
    }
    cr_assert(memcmp(result[0], result[1], sizeof result[0]) == 0);
    cr_assert(memcmp(result[0], result[2], sizeof result[0]) != 0);
    // SGD with lr TG_OPTIM_ZERO leaves parameters alone but still fills its momentum buffer.
    tg_tensor_copy_from(w, start);
    memcpy(w->grad, grad, sizeof grad);
    tg_optim *o = tg_optim_sgd(p, (tg_sgd_opts){.lr = TG_OPTIM_ZERO, .momentum = 0.9});
    tg_optim_step(o);
    cr_assert(memcmp(w->data, start, sizeof start) == 0);
    cr_assert(memcmp(tg_optim_state_at(o, 0, NULL)->data, grad, sizeof grad) == 0);
    tg_optim_set_lr(o, 0.5);
    cr_assert_eq(tg_optim_lr(o), 0.5);
    tg_optim_zero_grad(o);
    for (int i = 0; i < 3; i++) cr_assert_eq(((double *)w->grad)[i], 0.0);
    tg_optim_free(o);
    tg_params_free(p);
}

Test(optim_opts, invalid_options_are_reported) {
    test_capture_errors();
    tg_params *p = tg_params_new();
    tg_params_add(p, "w", TG_F32, tg_shape1(2));
    cr_assert_null(tg_optim_sgd(p, (tg_sgd_opts){.momentum = 0.9}));
    cr_assert(strstr(test_error_message, "lr is required"), "%s", test_error_message);
    cr_assert_null(tg_optim_sgd(p, (tg_sgd_opts){.lr = 0.1, .nesterov = true}));
    cr_assert(strstr(test_error_message, "nesterov"), "%s", test_error_message);
    cr_assert_null(tg_optim_sgd(p, (tg_sgd_opts){.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}));
    cr_assert_null(tg_optim_sgd(p, (tg_sgd_opts){.lr = -1}));
    cr_assert_null(tg_optim_adam(p, (tg_adam_opts){.beta2 = 1.0}));
    cr_assert(strstr(test_error_message, "betas"), "%s", test_error_message);
    cr_assert_null(tg_optim_adamw(p, (tg_adam_opts){.eps = -1e-8}));
    cr_assert(isnan(tg_lr_at(&(tg_lr_schedule){.kind = TG_LR_STEP}, 0.1, 3)));
    cr_assert(isnan(tg_lr_at(&(tg_lr_schedule){.kind = TG_LR_EXPONENTIAL}, 0.1, 3)));
    cr_assert(isnan(tg_lr_at(&(tg_lr_schedule){.kind = TG_LR_COSINE}, 0.1, 3)));
    cr_assert(isnan(tg_lr_at(&(tg_lr_schedule){.kind = TG_LR_CONSTANT}, 0.1, -1)));
    cr_assert_null(tg_optim_adam(NULL, (tg_adam_opts){0}));
    tg_params_free(p);
}

// --- Schedules ---

Test(lr_schedule, matches_torch_schedulers_for_31_epochs) {
    tg_safetensors *f = open_fixture();
    double base = strtod(meta(f, "sched_base_lr"), NULL);
    char key[128], buf[256], *save = NULL;
    tg_tensor *want = tg_tensor_create(TG_F64, tg_shape1(31), false);
    for (int s = 0; s < N_SCHEDULES; s++) {
        snprintf(key, sizeof key, "sched.%s", SCHEDULES[s]);
        snprintf(buf, sizeof buf, "%s", meta(f, key));
        tg_lr_schedule sch = {0};
        char *w = strtok_r(buf, " ", &save);
        sch.kind = !strcmp(w, "step") ? TG_LR_STEP : !strcmp(w, "exponential") ? TG_LR_EXPONENTIAL
                   : !strcmp(w, "cosine")                                      ? TG_LR_COSINE
                                                                               : TG_LR_LINEAR;
        cr_assert(sch.kind != TG_LR_LINEAR || !strcmp(w, "linear"), "unknown schedule %s", w);
        while ((w = strtok_r(NULL, " ", &save))) {
            char *eq = strchr(w, '=');
            *eq = 0;
            double v = strtod(eq + 1, NULL);
            if (!strcmp(w, "step_size")) sch.step_size = (int64_t)v;
            else if (!strcmp(w, "gamma")) sch.gamma = v;
            else if (!strcmp(w, "t_max")) sch.t_max = (int64_t)v;
            else if (!strcmp(w, "eta_min")) sch.eta_min = v;
            else if (!strcmp(w, "start_factor")) sch.start_factor = v;
            else if (!strcmp(w, "end_factor")) sch.end_factor = v;
            else if (!strcmp(w, "total_iters")) sch.total_iters = (int64_t)v;
            else cr_assert_fail("unknown option %s", w);
        }
        read_into(f, key, want);
        for (int e = 0; e < 31; e++) {
            double got = tg_lr_at(&sch, base, e), exp = tg_tensor_get(want, e);
            cr_assert(fabs(got - exp) <= F64_ATOL + F64_RTOL * fabs(exp), "%s epoch %d: %.17g, torch %.17g",
                      SCHEDULES[s], e, got, exp);
        }
    }
    cr_assert_eq(tg_lr_at(&(tg_lr_schedule){.kind = TG_LR_CONSTANT}, 0.25, 1000), 0.25);
    tg_tensor_free(want);
    tg_safetensors_close(f);
}

// --- Clipping ---

Test(clip, norm_returns_the_total_and_leaves_small_gradients_alone) {
    tg_params *p = tg_params_new();
    tg_tensor *a = tg_params_add(p, "a", TG_F64, tg_shape2(2, 2)), *b = tg_params_add(p, "b", TG_F32, tg_shape1(1));
    double ga[] = {3, 0, 0, 4};
    memcpy(a->grad, ga, sizeof ga);
    ((float *)b->grad)[0] = 12;
    cr_assert_eq(tg_clip_grad_norm(p, 13.5), 13.0); // sqrt(9 + 16 + 144): one norm over both dtypes
    cr_assert(memcmp(a->grad, ga, sizeof ga) == 0, "coefficient >= 1: no scaling at all");
    cr_assert_eq(((float *)b->grad)[0], 12.0f);
    cr_assert_eq(tg_clip_grad_norm(p, 6.5), 13.0);
    double c = 6.5 / (13.0 + 1e-6); // torch's coefficient, with its 1e-6
    cr_assert_eq(((double *)a->grad)[3], 4 * c);
    ASSERT_CLOSE(((float *)b->grad)[0], 12 * c, 0, 1e-7);
    ASSERT_CLOSE(tg_clip_grad_norm(p, 100), 6.5, 1e-6, 0);
    tg_params_free(p);
}

Test(clip, value_clamps_each_element_and_keeps_nan) {
    tg_params *p = tg_params_new();
    tg_tensor *a = tg_params_add(p, "a", TG_F64, tg_shape1(5)), *b = tg_params_add(p, "b", TG_F32, tg_shape1(2));
    double ga[] = {-2, -0.5, 0.25, 7, NAN};
    memcpy(a->grad, ga, sizeof ga);
    ((float *)b->grad)[0] = -0.75f, ((float *)b->grad)[1] = 0.1f;
    tg_clip_grad_value(p, 0.5);
    double want[] = {-0.5, -0.5, 0.25, 0.5};
    for (int i = 0; i < 4; i++) cr_assert_eq(((double *)a->grad)[i], want[i]);
    cr_assert(isnan(((double *)a->grad)[4]));
    cr_assert_eq(((float *)b->grad)[0], -0.5f);
    cr_assert_eq(((float *)b->grad)[1], 0.1f);
    tg_params_free(p);
}

Test(clip, non_finite_norms_behave_as_in_torch) {
    tg_params *p = tg_params_new();
    tg_tensor *a = tg_params_add(p, "a", TG_F32, tg_shape1(3)), *b = tg_params_add(p, "b", TG_F64, tg_shape1(2));
    float ga[] = {1, NAN, 2};
    double gb[] = {1, 2};
    memcpy(a->grad, ga, sizeof ga);
    memcpy(b->grad, gb, sizeof gb);
    cr_assert(isnan(tg_clip_grad_norm(p, 1.0)));
    for (int i = 0; i < 3; i++) cr_assert(isnan(((float *)a->grad)[i]), "torch: every gradient NaN");
    for (int i = 0; i < 2; i++) cr_assert(isnan(((double *)b->grad)[i]));
    ga[1] = INFINITY;
    memcpy(a->grad, ga, sizeof ga);
    memcpy(b->grad, gb, sizeof gb);
    cr_assert(isinf(tg_clip_grad_norm(p, 1.0)));
    cr_assert(isnan(((float *)a->grad)[1]) && ((float *)a->grad)[0] == 0 && ((double *)b->grad)[1] == 0);
    tg_params_free(p);
}

Test(optim_opts, amsgrad_keeps_a_nan_as_torch_maximum_does) {
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_params_add(p, "w", TG_F64, tg_shape1(1));
    tg_optim *o = tg_optim_adam(p, (tg_adam_opts){.amsgrad = true});
    ((double *)w->grad)[0] = NAN;
    tg_optim_step(o);
    cr_assert(isnan(tg_tensor_get(tg_optim_state_find(o, "optim.w.max_exp_avg_sq"), 0)));
    tg_optim_free(o);
    tg_params_free(p);
}
