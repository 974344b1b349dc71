#include "CRinggateSys.h"
#include <stdatomic.h>

uint64_t rg_load_acquire_u64(const void *p) {
    return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_acquire);
}
uint64_t rg_load_relaxed_u64(const void *p) {
    return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_relaxed);
}
void rg_store_release_u64(void *p, uint64_t v) {
    atomic_store_explicit((_Atomic uint64_t *)p, v, memory_order_release);
}
void rg_store_relaxed_u64(void *p, uint64_t v) {
    atomic_store_explicit((_Atomic uint64_t *)p, v, memory_order_relaxed);
}
uint32_t rg_load_acquire_u32(const void *p) {
    return atomic_load_explicit((_Atomic uint32_t *)p, memory_order_acquire);
}
void rg_store_release_u32(void *p, uint32_t v) {
    atomic_store_explicit((_Atomic uint32_t *)p, v, memory_order_release);
}
uint64_t rg_fetch_add_relaxed_u64(void *p, uint64_t v) {
    return atomic_fetch_add_explicit((_Atomic uint64_t *)p, v, memory_order_relaxed);
}
void rg_fence_acquire(void) { atomic_thread_fence(memory_order_acquire); }
void rg_fence_release(void) { atomic_thread_fence(memory_order_release); }
void rg_fence_seq_cst(void) { atomic_thread_fence(memory_order_seq_cst); }

int rg_cas_u32(void *p, uint32_t expected, uint32_t desired) {
    return atomic_compare_exchange_strong_explicit((_Atomic uint32_t *)p, &expected, desired,
                                                   memory_order_acq_rel, memory_order_acquire);
}
uint32_t rg_load_relaxed_u32(const void *p) {
    return atomic_load_explicit((_Atomic uint32_t *)p, memory_order_relaxed);
}
void rg_store_relaxed_u32(void *p, uint32_t v) {
    atomic_store_explicit((_Atomic uint32_t *)p, v, memory_order_relaxed);
}
