// seq2seq.c: (in progress)
#include "tapegrad.h"
