# adfd analyze: window scores against hand-built references, the CLI (options, bad inputs, JSON
# schema, exports, plots), timestamps on a clip whose second half is "fake", torch reference.
add_executable(analyze_make_model analyze_make_model.c)
target_link_libraries(analyze_make_model PRIVATE adfd_core)

adfd_unit_test(test_analyze_windows SOURCES test_analyze_windows.c LABELS analyze)
adfd_script_test(test_analyze_cli test_analyze_cli.sh
  ARGS $<TARGET_FILE:analyze_make_model> LABELS analyze)
adfd_script_test(test_analyze_torch test_analyze_torch.py
  ARGS $<TARGET_FILE:analyze_make_model> LABELS analyze)
adfd_script_test(test_analyze_eval test_analyze_eval.py
  ARGS $<TARGET_FILE:analyze_make_model> LABELS analyze)
adfd_script_test(test_analyze_corpus test_analyze_corpus.py LABELS analyze corpus)
set_tests_properties(test_analyze_corpus PROPERTIES TIMEOUT 900 PROCESSORS 2)
