# features / prepare benchmarks (issue 4); run bench/run_features.sh
add_executable(bench_features ${CMAKE_CURRENT_LIST_DIR}/bench_features.c)
target_link_libraries(bench_features PRIVATE adfd_core)
add_executable(bench_store ${CMAKE_CURRENT_LIST_DIR}/bench_store.c)
target_link_libraries(bench_store PRIVATE adfd_core)
