# Demo corpus builder (data/make_corpus.sh): layout, format, labels, balance, determinism,
# shortcut check, and that adfd split reads the result.
adfd_script_test(test_corpus test_corpus.sh LABELS corpus)
set_tests_properties(test_corpus PROPERTIES TIMEOUT 600 PROCESSORS 2)
