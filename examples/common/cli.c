// cli.c: (in progress)
#include "tapegrad.h"
