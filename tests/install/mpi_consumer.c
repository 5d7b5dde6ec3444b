// mpi_consumer.c: a program outside the tapegrad tree, built against an installed tapegrad's
// component mpi and run under mpirun. The loss is the mean over a batch of 4 examples of
// y_i = tanh(x_i * w), x = (0.25, 0.5, 0.75, 1), w = 2; the ranks take a shard each and the
// trainer sums their gradients, weighted by shard size, so every rank ends with
//   loss  = mean_i tanh(2 x_i)              = 0.7732219...
//   dL/dw = mean_i x_i (1 - tanh(2 x_i)^2)  = 0.1531948...
// whatever the rank count. check.sh compares rank 0's line with those values.
#include <stdio.h>

#include <tapegrad.h>
#include <tg_mpi.h>

static const double xs[4] = {0.25, 0.5, 0.75, 1.0};

static tg_tensor *shard_loss(tg_graph *g, const tg_shard *shard, tg_rng *rng, void *user) {
    (void)rng;
    tg_tensor *w = user;
    tg_tensor *x = tg_from_data(g, TG_F64, tg_shape2(shard->count, 1), xs + shard->begin); // [n, 1]
    return tg_mean(g, tg_tanh(g, tg_matmul(g, x, w)));                                    // [n, 1] -> []
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    tg_params *p = tg_params_new();
    tg_tensor *w = p ? tg_params_add(p, "w", TG_F64, tg_shape2(1, 1)) : NULL; // [1, 1]
    if (!w) {
        fprintf(stderr, "mpi_consumer: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    tg_tensor_set(w, 0, 2.0);
    tg_mpi_trainer *tr = tg_mpi_trainer_new(p, MPI_COMM_WORLD, (tg_mpi_opts){.seed = 1});
    double loss = tr ? tg_mpi_trainer_backward(tr, 4, shard_loss, w) : -1;
    if (tg_mpi_trainer_rank(tr) == 0)
        printf("tapegrad_mpi %s, %d ranks: loss=%.6f dL/dw=%.6f\n", TAPEGRAD_VERSION, tg_mpi_trainer_size(tr), loss,
               ((const double *)w->grad)[0]);
    int status = tr && loss == loss ? 0 : 1; // NAN when a rank failed
    tg_mpi_trainer_free(tr);
    tg_params_free(p);
    MPI_Finalize();
    return status;
}
