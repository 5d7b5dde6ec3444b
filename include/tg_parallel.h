// tg_parallel.h: data-parallel training on worker threads in one process.
//
// One set of parameters, N workers, S shards (S = N unless asked). A global batch is split
// into S shards (the first batch % S shards one example larger, as torch.tensor_split
// does), each with its own gradient buffers and its own random generator. A free worker
// claims the next shard, builds its loss with the caller's function on its own graph and
// runs backward; the shards' gradients are then summed in shard order, 0 to S-1, into the
// parameters' gradients, and the caller's optimizer steps as after tg_backward. The same
// seed and shard count give bit-identical runs, on any machine, with any number of workers
// and whatever the threads' timing. More shards than workers (2 or 4 per worker) keep a
// worker whose core is busy with another process from holding the step up: the others run
// more of the shards.
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

// One shard of the global batch: examples [begin, begin + count) of batch.
typedef struct {
    int worker;    // the worker running it, 0 .. workers - 1 (whichever claimed it first)
    int64_t begin; // its first example's index in the global batch
    int64_t count; // its number of examples, >= 1
    int64_t batch; // examples in the global batch
    int index;     // the shard's number, 0 .. shards - 1
} tg_shard;

// Builds, in g, the loss of one shard: a scalar, the mean over the shard's examples (the
// trainer weights it by count / batch, so the shards' sum is the global batch's mean). It
// runs on the worker's thread while the other workers run theirs: it may read what is
// shared (parameters, data) but write only what is the worker's own (g, rng, its slot of
// user's data, by shard->worker). rng is the shard's generator, for dropout: a shard's
// masks must not depend on which worker runs it. Returns NULL on error.
typedef tg_tensor *(*tg_shard_loss_fn)(tg_graph *g, const tg_shard *shard, tg_rng *rng, void *user);

typedef struct {
    int workers;   // N >= 1; worker 0 runs on the thread that calls tg_data_parallel_backward
    uint64_t seed; // shard k's generator starts at tg_data_parallel_shard_seed(seed, k)
    int shards;    // S >= 1, or 0 for one per worker; each holds a copy of every gradient
    // A step the calling thread runs alone (another process holds the cores, see
    // tg_data_parallel_stats; or workers == 1) runs the whole batch as one shard, shard 0's
    // generator drawing its dropout: as fast as one graph on one thread, where S shards one
    // after the other cost 2-12% more (smaller products). The price: the bits of a run then
    // depend on which steps ran alone, so on the machine's load. false keeps them fixed.
    bool merge_alone;
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
// returns that loss. With fewer examples than shards, the last shards sit out. NAN when
// a shard's loss function or backward failed (reported through the error path, which
// worker threads take from the calling thread); the parameters' gradients are then as
// before (after a merged step's failed backward, as after tg_backward's).
double tg_data_parallel_backward(tg_data_parallel *dp, int64_t batch, tg_shard_loss_fn loss, void *user);
// The number of workers (0 for NULL).
int tg_data_parallel_workers(const tg_data_parallel *dp);
// The number of shards a batch is split into (0 for NULL).
int tg_data_parallel_shards(const tg_data_parallel *dp);

// How the trainer's steps ran. When the workers' threads together get less than about 1.15
// cores' worth of CPU time in a step (another process keeps the cores busy), the calling
// thread runs every shard alone for a stretch of steps (8, doubling to 256 while it keeps
// not paying), then tries together again; the results are the same bits either way.
typedef struct {
    int64_t steps_together; // steps whose shards ran on all the workers
    int64_t steps_alone;    // steps whose shards all ran on the calling thread
    int64_t steps_merged;   // of those, steps run as one shard (opts.merge_alone)
    double last_cores;      // the workers' CPU time over the wall time, in the last step together
} tg_data_parallel_stats;
// The trainer's counts so far (zeros for NULL).
tg_data_parallel_stats tg_data_parallel_get_stats(const tg_data_parallel *dp);
// Shard k's generator, which its dropout draws from; it advances from step to step (a
// checkpoint can save its state). NULL (through the error path) when there is no shard k.
tg_rng *tg_data_parallel_rng(tg_data_parallel *dp, int shard);
// The seed of shard k's generator (of rank k's, under MPI): seed and k mixed (SplitMix64),
// so that shards draw independent streams and a run with the same seed repeats exactly.
uint64_t tg_data_parallel_shard_seed(uint64_t seed, int shard);

#ifdef __cplusplus
}
#endif
#endif
