/* csv: RFC 4180 text tables (meta.csv, split.csv): reading records with quoted fields, doubled
 * quotes, CRLF or LF line ends and line breaks inside quotes; writing fields quoted when needed.
 * Input is checked to be UTF-8 text; every error names the file and line. */
#ifndef ADFD_CSV_H
#define ADFD_CSV_H

#include <stddef.h>
#include <stdio.h>

/* Reads a whole text file (NUL-terminated copy in *text, malloc'ed). A UTF-8 byte-order mark is
 * dropped; NUL bytes and invalid UTF-8 are errors naming the line (-1 + adfd_fail). */
int text_file_read(const char *path, char **text, size_t *size);

typedef struct {
    char path[4096];
    char *text; /* whole file */
    size_t size, pos;
    int line;        /* line where the next record starts */
    int record_line; /* line where the current record started */
    char **fields;   /* fields of the current record (unquoted), valid until the next call */
    int n_fields;
    char *buf; /* storage of the fields, NUL-separated */
    size_t buf_size;
    size_t *offsets;
    int offsets_size;
} csv_reader;

int csv_open(csv_reader *r, const char *path); /* -1 + adfd_fail */
/* Next non-blank record: 1 read, 0 end of file, -1 + adfd_fail ("path:line: ..."). */
int csv_next(csv_reader *r);
void csv_close(csv_reader *r);
/* Writes one field, quoted with inner quotes doubled when it holds a comma, quote, CR or LF. */
void csv_write_field(FILE *fp, const char *text);

#endif
