/* testing.h — the tiny assertion library of circd's CTest executables. Each CHECK prints file:line and the values
 * on failure and counts; testing_finish() prints "N passed, N failed" and returns the exit code for main(). */
#ifndef CIRCD_TESTING_H
#define CIRCD_TESTING_H

#include <stddef.h>
#include <stdint.h>

extern int testing_passed, testing_failed;

void testing_check(int ok, const char *file, int line, const char *expr);
void testing_check_near(double got, double want, double tol, const char *file, int line, const char *expr);
/* Relative+absolute closeness of two arrays: |a-b| <= atol + rtol*|b| everywhere; prints the worst element. */
void testing_check_close(const float *got, const float *want, size_t n, double rtol, double atol,
                         const char *file, int line, const char *what);
int testing_finish(void);

/* Runs `$CIRCD_BINARY ARGS` (stdout and stderr captured into output, NUL-terminated, cap bytes) and returns its
 * exit code (-1 if it did not exit normally). */
int testing_run_circd(const char *args, char *output, size_t cap);
/* The whole file, NUL-terminated, malloc'd (NULL if unreadable); *n = its size. */
char *testing_read_file(const char *path, size_t *n);

struct rng;
struct llama_config;
struct llama_model;

/* A small Llama config for model tests: the given shape, RoPE theta 10000, RMSNorm eps 1e-5, untied embeddings, no
 * BOS/EOS ids. */
struct llama_config testing_config(int vocab, int d_model, int n_layers, int n_heads, int n_kv_heads, int head_dim,
                                   int d_ff, int max_seq);
/* Random weights for model tests, drawn element by element in parameter order: matrices scale·N(0, 1), norm weights
 * 1 + norm_spread·N(0, 1). */
void testing_randomize_model(struct llama_model *m, uint64_t seed, float scale, float norm_spread);

/* Central differences of loss() w.r.t. x (every element when n <= max_points, else max_points elements drawn with
 * r) against analytic: CHECKs |numerical - analytic| <= rtol·|analytic| + atol·max|analytic| everywhere and that
 * the gradient is not identically zero; prints one summary line and the worst element on failure. */
struct fd_tolerance { double rtol, atol; size_t max_points; };
void testing_fd_check(const char *what, float *x, size_t n, const float *analytic, double (*loss)(void), float h,
                      struct fd_tolerance tol, struct rng *r);
/* malloc'd arrays for tests (never NULL-sized): n normal values times scale, and a copy of x. */
float *testing_randn(struct rng *r, size_t n, float scale);
float *testing_copy(const float *x, size_t n);
/* max |a - b| over max(1, max |b|): the error relative to the tensor's scale (NaN counts as the worst). */
float testing_scaled_diff(const float *a, const float *b, size_t n);

/* A path under the source tree (CIRCD_SOURCE_DIR, set by CTest) or under ../shared beside it. */
const char *testing_source_path(const char *relative);
const char *testing_shared_path(const char *relative);
/* A fresh temporary directory for this test process (removed at exit is not attempted). */
const char *testing_tmpdir(void);

#define CHECK(expr) testing_check(!!(expr), __FILE__, __LINE__, #expr)
#define CHECK_NEAR(got, want, tol) testing_check_near((got), (want), (tol), __FILE__, __LINE__, #got " ~ " #want)
#define CHECK_CLOSE(got, want, n, rtol, atol) \
    testing_check_close((got), (want), (n), (rtol), (atol), __FILE__, __LINE__, #got " ~ " #want)

#endif
