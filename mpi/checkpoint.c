// checkpoint.c: checkpoints of an MPI run, written and read by rank 0, shared by messages.
//
// Every rank's parameters and optimizer state are the same bits (trainer.c), so rank 0's
// alone make the checkpoint, and tg_checkpoint.h's files are what any run, on any number
// of ranks or in one process, reads back.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_mpi_internal.h"

// Rank 0's verdict and message to every rank: true everywhere when it succeeded.
static bool share_outcome(tg_mpi_trainer *tr, bool ok, char *message, size_t message_len, char *err, size_t len) {
    int flag = ok;
    MPI_Bcast(&flag, 1, MPI_INT, 0, tr->reduce_comm);
    MPI_Bcast(message, (int)message_len, MPI_CHAR, 0, tr->reduce_comm);
    message[message_len - 1] = 0;
    if (!flag && err && len) snprintf(err, len, "%s", message);
    return flag;
}

bool tg_mpi_checkpoint_save(tg_mpi_trainer *tr, const char *path, const tg_optim *opt, int64_t step,
                            const char *config_json, char *err, size_t len) {
    if (!tr || !path) {
        if (err && len) snprintf(err, len, "tg_mpi_checkpoint_save: %s is NULL", tr ? "the path" : "the trainer");
        return false;
    }
    char message[1024] = "";
    bool ok = tr->rank != 0 ||
              tg_checkpoint_save(path, tr->params, opt, &tr->rng, step, config_json, message, sizeof message);
    return share_outcome(tr, ok, message, sizeof message, err, len);
}

// Rank 0's config_json (NULL or a string) to every rank, malloc'd.
static char *share_config(tg_mpi_trainer *tr, char *config) {
    long long n = config ? (long long)strlen(config) : -1;
    MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, tr->reduce_comm);
    if (n < 0) return NULL;
    if (tr->rank != 0 && !(config = malloc((size_t)n + 1))) abort(); // the others are sending: cannot back out
    MPI_Bcast(config, (int)n + 1, MPI_CHAR, 0, tr->reduce_comm);
    return config;
}

// Rank 0's loaded parameters, optimizer state and generator to every rank; then each
// rank's generator from the saved one and its rank.
static void share_state(tg_mpi_trainer *tr, tg_optim *opt, tg_rng *saved, int64_t *step) {
    for (int i = 0; i < tr->n_params; i++) {
        tg_tensor *t = tg_params_at(tr->params, i);
        tg_mpi_bcast_elements(t->data, t->numel, t->dtype, tr->reduce_comm);
        tg_tensor_touch(t);
    }
    for (int i = 0; opt && i < tg_optim_state_count(opt); i++) {
        tg_tensor *t = tg_optim_state_at(opt, i, NULL);
        tg_mpi_bcast_elements(t->data, t->numel, t->dtype, tr->reduce_comm);
    }
    long long counts[2] = {opt ? (long long)tg_optim_step_count(opt) : 0, (long long)*step};
    double lr = opt ? tg_optim_lr(opt) : 0;
    MPI_Bcast(counts, 2, MPI_LONG_LONG, 0, tr->reduce_comm);
    MPI_Bcast(&lr, 1, MPI_DOUBLE, 0, tr->reduce_comm);
    MPI_Bcast(saved->s, 4, MPI_UINT64_T, 0, tr->reduce_comm);
    if (opt) {
        tg_optim_set_step_count(opt, counts[0]);
        tg_optim_set_lr(opt, lr);
    }
    *step = counts[1];
    tg_rng_seed(&tr->rng, tg_data_parallel_shard_seed(tg_rng_next(saved), tr->rank));
}

bool tg_mpi_checkpoint_load(tg_mpi_trainer *tr, const char *path, tg_optim *opt, int64_t *step, char **config_json,
                            char *err, size_t len) {
    if (!tr || !path) {
        if (err && len) snprintf(err, len, "tg_mpi_checkpoint_load: %s is NULL", tr ? "the path" : "the trainer");
        return false;
    }
    char message[1024] = "", *config = NULL;
    tg_rng saved = {{0}};
    int64_t saved_step = 0;
    bool ok = tr->rank != 0 || tg_checkpoint_load(path, tr->params, opt, &saved, &saved_step, &config, true, message,
                                                  sizeof message);
    if (!share_outcome(tr, ok, message, sizeof message, err, len)) return false;
    share_state(tr, opt, &saved, &saved_step);
    config = share_config(tr, config);
    if (step) *step = saved_step;
    if (config_json) *config_json = config;
    else free(config);
    return true;
}
