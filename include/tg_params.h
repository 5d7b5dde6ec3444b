// tg_params.h: parameters live outside graphs, in a named collection.
//
// Names follow PyTorch's state_dict ("weight_ih_l0", "encoder.embedding.weight"). A graph
// uses a parameter without copying it, and backward accumulates straight into its gradient.
#ifndef TG_PARAMS_H
#define TG_PARAMS_H

#include "tg_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_params tg_params;

// An empty collection.
tg_params *tg_params_new(void);
// Frees the collection and every tensor in it (NULL is fine).
void tg_params_free(tg_params *p);
// Adds a zero-filled parameter with a zeroed gradient; NULL (through the error path) when
// the name is taken. The collection owns the tensor.
tg_tensor *tg_params_add(tg_params *p, const char *name, tg_dtype dtype, tg_shape shape);
// The parameter of that name, or NULL.
tg_tensor *tg_params_find(const tg_params *p, const char *name);
// Number of parameters, and the i-th in the order they were added.
int tg_params_count(const tg_params *p);
tg_tensor *tg_params_at(const tg_params *p, int i);
// Total number of scalar elements over all parameters.
int64_t tg_params_numel(const tg_params *p);
// Sets every parameter's gradient to zero (PyTorch's zero_grad).
void tg_params_zero_grad(tg_params *p);

#ifdef __cplusplus
}
#endif
#endif
