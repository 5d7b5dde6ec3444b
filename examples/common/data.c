// data.c: (in progress)
#include "tapegrad.h"
