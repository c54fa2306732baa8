# adfd analyze: audio-seconds per second per core scoring a one-hour recording, against the same
# pipeline in PyTorch + torchaudio (1 thread) in the same run. `make bench_analyze`.
add_custom_target(bench_analyze
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/analyze_bench.sh $<TARGET_FILE:adfd>
          $<TARGET_FILE:analyze_make_model> ${ADFD_PYTHON} ${PROJECT_SOURCE_DIR}
  WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}
  USES_TERMINAL)
add_dependencies(bench_analyze adfd analyze_make_model)
