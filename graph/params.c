// params.c: the named parameter collection.
#include <stdlib.h>
#include <string.h>

#include "tg_internal.h"
#include "tg_params.h"

struct tg_params {
    tg_tensor **tensors; // in the order added
    char **names;
    int n, cap;
};

tg_params *tg_params_new(void) { return calloc(1, sizeof(tg_params)); }

void tg_params_free(tg_params *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        tg_tensor_free(p->tensors[i]);
        free(p->names[i]);
    }
    free(p->tensors);
    free(p->names);
    free(p);
}

tg_tensor *tg_params_add(tg_params *p, const char *name, tg_dtype dtype, tg_shape shape) {
    if (!name || !*name) return tg_fail(NULL, "params_add", "a parameter needs a name");
    if (tg_params_find(p, name)) return tg_fail(NULL, "params_add", "a parameter named \"%s\" exists already", name);
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 16;
        tg_tensor **t = realloc(p->tensors, (size_t)cap * sizeof *t);
        if (!t) return NULL;
        p->tensors = t;
        char **nm = realloc(p->names, (size_t)cap * sizeof *nm);
        if (!nm) return NULL;
        p->names = nm;
        p->cap = cap;
    }
    tg_tensor *t = tg_tensor_create(dtype, shape, true);
    char *copy = strdup(name);
    if (!t || !copy) {
        tg_tensor_free(t);
        free(copy);
        return NULL;
    }
    t->name = copy;
    p->tensors[p->n] = t;
    p->names[p->n] = copy;
    p->n++;
    return t;
}

tg_tensor *tg_params_find(const tg_params *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->names[i], name) == 0) return p->tensors[i];
    return NULL;
}

int tg_params_count(const tg_params *p) { return p->n; }
tg_tensor *tg_params_at(const tg_params *p, int i) { return i >= 0 && i < p->n ? p->tensors[i] : NULL; }

int64_t tg_params_numel(const tg_params *p) {
    int64_t n = 0;
    for (int i = 0; i < p->n; i++) n += p->tensors[i]->numel;
    return n;
}

void tg_params_zero_grad(tg_params *p) {
    for (int i = 0; i < p->n; i++) tg_tensor_zero_grad(p->tensors[i]);
}
