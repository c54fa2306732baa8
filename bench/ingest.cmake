# Audio loading throughput (run bench/bench_audio.sh BUILD_DIR for the torchaudio comparison).
add_executable(bench_audio ${CMAKE_CURRENT_SOURCE_DIR}/bench_audio.c)
target_link_libraries(bench_audio PRIVATE adfd_core)
