// tg-mpibench: how fast this machine's MPI sums a gradient, at the benchmark models' sizes.
//
//   build/bench/tg-bench --grad-sizes > sizes.txt          # "CONFIG BYTES" per model
//   mpirun -np 2 build/bench/tg-mpibench sizes.txt [--seconds S]
//   mpirun -np 2 build/bench/tg-mpibench --bytes N [--bytes N...]
//
// For each size, float32 buffers of that many bytes: the time of one MPI_Allreduce (sum),
// and of the MPI_Reduce_scatter_block + MPI_Allgather pair the trainer runs (tg_mpi.h),
// over repetitions for at least S seconds (default 0.5) after 3 warm-ups: the fastest and
// the median (on a shared machine a rank that loses its core stalls the other, which
// spins waiting: the median then measures the scheduler, the fastest what MPI can do); and
// the bandwidths the fastest implies: algbw = bytes / time, busbw = 2(p-1)/p x bytes / time
// (what each rank sends in a ring all-reduce, per second: the figure to set against the
// link's rate). An 8-byte all-reduce gives the latency. Rank 0 prints.
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_cpu.h"

#define MAX_SIZES 64
#define MAX_REPS 4096

typedef struct {
    char name[64];
    long long bytes;
} grad_size;

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// The fastest and the median time (best[0], best[1]) of op over at least `seconds` (rank
// 0's clock decides for everyone).
static void time_op(int which, float *send, float *recv, float *part, int count, int size, double seconds,
                    double best[2]) {
    static double t[MAX_REPS];
    int n = 0, more = 1;
    double start = MPI_Wtime();
    for (int rep = -3; more; rep++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (which == 0) {
            MPI_Allreduce(send, recv, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        } else {
            MPI_Reduce_scatter_block(send, part, count / size, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            MPI_Allgather(part, count / size, MPI_FLOAT, recv, count / size, MPI_FLOAT, MPI_COMM_WORLD);
        }
        double dt = MPI_Wtime() - t0;
        if (rep >= 0) t[n++] = dt;
        more = n < MAX_REPS && (n < 5 || MPI_Wtime() - start < seconds);
        MPI_Bcast(&more, 1, MPI_INT, 0, MPI_COMM_WORLD);
    }
    qsort(t, (size_t)n, sizeof *t, by_value);
    best[0] = t[0];
    best[1] = t[n / 2];
}

static void measure(const grad_size *g, int rank, int size, double seconds) {
    int count = (int)((g->bytes / 4 + size - 1) / size * size); // whole segments for the reduce-scatter
    if (count < size) count = size;
    float *send = calloc((size_t)count, 4), *recv = calloc((size_t)count, 4), *part = calloc((size_t)count / size, 4);
    if (!send || !recv || !part) MPI_Abort(MPI_COMM_WORLD, 1);
    for (int i = 0; i < count; i++) send[i] = (float)(i % 7);
    double ar[2], rsag[2];
    time_op(0, send, recv, part, count, size, seconds, ar);
    time_op(1, send, recv, part, count, size, seconds, rsag);
    double bytes = (double)count * 4, ring = 2.0 * (size - 1) / size;
    if (rank == 0)
        printf("%-16s %10.0f %9.1f %9.1f %10.3f %10.3f %9.1f %9.1f\n", g->name, bytes, ar[0] * 1e6, ar[1] * 1e6,
               bytes / ar[0] * 1e-9, ring * bytes / ar[0] * 1e-9, rsag[0] * 1e6, rsag[1] * 1e6);
    fflush(stdout);
    free(send), free(recv), free(part);
}

// "NAME BYTES" lines from path (rank 0 reads): how many, or -1 when it cannot be read.
static int read_sizes(const char *path, grad_size *sizes) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0;
    char line[256];
    while (n < MAX_SIZES && fgets(line, sizeof line, f))
        if (line[0] != '#' && sscanf(line, "%63s %lld", sizes[n].name, &sizes[n].bytes) == 2 && sizes[n].bytes > 0) n++;
    fclose(f);
    return n;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    static grad_size sizes[MAX_SIZES];
    int n = 0, bad = 0;
    double seconds = 0.5;
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--bytes") && i + 1 < argc && n < MAX_SIZES) {
            snprintf(sizes[n].name, sizeof sizes[n].name, "%s", argv[++i]);
            bad = (sizes[n++].bytes = atoll(argv[i])) <= 0;
        } else if (rank == 0 && argv[i][0] != '-') {
            int got = read_sizes(argv[i], sizes + n);
            bad = got < 0;
            n += got > 0 ? got : 0;
        } else if (argv[i][0] == '-') bad = 1;
    }
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (bad || n == 0 || seconds <= 0) {
        if (rank == 0) fprintf(stderr, "usage: mpirun -np N tg-mpibench SIZES_FILE | --bytes N... [--seconds S]\n"
                                       "  (SIZES_FILE: \"NAME BYTES\" lines, as tg-bench --grad-sizes prints them)\n");
        MPI_Finalize();
        return 2;
    }
    MPI_Bcast(sizes, (int)sizeof sizes, MPI_BYTE, 0, MPI_COMM_WORLD);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len;
    MPI_Get_library_version(version, &len);
    version[strcspn(version, ",\n")] = 0;
    if (rank == 0) {
        printf("# %s; %s; %d ranks\n", bench_cpu_name(), version, size);
        printf("%-16s %10s %9s %9s %10s %10s %9s %9s\n", "# size", "bytes", "ar_min_us", "ar_med_us", "algbw_GB/s",
               "busbw_GB/s", "rsag_min", "rsag_med");
        fflush(stdout);
    }
    measure(&(grad_size){"latency(8B)", 8}, rank, size, seconds);
    for (int i = 0; i < n; i++) measure(&sizes[i], rank, size, seconds);
    MPI_Finalize();
    return 0;
}
