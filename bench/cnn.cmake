# CNN training/inference samples/s vs PyTorch (1 thread, same run) and GFLOP/s vs SGEMM peak.
# `cmake --build BUILD --target bench_cnn` or bench/bench_cnn.sh BUILD [SECONDS].
add_executable(bench_cnn ${CMAKE_CURRENT_SOURCE_DIR}/bench_cnn.c)
target_link_libraries(bench_cnn PRIVATE adfd_core)
add_custom_target(bench_cnn_run
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/bench_cnn.sh ${PROJECT_BINARY_DIR}
  USES_TERMINAL)
add_dependencies(bench_cnn_run bench_cnn)
