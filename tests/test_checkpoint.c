#include "tg_test.h"
Test(placeholder, todo) { cr_assert(true); }
