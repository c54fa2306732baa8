/* Adam exactly as torch.optim.Adam's single-tensor path (PyTorch 1.13): the bias corrections are
 * computed in double, the moments and the update in float. */
#include "adfd/adam.h"

#include <math.h>
#include <stdlib.h>

#include "adfd/util.h"

void adam_init(adam_state *a, size_t n, double lr) {
    a->lr = lr;
    a->beta1 = 0.9;
    a->beta2 = 0.999;
    a->eps = 1e-8;
    a->step = 0;
    a->n = n;
    a->m = callocCheck(2 * n, sizeof(float));
    a->v = a->m + n;
}

void adam_free(adam_state *a) {
    free(a->m);
    a->m = a->v = NULL;
}

void adam_update(adam_state *a, float *params, const float *grads) {
    a->step++;
    double bc1 = 1.0 - pow(a->beta1, (double)a->step);
    double bc2 = 1.0 - pow(a->beta2, (double)a->step);
    float b1 = (float)a->beta1, b2 = (float)a->beta2;
    float step_size = (float)(a->lr / bc1), sqrt_bc2 = (float)sqrt(bc2);
    float eps = (float)a->eps;
    for (size_t i = 0; i < a->n; i++) {
        float g = grads[i];
        a->m[i] = a->m[i] * b1 + (1.0f - b1) * g;
        a->v[i] = a->v[i] * b2 + (1.0f - b2) * g * g;
        params[i] -= step_size * a->m[i] / (sqrtf(a->v[i]) / sqrt_bc2 + eps);
    }
}
