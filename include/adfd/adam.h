/* adam: torch.optim.Adam (no weight decay, no amsgrad) on one flat parameter buffer. */
#ifndef ADFD_ADAM_H
#define ADFD_ADAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double lr, beta1, beta2, eps;
    int64_t step; /* updates done so far */
    size_t n;
    float *m, *v; /* one allocation: first and second moments [n] each */
} adam_state;

/* PyTorch's defaults: betas (0.9, 0.999), eps 1e-8. */
void adam_init(adam_state *a, size_t n, double lr);
void adam_free(adam_state *a);
/* params -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps), with the bias corrections of step+1. */
void adam_update(adam_state *a, float *params, const float *grads);

#endif
