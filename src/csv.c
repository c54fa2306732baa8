/* csv: RFC 4180 reader and field writer. */
#include "adfd/csv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/util.h"

/* Length of the UTF-8 sequence at s (1..4), or 0 if it is not valid UTF-8 (overlong forms,
 * surrogates and code points above U+10FFFF are invalid). */
static int utf8_sequence_length(const unsigned char *s, size_t left) {
    if (s[0] < 0x80) return 1;
    int n;
    unsigned min;
    unsigned cp;
    if ((s[0] & 0xE0) == 0xC0)
        n = 2, min = 0x80, cp = s[0] & 0x1F;
    else if ((s[0] & 0xF0) == 0xE0)
        n = 3, min = 0x800, cp = s[0] & 0x0F;
    else if ((s[0] & 0xF8) == 0xF0)
        n = 4, min = 0x10000, cp = s[0] & 0x07;
    else
        return 0;
    if ((size_t)n > left) return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

int text_file_read(const char *path, char **text_out, size_t *size_out) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return adfd_fail("%s: cannot open: %s", path, strerror(errno));
    size_t capacity = 1 << 16, size = 0;
    char *text = mallocCheck(capacity);
    size_t n;
    while ((n = fread(text + size, 1, capacity - size - 1, fp)) > 0) {
        size += n;
        if (capacity - size - 1 == 0) {
            capacity *= 2;
            char *grown = realloc(text, capacity);
            if (!grown) adfd_die(__FILE__, __LINE__, "out of memory reading %s", path);
            text = grown;
        }
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(text);
        return adfd_fail("%s: read error", path);
    }
    text[size] = '\0';
    if (size >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
        memmove(text, text + 3, size - 3 + 1);
        size -= 3;
    }
    int line = 1;
    for (size_t i = 0; i < size;) {
        if (text[i] == '\0') {
            free(text);
            return adfd_fail("%s:%d: NUL byte: this is not a text file", path, line);
        }
        int len = utf8_sequence_length((const unsigned char *)text + i, size - i);
        if (len == 0) {
            free(text);
            return adfd_fail("%s:%d: invalid UTF-8 (save the file as UTF-8)", path, line);
        }
        if (text[i] == '\n') line++;
        i += (size_t)len;
    }
    *text_out = text;
    *size_out = size;
    return 0;
}

int csv_open(csv_reader *r, const char *path) {
    memset(r, 0, sizeof *r);
    if (strlen(path) >= sizeof r->path) return adfd_fail("%s: path too long", path);
    strcpy(r->path, path);
    if (text_file_read(path, &r->text, &r->size) != 0) return -1;
    r->line = 1;
    return 0;
}

void csv_close(csv_reader *r) {
    free(r->text);
    free(r->buf);
    free(r->offsets);
    free(r->fields);
    memset(r, 0, sizeof *r);
}

static void buf_push(csv_reader *r, size_t *used, char c) {
    if (*used == r->buf_size) {
        r->buf_size = r->buf_size ? 2 * r->buf_size : 256;
        char *grown = realloc(r->buf, r->buf_size);
        if (!grown) adfd_die(__FILE__, __LINE__, "out of memory reading %s", r->path);
        r->buf = grown;
    }
    r->buf[(*used)++] = c;
}

static void field_start(csv_reader *r, size_t used) {
    if (r->n_fields == r->offsets_size) {
        r->offsets_size = r->offsets_size ? 2 * r->offsets_size : 8;
        size_t *grown = realloc(r->offsets, (size_t)r->offsets_size * sizeof *grown);
        if (!grown) adfd_die(__FILE__, __LINE__, "out of memory reading %s", r->path);
        r->offsets = grown;
    }
    r->offsets[r->n_fields++] = used;
}

/* True at a line end (LF or CRLF); *len gets its length. */
static int at_line_end(const csv_reader *r, size_t pos, size_t *len) {
    if (pos < r->size && r->text[pos] == '\n') return *len = 1, 1;
    if (pos + 1 < r->size && r->text[pos] == '\r' && r->text[pos + 1] == '\n') return *len = 2, 1;
    return 0;
}

int csv_next(csv_reader *r) {
    size_t eol;
    while (r->pos < r->size && at_line_end(r, r->pos, &eol)) { /* blank lines */
        r->pos += eol;
        r->line++;
    }
    if (r->pos >= r->size) return 0;
    r->record_line = r->line;
    r->n_fields = 0;
    size_t used = 0;
    for (;;) { /* one field per iteration */
        field_start(r, used);
        if (r->text[r->pos] == '"') {
            int quote_line = r->line;
            r->pos++;
            for (;;) {
                if (r->pos >= r->size)
                    return adfd_fail("%s:%d: unterminated quote (the quoted field opened on line "
                                     "%d never closes)",
                                     r->path, r->line, quote_line);
                char c = r->text[r->pos];
                if (c == '"' && r->pos + 1 < r->size && r->text[r->pos + 1] == '"') {
                    buf_push(r, &used, '"');
                    r->pos += 2;
                    continue;
                }
                if (c == '"') {
                    r->pos++;
                    break;
                }
                if (c == '\n') r->line++;
                buf_push(r, &used, c);
                r->pos++;
            }
            if (r->pos < r->size && r->text[r->pos] != ',' && !at_line_end(r, r->pos, &eol))
                return adfd_fail("%s:%d: unexpected text after a closing quote (inside a quoted "
                                 "field a quote is written twice: \"\")",
                                 r->path, r->line);
        } else {
            while (r->pos < r->size && r->text[r->pos] != ',' && !at_line_end(r, r->pos, &eol)) {
                if (r->text[r->pos] == '"')
                    return adfd_fail("%s:%d: quote inside an unquoted field (quote the whole "
                                     "field and double the inner quote: \"a \"\"b\"\"\")",
                                     r->path, r->line);
                buf_push(r, &used, r->text[r->pos++]);
            }
        }
        buf_push(r, &used, '\0');
        if (r->pos < r->size && r->text[r->pos] == ',') {
            r->pos++;
            continue;
        }
        if (r->pos < r->size && at_line_end(r, r->pos, &eol)) {
            r->pos += eol;
            r->line++;
        }
        break;
    }
    r->fields = realloc(r->fields, (size_t)r->n_fields * sizeof *r->fields);
    if (!r->fields) adfd_die(__FILE__, __LINE__, "out of memory reading %s", r->path);
    for (int i = 0; i < r->n_fields; i++)
        r->fields[i] = r->buf + r->offsets[i];
    return 1;
}

void csv_write_field(FILE *fp, const char *text) {
    if (!strpbrk(text, ",\"\r\n")) {
        fputs(text, fp);
        return;
    }
    fputc('"', fp);
    for (const char *c = text; *c; c++) {
        if (*c == '"') fputc('"', fp);
        fputc(*c, fp);
    }
    fputc('"', fp);
}
