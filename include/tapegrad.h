// tapegrad.h: everything. Reverse-mode automatic differentiation on a tape, in C.
#ifndef TAPEGRAD_H
#define TAPEGRAD_H

#include "tg_attention.h"
#include "tg_autodiff.h"
#include "tg_checkpoint.h"
#include "tg_graph.h"
#include "tg_ops.h"
#include "tg_optim.h"
#include "tg_parallel.h"
#include "tg_params.h"
#include "tg_rnn.h"
#include "tg_runtime.h"
#include "tg_safetensors.h"
#include "tg_seq2seq.h"
#include "tg_tensor.h"

#define TAPEGRAD_VERSION "0.1.0"

#endif
