// mpi_fault_train.c: a small MPI training run that checkpoints every step, for mpi_fault.sh.
//
//   mpirun -np N mpi_fault_train CHECKPOINT STEPS [--resume] [--pause-ms MS]
//
// Trains a 1-layer LSTM tagger on a fixed batch of 7 sequences for STEPS steps (counted
// from the checkpoint's step with --resume), saving CHECKPOINT after every step. Prints what
// the fault test reads: "rank R pid P" from every rank at start, and from rank 0 "resuming at
// step S", "saved step S" after each save, "done at step S". --pause-ms sleeps after each
// step (default 100) so that a test can kill a rank mid-run.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tapegrad.h"
#include "tg_mpi.h"

#define T 5 // time steps
#define V 9 // vocabulary
#define H 8 // hidden
#define B 7 // global batch

typedef struct {
    tg_tensor *emb, *head_w; // [V, H], [V, H]
    tg_rnn rnn;
    int32_t ids[T * B], targets[T * B]; // [T, B]
} model;

static tg_tensor *shard_loss(tg_graph *g, const tg_shard *s, tg_rng *rng, void *user) {
    const model *m = user;
    int64_t n = s->count;
    int32_t *ids = tg_graph_alloc(g, sizeof(int32_t) * T * n), *targets = tg_graph_alloc(g, sizeof(int32_t) * T * n);
    for (int t = 0; t < T; t++)
        for (int64_t b = 0; b < n; b++) {
            ids[t * n + b] = m->ids[t * B + s->begin + b];
            targets[t * n + b] = m->targets[t * B + s->begin + b];
        }
    tg_tensor *x = tg_embedding(g, m->emb, tg_from_data(g, TG_I32, tg_shape2(T, n), ids)); // [T, n, H]
    tg_rnn_result r;
    if (!tg_rnn_forward(g, &m->rnn, x, NULL, NULL, rng, &r)) return NULL;
    tg_tensor *logits = tg_linear(g, tg_reshape(g, r.output, tg_shape2(T * n, H)), m->head_w, NULL); // [T*n, V]
    return tg_cross_entropy(g, logits, tg_from_data(g, TG_I32, tg_shape1(T * n), targets), TG_REDUCE_MEAN, -100);
}

static int fail(const char *what) {
    fprintf(stderr, "mpi_fault_train: %s\n", what);
    MPI_Abort(MPI_COMM_WORLD, 2);
    return 2;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (argc < 3) return fail("usage: mpi_fault_train CHECKPOINT STEPS [--resume] [--pause-ms MS]");
    const char *path = argv[1];
    int64_t steps = atoll(argv[2]), pause_ms = 100;
    bool resume = false;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--resume")) resume = true;
        else if (!strcmp(argv[i], "--pause-ms") && i + 1 < argc) pause_ms = atoll(argv[++i]);
        else return fail("unknown argument");
    }
    printf("rank %d pid %ld\n", rank, (long)getpid());
    fflush(stdout);

    model m;
    tg_params *p = tg_params_new();
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    m.emb = tg_params_add(p, "emb.weight", TG_F32, tg_shape2(V, H));
    tg_tensor_fill_normal(m.emb, &rng, 0, 1);
    tg_rnn_config cfg = {.cell = &tg_cell_lstm, .input_size = H, .hidden_size = H, .num_layers = 1};
    if (!tg_rnn_init(&m.rnn, &cfg, p, "rnn.", &rng)) return fail("rnn init failed");
    m.head_w = tg_params_add(p, "head.weight", TG_F32, tg_shape2(V, H));
    tg_tensor_fill_uniform(m.head_w, &rng, -0.3, 0.3);
    for (int i = 0; i < T * B; i++) m.ids[i] = (int32_t)tg_rng_below(&rng, V), m.targets[i] = (int32_t)tg_rng_below(&rng, V);
    tg_optim *opt = tg_optim_adam(p, (tg_adam_opts){.lr = 0.01});
    tg_mpi_trainer *tr = tg_mpi_trainer_new(p, MPI_COMM_WORLD, (tg_mpi_opts){.seed = 5});
    if (!tr) return fail("trainer failed");

    int64_t step = 0;
    char err[1024];
    if (resume) {
        if (!tg_mpi_checkpoint_load(tr, path, opt, &step, NULL, err, sizeof err)) return fail(err);
        if (rank == 0) printf("resuming at step %lld\n", (long long)step);
    }
    for (int64_t end = step + steps; step < end;) {
        tg_optim_zero_grad(opt);
        double loss = tg_mpi_trainer_backward(tr, B, shard_loss, &m);
        if (!isfinite(loss)) return fail("the step failed");
        tg_optim_step(opt);
        step++;
        if (!tg_mpi_checkpoint_save(tr, path, opt, step, NULL, err, sizeof err)) return fail(err);
        if (rank == 0) printf("saved step %lld loss %.6f\n", (long long)step, loss);
        fflush(stdout);
        nanosleep(&(struct timespec){pause_ms / 1000, (long)(pause_ms % 1000) * 1000000}, NULL);
    }
    if (rank == 0) printf("done at step %lld\n", (long long)step);
    tg_mpi_trainer_free(tr);
    tg_optim_free(opt);
    tg_params_free(p);
    MPI_Finalize();
    return 0;
}
