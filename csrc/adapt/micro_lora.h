/*
 * Micro-LoRA: a low-rank residual adapter on query embeddings,
 *     y = x + (alpha / r) * B (A x),
 * with A [r x dim] drawn N(0, 1/dim) from a seed and B [dim x r] zero at
 * the start, so a new adapter is the identity. Learning updates both A and
 * B by the exact gradient of a contrastive loss on the adapted query,
 * taken through its normalisation (the loss sees only y / |y|):
 *
 *   keys k_0 (the positive) .. k_{n-1} (negatives), unit-normalised;
 *   c_i = <y/|y|, k_i/|k_i|>, z_i = c_i / temperature, p = softmax(z);
 *   reward w >= 0: L = w * -log p_0                 (InfoNCE, weighted)
 *   reward w <  0: L = |w| * -log(1 - p_0)          (unlikelihood: push the
 *                  result away; its gradient is bounded by |w| / temperature)
 *   one key only:  L = w * (1 - c_0)               (cosine; InfoNCE of one
 *                  key is constant)
 *
 * Gradients are summed over the examples given since the last step, and a
 * step applies their mean with SGD or Adam (bias-corrected), plus decoupled
 * weight decay toward zero.
 *
 * Layout: one block of twelve arrays, each [r x ld] with ld = dim rounded
 * up to 4 (the padding stays zero): A, B^T (row j is B's column j, so both
 * products walk contiguous rows), their accumulated gradients, Adam's first
 * and second moments of each, and four spares. A step writes the new
 * weights over the gradients and the new moments into the spares, then
 * swaps pointers: a step that would overflow changes nothing.
 */
#ifndef QE_MICRO_LORA_H
#define QE_MICRO_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/handle.h"

#define QE_LORA_MAX_RANK 8
/* Keys (positive plus negatives) one example may carry. */
#define QE_LORA_MAX_KEYS 4096
/* Largest dimension: A and B^T of rank 8 stay under 64 MiB each. */
#define QE_LORA_MAX_DIM (1 << 21)

enum { QE_LORA_SGD = 0, QE_LORA_ADAM = 1 };

/* Layout version of struct qe_micro_lora (its handle header carries it). */
#define QE_MICRO_LORA_LAYOUT 1u

typedef struct qe_micro_lora {
  qe_handle h; /* first: the entries check it (runtime/handle.h) */
  size_t dim, rank, ld;
  float alpha, scale; /* scale = alpha / rank */
  uint64_t seed;
  int32_t optimizer;
  float learning_rate, beta1, beta2, epsilon, weight_decay;
  uint64_t steps;       /* optimizer steps taken (Adam's t) */
  uint32_t grad_count;  /* examples summed into the gradients */
  float *block;         /* the eight arrays below, one allocation */
  float *a, *bt, *grad_a, *grad_bt, *m_a, *v_a, *m_bt, *v_bt;
  float *spare[4]; /* a step's new moments, before they are known finite */
} qe_micro_lora;

/* NULL when out of memory; dim, rank and alpha are checked by the caller. */
qe_micro_lora *qe_micro_lora_create(size_t dim, size_t rank, float alpha, uint64_t seed);
void qe_micro_lora_destroy(qe_micro_lora *lora);

/* A drawn again from the seed, B, gradients and moments zero, steps 0. */
void qe_micro_lora_reset(qe_micro_lora *lora);

/* y = x + scale * B (A x); y may alias x. Returns 0, or -1 when A x or y is
 * not finite (then y is unspecified). */
int qe_micro_lora_forward(const qe_micro_lora *lora, const float *x, float *y);

/* Workspace bytes qe_micro_lora_accumulate needs for `keys` keys. */
size_t qe_micro_lora_grad_workspace_bytes(size_t dim, size_t keys);

/*
 * Adds the gradient of the loss above for query x and keys [keys x dim]
 * (row stride ldk) to the accumulated gradients, and writes the loss.
 * Returns 0, or -1 when the adapted query is zero or not finite, or a key
 * is not finite (nothing is accumulated then).
 */
int qe_micro_lora_accumulate(qe_micro_lora *lora, const float *x, const float *keys, size_t nkeys,
                             size_t ldk, float temperature, float reward, void *workspace,
                             float *loss);

/* As qe_micro_lora_accumulate, but adds the gradient to grad_a and grad_bt
 * ([rank x ld] each, B^T's layout) and leaves the adapter unchanged. */
int qe_micro_lora_gradient(const qe_micro_lora *lora, const float *x, const float *keys,
                           size_t nkeys, size_t ldk, float temperature, float reward,
                           float *grad_a, float *grad_bt, void *workspace, float *loss);

/* One optimizer step with the mean accumulated gradient; clears it. No-op
 * when nothing was accumulated. Returns -1, changing no weight, when the
 * step would make a weight or moment infinite or NaN. */
int qe_micro_lora_step(qe_micro_lora *lora);

/* w [dim x dim] (row stride ldw) += scale * B A: the adapter as one matrix. */
void qe_micro_lora_merge(const qe_micro_lora *lora, float *w, size_t ldw);

/* The byte format: see micro_lora.c. */
size_t qe_micro_lora_export_bytes(const qe_micro_lora *lora);
void qe_micro_lora_export(const qe_micro_lora *lora, unsigned char *out);
/* A status code of qe_api.h; *out is a new adapter on QE_OK. */
int qe_micro_lora_import(const unsigned char *bytes, size_t n, qe_micro_lora **out);

#endif /* QE_MICRO_LORA_H */
