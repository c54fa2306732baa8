adfd_unit_test(test_util SOURCES test_util.c)
adfd_script_test(test_cli test_cli.sh)
