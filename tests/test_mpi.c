// test_mpi.c: the MPI trainer (tg_mpi.h), run by CTest under mpirun with 1, 2 and 3 ranks.
//
// A plain program with an exit code: Criterion forks a process per test, which mpirun's
// ranks must not do. Every rank runs every check; the first failed one prints its rank,
// condition and message and ends the job (MPI_Abort), so mpirun exits non-zero.
//
// The reference is the plain loop on one graph over the whole global batch (which the
// other tests check against PyTorch), computed by every rank for itself: N ranks must
// match it, and must hold the same bits as each other after every step.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "tapegrad.h"
#include "tg_mpi.h"
#include "tg_test_params.h"

static int rank, size;

static void check(bool ok, int line, const char *cond, const char *fmt, ...) {
    if (ok) return;
    fprintf(stderr, "test_mpi.c:%d: rank %d of %d: assertion failed: %s\n  ", line, rank, size, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
}
#define CHECK(cond, ...) check((cond), __LINE__, #cond, "" __VA_ARGS__)

#define T 4 // time steps
#define V 11 // vocabulary
#define E 5 // embedding
#define H 6 // hidden
#define C 3 // classes
#define MAX_BATCH 8

// A tagger: embedding -> 2-layer GRU (dropout between layers) -> linear, cross-entropy over
// every (step, example); the loss is the mean over the shard's tokens.
typedef struct {
    tg_params *params;
    tg_tensor *embedding, *head_w, *head_b;
    tg_rnn rnn;
    int32_t ids[T][MAX_BATCH];     // [T, B]
    int32_t targets[T][MAX_BATCH]; // [T, B]
    int fail_on;                   // the rank whose loss function fails, or -1
} tagger;

// init_seed draws the weights; the data always comes from seed 7, so that differently
// initialised models train on the same batch.
static void tagger_init(tagger *m, tg_dtype dtype, double dropout, uint64_t init_seed) {
    tg_rng rng, data;
    tg_rng_seed(&rng, init_seed);
    tg_rng_seed(&data, 7);
    m->params = tg_params_new();
    m->fail_on = -1;
    m->embedding = tg_params_add(m->params, "embedding.weight", dtype, tg_shape2(V, E));
    tg_tensor_fill_normal(m->embedding, &rng, 0, 1);
    tg_rnn_config cfg = {.cell = &tg_cell_gru, .input_size = E, .hidden_size = H, .num_layers = 2, .dropout = dropout,
                         .dtype = dtype};
    CHECK(tg_rnn_init(&m->rnn, &cfg, m->params, "rnn.", &rng));
    m->head_w = tg_params_add(m->params, "head.weight", dtype, tg_shape2(C, H));
    m->head_b = tg_params_add(m->params, "head.bias", dtype, tg_shape1(C));
    tg_tensor_fill_uniform(m->head_w, &rng, -0.4, 0.4);
    tg_tensor_fill_uniform(m->head_b, &rng, -0.4, 0.4);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < MAX_BATCH; b++) {
            m->ids[t][b] = (int32_t)tg_rng_below(&data, V);
            m->targets[t][b] = (int32_t)tg_rng_below(&data, C);
        }
}

static tg_tensor *tagger_loss(tg_graph *g, const tg_shard *s, tg_rng *rng, void *user) {
    const tagger *m = user;
    if (s->index == m->fail_on) return tg_matmul(g, m->head_w, m->head_w); // [C, H] x [C, H]: a shape error
    int64_t n = s->count;
    int32_t *ids = tg_graph_alloc(g, sizeof(int32_t) * T * n);     // [T, n]
    int32_t *targets = tg_graph_alloc(g, sizeof(int32_t) * T * n); // [T * n]
    for (int t = 0; t < T; t++)
        for (int64_t b = 0; b < n; b++) {
            ids[t * n + b] = m->ids[t][s->begin + b];
            targets[t * n + b] = m->targets[t][s->begin + b];
        }
    tg_tensor *x = tg_embedding(g, m->embedding, tg_from_data(g, TG_I32, tg_shape2(T, n), ids)); // [T, n, E]
    tg_rnn_result r;
    if (!tg_rnn_forward(g, &m->rnn, x, NULL, NULL, rng, &r)) return NULL;
    tg_tensor *h = tg_reshape(g, r.output, tg_shape2(T * n, H));       // [T*n, H]
    tg_tensor *logits = tg_linear(g, h, m->head_w, m->head_b);         // [T*n, C]
    tg_tensor *y = tg_from_data(g, TG_I32, tg_shape1(T * n), targets); // [T*n]
    return tg_cross_entropy(g, logits, y, TG_REDUCE_MEAN, -100);
}

// XXH64 of every parameter's bytes, in order.
static uint64_t params_hash(const tg_params *p) {
    XXH64_state_t *h = XXH64_createState();
    XXH64_reset(h, 0);
    for (int i = 0; i < tg_params_count(p); i++) {
        const tg_tensor *t = tg_params_at(p, i);
        XXH64_update(h, t->data, (size_t)t->numel * tg_dtype_size(t->dtype));
    }
    uint64_t sum = XXH64_digest(h);
    XXH64_freeState(h);
    return sum;
}

// Every rank's parameters are the same bits as rank 0's.
static void check_same_bits_everywhere(const tg_params *p, const char *when) {
    unsigned long long mine = params_hash(p), all[64];
    CHECK(size <= 64);
    MPI_Allgather(&mine, 1, MPI_UNSIGNED_LONG_LONG, all, 1, MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD);
    for (int k = 1; k < size; k++) CHECK(all[k] == all[0], "%s: rank %d's parameters differ from rank 0's", when, k);
}

// steps Adam steps on the first batch examples: with the MPI trainer when mpi, else with the
// plain loop on one graph, or with tg_data_parallel on `workers` threads when workers > 0.
static void train(tagger *m, bool mpi, int workers, int64_t batch, int steps, uint64_t seed) {
    tg_optim *opt = tg_optim_adam(m->params, (tg_adam_opts){.lr = 0.05});
    if (mpi) {
        tg_mpi_trainer *tr = tg_mpi_trainer_new(m->params, MPI_COMM_WORLD, (tg_mpi_opts){.seed = seed, .bucket_bytes = 256});
        CHECK(tr != NULL);
        check_same_bits_everywhere(m->params, "after the broadcast");
        for (int i = 0; i < steps; i++) {
            tg_optim_zero_grad(opt);
            double loss = tg_mpi_trainer_backward(tr, batch, tagger_loss, m);
            CHECK(isfinite(loss) && loss > 0, "step %d: loss %g", i, loss);
            tg_optim_step(opt);
            char when[64];
            snprintf(when, sizeof when, "after step %d", i + 1);
            check_same_bits_everywhere(m->params, when);
        }
        tg_mpi_stats st = tg_mpi_trainer_stats(tr);
        CHECK(st.steps == steps && st.buckets > 1 && st.wait_seconds >= 0, "%d buckets, %lld steps", st.buckets,
              (long long)st.steps);
        // The head's bucket fills when the walk has passed the head, long before the end.
        if (rank < batch) CHECK(st.early >= steps, "only %lld buckets started during backward", (long long)st.early);
        tg_mpi_trainer_free(tr);
    } else if (workers > 0) {
        tg_data_parallel *dp = tg_data_parallel_new(m->params, (tg_data_parallel_opts){.workers = workers, .seed = seed});
        for (int i = 0; i < steps; i++) {
            tg_optim_zero_grad(opt);
            CHECK(isfinite(tg_data_parallel_backward(dp, batch, tagger_loss, m)));
            tg_optim_step(opt);
        }
        tg_data_parallel_free(dp);
    } else {
        tg_graph *g = tg_graph_new();
        for (int i = 0; i < steps; i++) {
            tg_graph_reset(g);
            tg_optim_zero_grad(opt);
            tg_shard whole = {.begin = 0, .count = batch, .batch = batch};
            CHECK(tg_backward(g, tagger_loss(g, &whole, NULL, m)));
            tg_optim_step(opt);
        }
        tg_graph_free(g);
    }
    tg_optim_free(opt);
}


// The ranks against one graph on the whole batch after 5 Adam steps: a batch that splits
// evenly between 2 and 3 ranks (6), one that does not (7), and one smaller than 3 ranks (2).
static void test_matches_one_process(tg_dtype dtype, double tolerance) {
    const int64_t batches[] = {6, 7, 2};
    for (int bi = 0; bi < 3; bi++) {
        tagger ref, dp;
        tagger_init(&ref, dtype, 0, 11);
        tagger_init(&dp, dtype, 0, rank == 0 ? 11 : 100 + (uint64_t)rank); // the others get rank 0's values
        train(&ref, false, 0, batches[bi], 5, 1);
        train(&dp, true, 0, batches[bi], 5, 1);
        double err = test_params_max_relative_error(dp.params, ref.params);
        CHECK(err <= tolerance, "%s, batch %lld: relative error %.3g > %.3g", tg_dtype_name(dtype),
              (long long)batches[bi], err, tolerance);
        tg_params_free(ref.params);
        tg_params_free(dp.params);
    }
}

static void test_matches_one_process_f64(void) { test_matches_one_process(TG_F64, 1e-12); }
static void test_matches_one_process_f32(void) { test_matches_one_process(TG_F32, 1e-5); }

// With dropout, rank k draws its masks from the generator that shard k of the threads'
// trainer would use: the ranks match tg_data_parallel on as many threads. Without that, the
// masks would differ and so would the parameters, by far more than rounding.
static void test_dropout_as_worker_threads(void) {
    tagger threads, ranks;
    tagger_init(&threads, TG_F64, 0.5, 11);
    tagger_init(&ranks, TG_F64, 0.5, 11);
    train(&threads, false, size, 7, 3, 42);
    train(&ranks, true, 0, 7, 3, 42);
    double err = test_params_max_relative_error(ranks.params, threads.params);
    CHECK(err <= 1e-12, "ranks and threads differ by %.3g", err);
    tg_params_free(threads.params);
    tg_params_free(ranks.params);
}

// The path of a fresh folder of rank 0's, the same on every rank.
static void shared_tmpdir(char *dir, size_t len) {
    if (rank == 0) {
        snprintf(dir, len, "%s/tg_test_mpi_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        CHECK(mkdtemp(dir) != NULL, "mkdtemp %s", dir);
    }
    MPI_Bcast(dir, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD);
}

static void remove_checkpoint(const char *dir, const char *path) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank != 0) return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "could not remove %s (%s)", dir, path);
}

// Rank 0 writes; every rank loads it back into a model initialised otherwise and gets the
// same bits, optimizer state and step; one process alone loads it with tg_checkpoint_load.
// Both models then train on to the same bits.
static void test_checkpoint_by_rank_0(void) {
    char dir[512], path[600], err[1024];
    shared_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tagger a, b;
    tagger_init(&a, TG_F32, 0, 11);
    tagger_init(&b, TG_F32, 0, 12);
    tg_optim *opt_a = tg_optim_adam(a.params, (tg_adam_opts){.lr = 0.05}), *opt_b = tg_optim_adam(b.params, (tg_adam_opts){.lr = 0.05});
    tg_mpi_trainer *ta = tg_mpi_trainer_new(a.params, MPI_COMM_WORLD, (tg_mpi_opts){.seed = 3});
    for (int i = 0; i < 3; i++) {
        tg_optim_zero_grad(opt_a);
        CHECK(isfinite(tg_mpi_trainer_backward(ta, 7, tagger_loss, &a)));
        tg_optim_step(opt_a);
    }
    CHECK(tg_mpi_checkpoint_save(ta, path, opt_a, 3, "{\"layers\": 2}", err, sizeof err), "%s", err);
    if (rank != 0) CHECK(access(path, F_OK) == 0, "rank 0 wrote no %s", path); // one machine: one file system
    tg_mpi_trainer *tb = tg_mpi_trainer_new(b.params, MPI_COMM_WORLD, (tg_mpi_opts){.seed = 3});
    int64_t step = -1;
    char *config = NULL;
    CHECK(tg_mpi_checkpoint_load(tb, path, opt_b, &step, &config, err, sizeof err), "%s", err);
    CHECK(step == 3 && tg_optim_step_count(opt_b) == 3, "step %lld, optimizer step %lld", (long long)step,
          (long long)tg_optim_step_count(opt_b));
    CHECK(config && !strcmp(config, "{\"layers\": 2}"), "config %s", config ? config : "(null)");
    free(config);
    CHECK(params_hash(a.params) == params_hash(b.params), "the loaded parameters differ from the saved ones");
    if (rank == 0) { // no ranks: the plain loader
        tagger c;
        tagger_init(&c, TG_F32, 0, 13);
        CHECK(tg_checkpoint_load(path, c.params, NULL, NULL, NULL, NULL, true, err, sizeof err), "%s", err);
        CHECK(params_hash(c.params) == params_hash(a.params), "a single process loads other values");
        tg_params_free(c.params);
    }
    for (int i = 0; i < 2; i++) {
        tg_optim_zero_grad(opt_a);
        tg_optim_zero_grad(opt_b);
        CHECK(isfinite(tg_mpi_trainer_backward(ta, 7, tagger_loss, &a)));
        CHECK(isfinite(tg_mpi_trainer_backward(tb, 7, tagger_loss, &b)));
        tg_optim_step(opt_a);
        tg_optim_step(opt_b);
    }
    CHECK(params_hash(a.params) == params_hash(b.params), "training on from the checkpoint diverged");
    CHECK(!tg_mpi_checkpoint_load(tb, "/nonexistent/model.safetensors", opt_b, &step, NULL, err, sizeof err));
    CHECK(strstr(err, "/nonexistent/model.safetensors") != NULL, "every rank gets rank 0's reason: %s", err);
    tg_mpi_trainer_free(ta);
    tg_mpi_trainer_free(tb);
    tg_optim_free(opt_a);
    tg_optim_free(opt_b);
    tg_params_free(a.params);
    tg_params_free(b.params);
    remove_checkpoint(dir, path);
}

static char last_error[1024];
static void capture(const char *message, void *user) {
    (void)user;
    snprintf(last_error, sizeof last_error, "%s", message);
}

// A shard that fails on rank 1 fails the step on every rank, naming rank 1 where it did not
// happen, and leaves every gradient alone; a rank with another model is named too.
static void test_errors(void) {
    if (size < 2) return;
    tg_set_error_handler(capture, NULL);
    tagger m;
    tagger_init(&m, TG_F64, 0, 11);
    tg_mpi_trainer *tr = tg_mpi_trainer_new(m.params, MPI_COMM_WORLD, (tg_mpi_opts){0});
    m.fail_on = 1;
    last_error[0] = 0;
    CHECK(isnan(tg_mpi_trainer_backward(tr, 4, tagger_loss, &m)));
    if (rank == 1) CHECK(strstr(last_error, "tg_matmul") != NULL, "%s", last_error);
    else CHECK(strstr(last_error, "rank 1's shard failed") != NULL, "%s", last_error);
    for (int i = 0; i < tg_params_count(m.params); i++) {
        const tg_tensor *p = tg_params_at(m.params, i);
        for (int64_t e = 0; e < p->numel; e++) CHECK(((const double *)p->grad)[e] == 0.0, "%s", p->name);
    }
    CHECK(isnan(tg_mpi_trainer_backward(tr, 0, tagger_loss, &m)));
    CHECK(strstr(last_error, "batch is 0") != NULL, "%s", last_error);
    tg_mpi_trainer_free(tr);
    if (rank == 1) tg_params_add(m.params, "extra", TG_F64, tg_shape1(2));
    CHECK(tg_mpi_trainer_new(m.params, MPI_COMM_WORLD, (tg_mpi_opts){0}) == NULL);
    CHECK(strstr(last_error, "rank 1's parameters differ from rank 0's") != NULL, "%s", last_error);
    tg_params_free(m.params);
    tg_set_error_handler(NULL, NULL);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"matches_one_process_f64", test_matches_one_process_f64},
        {"matches_one_process_f32", test_matches_one_process_f32},
        {"dropout_as_worker_threads", test_dropout_as_worker_threads},
        {"checkpoint_by_rank_0", test_checkpoint_by_rank_0}, {"errors", test_errors},
    };
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
        if (rank == 0) fprintf(stderr, "[RUN ] %s (%d ranks)\n", tests[i].name, size);
        tests[i].fn();
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) fprintf(stderr, "[PASS] %s\n", tests[i].name);
    }
    if (rank == 0) fprintf(stderr, "%zu tests passed on %d ranks\n", sizeof tests / sizeof *tests, size);
    MPI_Finalize();
    return 0;
}
