// mpi_run.c: an example run under `mpirun -np N`, one process a rank.
//
// tg_ex_parse calls tg_ex_mpi_start: when Open MPI's launcher started the process (it sets
// OMPI_COMM_WORLD_SIZE before main), MPI starts, and every rank but 0 sends its standard
// output to /dev/null, so that rank 0 alone prints the progress bar, the scores and the
// RESULT line. The other ranks train as rank 0 does and evaluate as it does (the parameters
// are the same bits on every rank, so their decisions are too); only rank 0 saves
// (tg_ex_saver). A decision taken on the clock, such as whether the time budget allows
// another step, is rank 0's (tg_ex_agree): each rank takes part in every step's collectives,
// so they must stop at the same step.
#include <stdio.h>
#include <stdlib.h>

#include "tg_example.h"

#ifdef TG_EX_MPI
#include <mpi.h>

static int rank, ranks = 1;

static void finalize(void) {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}

void tg_ex_mpi_start(const char *program) {
    if (!getenv("OMPI_COMM_WORLD_SIZE")) return;
    MPI_Init(NULL, NULL);
    atexit(finalize);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    if (rank != 0 && !freopen("/dev/null", "w", stdout))
        fprintf(stderr, "%s: rank %d could not silence its output\n", program, rank);
}

bool tg_ex_agree(bool mine) {
    if (ranks == 1) return mine;
    int go = mine;
    MPI_Bcast(&go, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return go != 0;
}
#else
static const int rank = 0, ranks = 1;

void tg_ex_mpi_start(const char *program) {
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    if (size && atoi(size) > 1) {
        fprintf(stderr, "%s: started by mpirun, but built without MPI (install libopenmpi-dev and build with "
                        "-DTG_MPI=ON)\n", program);
        exit(2);
    }
}

bool tg_ex_agree(bool mine) { return mine; }
#endif

int tg_ex_rank(void) { return rank; }
int tg_ex_ranks(void) { return ranks; }
