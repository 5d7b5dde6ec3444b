// bench_mpi.h: tg-bench --mpi, training steps data-parallel over MPI ranks (tg_mpi.h).
//
//   mpirun -np N tg-bench --mpi CONFIG... [--threads T]
//   tg-bench --grad-sizes [CONFIG...]     each configuration's gradient bytes, for tg-mpibench
//
// Each configuration's global batch is split between the ranks as tg_mpi_trainer splits it
// (torch.tensor_split), each rank training on its shard; rank 0 prints the tokens/s of the
// whole job (global batch tokens per step) and the time the ranks spent waiting for
// communication. Included by bench.c after its model code, which it reuses unchanged: a
// rank's shard is bench.c's shard_loss on the columns the trainer gives the rank.
#ifndef TG_BENCH_MPI_H
#define TG_BENCH_MPI_H

// tg-bench --grad-sizes: "CONFIG BYTES" for each configuration, its float32 gradient's
// size, which tg-mpibench reads to time all-reduces of those sizes.
static int bench_grad_sizes(const config *const *chosen, int n_chosen) {
    printf("# config gradient_bytes\n");
    for (int i = 0; i < n_chosen; i++) {
        model m;
        model_init(&m, chosen[i]);
        printf("%s %lld\n", chosen[i]->name, (long long)tg_params_numel(m.p) * 4);
        model_free(&m);
    }
    return 0;
}

#ifdef TG_BENCH_MPI
#include "tg_mpi.h"

static double mpi_step(tg_mpi_trainer *tr, model *m) {
    tg_optim_zero_grad(m->opt);
    double loss = tg_mpi_trainer_backward(tr, m->cfg->batch, shard_loss, m); // this rank's shard
    if (isnan(loss)) {
        fprintf(stderr, "tg-bench: %s failed on rank %d\n", m->cfg->name, tg_mpi_trainer_rank(tr));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    tg_optim_step(m->opt);
    return loss;
}

// The whole batch's loss on one graph: the shards' first loss must be it, or the shards were cut wrong.
static void check_first_loss(model *m, tg_mpi_trainer *tr) {
    tg_graph *g = tg_graph_new();
    double whole = tg_tensor_get(model_loss(g, m, 0, m->cfg->batch), 0), sharded = mpi_step(tr, m);
    tg_graph_free(g);
    if (fabs(sharded - whole) > 1e-4 * fabs(whole)) {
        fprintf(stderr, "tg-bench: %s: the shards' loss %.6f is not the whole batch's %.6f\n", m->cfg->name, sharded,
                whole);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

// Times steps as run() does (2 warm-up steps, then at least 3 steps and 2 s, as rank 0's
// clock decides for everyone).
static void run_mpi(const config *c, int threads) {
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    model m;
    model_init(&m, c); // every rank: the same seed, the same whole batch, of which it trains its shard
    int B = c->batch;
    tg_mpi_trainer *tr = tg_mpi_trainer_new(m.p, MPI_COMM_WORLD, (tg_mpi_opts){.seed = 1});
    if (!tr) MPI_Abort(MPI_COMM_WORLD, 1);
    check_first_loss(&m, tr); // the first warm-up step
    mpi_step(tr, &m);
    double wait0 = tg_mpi_trainer_stats(tr).wait_seconds, t0 = now(), t = 0;
    int n = 0, more = 1;
    while (more) {
        mpi_step(tr, &m);
        n++;
        t = now() - t0;
        more = n < 3 || t < 2.0;
        MPI_Bcast(&more, 1, MPI_INT, 0, MPI_COMM_WORLD);
    }
    tg_mpi_stats st = tg_mpi_trainer_stats(tr);
    double wait = (st.wait_seconds - wait0) / n, wait_max = 0, wait_sum = 0;
    MPI_Reduce(&wait, &wait_max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(&wait, &wait_sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    double s = t / n;
    if (rank == 0) {
        printf("%-16s ranks=%d threads=%d %9.2f ms/step %10.0f tokens/s  comm_wait_ms=%.2f (mean over ranks; max "
               "%.2f) buckets=%d grad_mb=%.2f\n", c->name, size, threads, s * 1e3, c->seq * B / s, wait_sum / size * 1e3,
               wait_max * 1e3, st.buckets, tg_params_numel(m.p) * 4e-6);
        fflush(stdout);
    }
    tg_mpi_trainer_free(tr);
    model_free(&m);
}

static int bench_mpi_main(const config *const *chosen, int n_chosen, int threads) {
    MPI_Init(NULL, NULL);
    tg_set_num_threads(threads);
    for (int i = 0; i < n_chosen; i++) run_mpi(chosen[i], threads);
    MPI_Finalize();
    return 0;
}
#else
static int bench_mpi_main(const config *const *chosen, int n_chosen, int threads) {
    (void)chosen, (void)n_chosen, (void)threads;
    fprintf(stderr, "tg-bench: --mpi needs a build with MPI (Open MPI's libopenmpi-dev installed, -DTG_MPI=ON)\n");
    return 2;
}
#endif
#endif
