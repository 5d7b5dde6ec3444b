// tg_parallel.h: data-parallel training on worker threads in one process.
//
// One set of parameters, N workers. Each worker has its own graph, its own gradient buffers
// and its own random generator; a global batch is split into N shards (the first batch % N
// shards one example larger, as torch.tensor_split does), each worker builds its shard's
// loss with the caller's function and runs backward, and the workers' gradients are summed
// in worker order, 0 to N-1, into the parameters' gradients. The caller's optimizer then
// steps as after tg_backward. The same seed and worker count give bit-identical runs, on
// any machine and whatever the threads' timing.
//
//   tg_data_parallel *dp = tg_data_parallel_new(params, (tg_data_parallel_opts){.workers = 2, .seed = 1});
//   for (step ...) {
//       tg_optim_zero_grad(opt);
//       double loss = tg_data_parallel_backward(dp, batch, shard_loss, &data);
//       tg_optim_step(opt);
//   }
//
// A parameter's gradient in the workers is its own buffer, not the parameter's: the trainer
// points the worker's tape at them after the loss function returns, so a model's code (a
// tg_rnn, a user's cell) runs unchanged on every worker.
#ifndef TG_PARALLEL_H
#define TG_PARALLEL_H

#include "tg_graph.h"
#include "tg_params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_data_parallel tg_data_parallel;

// One worker's part of the global batch: examples [begin, begin + count) of batch.
typedef struct {
    int worker;    // 0 .. workers - 1
    int64_t begin; // its first example's index in the global batch
    int64_t count; // its number of examples, >= 1
    int64_t batch; // examples in the global batch
} tg_shard;

// Builds, in g, the loss of one shard: a scalar, the mean over the shard's examples (the
// trainer weights it by count / batch, so the shards' sum is the global batch's mean). It
// runs on the worker's thread while the other workers run theirs: it may read what is
// shared (parameters, data) but write only what is the worker's own (g, rng, its slot of
// user's data). rng is the worker's generator, for dropout. Returns NULL on error.
typedef tg_tensor *(*tg_shard_loss_fn)(tg_graph *g, const tg_shard *shard, tg_rng *rng, void *user);

typedef struct {
    int workers;   // N >= 1; worker 0 runs on the thread that calls tg_data_parallel_backward
    uint64_t seed; // worker k's generator starts at tg_data_parallel_worker_seed(seed, k)
} tg_data_parallel_opts;

// A trainer over the parameters p, which must not gain parameters afterwards; starts the
// worker threads. Every tensor with a gradient that the loss function uses must be in p
// (the workers would otherwise all add into its gradient at once). NULL (through the error
// path) on bad options or when threads cannot start.
tg_data_parallel *tg_data_parallel_new(tg_params *p, tg_data_parallel_opts opts);
// Stops the worker threads and frees the trainer (NULL is fine); the parameters stay.
void tg_data_parallel_free(tg_data_parallel *dp);
// Forward and backward over a global batch of batch examples: adds the gradient of the
// global mean loss to the parameters' gradients (+=, as tg_backward; zero them first) and
// returns that loss. With fewer examples than workers, the last workers sit out. NAN when
// a shard's loss function or backward failed (reported through the error path, which
// worker threads take from the calling thread); the parameters' gradients are then as before.
double tg_data_parallel_backward(tg_data_parallel *dp, int64_t batch, tg_shard_loss_fn loss, void *user);
// The number of workers (0 for NULL).
int tg_data_parallel_workers(const tg_data_parallel *dp);
// Worker k's generator, which its shards' dropout draws from; it advances from step to step
// (a checkpoint can save its state). NULL (through the error path) when there is no worker k.
tg_rng *tg_data_parallel_rng(tg_data_parallel *dp, int worker);
// The seed of worker k's generator: seed and k mixed (SplitMix64), so that workers draw
// independent streams and a run with the same seed and workers repeats exactly.
uint64_t tg_data_parallel_worker_seed(uint64_t seed, int worker);

#ifdef __cplusplus
}
#endif
#endif
