// test_example_train.c: the examples' shared loop of epochs, their batches and the weight of
// a shard's tokens (examples/common/train.c). The steps themselves, on one and on N workers,
// are test_example_shards.c's.
#include "tg_ex_train.h"
#include "tg_test.h"

// What the loop called, in order.
typedef struct {
    int64_t epoch;            // the epoch begin_epoch last started
    int64_t begun[8], ended[8];
    int n_begun, n_ended;
    int64_t seen[32]; // 100 * epoch + k of every step
    int n_seen;
} calls;

static void begin_epoch(void *user, int64_t epoch) {
    calls *c = user;
    c->epoch = epoch;
    c->begun[c->n_begun++] = epoch;
}

static double step(void *user, int64_t k, double *units) {
    calls *c = user;
    c->seen[c->n_seen++] = 100 * c->epoch + k;
    *units = 1;
    return (double)(10 * c->epoch + k); // a loss that says which step it was
}

static void end_epoch(void *user, int64_t epoch) {
    calls *c = user;
    c->ended[c->n_ended++] = epoch;
}

static bool save(void *user, int64_t step) {
    (void)user, (void)step;
    cr_assert_fail("a saver without a path is never due");
    return false;
}

// A run resumed at step 3 of epochs of 4 steps, stopped by max_steps 6: the rest of epoch 0,
// all of epoch 1, the first step of epoch 2; dev after epochs 0 and 1 only.
Test(train_loop, resumes_mid_epoch_and_stops_after_max_steps) {
    calls c = {0};
    tg_ex_loop loop = {"ex", 4, 6, &c, begin_epoch, step, end_epoch, save};
    tg_ex_saver saver = {0};
    tg_ex_run run = tg_ex_run_at(3);
    tg_ex_train_epochs(&loop, 1.0, &saver, &run);
    const int64_t seen[] = {3, 100, 101, 102, 103, 200};
    cr_assert_eq(c.n_seen, 6);
    for (int i = 0; i < 6; i++) cr_assert_eq(c.seen[i], seen[i], "step %d was %lld", i, (long long)c.seen[i]);
    cr_assert_eq(c.n_begun, 3);
    for (int i = 0; i < 3; i++) cr_assert_eq(c.begun[i], i);
    cr_assert_eq(c.n_ended, 2);
    cr_assert(c.ended[0] == 0 && c.ended[1] == 1);
    cr_assert_eq(run.step, 9);
    cr_assert_eq(run.start_step, 3);
    cr_assert_eq(run.dev_step, 8);
    cr_assert_eq(run.first_loss, 3.0);  // epoch 0, k 3
    cr_assert_eq(run.last_loss, 20.0); // the mean over the last (partial) epoch: its one step
}

// No batches (an empty training split): no epoch starts, the run stays where it was.
Test(train_loop, nothing_to_train_on) {
    calls c = {0};
    tg_ex_loop loop = {"ex", 0, 0, &c, begin_epoch, step, end_epoch, save};
    tg_ex_saver saver = {0};
    tg_ex_run run = tg_ex_run_at(5);
    tg_ex_train_epochs(&loop, 1.0, &saver, &run);
    cr_assert(c.n_begun == 0 && c.n_seen == 0 && c.n_ended == 0);
    cr_assert_eq(run.step, 5);
    cr_assert_eq(run.dev_step, -1);
}

// 10 examples in batches of 4: 4 + 4 + 2, each example once an epoch, epochs in other orders.
Test(train_loop, batches_cover_each_example_once) {
    int train[10];
    int64_t start[11];
    for (int i = 0; i < 10; i++) train[i] = i, start[i] = 3 * i;
    start[10] = 30;
    tg_ex_batches b;
    cr_assert(tg_ex_batches_init(&b, train, 10, start, 4, 8, 1));
    cr_assert_eq(tg_ex_batches_per_epoch(&b), 3);
    int first[10];
    for (int64_t epoch = 0; epoch < 2; epoch++) {
        tg_ex_batches_epoch(&b, epoch);
        int count[10] = {0}, sizes[3];
        for (int k = 0; k < 3; k++) {
            const int *idx;
            sizes[k] = tg_ex_batches_at(&b, k, &idx);
            for (int i = 0; i < sizes[k]; i++) count[idx[i]]++;
            if (epoch == 0) memcpy(first + 4 * k, idx, sizeof(int) * (size_t)sizes[k]);
        }
        cr_assert(sizes[0] == 4 && sizes[1] == 4 && sizes[2] == 2);
        for (int i = 0; i < 10; i++) cr_assert_eq(count[i], 1, "epoch %lld: example %d", (long long)epoch, i);
    }
    cr_assert(memcmp(first, b.order, sizeof first) != 0, "epochs 0 and 1 came in the same order");
    tg_ex_batches_free(&b);
}

// A shard's token mean counts as its tokens' share of the batch's: shards of 3 and 4
// examples holding 10 and 20 of 30 tokens weigh (10/30)(7/3) and (20/30)(7/4), so that with
// the trainer's weights count/batch they add up to 1. The whole batch weighs 1.
Test(train_loop, shard_token_weight) {
    tg_shard a = {.worker = 0, .begin = 0, .count = 3, .batch = 7, .index = 0},
             b = {.worker = 1, .begin = 3, .count = 4, .batch = 7, .index = 1}, whole = {.begin = 0, .count = 7, .batch = 7};
    double wa = tg_ex_shard_token_weight(&a, 10, 30), wb = tg_ex_shard_token_weight(&b, 20, 30);
    ASSERT_CLOSE(wa, 10.0 / 30 * 7 / 3, 0, 1e-15);
    ASSERT_CLOSE(wb, 20.0 / 30 * 7 / 4, 0, 1e-15);
    ASSERT_CLOSE(wa * 3 / 7 + wb * 4 / 7, 1.0, 0, 1e-15);
    cr_assert_eq(tg_ex_shard_token_weight(&whole, 30, 30), 1.0);
}
