// attention.c: (in progress)
#include "tapegrad.h"
