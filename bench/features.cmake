# features / prepare benchmarks (issue 4); run bench/run_features.sh
add_executable(bench_features ${CMAKE_CURRENT_LIST_DIR}/bench_features.c)
target_link_libraries(bench_features PRIVATE adfd_core)
add_executable(bench_store ${CMAKE_CURRENT_LIST_DIR}/bench_store.c)
target_link_libraries(bench_store PRIVATE adfd_core)
# The front end as a shared library for bench_features_paired.py (torchaudio and adfd timed in
# one process, clip by clip): the feature sources compiled again as position-independent code,
# with adfd_core's flags and definitions.
add_library(adfd_features_paired SHARED ${CMAKE_CURRENT_LIST_DIR}/features_paired.c
  ${PROJECT_SOURCE_DIR}/src/features.c ${PROJECT_SOURCE_DIR}/src/features_avx2.c
  ${PROJECT_SOURCE_DIR}/src/features_wisdom.c ${PROJECT_SOURCE_DIR}/src/util.c)
target_include_directories(adfd_features_paired PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(adfd_features_paired PRIVATE MPI::MPI_C PkgConfig::FFTW3F m)
