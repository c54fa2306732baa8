# preempt module and Slurm jobs (issue 8).
# test_preempt: the SLURM_NTASKS world-size check and the collective preemption flag, on 2 and 3 ranks.
add_executable(test_preempt test_preempt.c)
target_link_libraries(test_preempt PRIVATE adfd_core)
target_include_directories(test_preempt PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
adfd_mpi_test(test_preempt test_preempt 2 LABELS slurm)
adfd_mpi_test(test_preempt test_preempt 3 LABELS slurm)
