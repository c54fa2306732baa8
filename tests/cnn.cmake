# The CNN: layers vs finite differences, the network vs PyTorch 1.13, the model file, adfd train.
adfd_unit_test(test_cnn_ref SOURCES test_cnn_ref.c LABELS cnn)
adfd_mpi_test(test_cnn_ref test_cnn_ref 2 LABELS cnn)
adfd_unit_test(test_layers SOURCES test_layers.c LABELS cnn)
