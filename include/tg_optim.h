// tg_optim.h: optimizers, learning-rate schedules, gradient clipping and parameter
// averaging, as PyTorch's.
//
// An optimizer updates every parameter of a tg_params collection from its gradient, with
// the arithmetic of torch.optim's single-tensor (foreach=False) path, operation by
// operation, so a float64 run follows PyTorch's to rounding. Its state (momentum, moments)
// has each parameter's dtype and is allocated once, when the optimizer is made: step()
// never allocates.
//
//     tg_optim *opt = tg_optim_adamw(params, (tg_adam_opts){.lr = 3e-4});
//     for (int64_t epoch = 0; ...; epoch++) {
//         tg_optim_set_lr(opt, tg_lr_at(&sched, 3e-4, epoch));
//         for (each batch) {
//             tg_optim_zero_grad(opt);
//             tg_backward(g, loss);
//             tg_clip_grad_norm(params, 1.0);
//             tg_optim_step(opt);
//         }
//     }
//
// Options are plain structs for designated initialisers. A field left 0 means PyTorch's
// default; where that default is not 0 (Adam's lr, betas, eps; AdamW's weight_decay), write
// TG_OPTIM_ZERO to ask for a real zero.
#ifndef TG_OPTIM_H
#define TG_OPTIM_H

#include "tg_params.h"

#ifdef __cplusplus
extern "C" {
#endif

// An explicit 0 for option fields whose 0 means "default": negative zero, which computes as
// 0 but is told apart by its sign bit.
#define TG_OPTIM_ZERO (-0.0)

// torch.optim.SGD. lr has no default (torch requires it): 0 is an error.
typedef struct {
    double lr;           // required
    double momentum;     // 0: plain SGD
    double dampening;    // 0; the momentum buffer takes (1 - dampening) of each new gradient
    double weight_decay; // 0; L2 penalty: wd * p is added to the gradient
    bool nesterov;       // false; needs momentum > 0 and dampening 0
} tg_sgd_opts;

// torch.optim.Adam and AdamW: 0 means lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-8, and
// weight_decay 0 for Adam (added to the gradient) or 0.01 for AdamW (decoupled).
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    bool amsgrad; // false; normalise by the running maximum of the second moment
} tg_adam_opts;

typedef struct tg_optim tg_optim;

// An optimizer over the parameters p holds now (parameters added later are not updated);
// float32 and float64 parameters may mix. NULL, through tg_fail, on invalid options or an
// int32 parameter. p must outlive the optimizer.
tg_optim *tg_optim_sgd(tg_params *p, tg_sgd_opts opts);
tg_optim *tg_optim_adam(tg_params *p, tg_adam_opts opts);
// Adam with decoupled weight decay: p *= 1 - lr*weight_decay before the Adam update.
tg_optim *tg_optim_adamw(tg_params *p, tg_adam_opts opts);
// Frees the optimizer and its state (NULL is fine); the parameters stay.
void tg_optim_free(tg_optim *o);

// One update of every parameter from its current gradient. Like torch after
// zero_grad(set_to_none=False), a zero gradient is still a step (decay, momentum apply).
void tg_optim_step(tg_optim *o);
// Sets the gradients of the optimizer's parameters to zero.
void tg_optim_zero_grad(tg_optim *o);
// The learning rate the next step uses; setting it is how a schedule drives the optimizer.
double tg_optim_lr(const tg_optim *o);
void tg_optim_set_lr(tg_optim *o, double lr);

// --- State, for checkpoints ---
// Steps taken so far (torch's state "step"; Adam's bias corrections depend on it).
int64_t tg_optim_step_count(const tg_optim *o);
// Restores the count when loading a checkpoint. For SGD with momentum, a count > 0 also
// marks the momentum buffers as holding data (torch initialises them on the first step).
void tg_optim_set_step_count(tg_optim *o, int64_t steps);
// Number of state tensors: one per parameter for SGD with momentum (none without), two for
// Adam and AdamW, three with amsgrad.
int tg_optim_state_count(const tg_optim *o);
// The i-th state tensor (NULL when out of range), writable so a checkpoint can load it; its
// name "optim.<param>.<buffer>", buffer one of torch's momentum_buffer, exp_avg,
// exp_avg_sq, max_exp_avg_sq, goes to *name when name is not NULL.
tg_tensor *tg_optim_state_at(const tg_optim *o, int i, const char **name);
// The state tensor of that name, or NULL.
tg_tensor *tg_optim_state_find(const tg_optim *o, const char *name);

// --- Learning-rate schedules (torch.optim.lr_scheduler), in closed form ---
// A schedule is a function of the epoch alone, so it has no state to checkpoint: epoch
// is the number of scheduler.step() calls torch would have made (0 before the first).
typedef enum {
    TG_LR_CONSTANT,    // base_lr
    TG_LR_STEP,        // StepLR: base_lr * gamma^(epoch / step_size)
    TG_LR_EXPONENTIAL, // ExponentialLR: base_lr * gamma^epoch
    TG_LR_COSINE,      // CosineAnnealingLR: eta_min + (base_lr - eta_min)(1 + cos(pi epoch/t_max))/2
    TG_LR_LINEAR,      // LinearLR: base_lr * factor, factor going linearly from start to end
} tg_lr_kind;

// Fields for other kinds are ignored; 0 means torch's default where there is one.
typedef struct {
    tg_lr_kind kind;
    int64_t step_size;   // STEP: required, > 0
    double gamma;        // STEP: default 0.1; EXPONENTIAL: required
    int64_t t_max;       // COSINE: required, > 0; the period is 2*t_max, as in torch
    double eta_min;      // COSINE: default 0
    double start_factor; // LINEAR: default 1/3
    double end_factor;   // LINEAR: default 1
    int64_t total_iters; // LINEAR: default 5; epochs after it keep end_factor
} tg_lr_schedule;

// The learning rate at epoch (>= 0) for base_lr. Invalid settings are reported through
// tg_fail and give NAN.
double tg_lr_at(const tg_lr_schedule *s, double base_lr, int64_t epoch);

// --- Gradient clipping (torch.nn.utils) ---
// clip_grad_norm_: the L2 norm of all gradients together, returned as it was before
// clipping; when max_norm/(norm + 1e-6) < 1 every gradient is scaled by that factor. As in
// torch, a NaN norm turns every gradient into NaN and an infinite one zeroes finite ones.
double tg_clip_grad_norm(tg_params *p, double max_norm);
// clip_grad_value_: clamps every gradient element into [-clip, clip] (NaN stays NaN).
void tg_clip_grad_value(tg_params *p, double clip);

// --- Parameter averaging (torch.optim.swa_utils.AveragedModel with an EMA avg_fn) ---
// An exponential moving average of the parameters, for evaluation: averaged weights
// usually score better than the last step's. It starts as a copy of the parameters:
//
//     tg_param_average *avg = tg_param_average_new(params, 0.999);
//     for (each step) { ...; tg_optim_step(opt); tg_param_average_update(avg); }
//     tg_param_average_swap(avg);   // the parameters hold the averages: evaluate, save
//     tg_param_average_swap(avg);   // and back, bit for bit, to train on
typedef struct tg_param_average tg_param_average;

// An average of the parameters p holds now (later additions are not averaged), with decay
// in [0, 1); NULL, through tg_fail, otherwise. p must outlive the average.
tg_param_average *tg_param_average_new(tg_params *p, double decay);
// Frees the average (NULL is fine); the parameters keep whatever values they hold.
void tg_param_average_free(tg_param_average *a);
// After each optimizer step: the first update copies the parameters, each later one sets
// avg = decay*avg + (1 - decay)*param. False (tg_fail) while the averages are swapped in.
bool tg_param_average_update(tg_param_average *a);
// Exchanges the parameters' values with the averages, exactly: a second swap restores both.
// Marks the parameters changed (tg_tensor_touch), so graphs drop what they derived from them.
void tg_param_average_swap(tg_param_average *a);
// True between an odd and an even number of swaps: the parameters hold the averages.
bool tg_param_average_swapped(const tg_param_average *a);
// Puts the averages (averages true) or the trained values into the parameters, swapping
// only when they are not there already; NULL does nothing.
void tg_param_average_use(tg_param_average *a, bool averages);
// The decay given to tg_param_average_new.
double tg_param_average_decay(const tg_param_average *a);
// Updates so far, and setting it when loading a checkpoint (0: the next update copies).
int64_t tg_param_average_count(const tg_param_average *a);
void tg_param_average_set_count(tg_param_average *a, int64_t updates);
// Number of averaged parameters, and the buffer of the i-th (NULL when out of range): its
// average, or, while swapped, the parameter's own values. Writable, for checkpoints.
int tg_param_average_size(const tg_param_average *a);
tg_tensor *tg_param_average_at(const tg_param_average *a, int i);

#ifdef __cplusplus
}
#endif
#endif
