/* FFTW wisdom for the batched FFTs of src/features.c (n_fft 400 and 512), compiled in so that
 * every process takes the same measured plan (see mel_frontend_create). Made on an AMD EPYC
 * (AVX2) with FFTW 3.3.10 by `bench_features --wisdom`. */
#include "features_kernels.h"

/* Groups of 8 frames. seed: 4 transforms of 400 points (frame pairs) as 20 x 20 (t2fv_20_avx,
 * n2fv_20_avx); default: 8 of 256 points (even/odd) as 32 x 8 (t2fv_32_avx, n2fv_8_avx), 20%
 * faster than the 16 x 16 plan FFTW_ESTIMATE takes. Measuring picks t1fv_ or t2fv_ twiddle
 * codelets from run to run (a tie); t2fv_ won 4 of 6 seed measurements, and the default entries
 * are those of the earlier 32-frame plans (three runs agreed), so its features keep their bits. */
const char features_fftw_wisdom[] =
    "(fftw-3.3.10 fftwf_wisdom #x9e7d4dee #xdb14fed1 #x34bf76a4 #xeb6e8fdf\n"
    "  (fftwf_codelet_n2fv_8_avx 0 #x11bdd #x11bdd "
    "#x0 #xa65d78bf #x28c8422e #x8fef6075 #xac0aeb71)\n"
    "  (fftwf_codelet_t2fv_32_avx 0 #x11bdd #x11bdd "
    "#x0 #x2c50659a #x343a7df7 #xd727540d #xacfea1f9)\n"
    "  (fftwf_dft_vrank_geq1_register 0 #x11bdd #x11bdd "
    "#x0 #xafe76e8f #xa2ac2221 #x4696d094 #xd1cc3cad)\n"
    "  (fftwf_codelet_t2fv_20_avx 0 #x11bdd #x11bdd "
    "#x0 #x189aeebe #x3bb64679 #x53474e22 #x252091b0)\n"
    "  (fftwf_dft_vrank_geq1_register 0 #x11bdd #x11bdd "
    "#x0 #x7968ae9a #xa72a89e6 #x7ac2d386 #xccfa9fc7)\n"
    "  (fftwf_codelet_n2fv_20_avx 0 #x11bdd #x11bdd "
    "#x0 #x7a0afaca #xf966c444 #x02757e95 #x61c6607d)\n"
    ")\n";
