// train.c: the examples' training step, on one graph or N worker threads, and their loop of
// epochs.
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "tg_ex_train.h"
#ifdef TG_EX_MPI
#include "tg_mpi.h"
#endif

tg_ex_option tg_ex_workers_option(int *workers) {
    return (tg_ex_option){"workers", TG_EX_INT, workers,
                          "worker threads, each running forward and backward on its share of the batch", 1, 256, "N"};
}

// Under mpirun: a trainer over the ranks, which starts from rank 0's parameters.
static bool start_mpi(tg_ex_trainer *t) {
#ifdef TG_EX_MPI
    if (t->workers > 1) return fprintf(stderr, "%s: --workers and mpirun: one or the other\n", t->program), false;
    t->mpi = tg_mpi_trainer_new(t->params, MPI_COMM_WORLD, (tg_mpi_opts){.seed = 0});
    return t->mpi != NULL;
#else
    return false;
#endif
}

bool tg_ex_trainer_init(tg_ex_trainer *t, const char *program, tg_params *params, tg_optim *opt, double clip,
                        int workers) {
    *t = (tg_ex_trainer){program, params, opt, clip, workers, NULL, NULL, NULL};
    if (tg_ex_ranks() > 1) return start_mpi(t);
    if (workers <= 1) t->g = tg_graph_new();
    else t->dp = tg_data_parallel_new(params, (tg_data_parallel_opts){.workers = workers, .seed = 0});
    if (t->g || t->dp) return true;
    fprintf(stderr, "%s: cannot start %d worker threads\n", program, workers);
    return false;
}

void tg_ex_trainer_free(tg_ex_trainer *t) {
    tg_graph_free(t->g);
    tg_data_parallel_free(t->dp);
#ifdef TG_EX_MPI
    tg_mpi_trainer_free(t->mpi);
#endif
    t->g = NULL;
    t->dp = NULL;
    t->mpi = NULL;
}

// The batch's mean loss and its gradient, added to the parameters' gradients.
static double backward(tg_ex_trainer *t, int64_t batch, tg_shard_loss_fn loss_fn, void *user, tg_rng *rng) {
    if (t->dp) {
        // One draw per step seeds every worker: the run's generator alone decides the masks.
        uint64_t seed = tg_rng_next(rng);
        for (int k = 0; k < tg_data_parallel_shards(t->dp); k++)
            tg_rng_seed(tg_data_parallel_rng(t->dp, k), tg_data_parallel_shard_seed(seed, k));
        return tg_data_parallel_backward(t->dp, batch, loss_fn, user);
    }
#ifdef TG_EX_MPI
    if (t->mpi) { // the same draw, and rank r's masks those of shard r above
        uint64_t seed = tg_rng_next(rng);
        tg_rng_seed(tg_mpi_trainer_rng(t->mpi), tg_data_parallel_shard_seed(seed, tg_mpi_trainer_rank(t->mpi)));
        return tg_mpi_trainer_backward(t->mpi, batch, loss_fn, user);
    }
#endif
    tg_graph_reset(t->g);
    tg_shard whole = {.begin = 0, .count = batch, .batch = batch};
    tg_tensor *loss = loss_fn(t->g, &whole, rng, user);
    if (!loss || !tg_backward(t->g, loss)) return NAN;
    return tg_tensor_get(loss, 0);
}

double tg_ex_trainer_step(tg_ex_trainer *t, int64_t batch, tg_shard_loss_fn loss, void *user, tg_rng *rng) {
    tg_optim_zero_grad(t->opt);
    double value = backward(t, batch, loss, user, rng);
    if (isnan(value)) return fprintf(stderr, "%s: the training step failed; no update\n", t->program), NAN;
    if (t->clip > 0) tg_clip_grad_norm(t->params, t->clip);
    tg_optim_step(t->opt);
    return value;
}

double tg_ex_shard_token_weight(const tg_shard *shard, int64_t shard_tokens, int64_t batch_tokens) {
    if (shard->count == shard->batch) return 1; // the whole batch: its mean, as it is
    return (double)shard_tokens / (double)batch_tokens * ((double)shard->batch / (double)shard->count);
}

tg_ex_run tg_ex_run_at(int64_t step) { return (tg_ex_run){step, step, -1, NAN, NAN}; }

bool tg_ex_run_start(const char *program, const tg_ex_common *common, tg_params *params, bool has_state,
                     tg_optim *opt, tg_rng *rng, tg_ex_run *run) {
    int64_t step = 0;
    if (common->load) {
        if (!tg_ex_checkpoint_load(program, common->load, params, has_state, opt, rng, &step)) return false;
        printf("loaded %s, %lld steps trained\n", common->load, (long long)step);
    }
    *run = tg_ex_run_at(step);
    return true;
}

bool tg_ex_batches_init(tg_ex_batches *b, const int *train, int n, const int64_t *start, int batch, int window,
                        uint64_t seed) {
    *b = (tg_ex_batches){train, start, n, batch, window, seed, malloc(sizeof(int) * (size_t)(n + 1))};
    return b->order != NULL;
}

void tg_ex_batches_free(tg_ex_batches *b) {
    free(b->order);
    b->order = NULL;
}

int64_t tg_ex_batches_per_epoch(const tg_ex_batches *b) { return (b->n + b->batch - 1) / b->batch; }

void tg_ex_batches_epoch(tg_ex_batches *b, int64_t epoch) {
    tg_ex_epoch_order(b->train, b->n, b->start, b->seed, epoch, b->window, b->order);
}

int tg_ex_batches_at(const tg_ex_batches *b, int64_t k, const int **idx) {
    int at = (int)(k * b->batch);
    *idx = b->order + at;
    return b->n - at < b->batch ? b->n - at : b->batch;
}

// Whether the run may take another step.
static bool may_step(const tg_ex_loop *loop, const tg_ex_budget *budget, const tg_ex_run *run) {
    bool capped = loop->max_steps && (uint64_t)(run->step - run->start_step) >= loop->max_steps;
    return !capped && tg_ex_agree(tg_ex_budget_left(budget)); // the clock is rank 0's
}

// One epoch from step k on: returns the step it stopped at (steps_per_epoch when whole).
static int64_t epoch_steps(const tg_ex_loop *loop, int64_t epoch, int64_t k, const tg_ex_budget *budget,
                           const tg_ex_saver *saver, tg_ex_run *run) {
    char label[48];
    snprintf(label, sizeof label, "epoch %lld", (long long)epoch + 1);
    tg_ex_progress p;
    tg_ex_progress_begin(&p, stdout, label, loop->steps_per_epoch - k, loop->unit);
    p.budget = budget;
    for (; k < loop->steps_per_epoch && may_step(loop, budget, run); k++, run->step++) {
        if (tg_ex_saver_due(saver)) loop->save(loop->user, run->step); // a failure is reported; on we go
        double units = 0, loss = loop->step(loop->user, k, &units);
        if (run->step == run->start_step) run->first_loss = loss;
        tg_ex_progress_step(&p, loss, units);
    }
    tg_ex_progress_end(&p);
    run->last_loss = tg_ex_progress_loss(&p);
    return k;
}

void tg_ex_train_epochs(const tg_ex_loop *loop, double minutes, const tg_ex_saver *saver, tg_ex_run *run) {
    tg_ex_budget budget;
    tg_ex_budget_start(&budget, loop->steps_per_epoch > 0 ? minutes : 0);
    while (may_step(loop, &budget, run)) {
        int64_t epoch = run->step / loop->steps_per_epoch, k = run->step % loop->steps_per_epoch;
        loop->begin_epoch(loop->user, epoch);
        if (epoch_steps(loop, epoch, k, &budget, saver, run) < loop->steps_per_epoch) continue;
        loop->end_epoch(loop->user, epoch);
        run->dev_step = run->step;
    }
}

// --- Work for several threads -------------------------------------------------------------

typedef struct {
    void (*fn)(void *user, int task, int thread);
    void *user;
    int tasks;
    atomic_int next; // the next task not yet taken
} task_queue;

typedef struct {
    task_queue *q;
    int thread;
} task_runner;

static void *run_tasks(void *arg) {
    task_runner *r = arg;
    for (int task; (task = atomic_fetch_add(&r->q->next, 1)) < r->q->tasks;) r->q->fn(r->q->user, task, r->thread);
    return NULL;
}

void tg_ex_parallel_for(int threads, int tasks, void (*fn)(void *user, int task, int thread), void *user) {
    enum { MAX_THREADS = 256 }; // as --workers
    threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads > tasks ? tasks : threads;
    task_queue q = {fn, user, tasks, 0};
    task_runner runners[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    for (int t = 1; t < threads; t++) {
        runners[t] = (task_runner){&q, t};
        started[t] = pthread_create(&ids[t], NULL, run_tasks, &runners[t]) == 0;
    }
    runners[0] = (task_runner){&q, 0};
    run_tasks(&runners[0]);
    for (int t = 1; t < threads; t++)
        if (started[t]) pthread_join(ids[t], NULL);
}

typedef struct {
    void (*fn)(void *user, int task, tg_graph *g);
    void *user;
    tg_graph **graphs; // [threads]
} graph_tasks;

static void run_with_graph(void *arg, int task, int thread) {
    graph_tasks *t = arg;
    t->fn(t->user, task, t->graphs[thread]);
}

bool tg_ex_parallel_for_graphs(tg_graph *g, int threads, int tasks, void (*fn)(void *user, int task, tg_graph *g),
                               void *user) {
    threads = threads < 1 ? 1 : threads > tasks ? (tasks > 0 ? tasks : 1) : threads;
    tg_graph **graphs = malloc(sizeof *graphs * (size_t)threads);
    if (!graphs) return false;
    graphs[0] = g;
    for (int t = 1; t < threads; t++)
        if (!(graphs[t] = tg_graph_new())) threads = t; // fewer threads, the same tasks
    graph_tasks job = {fn, user, graphs};
    tg_ex_parallel_for(threads, tasks, run_with_graph, &job);
    for (int t = 1; t < threads; t++) tg_graph_free(graphs[t]);
    free(graphs);
    return true;
}
