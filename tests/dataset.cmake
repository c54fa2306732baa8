# Data ingestion: meta.csv / protocol / split.csv readers, audio decoding, adfd split.
adfd_unit_test(test_dataset SOURCES test_dataset.c LABELS ingest)
adfd_unit_test(test_audio SOURCES test_audio.c LABELS ingest)
adfd_script_test(test_split test_split.py LABELS ingest)
