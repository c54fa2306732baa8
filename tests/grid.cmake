# Tests of metrics, grid configuration, reports, `adfd eval` and `adfd grid` (tests/grid.cmake).
adfd_unit_test(test_metrics SOURCES test_metrics.c LABELS grid)
add_executable(metrics_tool metrics_tool.c)
target_link_libraries(metrics_tool PRIVATE adfd_core)
add_test(NAME test_metrics_sklearn
  COMMAND ${ADFD_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_metrics_sklearn.py $<TARGET_FILE:metrics_tool>
  WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(test_metrics_sklearn PROPERTIES ENVIRONMENT "${ADFD_TEST_ENV}" LABELS "unit;grid")
adfd_unit_test(test_gridconfig SOURCES test_gridconfig.c LABELS grid)
adfd_unit_test(test_gridrun SOURCES test_gridrun.c LABELS grid)
add_executable(report_tool report_tool.c)
target_link_libraries(report_tool PRIVATE adfd_core)
add_test(NAME test_report
  COMMAND ${ADFD_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_report.py $<TARGET_FILE:report_tool>
  WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(test_report PROPERTIES ENVIRONMENT "${ADFD_TEST_ENV}" LABELS "unit;grid")
foreach(scenario cli groups flip resume)
  adfd_script_test(test_grid_${scenario} test_grid.py ARGS ${scenario} LABELS grid)
endforeach()
