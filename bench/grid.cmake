# adfd grid: configuration-epochs per hour at 1 and 2 ranks (pure grid parallelism) and the
# parallel efficiency, with PyTorch (1 thread) training the same CNN on the same data in the same
# run as the reference. `make bench_grid`.
add_custom_target(bench_grid
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/grid_bench.sh $<TARGET_FILE:adfd> ${ADFD_PYTHON}
          ${PROJECT_SOURCE_DIR} ${MPIEXEC_EXECUTABLE}
  WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}
  USES_TERMINAL)
add_dependencies(bench_grid adfd)
