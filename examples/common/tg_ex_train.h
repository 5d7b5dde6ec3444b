// tg_ex_train.h: the examples' training, shared: one optimizer step on one graph or on N
// worker threads (--workers), and the loop of epochs around it (progress bar, checkpoints,
// the dev score after each epoch, the time budget).
//
// A step's loss is built by a tg_shard_loss_fn (tg_parallel.h): the loss of examples
// [begin, begin + count) of the global batch, their mean as the global batch weighs them.
// With --workers 1 it is called once for the whole batch on one graph with the caller's
// generator, as a plain training loop would; with N > 1, on N threads, one shard each; under
// `mpirun -np N`, on N processes, the shard of the process's rank (tg_mpi.h).
//
//   tg_ex_trainer tr;
//   tg_ex_trainer_init(&tr, "postag", m.params, opt, clip, workers);
//   double loss = tg_ex_trainer_step(&tr, B, shard_loss, &batch, &rng); // zero, backward, clip, step
#ifndef TG_EX_TRAIN_H
#define TG_EX_TRAIN_H

#include "tg_example.h"
#include "tg_parallel.h"

// --- One step ---------------------------------------------------------------------------

typedef struct {
    const char *program;  // "postag": starts every message
    tg_params *params;
    tg_optim *opt;
    double clip;          // the gradient norm is clipped at this before the step (0: not clipped)
    int workers;          // 1: one graph; more: tg_data_parallel's threads
    tg_graph *g;          // workers 1, one rank: every step's graph
    tg_data_parallel *dp; // workers > 1
    struct tg_mpi_trainer *mpi; // under mpirun: one shard a rank (tg_mpi.h)
} tg_ex_trainer;

// The option --workers N for a program's table, over *workers (default 1).
tg_ex_option tg_ex_workers_option(int *workers);
// A trainer of params with opt; false with a message on stderr when threads cannot start.
bool tg_ex_trainer_init(tg_ex_trainer *t, const char *program, tg_params *params, tg_optim *opt, double clip,
                        int workers);
// Stops the workers and frees the graph; the parameters and optimizer stay.
void tg_ex_trainer_free(tg_ex_trainer *t);
// One optimizer step on a global batch of `batch` examples: zeroes the gradients, builds and
// differentiates the loss (shard by shard), clips and steps. rng is the run's generator: with
// one worker the loss draws from it; with N, each step takes one number from it to seed the
// shards' generators (tg_data_parallel_rng), so a checkpoint of rng resumes either exactly.
// Returns the batch's mean loss; NaN (reported, no step taken) when building it failed.
double tg_ex_trainer_step(tg_ex_trainer *t, int64_t batch, tg_shard_loss_fn loss, void *user, tg_rng *rng);
// The weight that makes a shard's mean over its own tokens count as the global mean over
// all tokens does: (shard_tokens / batch_tokens) * (batch / count). 1 for the whole batch.
double tg_ex_shard_token_weight(const tg_shard *shard, int64_t shard_tokens, int64_t batch_tokens);

// --- Work for several threads -----------------------------------------------------------

// Runs fn(user, task, thread) for every task 0 .. tasks - 1 on up to `threads` threads, the
// calling one (thread 0) among them; a free thread takes the next task. For work that only
// reads what is shared and writes its task's own slot, such as scoring dev with a graph per
// thread. A thread that cannot start leaves its tasks to the others.
void tg_ex_parallel_for(int threads, int tasks, void (*fn)(void *user, int task, int thread), void *user);
// The same with a graph per thread: fn(user, task, g) gets its thread's graph, the caller's g
// on the calling thread and a new one (freed at the end) on each other; when a graph cannot
// be made, fewer threads run the same tasks. False when out of memory (nothing ran).
bool tg_ex_parallel_for_graphs(tg_graph *g, int threads, int tasks, void (*fn)(void *user, int task, tg_graph *g),
                               void *user);

// --- The loop of epochs -----------------------------------------------------------------

// Where a run is: what a checkpoint resumes and what the RESULT line reports.
typedef struct {
    int64_t step;       // steps trained in all, this run's and the loaded checkpoint's
    int64_t start_step; // step when this run began
    int64_t dev_step;   // the step dev was last scored at (-1: never)
    double first_loss;  // this run's first step's loss
    double last_loss;   // the mean loss over the last epoch's steps (the last, partial one too)
} tg_ex_run;

// A run that starts at step (from a checkpoint, or 0).
tg_ex_run tg_ex_run_at(int64_t step);
// A run from --load's checkpoint (its weights and, when has_state, the optimizer's state, the
// generator and the step; it says so) or, without --load, from scratch. False with a message.
bool tg_ex_run_start(const char *program, const tg_ex_common *common, tg_params *params, bool has_state,
                     tg_optim *opt, tg_rng *rng, tg_ex_run *run);

// An epoch's batches of training examples of different lengths: tg_ex_epoch_order's order
// (shuffled by seed and epoch, sorted by length within windows), cut into batches of `batch`
// examples, the last one smaller.
typedef struct {
    const int *train;     // [n]: the training examples' ids
    const int64_t *start; // example id's length is start[id + 1] - start[id]
    int n, batch, window;
    uint64_t seed;
    int *order; // [n + 1]: this epoch's order
} tg_ex_batches;

// Batches over train; false when out of memory.
bool tg_ex_batches_init(tg_ex_batches *b, const int *train, int n, const int64_t *start, int batch, int window,
                        uint64_t seed);
// Frees the order (the ids and lengths are the caller's).
void tg_ex_batches_free(tg_ex_batches *b);
// Batches an epoch (0 when there are no examples).
int64_t tg_ex_batches_per_epoch(const tg_ex_batches *b);
// The order of epoch `epoch`.
void tg_ex_batches_epoch(tg_ex_batches *b, int64_t epoch);
// Batch k of the epoch: *idx points at its examples' ids; returns how many there are.
int tg_ex_batches_at(const tg_ex_batches *b, int64_t k, const int **idx);

// What an example does at each point of the loop; user is its own state.
typedef struct {
    const char *unit;        // the progress bar's unit: "tok", "msg", "char"
    int64_t steps_per_epoch; // 0: nothing to train on
    uint64_t max_steps;      // stop after this many steps of this run, whatever the time (0: no limit)
    void *user;
    // Before an epoch's first step, and before the first step of a run resumed mid-epoch.
    void (*begin_epoch)(void *user, int64_t epoch);
    // Step k of the epoch: returns its loss, with *units what it processed for the bar.
    double (*step)(void *user, int64_t k, double *units);
    // After an epoch's last step: scores dev and prints it (run->dev_step is set after).
    void (*end_epoch)(void *user, int64_t epoch);
    // Writes a checkpoint at step (called when --save-every is due); reports its own failure.
    bool (*save)(void *user, int64_t step);
} tg_ex_loop;

// Trains epoch after epoch until minutes are spent (or max_steps), the position in the data
// a function of run->step alone, so a resumed run carries on where the saved one stopped.
void tg_ex_train_epochs(const tg_ex_loop *loop, double minutes, const tg_ex_saver *saver, tg_ex_run *run);

#endif
