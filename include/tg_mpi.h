// tg_mpi.h: data-parallel training over MPI processes (library tapegrad_mpi, -DTG_MPI=ON).
//
// The same semantics as tg_parallel.h's worker threads, one rank per worker: every rank
// holds the whole model; a global batch is split into one shard per rank (the first
// batch % ranks shards one example larger, as torch.tensor_split does); each rank runs its
// shard's loss, weighted by count / batch, through backward; the gradients are summed over
// the ranks and added to every rank's parameters' gradients, so the caller's optimizer then
// steps as after tg_backward on the whole batch, on every rank, to the same bits.
//
//   MPI_Init(&argc, &argv);
//   tg_mpi_trainer *tr = tg_mpi_trainer_new(params, MPI_COMM_WORLD, (tg_mpi_opts){.seed = 1});
//   for (step ...) {                            // every rank, the same calls in the same order
//       tg_optim_zero_grad(opt);
//       double loss = tg_mpi_trainer_backward(tr, batch, shard_loss, &data);
//       tg_optim_step(opt);
//   }
//   tg_mpi_trainer_free(tr);
//   MPI_Finalize();
//
// Gradients travel in buckets of about opts.bucket_bytes, parameters taken in reverse
// registration order (as PyTorch's DistributedDataParallel does): a bucket's reduction
// starts during the backward walk as soon as every gradient in it is final
// (tg_backward_opts.leaf_ready), so communication overlaps the rest of backward. Each
// bucket is reduce-scattered (every segment summed once, on one rank) and all-gathered, so
// every rank receives the same bits by construction: MPI_Allreduce's summation order is the
// implementation's choice and may differ between ranks. docs/distributed.md says more.
//
// Every function here is collective over the trainer's communicator: all its ranks call it,
// in the same order. A rank that dies ends the job (MPI's default error handler); a
// checkpoint written by tg_mpi_checkpoint_save restarts it, with any number of ranks.
#ifndef TG_MPI_H
#define TG_MPI_H

#include <mpi.h>

#include "tg_optim.h"
#include "tg_parallel.h"
#include "tg_params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_mpi_trainer tg_mpi_trainer;

typedef struct {
    uint64_t seed;       // rank k's generator starts at tg_data_parallel_shard_seed(seed, k)
    size_t bucket_bytes; // gradient bytes per all-reduce bucket; 0: 1 MiB
} tg_mpi_opts;

typedef struct {
    int buckets;          // gradient buckets per step
    int64_t steps;        // tg_mpi_trainer_backward calls so far
    int64_t early;        // buckets, over all steps, whose reduction started before backward ended
    double wait_seconds;  // time spent waiting for communication, over all steps
} tg_mpi_stats;

// A trainer over the parameters p (which must not gain parameters afterwards) on the
// ranks of comm (duplicated: the trainer's messages never meet the caller's). Rank 0's
// parameter values are copied to every rank. NULL (through the error path, on every rank)
// when MPI is not initialised, on a bad argument, or when the ranks' parameters differ in
// names, shapes or dtypes.
tg_mpi_trainer *tg_mpi_trainer_new(tg_params *p, MPI_Comm comm, tg_mpi_opts opts);
// Frees the trainer (NULL is fine); the parameters stay. Collective.
void tg_mpi_trainer_free(tg_mpi_trainer *tr);
// Forward and backward of this rank's shard of a global batch of batch examples, with the
// shard loss function of tg_parallel.h (its shard.worker is the rank); adds the gradient of
// the global mean loss to the parameters' gradients (+=; zero them first) and returns that
// loss, the same on every rank. With fewer examples than ranks, the last ranks sit out.
// NAN on every rank when any rank's loss function or backward failed (the failing rank
// reports it through its error path; the others name that rank); the gradients are then as
// before.
double tg_mpi_trainer_backward(tg_mpi_trainer *tr, int64_t batch, tg_shard_loss_fn loss, void *user);
// This process's rank and the number of ranks (-1 and 0 for NULL).
int tg_mpi_trainer_rank(const tg_mpi_trainer *tr);
int tg_mpi_trainer_size(const tg_mpi_trainer *tr);
// This rank's generator, which its shards' dropout draws from (NULL for NULL).
tg_rng *tg_mpi_trainer_rng(tg_mpi_trainer *tr);
// Bucket count, steps and the time spent waiting for communication (zeros for NULL).
tg_mpi_stats tg_mpi_trainer_stats(const tg_mpi_trainer *tr);

// Saves a checkpoint (tg_checkpoint.h) of the parameters, opt's state (may be NULL), rank
// 0's generator, step and config_json: rank 0 writes it, the others only wait for the
// result. True on every rank when the save succeeded; otherwise false everywhere, with rank
// 0's reason in err (len bytes).
bool tg_mpi_checkpoint_save(tg_mpi_trainer *tr, const char *path, const tg_optim *opt, int64_t step,
                            const char *config_json, char *err, size_t len);
// Loads a checkpoint written with any number of ranks (or by tg_checkpoint_save in one
// process): rank 0 reads the files, as tg_checkpoint_load does with strict names, and
// sends parameters, opt's state and its step count and learning rate (opt may be NULL),
// *step and *config_json (malloc'd, NULL when the file has none; config_json may be NULL)
// to every rank, so the files need exist on rank 0 only. Rank k's generator is then seeded
// from the saved generator and k (tg_data_parallel_shard_seed), so a restart draws fresh
// dropout masks, the same for the same checkpoint and rank count. False on every rank,
// nothing changed, with rank 0's reason in err when it fails.
bool tg_mpi_checkpoint_load(tg_mpi_trainer *tr, const char *path, tg_optim *opt, int64_t *step, char **config_json,
                            char *err, size_t len);

#ifdef __cplusplus
}
#endif
#endif
