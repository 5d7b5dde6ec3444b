// tg_mpi_internal.h: the trainer's state, shared by mpi/'s files and nothing else.
#ifndef TG_MPI_INTERNAL_H
#define TG_MPI_INTERNAL_H

#include <mpi.h>

#include "tg_mpi.h"

// A run of parameters (in reverse registration order) whose gradients travel together.
typedef struct {
    tg_dtype dtype;    // one dtype per bucket: MPI sums one type at a time
    int n_params;      // parameters in it
    int pending;       // of those, not final yet this step
    int64_t padded;    // elements: theirs, rounded up to a multiple of the rank count
    void *buf;         // [padded]: the shadows' gradients, then (all-gathered) their sum
    void *part;        // [padded / size]: this rank's segment of the sum
    MPI_Request req;   // the reduce-scatter under way, then the all-gather
} tg_mpi_bucket;

struct tg_mpi_trainer {
    tg_params *params;
    int n_params;
    int64_t numel;
    int rank, size;
    MPI_Comm reduce_comm, gather_comm; // duplicates of the caller's: see trainer.c
    tg_graph *g;
    tg_rng rng;
    tg_tensor *shadow;  // [n_params]: the parameters with gradients inside the buckets
    int *param_bucket;  // [n_params]: which bucket holds parameter i's gradient
    tg_mpi_bucket *bucket; // [n_buckets]: bucket 0 holds the last registered parameters
    int n_buckets;
    int next_start;     // buckets [0, next_start) are reducing or done this step
    int next_gather;    // buckets [0, next_gather) are gathering or done this step
    double *loss_parts; // [2 * size]: each rank's {ok, weighted loss}
    const void **slot;  // [slot_mask + 1]: open addressing, parameter tensor -> index[]
    int *index;
    size_t slot_mask;
    tg_mpi_stats stats;
};

// The index of parameter t, or -1 when t is not one of the trainer's.
int tg_mpi_param_index(const tg_mpi_trainer *tr, const tg_tensor *t);
// Sends n elements of dtype from rank 0's data to every rank's, whatever n (MPI counts are int).
void tg_mpi_bcast_elements(void *data, int64_t n, tg_dtype dtype, MPI_Comm comm);
// CLOCK_MONOTONIC in nanoseconds.
uint64_t tg_mpi_now_ns(void);

#endif
