# features / store / prepare (issue 4)
adfd_unit_test(test_features SOURCES test_features.c LABELS features)
