// bench_cpu.h: names the CPU a benchmark ran on, for every figure it prints: speed decisions
// and measurements differ from one CPU model to the next.
#ifndef TG_BENCH_CPU_H
#define TG_BENCH_CPU_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

// "AMD EPYC (family 25 model 17), L2 1024 KB": /proc/cpuinfo's model name, family and model
// numbers (a virtual machine often hides the marketing name, but not these), and the L2 size
// per core that sysconf reports. "unknown CPU" where /proc/cpuinfo is missing.
static inline const char *bench_cpu_name(void) {
    static char name[256];
    char line[256], model[128] = "unknown CPU";
    int family = -1, number = -1;
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *value = colon + 2 <= line + strlen(line) ? colon + 2 : colon + 1;
        value[strcspn(value, "\n")] = 0;
        if (!strncmp(line, "model name", 10) && !strcmp(model, "unknown CPU"))
            snprintf(model, sizeof model, "%s", value);
        else if (!strncmp(line, "cpu family", 10) && family < 0) sscanf(value, "%d", &family);
        else if (!strncmp(line, "model\t", 6) && number < 0) sscanf(value, "%d", &number);
        if (!strncmp(line, "processor", 9) && family >= 0 && number >= 0) break; // the second CPU's entry
    }
    if (f) fclose(f);
    long l2 = -1;
#ifdef _SC_LEVEL2_CACHE_SIZE
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    snprintf(name, sizeof name, "%s (family %d model %d), L2 %ld KB", model, family, number, l2 > 0 ? l2 / 1024 : -1);
    return name;
}

#endif
