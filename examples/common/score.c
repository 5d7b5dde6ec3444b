// score.c: how far predicted token sequences are from their references (g2p's phoneme and
// word error rates, counted as the literature counts them).
#include <math.h>
#include <string.h>

#include "tg_example.h"

int tg_ex_edit_distance(const int32_t *a, int n, const int32_t *b, int m) {
    if (n > TG_EX_EDIT_MAX || m > TG_EX_EDIT_MAX) return n > m ? n : m; // no such pronunciation: a bound will do
    int row[2][TG_EX_EDIT_MAX + 1];
    for (int j = 0; j <= m; j++) row[0][j] = j;
    for (int i = 1; i <= n; i++) {
        int *prev = row[(i - 1) & 1], *cur = row[i & 1];
        cur[0] = i;
        for (int j = 1; j <= m; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]), del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    }
    return row[n & 1][m];
}

bool tg_ex_errors_count(tg_ex_errors *e, const int32_t *hyp, int n_hyp, bool finished, const int32_t *ref,
                        int n_ref) {
    int d = tg_ex_edit_distance(hyp, n_hyp, ref, n_ref);
    bool wrong = d > 0 || !finished; // a cut-off prediction is wrong even when it is a prefix that matches
    e->edits += d;
    e->ref += n_ref;
    e->wrong += wrong;
    e->words++;
    return wrong;
}

// True when hyp says exactly alt, compared as symbols: an alternate may hold a symbol the
// model never learned (it then never says it).
static bool says(const int32_t *hyp, int n_hyp, const tg_ex_phones *alt, const tg_ex_vocab *symbols) {
    if (n_hyp != alt->n_phones) return false;
    for (int k = 0; k < n_hyp; k++)
        if (strcmp(tg_ex_vocab_token(symbols, hyp[k]), alt->phones[k])) return false;
    return true;
}

void tg_ex_errors_count_any(tg_ex_errors *e, const int32_t *hyp, int n_hyp, bool finished, bool wrong_first,
                            const tg_ex_pron *p, const tg_ex_vocab *symbols) {
    bool right = !wrong_first;
    for (int k = 0; k < p->n_alternates && !right && finished; k++)
        right = says(hyp, n_hyp, &p->alternates[k], symbols);
    e->wrong_any += !right;
    e->with_alternates += p->n_alternates > 0;
}

void tg_ex_errors_add(tg_ex_errors *sum, const tg_ex_errors *part) {
    sum->edits += part->edits, sum->ref += part->ref, sum->wrong += part->wrong, sum->words += part->words;
    sum->wrong_any += part->wrong_any, sum->with_alternates += part->with_alternates;
}

double tg_ex_per(tg_ex_errors e) { return e.ref ? (double)e.edits / (double)e.ref : NAN; }
double tg_ex_wer(tg_ex_errors e) { return e.words ? (double)e.wrong / (double)e.words : NAN; }
double tg_ex_wer_any(tg_ex_errors e) { return e.words ? (double)e.wrong_any / (double)e.words : NAN; }
