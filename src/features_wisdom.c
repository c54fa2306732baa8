/* FFTW wisdom for the batched FFTs of src/features.c (n_fft 400 and 512), compiled in so that
 * every process takes the same measured plan (see mel_frontend_create). Made on an AMD EPYC
 * (AVX2) with FFTW 3.3.10 by `bench_features --wisdom`. */
#include "features_kernels.h"

/* Groups of 8 frames. seed: 200-point complex FFT as 10 x 20 (t2fv_10_avx, n2fv_20_sse2);
 * default: 256 as 32 x 8 (t2fv_32_avx, n2fv_8_avx), 20% faster than the 16 x 16 plan
 * FFTW_ESTIMATE takes. On the loaded machine, measuring now picks t1fv_ or t2fv_ codelets from run
 * to run (a tie); the t2fv_ ones kept here are those of the earlier 32-frame plans (three runs
 * agreed), so the features keep their bits. */
const char features_fftw_wisdom[] =
    "(fftw-3.3.10 fftwf_wisdom #x9e7d4dee #xdb14fed1 #x34bf76a4 #xeb6e8fdf\n"
    "  (fftwf_codelet_n2fv_20_sse2 0 #x11bdd #x11bdd #x0 #xf1e221a9 #x3b4c5cd0 #x096559a3 "
    "#xdeb8f911)\n"
    "  (fftwf_codelet_n2fv_8_avx 0 #x11bdd #x11bdd #x0 #xa65d78bf #x28c8422e #x8fef6075 "
    "#xac0aeb71)\n"
    "  (fftwf_codelet_t2fv_10_avx 0 #x11bdd #x11bdd #x0 #x8080308c #x716fe060 #x6c34ddbc "
    "#xa00705c7)\n"
    "  (fftwf_dft_vrank_geq1_register 0 #x11bdd #x11bdd #x0 #x5544dd66 #x4ff8a8b5 #xa28406db "
    "#x4eb09244)\n"
    "  (fftwf_dft_vrank_geq1_register 0 #x11bdd #x11bdd #x0 #xafe76e8f #xa2ac2221 #x4696d094 "
    "#xd1cc3cad)\n"
    "  (fftwf_codelet_t2fv_32_avx 0 #x11bdd #x11bdd #x0 #x2c50659a #x343a7df7 #xd727540d "
    "#xacfea1f9)\n"
    ")\n";
