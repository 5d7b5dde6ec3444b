// safetensors.c: (in progress)
#include "tg_internal.h"
