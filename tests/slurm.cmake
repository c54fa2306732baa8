# preempt module and Slurm jobs (issue 8).
# test_preempt: the SLURM_NTASKS world-size check and the collective preemption flag, on 2 and 3 ranks.
add_executable(test_preempt test_preempt.c)
target_link_libraries(test_preempt PRIVATE adfd_core)
target_include_directories(test_preempt PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
adfd_mpi_test(test_preempt test_preempt 2 LABELS slurm)
adfd_mpi_test(test_preempt test_preempt 3 LABELS slurm)
# The jobs/ scripts on a real Slurm on localhost (2 emulated nodes) (scripts/slurm-local.sh); exit 77 = cannot run slurmd.
adfd_script_test(test_slurm_jobs test_slurm_jobs.sh LABELS slurm)
set_tests_properties(test_slurm_jobs PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 400 PROCESSORS 2)
