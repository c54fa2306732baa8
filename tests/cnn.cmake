# The CNN: layers vs finite differences, the network vs PyTorch 1.13, the model file, adfd train.
adfd_unit_test(test_cnn_ref SOURCES test_cnn_ref.c LABELS cnn)
adfd_mpi_test(test_cnn_ref test_cnn_ref 2 LABELS cnn)
adfd_unit_test(test_layers SOURCES test_layers.c LABELS cnn)
add_executable(cnn_tool cnn_tool.c)
target_link_libraries(cnn_tool PRIVATE adfd_core)
adfd_script_test(test_model_torch test_model_torch.py ARGS $<TARGET_FILE:cnn_tool> LABELS cnn)
adfd_script_test(test_train test_train.sh ARGS $<TARGET_FILE:cnn_tool> LABELS cnn)
