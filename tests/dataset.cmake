# Data ingestion: meta.csv / protocol / split.csv readers, audio decoding, adfd split.
adfd_unit_test(test_dataset SOURCES test_dataset.c LABELS ingest)
