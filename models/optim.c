// optim.c: (in progress)
#include "tapegrad.h"
