// checkpoint.c: (in progress)
#include "tapegrad.h"
