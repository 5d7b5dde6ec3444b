// test_example_shards.c: the examples' training steps on N worker threads against one
// worker. The trainer itself (N workers = one graph, within 1e-5 in float32 after 5 Adam
// steps) is test_threads.c's; what is new here is each example's shard loss function: its
// share of the batch's data, its weight (postag and g2p weigh a shard by its tokens, not its
// examples), charlm's state carried from chunk to chunk by rows. This file includes one
// example's source (TG_TEST_EXAMPLE, with its main renamed) and drives the example's own step
// on small synthetic data: three steps with --workers 1 and with --workers 2 and 3 (on an odd
// batch, shards of unequal tokens) must give the same losses and parameters within the
// trainer's float32 tolerance. Built once per example (tests/CMakeLists.txt).
#include "tg_test.h"

#define main example_main // the example's own, unused here
int example_main(int argc, char **argv);
#include TG_TEST_EXAMPLE
#undef main

#define TOLERANCE 1e-5 // the trainer's float32 guarantee (tg_parallel.h, test_threads.c)
enum { STEPS = 3 };

// The losses of STEPS steps and the parameters after them, for one worker count.
typedef struct {
    double loss[STEPS];
    tg_params *params;
} outcome;

// Compares a run on N workers with the run on one.
static void check_same(const outcome *one, const outcome *n, int workers) {
    for (int k = 0; k < STEPS; k++) {
        cr_assert(isfinite(one->loss[k]) && isfinite(n->loss[k]), "step %d: losses %g and %g", k, one->loss[k],
                  n->loss[k]);
        ASSERT_CLOSE(n->loss[k], one->loss[k], 0, TOLERANCE);
    }
    double err = test_params_max_relative_error(n->params, one->params);
    cr_assert(err <= TOLERANCE, "%d workers: parameters after %d steps off by %.3g relative (> %g)", workers, STEPS,
              err, TOLERANCE);
}

static void free_outcome(outcome *o) { tg_params_free(o->params); }

#if defined(TG_TEST_CHARLM)
enum { V = 12, B = 5, T = 6, TEXT = B * (T * STEPS + 1) };

// charlm on a random text of V - TG_EX_RESERVED symbols cut into B rows: STEPS chunks, each
// starting from the states the last one left (the carry, row by row).
static outcome run_charlm(int workers) {
    tg_rng rng;
    tg_rng_seed(&rng, 3);
    int32_t text[TEXT];
    for (int i = 0; i < TEXT; i++) text[i] = TG_EX_RESERVED + (int32_t)tg_rng_below(&rng, V - TG_EX_RESERVED);
    texts t = {.r = {rows_of(text, TEXT, B, T)}};
    settings st = {.seq = T, .batch = B, .workers = workers, .lr = 0.01, .clip = 1.0};
    session ss = {.t = &t, .st = &st};
    cr_assert(model_init(&ss.m, (sizes){8, 12, 2}, V, &rng));
    ss.opt = tg_optim_adam(ss.m.params, (tg_adam_opts){.lr = st.lr});
    cr_assert(carry_init(&ss.c, 2, B, 12));
    cr_assert(tg_ex_trainer_init(&ss.tr, "charlm", ss.m.params, ss.opt, st.clip, workers));
    outcome o = {.params = ss.m.params};
    for (int k = 0; k < STEPS; k++) {
        double units;
        o.loss[k] = step(&ss, k, &units);
    }
    ss.m.params = NULL; // the outcome keeps them
    session_free(&ss);
    return o;
}

Test(charlm_workers, shards_match_one_worker) {
    outcome one = run_charlm(1);
    for (int workers = 2; workers <= 3; workers++) {
        outcome n = run_charlm(workers);
        check_same(&one, &n, workers);
        free_outcome(&n);
    }
    free_outcome(&one);
}

#elif defined(TG_TEST_POSTAG)
enum { N_SENT = 21, B = 7, WORDS = 20, SUFFIXES = 10, TAGS = 9 };

// Sentences of 1 to 9 tokens with random features and tags.
static void synthetic_corpus(corpus *c, tg_rng *rng) {
    memset(c, 0, sizeof *c);
    c->start = malloc(sizeof *c->start * (N_SENT + 1));
    c->f = malloc(sizeof *c->f * N_SENT * 9);
    c->tags = malloc(sizeof *c->tags * N_SENT * 9);
    c->split[TG_EX_TRAIN] = malloc(sizeof(int) * N_SENT);
    int64_t at = 0;
    for (int i = 0; i < N_SENT; i++) {
        c->start[i] = at;
        for (int64_t end = at + 1 + (int64_t)tg_rng_below(rng, 9); at < end; at++) {
            c->f[at] = (features){TG_EX_RESERVED + (int32_t)tg_rng_below(rng, WORDS - TG_EX_RESERVED),
                                  TG_EX_RESERVED + (int32_t)tg_rng_below(rng, SUFFIXES - TG_EX_RESERVED),
                                  1 + (int32_t)tg_rng_below(rng, N_SHAPES - 1)};
            c->tags[at] = TG_EX_RESERVED + (int32_t)tg_rng_below(rng, TAGS - TG_EX_RESERVED);
        }
        c->split[TG_EX_TRAIN][c->n_split[TG_EX_TRAIN]++] = i;
    }
    c->start[N_SENT] = at;
}

// postag's steps on batches of B sentences in corpus order; dropout p, run generator seed.
static outcome run_postag(int workers, double dropout, uint64_t seed) {
    tg_rng rng;
    tg_rng_seed(&rng, 5);
    corpus c;
    synthetic_corpus(&c, &rng);
    settings st = {.batch = B, .workers = workers, .lr = 0.01, .clip = 5.0, .dropout = dropout};
    session ss = {.c = &c, .st = &st};
    cr_assert(model_init(&ss.m, (sizes){8, 4, 6, 1}, WORDS, SUFFIXES, TAGS, dropout, &rng));
    ss.opt = tg_optim_adam(ss.m.params, (tg_adam_opts){.lr = st.lr});
    cr_assert(tg_ex_batches_init(&ss.batches, c.split[TG_EX_TRAIN], N_SENT, c.start, B, B, 1));
    for (int i = 0; i < N_SENT; i++) ss.batches.order[i] = i; // batches in corpus order
    tg_rng_seed(&ss.rng, seed);
    cr_assert(tg_ex_trainer_init(&ss.tr, "postag", ss.m.params, ss.opt, st.clip, workers));
    outcome o = {.params = ss.m.params};
    for (int k = 0; k < STEPS; k++) {
        double tokens;
        o.loss[k] = step(&ss, k, &tokens);
        cr_assert_eq(tokens, (double)(c.start[(k + 1) * B] - c.start[k * B]), "step %d counts its batch's tokens", k);
    }
    ss.m.params = NULL;
    session_free(&ss);
    corpus_free(&c);
    return o;
}

// The shards hold sentences of unequal lengths (7 = 3 + 2 + 2): weighted by sentences
// instead of tokens, the mean would be off by far more than the tolerance.
Test(postag_workers, shards_match_one_worker) {
    outcome one = run_postag(1, 0, 1);
    for (int workers = 2; workers <= 3; workers++) {
        outcome n = run_postag(workers, 0, 1);
        check_same(&one, &n, workers);
        free_outcome(&n);
    }
    free_outcome(&one);
}

static bool identical(const tg_params *a, const tg_params *b) {
    for (int i = 0; i < tg_params_count(b); i++) {
        const tg_tensor *x = tg_params_at(a, i), *y = tg_params_at(b, i);
        if (memcmp(x->data, y->data, (size_t)y->numel * tg_dtype_size(y->dtype))) return false;
    }
    return true;
}

// With dropout, the workers' masks come from the run's generator (one draw a step seeds
// them): the same seed repeats a run bit for bit, another seed draws other masks.
Test(postag_workers, dropout_follows_the_run_generator) {
    outcome a = run_postag(2, 0.3, 1), b = run_postag(2, 0.3, 1), c = run_postag(2, 0.3, 2);
    cr_assert(identical(a.params, b.params), "two runs with seed 1 on 2 workers differ");
    cr_assert(!identical(a.params, c.params), "seeds 1 and 2 drew the same dropout masks");
    free_outcome(&a), free_outcome(&b), free_outcome(&c);
}

#elif defined(TG_TEST_G2P)
enum { N_WORDS = 21, B = 7, LETTERS = 10, PHONES = 8 };

// Words of 1 to 8 letters with 1 to 8 phonemes, then EOS.
static example *synthetic_words(int32_t *ids, tg_rng *rng) {
    example *ex = malloc(sizeof *ex * N_WORDS);
    for (int i = 0; i < N_WORDS; i++, ids += 18) {
        ex[i] = (example){"WORD", ids, ids + 9, 1 + (int)tg_rng_below(rng, 8), 2 + (int)tg_rng_below(rng, 8)};
        for (int k = 0; k < ex[i].src_len; k++) ex[i].src[k] = TG_EX_RESERVED + (int32_t)tg_rng_below(rng, LETTERS);
        for (int k = 0; k < ex[i].tgt_len - 1; k++) ex[i].tgt[k] = TG_EX_RESERVED + (int32_t)tg_rng_below(rng, PHONES);
        ex[i].tgt[ex[i].tgt_len - 1] = TG_EX_EOS;
    }
    return ex;
}

// g2p's steps on batches of B words in order.
static outcome run_g2p(int workers) {
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    model m = {.s = {"lstm", 8, 8, 1, 0}, .letters = tg_ex_vocab_new(), .phones = tg_ex_vocab_new()};
    for (int i = 0; i < LETTERS; i++) tg_ex_vocab_add_n(m.letters, &"ABCDEFGHIJ"[i], 1);
    for (int i = 0; i < PHONES; i++) tg_ex_vocab_add_n(m.phones, &"abcdefgh"[i], 1);
    int32_t ids[N_WORDS * 18];
    example *ex = synthetic_words(ids, &rng);
    cr_assert(model_init(&m, 0, 0, &rng));
    tg_optim *opt = tg_optim_adam(m.params, (tg_adam_opts){.lr = 0.01});
    tg_ex_trainer tr;
    cr_assert(tg_ex_trainer_init(&tr, "g2p", m.params, opt, 5.0, workers));
    int idx[N_WORDS];
    for (int i = 0; i < N_WORDS; i++) idx[i] = i;
    outcome o = {.params = m.params};
    for (int k = 0; k < STEPS; k++) o.loss[k] = train_step(&tr, &m, ex, idx + k * B, B, &rng);
    m.params = NULL;
    tg_ex_trainer_free(&tr);
    tg_optim_free(opt);
    model_free(&m);
    free(ex);
    return o;
}

// Words of unequal phoneme counts in each shard: the weights must count phonemes.
Test(g2p_workers, shards_match_one_worker) {
    outcome one = run_g2p(1);
    for (int workers = 2; workers <= 3; workers++) {
        outcome n = run_g2p(workers);
        check_same(&one, &n, workers);
        free_outcome(&n);
    }
    free_outcome(&one);
}
#endif
